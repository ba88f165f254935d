"""Benchmark: the sim-to-real gap of a detector, on the real MWP field at l = 41.3° and on its synthetic twins.

The real field is the Milky Way Project's GLM_04130-0013 (`tests/data/images`:
8 and 24 µm planes in display units, approximate WCS, 800 × 400 px at
6.75″/px, 1.125 deg²). Its twins are synthetic skies of the same strip drawn
on exactly its pixel grid (`bubblenet.synth.realism.mwp_field_twin`), one per
seed, holding the same 14 MWP DR2 bubbles (6 of them clear), each written
twice: in MJy/sr as the synthetic survey draws it, and in the real planes'
display stretch and 8-bit levels (`bubblenet.synth.display.match_display`),
the like-with-like comparison that the targets use, a third time
hardened (`bubblenet.synth.hardening.HARD`: red compact sources at the real
field's density, the WISE catalogue's HII regions, saturated 24 µm cores,
compact small bubbles, uncatalogued bubbles, shells off the catalogue by DR2's own errors) in the
display stretch, and a fourth time hardened, in the display stretch and
JPEG-compressed as the MWP composites were
(`bubblenet.synth.display.through_mwp_jpeg`): the twin made the way the real
field was. The real field's emission lies about 2.2 px (15″) south of
where its approximate WCS puts the catalogued sources
(`bubblenet.sky.astrometry`); the real field is
scored through registered copies of its planes (WCS shifted by the offset
measured on compact WISE HII regions, ``"real_astrometry"``), and again
through the approximate WCS as shipped (``"real_approx_wcs"``, with its own
summary against the hardened JPEG twins). The twins need no registration:
they are drawn through the WCS they carry. The detector
searches each field the same way (its own search and threshold, or those
given), and each field is scored the same way: one-to-one under the strict
rule against every DR2 bubble inside it (`bubblenet.score_field`).

Prints one JSON line: per field its DR2 recall, clear bubbles found and
detections matching no DR2 bubble per deg² (and, for display planes, the
compact-source census of `bubblenet.synth.realism.compact_source_census`); for each kind of twin the mean
and standard deviation over the seeds; the real field's values beside the
display twins' (unmatched ratio, recall difference), and again beside the
hardened display twins' (``against_hard_display_twins``) and the hardened
JPEG twins' (``against_hard_jpeg_twins``); and the targets of
issue #15 for the shipped detector with whether each is met: unmatched per
deg² at most 1.5× the twin's, DR2 recall within 0.1 of the twin's, at least
5 of the 6 clear bubbles found with at most 15 unmatched detections per deg².
Each field is also scored at every threshold of `SWEEP` (``"sweep"``, its
operating curve), and the summary names the threshold at which the real
field gives the most clear bubbles within 15 unmatched detections per deg²
(``real_best_clear_found_within_unmatched_target``).

    python benchmarks/bench_transfer.py [--model PATH] [--seeds 0 1 2] [--previews DIR]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
REAL_I8 = REPO / "tests" / "data" / "images" / "mwp_GLM_04130-0013_I4_8um_approxwcs.fits"
REAL_M24 = REPO / "tests" / "data" / "images" / "mwp_GLM_04130-0013_M1_24um_approxwcs.fits"

#: Issue #15's targets on the real field, for the shipped detector.
TARGETS = {"unmatched_ratio_at_most": 1.5, "dr2_recall_within": 0.1, "clear_found_at_least": 5,
           "real_unmatched_per_deg2_at_most": 15.0}

MEASURES = ("dr2_recall", "clear_found", "unmatched_per_deg2")

#: The thresholds each field is also scored at (its operating curve): the detector's own threshold sets its
#: scores' scale, which domain randomisation moves, so detectors are compared along the curve too.
SWEEP = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def field(detector, i8: Path, m24: Path, catalogue, select, *, threshold=None, preview: Path | None = None) -> dict:
    """Search one field with `detector` and score it (`bubblenet.score_field`) against `catalogue` and `select`
    (shipped names or files), at its threshold (or `threshold`) and at each of `SWEEP` (``"sweep"``)."""
    import bubblenet

    chosen = float(detector.threshold if threshold is None else threshold)
    start = time.perf_counter()
    # One search at the lowest threshold: a box below a threshold never suppresses one above it, so the
    # detections at or above any higher threshold are those of a search run at it (bubblenet.detection.search).
    found = bubblenet.find_bubbles(i8, m24, detector=detector, threshold=min(chosen, *SWEEP))
    seconds = time.perf_counter() - start  # of a search down to SWEEP's lowest threshold
    if preview is not None:
        from bubblenet.plotting import preview_detections
        from bubblenet.sky.mosaics import open_image, pair_bands

        kept = bubblenet.api._detection_table(found[found["score"] >= chosen])
        preview_detections(pair_bands([open_image(i8)], [open_image(m24)])[0], kept, preview, threshold=chosen)
    sweep = [{"threshold": t, **{k: v for k, v in bubblenet.score_field(found[found["score"] >= t], i8, catalogue,
                                                                        select).items()
                                 if k in ("dr2_found", "clear_found", "unmatched_per_deg2")}} for t in SWEEP]
    return {**bubblenet.score_field(found[found["score"] >= chosen], i8, catalogue, select),
            "seconds": round(seconds, 1), "sweep": sweep}


def census(i8: Path, m24: Path) -> dict:
    """The field's compact 24 µm sources and those with 8 µm counterparts (display planes only)."""
    from astropy.io import fits

    from bubblenet.synth.realism import MWP_FIELD, compact_source_census

    return compact_source_census(fits.getdata(i8), fits.getdata(m24), pixel_deg=MWP_FIELD["pixscale"] / 3600)


def twin(detector, seed: int, folder: Path, *, display: bool, hard: bool = False, jpeg: bool = False,
         threshold=None, preview: Path | None = None) -> dict:
    """Draw the twin of the real field for `seed` in `folder` (in the real planes' stretch if `display`,
    hardened with `bubblenet.synth.hardening.HARD` if `hard`, compressed as the MWP composites if `jpeg`),
    search and score it."""
    from bubblenet.synth.hardening import HARD
    from bubblenet.synth.realism import mwp_field_twin
    from bubblenet.synth.survey import SELECTION_NAME

    i8, m24, catalogue = mwp_field_twin(folder, seed=seed, display_like=(REAL_I8, REAL_M24) if display else None,
                                        hardening=HARD if hard else None, jpeg=jpeg)
    scores = field(detector, i8, m24, catalogue, catalogue.parent / SELECTION_NAME, threshold=threshold,
                   preview=preview)
    return {**scores, "census": census(i8, m24)} if display else scores


def register(folder: Path):
    """Registered copies of the real field's planes in `folder`: their WCS shifted by the offset both planes
    show on compact WISE HII regions (`bubblenet.sky.astrometry.measure_offset`)."""
    from bubblenet.sky.astrometry import measure_offset, write_registered
    from bubblenet.sky.mosaics import open_image

    offset = measure_offset([open_image(REAL_I8), open_image(REAL_M24)])
    folder.mkdir(parents=True)
    return offset, [write_registered(path, folder / path.name, offset) for path in (REAL_I8, REAL_M24)]


def spread(twins: list[dict]) -> dict:
    """Mean and standard deviation (ddof 1) over the twins' seeds, per measure."""
    return {k: {"mean": float(np.mean([t[k] for t in twins])),
                "sd": float(np.std([t[k] for t in twins], ddof=1)) if len(twins) > 1 else 0.0}
            for k in MEASURES}


def summary(real: dict, twins: list[dict]) -> dict:
    """The real field beside the twins' mean, and issue #15's targets."""
    spread_ = spread(twins)
    twin_unmatched = spread_["unmatched_per_deg2"]["mean"]
    if twin_unmatched > 0:
        ratio = real["unmatched_per_deg2"] / twin_unmatched
    else:  # none on the twins: a ratio of 1 if none on the real field either, else none to give (JSON null)
        ratio = 1.0 if real["unmatched_per_deg2"] == 0 else None
    recall_gap = real["dr2_recall"] - spread_["dr2_recall"]["mean"]
    met = {"unmatched_ratio": ratio is not None and ratio <= TARGETS["unmatched_ratio_at_most"],
           "dr2_recall": abs(recall_gap) <= TARGETS["dr2_recall_within"],
           "clear_found": real["clear_found"] >= TARGETS["clear_found_at_least"],
           "real_unmatched": real["unmatched_per_deg2"] <= TARGETS["real_unmatched_per_deg2_at_most"]}
    # The most clear bubbles found at any threshold of the sweep with unmatched detections within the target.
    within = [row for row in real["sweep"] if row["unmatched_per_deg2"] <= TARGETS["real_unmatched_per_deg2_at_most"]]
    best = max(within, key=lambda row: (row["clear_found"], row["threshold"]), default=None)  # ties: the strictest
    return {"unmatched_ratio": ratio, "dr2_recall_real_minus_twin": recall_gap, "targets": TARGETS,
            "met": met, "real_best_clear_found_within_unmatched_target": best}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="detector folder or model file (default: the shipped detector)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="twin seeds")
    parser.add_argument("--threshold", type=float, help="confidence threshold (default: the detector's)")
    parser.add_argument("--previews", type=Path, metavar="DIR",
                        help="write real.png, real_approx_wcs.png, twin_s<SEED>.png, display_twin_s<SEED>.png, "
                             "hard_display_twin_s<SEED>.png and hard_jpeg_twin_s<SEED>.png, the fields with "
                             "their detections, there")
    args = parser.parse_args(argv)

    from bubblenet.detection.detector import load_detector

    detector = load_detector(args.model)
    if args.previews is not None:
        args.previews.mkdir(parents=True, exist_ok=True)

    def preview(name: str) -> Path | None:
        return None if args.previews is None else args.previews / f"{name}.png"

    real_approx = field(detector, REAL_I8, REAL_M24, "mwp_dr2", "clear", threshold=args.threshold,
                        preview=preview("real_approx_wcs"))
    kinds = {"twins": ("twin", False, False, False), "display_twins": ("display_twin", True, False, False),
             "hard_display_twins": ("hard_display_twin", True, True, False),
             "hard_jpeg_twins": ("hard_jpeg_twin", True, True, True)}
    twins = {kind: {} for kind in kinds}
    with tempfile.TemporaryDirectory() as tmp:
        offset, (i8, m24) = register(Path(tmp) / "registered")
        real = field(detector, i8, m24, "mwp_dr2", "clear", threshold=args.threshold, preview=preview("real"))
        real["census"] = census(i8, m24)
        for seed in args.seeds:
            for kind, (prefix, display, hard, jpeg) in kinds.items():
                twins[kind][str(seed)] = twin(detector, seed, Path(tmp) / f"{prefix}_s{seed}", display=display,
                                              hard=hard, jpeg=jpeg, threshold=args.threshold,
                                              preview=preview(f"{prefix}_s{seed}"))
    print(json.dumps({"benchmark": "transfer", "detector": str(args.model or "shipped: lite_synthetic"),
                      "threshold": args.threshold if args.threshold is not None else detector.threshold,
                      "real": real, "real_astrometry": offset.as_dict(), "real_approx_wcs": real_approx,
                      **twins, **{f"{kind}_spread": spread(list(rows.values()))
                                                for kind, rows in twins.items()},
                      **summary(real, list(twins["display_twins"].values())),
                      "against_hard_display_twins": summary(real, list(twins["hard_display_twins"].values())),
                      "against_hard_jpeg_twins": summary(real, list(twins["hard_jpeg_twins"].values())),
                      "approx_wcs_against_hard_jpeg_twins": summary(real_approx,
                                                                    list(twins["hard_jpeg_twins"].values()))}))


if __name__ == "__main__":
    main()
