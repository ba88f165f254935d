"""Rows of docs/measurements.md's real-field tables from `benchmarks/bench_transfer.py` outputs, over detector seeds.

Each input is one bench_transfer JSON line (one detector); detectors given
as one group are the seeds of one recipe. Per field kind, each detector's
twin rows are first averaged over the twin seeds, then the recipe's mean and
standard deviation over its detectors are printed as a markdown row:

    python benchmarks/bench_transfer.py --model runs/hard_s0 > hard_s0.json   # ... one per seed
    python experiments/transfer_table.py "hardened sky" hard_s0.json hard_s1.json hard_s2.json

``--curve`` prints instead one row per recipe along the operating curve
(bench_transfer's ``sweep``): at each threshold, the real field's DR2 bubbles
found and unmatched detections per deg², beside the display twins' (mean over
the detectors, each twin first averaged over its seeds), and the most clear
bubbles the real field gives within 15 unmatched detections per deg².
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

FIELDS = (("real", "real"), ("real_approx_wcs", "real, approximate WCS"), ("twins", "twins, MJy/sr"),
          ("display_twins", "twins, display stretch"),
          ("hard_display_twins", "hardened twins, display stretch"),
          ("hard_jpeg_twins", "hardened twins, display stretch and JPEG"))
MEASURES = ("dr2_recall", "clear_found", "unmatched_per_deg2")


def field_value(result: dict, field: str, measure: str) -> float:
    """The real field's value, or the mean over a kind of twin's seeds."""
    if field.startswith("real"):
        return float(result[field][measure])
    return float(np.mean([twin[measure] for twin in result[field].values()]))


def rows(name: str, results: list[dict]) -> list[str]:
    """Markdown rows ``| name | field | DR2 recall | clear found | unmatched / deg² |`` for one recipe."""
    out = []
    for k, (field, label) in enumerate(FIELDS):
        if any(field not in r for r in results):
            continue
        cells = []
        for measure, digits in zip(MEASURES, (2, 1, 1)):
            values = [field_value(r, field, measure) for r in results]
            spread = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
            cells.append(f"{np.mean(values):.{digits}f} ± {spread:.{digits}f}" if len(values) > 1
                         else f"{values[0]:.{digits}f}")
        out.append(f"| {name if k == 0 else 'the same'} | {label} | " + " | ".join(cells) + " |")
    return out


def curve_row(name: str, results: list[dict], thresholds=(0.3, 0.5, 0.7)) -> str:
    """``| name | real at t1 | twins at t1 | ... | best clear within target |``: DR2 found / unmatched per deg²."""
    def at(result: dict, field: str, t: float, measure: str) -> float:
        if field == "real":
            rows = [result["real"]["sweep"]]
        else:
            rows = [twin["sweep"] for twin in result[field].values()]
        return float(np.mean([next(r[measure] for r in sweep if abs(r["threshold"] - t) < 1e-9) for sweep in rows]))

    cells = []
    for t in thresholds:
        for field in ("real", "display_twins"):
            found = np.mean([at(r, field, t, "dr2_found") for r in results])
            unmatched = np.mean([at(r, field, t, "unmatched_per_deg2") for r in results])
            cells.append(f"{found:.1f} / {unmatched:.1f}")
    best = [r["real_best_clear_found_within_unmatched_target"] for r in results]
    cells.append(", ".join("—" if b is None else f"{b['clear_found']} ({b['threshold']:.1f})" for b in best))
    return f"| {name} | " + " | ".join(cells) + " |"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", help="the recipe's name in the table")
    parser.add_argument("results", type=Path, nargs="+", help="bench_transfer JSON outputs, one per detector")
    parser.add_argument("--curve", action="store_true", help="the operating-curve row instead")
    args = parser.parse_args(argv)
    results = [json.loads(path.read_text().strip().splitlines()[-1]) for path in args.results]
    print(curve_row(args.name, results) if args.curve else "\n".join(rows(args.name, results)))


if __name__ == "__main__":
    main()
