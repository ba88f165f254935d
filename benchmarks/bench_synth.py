"""Benchmark: drawing a 1° x 2° synthetic survey region at 2.4″/px on one core.

Target (issue #2): under 60 s for both bands with every component. The
baseline, measured in the same run, is the floor any generator pays: drawing
the same number of pixels of plain Gaussian noise and writing them as FITS
tiles. Prints one JSON line.

    python benchmarks/bench_synth.py [--l0 30] [--pixscale 2.4] [--seed 0]
"""

from __future__ import annotations

import os

# One core, as the target says: set before numpy/scipy start their thread pools.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from astropy.io import fits  # noqa: E402

from bubblenet.synth import Region, SynthConfig, make_survey, survey_layout  # noqa: E402

TARGET_SECONDS = 60.0


def baseline(folder: Path, region: Region, pixscale: float) -> float:
    """Seconds to write noise tiles of the same shapes: the I/O and RNG floor."""
    _, tiles8, tiles24 = survey_layout(region, pixscale)
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for spec in tiles8 + tiles24:
        data = rng.standard_normal(spec.shape, dtype=np.float32)
        fits.PrimaryHDU(data, spec.header()).writeto(folder / spec.filename, overwrite=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--l0", type=float, default=30.0, help="start longitude of the 1° x 2° region")
    parser.add_argument("--pixscale", type=float, default=2.4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    region = Region(args.l0, args.l0 + 1.0, -1.0, 1.0)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "base").mkdir()
        floor = baseline(tmp / "base", region, args.pixscale)
        start = time.perf_counter()
        files = make_survey(tmp / "sky", SynthConfig(region, args.pixscale, seed=args.seed))
        seconds = time.perf_counter() - start
        pixels = sum(fits.getheader(p)["NAXIS1"] * fits.getheader(p)["NAXIS2"] for p in files.tiles8 + files.tiles24)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({
        "benchmark": "synth_1x2deg", "pixscale_arcsec": args.pixscale, "tiles": len(files.tiles8) + len(files.tiles24),
        "megapixels": round(pixels / 1e6, 2), "seconds": round(seconds, 2), "baseline_noise_seconds": round(floor, 2),
        "ratio_to_baseline": round(seconds / floor, 2), "megapixels_per_s": round(pixels / 1e6 / seconds, 2),
        "peak_rss_mb": round(peak_mb), "bubbles": files.n_bubbles, "target_seconds": TARGET_SECONDS,
        "meets_target": seconds < TARGET_SECONDS,
    }))


if __name__ == "__main__":
    main()
