"""Benchmark: survey detection with 1, 2 (and more) Dask workers against one process, same survey, one run.

Draws a synthetic survey of several GLIMPSE-like tiles (default l = 25.56°–37.44°,
four tiles, at 4.8″/px) and runs ``bubblenet detect`` on it in a child process:
first in one process (the baseline), then with ``--workers N`` for each N
asked (a `dask.distributed.LocalCluster` of N single-threaded worker
processes). For each: wall time, survey rate (deg² per hour), the scaling
ratio against one worker and against the single process, the peak resident
memory of each worker, and whether the catalogue is identical to the
single-process one. From the measured single-process rate it then estimates
the wall time of the paper's survey (1° <= |l| <= 65°, |b| <= 1°, 256 deg²)
at this pixel scale on this machine, on N such workers assuming the measured
scaling, and on one GPU, taken as the time to cut and normalise the windows
alone (measured here on one tile): a GPU runs the lite SSD much faster than a
CPU can feed it.

Each worker's TensorFlow uses every core it sees, so on a machine with fewer
cores than workers the workers share cores: expect near-linear scaling only
up to the core count (or across nodes). Prints one JSON line.

    python benchmarks/bench_dask.py [--workers 1 2] [--pixscale 4.8] [--l 25.56 37.44] [--sizes 420 3600]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PAPER_SURVEY_DEG2 = 2 * 64 * 2.0  # 1° <= |l| <= 65°, |b| <= 1°

def run(folder: Path, out: Path, workers: int | None, extra: list[str]) -> dict:
    """One detect run in a child process: wall time, peak RSS (driver, and per worker with Dask)."""
    args = [sys.executable, "-m", "bubblenet.detect", "--survey", str(folder), "--out", str(out), "-q",
            "--no-previews", *extra]
    if workers:
        args += ["--workers", str(workers)]
    start = time.perf_counter()
    child = subprocess.run(args, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if child.returncode != 0:
        raise SystemExit(child.stderr[-3000:])
    report = json.loads((out / "detect_run.json").read_text())
    record = {"workers": workers or 0, "wall_s": round(wall, 1), "driver_peak_rss_mb": report["peak_rss_mb"]}
    if workers:
        record["worker_peak_rss_mb"] = sorted(round(v) for v in report["workers"]["peak_rss_mb"].values())
    return record


def input_seconds(folder: Path, search: dict) -> float:
    """Seconds to cut and normalise one tile's windows with no network (the part a GPU cannot speed up)."""
    from bubblenet.detection.detector import load_detector
    from bubblenet.detection.inference import search_inputs
    from bubblenet.sky.mosaics import find_survey_files, open_survey
    from bubblenet.sky.tilecache import TileCache
    from bubblenet.detection.windows import sky_window_sizes

    detector = load_detector()
    tile = open_survey(*find_survey_files(folder))[0]
    pixscale = float(tile.pixel_scale.value)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        cache = TileCache(tile, tmp, missing=detector.search.missing)
        sides = sky_window_sizes(search["sizes_arcsec"], pixscale, per_octave=search["per_octave"])
        _, inputs = search_inputs(cache, sides, detector.model.input_shape[1], stride_fraction=search["stride"],
                                  pixscale_arcsec=pixscale, norm=detector.normalisation, mode="fast")
        for _ in inputs:
            pass
        return time.perf_counter() - start


def same_catalogue(a: Path, b: Path) -> bool:
    import numpy as np
    from astropy.table import Table

    first, second = Table.read(a / "bubbles.ecsv"), Table.read(b / "bubbles.ecsv")
    return len(first) == len(second) and all(np.array_equal(first[c], second[c]) for c in first.colnames)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts to run")
    parser.add_argument("--pixscale", type=float, default=4.8, help="arcsec per pixel of the drawn survey")
    parser.add_argument("--l", type=float, nargs=2, default=[25.56, 37.44], help="longitude range, deg")
    parser.add_argument("--sizes", type=float, nargs=2, metavar=("MIN", "MAX"),
                        help="window sides, arcsec (default: the shipped detector's search)")
    args = parser.parse_args()

    from bubblenet.detection.detector import load_detector
    from bubblenet.synth import Region, SynthConfig, make_survey

    search = {"per_octave": 2, "stride": 0.5, "sizes_arcsec": [420.0, 3600.0], "mode": "fast",
              **load_detector().info.get("search", {})}
    if args.sizes:
        search["sizes_arcsec"] = list(args.sizes)
    extra = ["--sizes", *map(str, search["sizes_arcsec"])]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "sky"
        make_survey(folder, SynthConfig(Region(*args.l, -1.0, 1.0), args.pixscale, seed=11))
        tiles = len(list(folder.glob("GLM_*.fits")))
        sky_deg2 = (args.l[1] - args.l[0]) * 2.0
        single = run(folder, Path(tmp) / "single", None, extra)
        runs = [single]
        for n in args.workers:
            record = run(folder, Path(tmp) / f"w{n}", n, extra)
            record["identical_to_single_process"] = same_catalogue(Path(tmp) / "single", Path(tmp) / f"w{n}")
            runs.append(record)
        prep = input_seconds(folder, search)
    one = next((r for r in runs if r["workers"] == 1), single)
    for record in runs:
        record["deg2_per_hour"] = round(sky_deg2 / record["wall_s"] * 3600, 1)
        record["speedup_vs_one_worker"] = round(one["wall_s"] / record["wall_s"], 2)
        record["speedup_vs_single_process"] = round(single["wall_s"] / record["wall_s"], 2)
    best = max(runs, key=lambda r: r["speedup_vs_single_process"])
    per_tile = single["wall_s"] / tiles
    print(json.dumps({
        "benchmark": "dask_scaling", "cpu_cores": os.cpu_count(), "pixscale_arcsec": args.pixscale,
        "tiles": tiles, "sky_deg2": round(sky_deg2, 2), "search": search, "runs": runs,
        "single_process_s_per_tile": round(per_tile, 1),
        "paper_survey_hours_single_process": round(PAPER_SURVEY_DEG2 / sky_deg2 * single["wall_s"] / 3600, 2),
        "paper_survey_hours_best_here": round(PAPER_SURVEY_DEG2 / sky_deg2 * best["wall_s"] / 3600, 2),
        "input_preparation_s_per_tile": round(prep, 1),
        "paper_survey_hours_one_gpu_estimate": round(PAPER_SURVEY_DEG2 / (sky_deg2 / tiles) * prep / 3600, 2),
    }))


if __name__ == "__main__":
    main()
