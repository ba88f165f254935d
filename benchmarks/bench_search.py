"""Benchmark: the paper's sliding-window search against the default (fast) search, on one tile.

Draws a synthetic twin of the paper's test tile l = 12° (10.56°–13.44°,
|b| <= 1°; seed 7, which no shipped training sky used) and searches it with the
shipped detector several ways, in one run:

``paper``
    the reference method's search: windows of 120″–3600″ (100–3000 px at
    GLIMPSE's 1.2″/px), stride 1/3, every window processed on its own;
``paper windows, pyramid``
    the same windows cut from an image pyramid (`bubblenet.detection.pyramid`);
``default, one by one``
    the detector's own search (its ``model_info.json``; for the shipped one
    200″–3600″, stride 1/2, near the paper's validation search of 150–3000 px
    = 180″–3600″), each window processed on its own;
``default``
    that search from the pyramid: what `bubblenet detect` does;
``default windows, shared``
    the same windows (their starts on the trunk's 16-px grid) in the shared
    mode (`bubblenet.detection.shared`): the backbone run once over each
    pyramid level, each level normalised once;
``default, bfloat16`` and ``default windows, shared, bfloat16``
    the same with the network computing in bfloat16
    (`bubblenet.ssd.model.in_precision`);
``default windows, shared, undistilled``
    the shared mode with the detector's per-window network instead of its
    distilled shared-search network (when it has one);
``validation windows``
    the default mode with the windows the detector was validated with
    (``validation_search``; 420″–3600″ for the shipped one): faster, but too
    coarse for bubbles with boxes under about 60″.

For each: wall time, windows, windows/s, and recall and precision on the
tile's clear bubbles at the detector's threshold (the paper's matching rule).
Then the default mode's survey rate in deg² of sky per hour on this machine
and what that makes of the paper's survey (1° <= |l| <= 65°, |b| <= 1°,
256 deg²). Targets: the default mode at least 5x faster than the paper
mode, at recall within 0.02 of it (issue #5); the shared mode at least 3x
faster than the default, at recall within 0.01 and precision not lower
(issue #16). Prints one JSON line.

    python benchmarks/bench_search.py [--pixscale 2.4] [--model PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

PAPER_SURVEY_DEG2 = 2 * 64 * 2.0  # 1° <= |l| <= 65°, |b| <= 1°


def search(detector, tile, cache, sizes_arcsec, stride, mode, paper=False, model=None):
    """(seconds, windows searched, boxes, scores) of one search of `tile` (by `model`, default the detector's
    network for `mode`)."""
    from bubblenet.detection.inference import detect_outputs
    from bubblenet.detection.search import window_batches
    from bubblenet.ssd.decoder import Decoder
    from bubblenet.detection.windows import MIN_WINDOW_PX, sky_window_sizes

    model = model if model is not None else detector.model_for(mode)
    pixscale = float(tile.pixel_scale.value)
    # The paper's windows exactly (down to 120"); the others with detect's floor of MIN_WINDOW_PX pixels.
    sides = sky_window_sizes(sizes_arcsec, pixscale, per_octave=2, min_px=0 if paper else MIN_WINDOW_PX)
    start = time.perf_counter()
    count, batches = window_batches(model, cache, sides, mode=mode, stride_fraction=stride, pixscale_arcsec=pixscale,
                                    norm=detector.normalisation, bands=detector.bands)
    n = 0

    def counted():
        nonlocal n
        for crops, outputs in batches:
            n += len(crops)
            yield crops, outputs

    boxes, scores = detect_outputs(counted(), decoder=Decoder(detector.spec), confidence=detector.threshold)
    return time.perf_counter() - start, n, boxes, scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pixscale", type=float, default=2.4,
                        help="arcsec per pixel of the drawn tile (the shipped detector was trained at 2.4)")
    parser.add_argument("--model", help="detector (default: the shipped one)")
    parser.add_argument("--runs", nargs="+", metavar="NAME",
                        help="only these runs (by name, e.g. default 'default windows, shared'); "
                             "the summary needs 'paper', 'default' and the shared runs")
    args = parser.parse_args()

    from bubblenet.training_data.samples import survey_inputs
    from bubblenet.detection.search import SearchConfig
    from bubblenet.detection.detector import load_detector
    from bubblenet.ssd.model import in_precision
    from bubblenet.evaluation.metrics import score_paper
    from bubblenet.synth import Region, SynthConfig, make_survey
    from bubblenet.sky.tilecache import TileCache
    from bubblenet.training.validation import ValidationTile

    detector = load_detector(args.model)
    default = detector.info.get("search", {"sizes_arcsec": [420.0, 3600.0], "stride": 0.5})
    validated = detector.info.get("validation_search", default)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "sky"
        make_survey(folder, SynthConfig(Region(10.56, 13.44, -1.0, 1.0), args.pixscale, seed=7))
        tiles, catalogue, selection = survey_inputs(folder=folder)
        tile = next(t for t in tiles if t.name.startswith("GLM_01200"))
        missing = detector.search.missing
        truth = ValidationTile.from_tile(tile, catalogue, selection, Path(tmp) / "cache", missing=missing)
        cache = TileCache(tile, Path(tmp) / "cache", missing=missing)
        finite = np.isfinite(np.asarray(cache.data[..., 0]))
        sky_deg2 = float(finite.sum()) * (args.pixscale / 3600) ** 2
        runs = {}
        paper = SearchConfig.paper()
        low = {mode: in_precision(detector.model_for(mode)) for mode in ("fast", "shared")}
        plans = [("paper", paper.sizes_arcsec, paper.stride, "paper", None),
                 ("paper windows, pyramid", paper.sizes_arcsec, paper.stride, "fast", None),
                 ("default, one by one", default["sizes_arcsec"], default["stride"], "paper", None),
                 ("default", default["sizes_arcsec"], default["stride"], "fast", None),
                 ("default, bfloat16", default["sizes_arcsec"], default["stride"], "fast", low["fast"]),
                 ("default windows, shared", default["sizes_arcsec"], default["stride"], "shared", None),
                 ("default windows, shared, bfloat16", default["sizes_arcsec"], default["stride"], "shared",
                  low["shared"]),
                 ("validation windows", validated["sizes_arcsec"], validated["stride"], "fast", None)]
        if detector.shared_model is not None:  # the shared mode with the detector's own network, undistilled
            plans.insert(6, ("default windows, shared, undistilled", default["sizes_arcsec"], default["stride"],
                             "shared", detector.model))
        if args.runs:
            plans = [plan for plan in plans if plan[0] in args.runs]
        for name, sizes, stride, mode, model in plans:
            seconds, windows, boxes, scores = search(detector, tile, cache, sizes, stride, mode,
                                                     paper=name.startswith("paper"), model=model)
            score = score_paper(boxes, truth.bubbles, truth.selected)
            runs[name] = {"sizes_arcsec": list(sizes), "stride": round(stride, 4), "mode": mode,
                          "network": "bfloat16" if "bfloat16" in name else "undistilled" if "undistilled" in name
                          else "shared_model" if mode == "shared" and detector.shared_model is not None
                          else "model",
                          "seconds": round(seconds, 2), "windows": windows,
                          "windows_per_s": round(windows / seconds, 1), "detections": len(scores),
                          "recall": round(score["recall"], 3), "precision": round(score["precision"], 3)}
    if args.runs:  # a partial run: the runs alone
        print(json.dumps({"benchmark": "search_modes", "cpu_cores": os.cpu_count(), "pixscale_arcsec": args.pixscale,
                          "tile": tile.name, "clear_bubbles": int(truth.selected.sum()), "runs": runs}))
        return
    paper, fast, shared = runs["paper"], runs["default"], runs["default windows, shared"]
    rate = sky_deg2 / fast["seconds"] * 3600
    print(json.dumps({
        "benchmark": "search_modes", "cpu_cores": os.cpu_count(), "pixscale_arcsec": args.pixscale,
        "tile": tile.name, "sky_deg2": round(sky_deg2, 3), "clear_bubbles": int(truth.selected.sum()),
        "threshold": detector.threshold, "runs": runs,
        "speedup_default_vs_paper": round(paper["seconds"] / fast["seconds"], 1),
        "speedup_pyramid_same_windows": round(runs["paper"]["seconds"] / runs["paper windows, pyramid"]["seconds"], 2),
        "speedup_pyramid_default_windows": round(runs["default, one by one"]["seconds"] / fast["seconds"], 2),
        "recall_difference": round(fast["recall"] - paper["recall"], 3),
        "speedup_validation_windows_vs_paper": round(paper["seconds"] / runs["validation windows"]["seconds"], 1),
        "recall_difference_validation_windows": round(runs["validation windows"]["recall"] - paper["recall"], 3),
        "default_deg2_per_hour": round(rate, 1),
        "paper_survey_hours_default": round(PAPER_SURVEY_DEG2 / rate, 2),
        "paper_survey_hours_paper_mode": round(PAPER_SURVEY_DEG2 / (sky_deg2 / paper["seconds"] * 3600), 1),
        "target": "default >= 5x faster than paper at recall within 0.02",
        "meets_target": paper["seconds"] / fast["seconds"] >= 5 and fast["recall"] >= paper["recall"] - 0.02,
        "speedup_shared_vs_default": round(fast["seconds"] / shared["seconds"], 2),
        "recall_difference_shared": round(shared["recall"] - fast["recall"], 3),
        "precision_difference_shared": round(shared["precision"] - fast["precision"], 3),
        "speedup_bfloat16_vs_default": round(fast["seconds"] / runs["default, bfloat16"]["seconds"], 2),
        "speedup_shared_bfloat16_vs_default": round(
            fast["seconds"] / runs["default windows, shared, bfloat16"]["seconds"], 2),
        "target_shared": "shared >= 3x faster than default at recall within 0.01 and precision not lower (#16)",
        "meets_target_shared": fast["seconds"] / shared["seconds"] >= 3 and shared["recall"] >= fast["recall"] - 0.01
        and shared["precision"] >= fast["precision"],
    }))


if __name__ == "__main__":
    main()
