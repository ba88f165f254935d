"""Benchmark: `bubblenet detect` on one GLIMPSE-sized tile pair: memory and windows per second.

Draws a synthetic twin of l = 28.5°–31.5°, |b| <= 1° at GLIMPSE's 1.2″/px — one
8 µm tile of about 9000 x 6000 px with its MIPSGAL-like 24 µm tiles — and runs
the detection verb on it in a child process with the shipped detector,
recording the child's peak resident memory and the windows searched per
second. Baselines measured in the same run: the network alone on random
windows (windows/s with no reading, normalising or merging), and the peak
memory of a child that simply reads the whole tile pair into memory (what a
naive detector would hold before doing any work). From the measured time of
the whole run (start-up, caching and search: what one more tile of a survey
costs, and a little more), the time for the paper's 256 deg² plane at
native resolution on this machine. And the resampling of the 24 µm band onto
one 512-row strip, against `reproject.reproject_interp` on the same
sections (checked to give the same values).

Targets: a 9000 x 6000 px tile pair in under 4 GB (issue #5); the 256 deg²
plane in at most an hour (issue #16). Prints one JSON line.

    python benchmarks/bench_detect.py [--sizes 480 3600] [--mode paper]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PAPER_SURVEY_DEG2 = 2 * 64 * 2.0  # 1° <= |l| <= 65°, |b| <= 1°


def run_detect(args: list[str]) -> tuple[float, float, str]:
    """Wall time, peak RSS of the child (MB) and its last output line."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    child = subprocess.run([sys.executable, "-m", "bubblenet.detect", *args, "-q"], capture_output=True, text=True)
    wall = time.perf_counter() - start
    if child.returncode != 0:
        raise SystemExit(child.stderr)
    peak = max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, before) / 1024
    return wall, peak, child.stdout.strip().splitlines()[0]


def network_rate(batches: int = 10, batch: int = 32) -> float:
    """Windows per second of the shipped detector's network alone, on random inputs."""
    import numpy as np

    from bubblenet.detection.detector import load_detector

    model = load_detector().model
    x = np.random.default_rng(0).uniform(size=(batch, 128, 128, 2)).astype(np.float32)
    model.predict_on_batch(x)
    start = time.perf_counter()
    for _ in range(batches):
        model.predict_on_batch(x)
    return batches * batch / (time.perf_counter() - start)


def naive_read_mb(folder: Path) -> float:
    """Peak RSS (MB) of a child that reads the whole GLM_03000 tile pair into memory."""
    code = ("import resource, sys; from bubblenet.sky.mosaics import find_survey_files, open_survey; "
            "t = [t for t in open_survey(*find_survey_files(sys.argv[1])) if t.name.startswith('GLM_03000')][0]; "
            "d = t.read(); print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)")
    child = subprocess.run([sys.executable, "-c", code, str(folder)], capture_output=True, text=True, check=True)
    return float(child.stdout.strip().splitlines()[-1])


def sky_deg2(tile) -> float:
    """Square degrees of the tile's 8 µm grid that hold data."""
    import numpy as np

    from bubblenet.sky.mosaics import Window

    ny, nx = tile.shape
    finite = sum(int(np.isfinite(tile.image8.read(Window(0, y0, nx, min(1024, ny - y0)))).sum())
                 for y0 in range(0, ny, 1024))
    return finite * (float(tile.pixel_scale.value) / 3600) ** 2


def resampling_seconds(tile, rows: int = 512) -> tuple[float, float]:
    """Seconds to resample the 24 µm band onto one strip of `rows` rows across the tile: as `read24` does
    (`bubblenet.sky.resampling`), and with `reproject.reproject_interp` (the exact mapping of every pixel),
    the same sections and the same mean."""
    import numpy as np
    from reproject import reproject_interp

    from bubblenet.sky.mosaics import Window, shift_wcs

    window = Window(0, tile.shape[0] // 2 - rows // 2, tile.shape[1], rows)
    start = time.perf_counter()
    ours = tile.read24(window, fill_holes=False)
    ours_s = time.perf_counter() - start
    start = time.perf_counter()
    total, count = np.zeros(window.shape), np.zeros(window.shape)
    for image, section, _ in tile._plan24(window):
        values, footprint = reproject_interp((image.read(section), shift_wcs(image.wcs, section.x0, section.y0)),
                                             tile.window_wcs(window), shape_out=window.shape, order="bilinear")
        ok = (footprint > 0) & np.isfinite(values)
        total[ok] += values[ok]
        count[ok] += 1
    with np.errstate(invalid="ignore"):
        theirs = total / count
    reproject_s = time.perf_counter() - start
    both = np.isfinite(ours) & np.isfinite(theirs)
    if not (np.isfinite(ours) == np.isfinite(theirs)).all() or not np.allclose(ours[both], theirs[both], rtol=1e-5):
        raise SystemExit("the resampled strip differs from reproject's")
    return ours_s, reproject_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs=2, default=[480.0, 3600.0], help="window sides, arcsec")
    parser.add_argument("--mode", choices=("fast", "paper"), default="fast",
                        help="detect's search mode (peak memory is per child, so one mode per run)")
    args = parser.parse_args()
    from bubblenet.synth import Region, SynthConfig, make_survey

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        start = time.perf_counter()
        make_survey(tmp / "sky", SynthConfig(Region(28.5, 31.5, -1.0, 1.0), 1.2, seed=0))
        synth_s = time.perf_counter() - start
        from bubblenet.sky.mosaics import find_survey_files, open_survey

        (tile,) = [t for t in open_survey(*find_survey_files(tmp / "sky")) if t.name.startswith("GLM_03000")]
        common = ["--survey", str(tmp / "sky"), "--sizes", *map(str, args.sizes), "--stride", "0.5",
                  "--mode", args.mode, "--no-previews"]
        wall, peak, line = run_detect([*common, "--out", str(tmp / "full")])
        windows = json.loads((tmp / "full" / "detect_run.json").read_text())["windows"]
        naive_mb = naive_read_mb(tmp / "sky")
        area = sky_deg2(tile)
        resample_s, reproject_s = resampling_seconds(tile)
    network = network_rate()
    survey_h = wall * PAPER_SURVEY_DEG2 / area / 3600
    print(json.dumps({
        "benchmark": "detect_tile", "cpu_cores": os.cpu_count(), "tile_px": list(tile.shape[::-1]),
        "pixscale_arcsec": round(float(tile.pixel_scale.value), 3), "sizes_arcsec": args.sizes, "stride": 0.5,
        "mode": args.mode,
        "windows": windows, "wall_s": round(wall, 1), "windows_per_s": round(windows / wall, 1),
        "network_only_windows_per_s": round(network, 1), "pipeline_over_network": round(windows / wall / network, 2),
        "peak_rss_mb": round(peak), "naive_whole_tile_rss_mb": round(naive_mb), "target_rss_mb": 4096,
        "meets_target": peak < 4096,
        "tile_sky_deg2": round(area, 2), "paper_survey_deg2": PAPER_SURVEY_DEG2,
        "paper_survey_estimate_h": round(survey_h, 2), "target_survey_h": 1.0, "meets_survey_target": survey_h <= 1.0,
        "strip_resampling_s": round(resample_s, 2), "strip_reproject_interp_s": round(reproject_s, 2),
        "resampling_speedup": round(reproject_s / resample_s, 1),
        "synth_s": round(synth_s, 1), "result": line,
    }))


if __name__ == "__main__":
    main()
