"""The shared search mode against the fast one on the shipped detector's test tiles, several sky seeds.

    python experiments/shared_search_tiles.py [--seeds 7 8 9] [--pixscale 2.4] [--model DIR]

For each seed, draws a fresh twin of the paper's test tiles l = 12° and 15°
(10.56°–16.44°, |b| <= 1°; seeds none of the detector's training skies used) and searches each tile with the detector's own search in the fast mode,
in the shared mode with the detector's distilled shared-search network, and
in the shared mode with its per-window network (undistilled): time, windows,
detections, and recall and precision on the clear bubbles (the paper's rule),
summed over the tiles of a seed. Prints one JSON line with every seed's rows
and the mean and standard deviation over seeds of each difference from the
fast mode.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 8, 9])
    parser.add_argument("--pixscale", type=float, default=2.4)
    parser.add_argument("--model", type=Path)
    args = parser.parse_args()

    from bubblenet.detection.detector import load_detector
    from bubblenet.detection.search import search_tile
    from bubblenet.evaluation.metrics import score_paper
    from bubblenet.sky.tilecache import TileCache
    from bubblenet.synth import Region, SynthConfig, make_survey
    from bubblenet.training.validation import ValidationTile
    from bubblenet.training_data.samples import survey_inputs

    detector = load_detector(args.model)
    runs = {"fast": ("fast", detector.model), "shared": ("shared", detector.model_for("shared")),
            "shared, undistilled": ("shared", detector.model)}
    rows = []
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "sky"
            make_survey(folder, SynthConfig(Region(10.56, 16.44, -1.0, 1.0), args.pixscale, seed=seed))
            tiles, catalogue, selection = survey_inputs(folder=folder)
            totals = {name: {"seconds": 0.0, "windows": 0, "detections": 0, "tp": 0, "fp": 0, "fn": 0}
                      for name in runs}
            for tile in tiles:
                if tile.name[4:9] not in ("01200", "01500"):
                    continue
                missing = detector.search.missing
                truth = ValidationTile.from_tile(tile, catalogue, selection, Path(tmp) / "cache", missing=missing)
                cache = TileCache(tile, Path(tmp) / "cache", missing=missing)
                for name, (mode, model) in runs.items():
                    start = time.perf_counter()
                    found = search_tile(model, detector.spec, cache, dataclasses.replace(detector.search, mode=mode),
                                        pixscale_arcsec=args.pixscale, norm=detector.normalisation,
                                        bands=detector.bands, confidence=detector.threshold)
                    score = score_paper(found.boxes, truth.bubbles, truth.selected)
                    total = totals[name]
                    total["seconds"] += time.perf_counter() - start
                    total["windows"] += found.windows
                    total["detections"] += len(found.scores)
                    for key in ("tp", "fp", "fn"):
                        total[key] += int(score[key])
        for name, total in totals.items():
            recall = total["tp"] / max(total["tp"] + total["fn"], 1)
            precision = total["tp"] / max(total["tp"] + total["fp"], 1)
            rows.append({"seed": seed, "run": name, **total, "seconds": round(total["seconds"], 1),
                         "recall": round(recall, 3), "precision": round(precision, 3)})
    summary = {}
    for name in runs:
        if name == "fast":
            continue
        mine = [r for r in rows if r["run"] == name]
        fast = [r for r in rows if r["run"] == "fast"]
        diffs = {key: [m[key] - f[key] for m, f in zip(mine, fast)] for key in ("recall", "precision")}
        speed = [f["seconds"] / m["seconds"] for m, f in zip(mine, fast)]
        summary[name] = {**{f"{k}_minus_fast": [round(float(np.mean(v)), 3), round(float(np.std(v)), 3)]
                            for k, v in diffs.items()},
                         "speedup": [round(float(np.mean(speed)), 2), round(float(np.std(speed)), 2)]}
    print(json.dumps({"experiment": "shared_search_tiles", "pixscale_arcsec": args.pixscale, "seeds": args.seeds,
                      "threshold": detector.threshold, "rows": rows, "mean_sd_over_seeds": summary}))


if __name__ == "__main__":
    main()
