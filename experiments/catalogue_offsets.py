"""How far a detector's nearest detection lies from each DR2 bubble, on the real field and on its twins.

On the real MWP field at l = 41.3° (through registered copies of its planes,
as `benchmarks/bench_transfer.py` scores it) and on its twins of each seed
(in the real planes' display stretch, standard and hardened-and-JPEG), the
detector searches down to `--threshold`; for every DR2 bubble inside the
field the nearest detection whose size agrees with the bubble's as the
strict rule asks (`bubblenet.evaluation.metrics.STRICT_SIZE_RATIO`, a factor
of 2) and whose centre lies within 1.5 × MajAxis is taken, and its distance
on the sky (`bubblenet.evaluation.metrics.sky_geometry`) in units of MajAxis
recorded. The strict rule matches up to 0.65 MajAxis (half the 1.3 MajAxis
box half-size); the wider search shows the near misses too. The twins' catalogues
are scattered from their shells by `bubblenet.synth.hardening.HARD`'s
catalogue errors (hardened twins only), so the distances compare the
catalogue-plus-detector scatter of the real sky with the twin's. Prints one
JSON line: per field the distances and scores, and per kind of field the
median distance, with a one-sided Mann-Whitney test of the real field's
distances against each twin kind's (seeds pooled).

    python experiments/catalogue_offsets.py [--model PATH] [--seeds 0 1 2] [--threshold 0.3] [--position-scatter D]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

#: How far from a bubble (in MajAxis) the nearest detection is looked for: beyond the strict rule's limit, so that
#: near misses show as distances rather than as absences.
SEARCH_MAJ_AXES = 1.5


def nearest_offsets(detector, i8: Path, m24: Path, catalogue, threshold: float) -> list[dict]:
    """Per catalogue bubble inside the field, the nearest detection of a matching size (distance over MajAxis)."""
    import bubblenet
    import bubblenet.api  # the table behind find_bubbles' QTable, which score_catalogue takes
    from bubblenet.evaluation.metrics import STRICT_SIZE_RATIO
    from bubblenet.evaluation.scoring import reference_catalogue, score_catalogue

    found = bubblenet.api._detection_table(bubblenet.find_bubbles(i8, m24, detector=detector, threshold=threshold))
    scored = score_catalogue(found, reference_catalogue(catalogue), set())  # distances as the strict rule takes them
    radius = np.asarray(scored.detections["radius_arcmin"], float)
    rows = []
    for j, bubble in enumerate(scored.reference):
        major = float(bubble["maj_axis"])  # arcmin
        distance = scored.distance[:, j] / (60.0 * major)
        ratio = np.maximum(radius / major, major / np.maximum(radius, 1e-9))  # = the boxes' ratio
        fits = (ratio <= STRICT_SIZE_RATIO) & (distance < SEARCH_MAJ_AXES)
        if fits.any():
            k = int(np.argmin(np.where(fits, distance, np.inf)))
            rows.append({"name": str(bubble["name"]), "maj_axis_arcmin": major, "distance": float(distance[k]),
                         "score": float(scored.detections["score"][k])})
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="detector folder or model file (default: the shipped detector)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="twin seeds")
    parser.add_argument("--threshold", type=float, default=0.3, help="lowest detection score kept")
    parser.add_argument("--position-scatter", type=float, default=None,
                        help="the hardened twins' catalogue scatter per axis, in Disp (default: HARD's)")
    args = parser.parse_args(argv)
    if args.position_scatter is not None and not (args.position_scatter >= 0):
        parser.error(f"option --position-scatter: must be a number >= 0, got {args.position_scatter}")

    from scipy.stats import mannwhitneyu

    import bench_transfer
    from bubblenet.detection.detector import load_detector
    from bubblenet.synth.hardening import HARD
    from bubblenet.synth.realism import mwp_field_twin

    hard = HARD if args.position_scatter is None else dataclasses.replace(HARD, position_scatter=args.position_scatter)
    detector = load_detector(args.model)
    display = (bench_transfer.REAL_I8, bench_transfer.REAL_M24)
    fields = {}
    with tempfile.TemporaryDirectory() as tmp:
        _, (i8, m24) = bench_transfer.register(Path(tmp) / "registered")
        fields["real"] = nearest_offsets(detector, i8, m24, "mwp_dr2", args.threshold)
        for seed in args.seeds:
            for kind, hardening in (("display_twin", None), ("hard_jpeg_twin", hard)):
                i8, m24, catalogue = mwp_field_twin(Path(tmp) / f"{kind}_s{seed}", seed=seed, display_like=display,
                                                    hardening=hardening, jpeg=hardening is not None)
                fields[f"{kind}_s{seed}"] = nearest_offsets(detector, i8, m24, catalogue, args.threshold)
    real = [row["distance"] for row in fields["real"]]
    kinds = {"real": {"n": len(real), "median_distance": float(np.median(real))}}
    for kind in ("display_twin", "hard_jpeg_twin"):
        pooled = [row["distance"] for seed in args.seeds for row in fields[f"{kind}_s{seed}"]]
        kinds[kind] = {"n": len(pooled), "median_distance": float(np.median(pooled)),
                       "real_farther_p": float(mannwhitneyu(real, pooled, alternative="greater").pvalue)}
    print(json.dumps({"experiment": "catalogue_offsets", "detector": str(args.model or "shipped: lite_synthetic"),
                      "threshold": args.threshold, "seeds": args.seeds,
                      "position_scatter": hard.position_scatter, "kinds": kinds, "fields": fields}))


if __name__ == "__main__":
    main()
