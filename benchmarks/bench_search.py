"""Benchmark: the paper's sliding-window search against the default (fast) search, on one tile.

Draws a synthetic twin of the paper's test tile l = 12° (10.56°–13.44°,
|b| <= 1°; seed 7, which no shipped training sky used) and searches it with the
shipped detector five ways, in one run:

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
``validation windows``
    the default mode with the windows the detector was validated with
    (``validation_search``; 420″–3600″ for the shipped one): faster, but too
    coarse for bubbles with boxes under about 60″.

For each: wall time, windows, windows/s, and recall and precision on the
tile's clear bubbles at the detector's threshold (the paper's matching rule).
Then the default mode's survey rate in deg² of sky per hour on this machine
and what that makes of the paper's survey (1° <= |l| <= 65°, |b| <= 1°,
256 deg²). Target (issue #5): the default mode at least 5x faster than the
paper mode, at recall within 0.02 of it. Prints one JSON line.

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


def search(detector, tile, cache, sizes_arcsec, stride, mode, paper=False):
    """(seconds, windows planned, boxes, scores) of one search of `tile`."""
    from bubblenet.detection.inference import detect_inputs, search_inputs
    from bubblenet.ssd.decoder import Decoder
    from bubblenet.detection.windows import MIN_WINDOW_PX, sky_window_sizes

    pixscale = float(tile.pixel_scale.value)
    # The paper's windows exactly (down to 120"); the others with detect's floor of MIN_WINDOW_PX pixels.
    sides = sky_window_sizes(sizes_arcsec, pixscale, per_octave=2, min_px=0 if paper else MIN_WINDOW_PX)
    start = time.perf_counter()
    count, inputs = search_inputs(cache, sides, detector.model.input_shape[1], stride_fraction=stride,
                                  pixscale_arcsec=pixscale, norm=detector.normalisation, mode=mode)
    n = 0

    def counted():
        nonlocal n
        for item in inputs:
            n += 1
            yield item

    boxes, scores = detect_inputs(detector.model, counted(), decoder=Decoder(detector.spec),
                                  confidence=detector.threshold)
    return time.perf_counter() - start, n, boxes, scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pixscale", type=float, default=2.4,
                        help="arcsec per pixel of the drawn tile (the shipped detector was trained at 2.4)")
    parser.add_argument("--model", help="detector (default: the shipped one)")
    args = parser.parse_args()

    from bubblenet.training_data.samples import survey_inputs
    from bubblenet.detection.search import SearchConfig
    from bubblenet.detection.detector import load_detector
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
        for name, sizes, stride, mode in (
                ("paper", paper.sizes_arcsec, paper.stride, "paper"),
                ("paper windows, pyramid", paper.sizes_arcsec, paper.stride, "fast"),
                ("default, one by one", default["sizes_arcsec"], default["stride"], "paper"),
                ("default", default["sizes_arcsec"], default["stride"], "fast"),
                ("validation windows", validated["sizes_arcsec"], validated["stride"], "fast")):
            seconds, windows, boxes, scores = search(detector, tile, cache, sizes, stride, mode,
                                                     paper=name.startswith("paper"))
            score = score_paper(boxes, truth.bubbles, truth.selected)
            runs[name] = {"sizes_arcsec": list(sizes), "stride": round(stride, 4), "mode": mode,
                          "seconds": round(seconds, 2), "windows": windows,
                          "windows_per_s": round(windows / seconds, 1), "detections": len(scores),
                          "recall": round(score["recall"], 3), "precision": round(score["precision"], 3)}
    paper, fast = runs["paper"], runs["default"]
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
    }))


if __name__ == "__main__":
    main()
