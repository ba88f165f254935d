"""Vetting the shipped detector's detections with what lies under each box, trained on twins of other fields.

`bubblenet.detection.vetting` measures, at each detection, how much of the
emission under its box is one point source, at 8 and at 24 µm, and a
logistic regression on those measures and the network's score re-scores
the detections. This experiment fits it on synthetic fields that hold none
of the real field's bubbles and measures it on the real one:

* **training**: hardened twins (`bubblenet.synth.hardening.HARD`, in the real
  planes' display stretch, JPEG-compressed as the MWP composites were) of
  `TRAIN_CENTRES`, twelve fields of the real field's size and grid elsewhere
  in the plane (none within 1.5° of it), sky seed ``100 + k`` for vetter
  seed ``k`` (six by default); the shipped detector searches each down to
  `FLOOR`, and each detection is labelled by the strict rule's one-to-one
  match against the survey's truth (every shell drawn, catalogued or not);
  the threshold on the vetter's probability is the one with the best F2 on
  those detections, and again the highest that keeps `KEEP` of their
  bubbles;
* **measured**: the real MWP field at l = 41.3° (registered, as
  `benchmarks/bench_transfer.py` scores it) and its hardened JPEG twins of
  seeds 0-2, searched down to `FLOOR` once, each vetter keeping what it
  passes; scored one-to-one (`bubblenet.score_field`) against every bubble
  of the field's catalogue, MWP DR2 for the real field and the twin's own
  DR2-like catalogue for a twin (uncatalogued shells count as unmatched on
  both), beside the shipped detector alone at its threshold and at `FLOOR`.

Prints one JSON line: per vetter seed the number of training detections
and bubbles, its coefficients, both thresholds and the scores of each field
at each, and its operating curve on the real field (`operating_curve`; the
shipped detector's score alone beside it) with the most clear bubbles it
finds within 15 unmatched detections per deg²; per threshold rule the mean and
standard deviation over vetter seeds, and whether each vetter meets issue
#15's real-field target (at least 5 of the 6 clear bubbles with at most 15
unmatched detections per deg²); the quartiles of each feature for bubbles
and others, on the real field (against DR2) and on the training twins
(against their truth); and how well subsets of the features rank the
detections (ROC AUC, `SUBSETS`).

With ``--stars-8um N`` every twin, for training and measuring, also draws
`N` more 8 µm stars per deg² (`bubblenet.synth.hardening.Hardening.stars_8um`,
a probe: 1e5 matches the real field's census of 8 µm point sources).

``--save DIR`` writes each vetter seed's two vetters there
(`bubblenet.detection.vetting.Vetter.save`); ``--preview PNG`` draws the
real field's detections that the first vetter keeps and drops at the
threshold keeping `KEEP`.

    python experiments/vetting.py [--vetter-seeds 0 1 2 3 4 5] [--twin-seeds 0 1 2] [--stars-8um N] [--save DIR]
                                  [--preview PNG]
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

#: Training fields' centres (l, b), degrees: fields of the real field's size and grid (1.5° x 0.75°) along
#: b = 0, each inside one synthetic 8 µm tile (0.7° either side of a multiple of 3°, as the real field is), none
#: within 1.5° of the real field (l = 40.55-42.05).
TRAIN_CENTRES = tuple((l, 0.0) for l in (29.3, 30.7, 32.3, 33.7, 35.3, 36.7, 38.3, 44.3, 45.7, 47.3, 48.7, 50.3))
#: The lowest score searched: the vetter re-scores what the network finds down to it.
FLOOR = 0.3
#: The second threshold rule: the share of the training bubbles the vetter keeps (the first is the best F2).
KEEP = 0.9
#: Scores kept in the output: the ones the issue's targets use.
MEASURES = ("dr2_found", "dr2_recall", "clear_found", "unmatched_per_deg2")


def detections(detector, i8: Path, m24: Path):
    """The detector's detections down to `FLOOR` with their `bubblenet.detection.vetting` features."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord

    import bubblenet
    import bubblenet.api
    from bubblenet.detection.vetting import detection_features
    from bubblenet.sky.mosaics import open_image

    table = bubblenet.api._detection_table(bubblenet.find_bubbles(i8, m24, detector=detector, threshold=FLOOR))
    plane8, plane24 = open_image(i8), open_image(m24)
    pixel_arcsec = float(plane8.pixel_scale.to_value(u.arcsec))
    x, y = plane8.wcs.world_to_pixel(SkyCoord(np.asarray(table["glon"], float), np.asarray(table["glat"], float),
                                              unit="deg", frame="galactic"))
    radius_px = np.asarray(table["radius_arcmin"], float) * 60 / pixel_arcsec
    features = detection_features(plane8.read(), plane24.read(), x, y, radius_px, table["score"],
                                  pixel_arcsec=pixel_arcsec)
    return table, features


def matches(table, catalogue):
    """The catalogue bubble (a file or a shipped name) each detection is matched to one-to-one under the strict
    rule (-1 for none), and the catalogue's bubbles inside the field."""
    from bubblenet.conventions import BOX_SCALE
    from bubblenet.evaluation.metrics import strict_matches
    from bubblenet.evaluation.scoring import reference_catalogue, score_catalogue

    scored = score_catalogue(table, reference_catalogue(catalogue), set())
    assert len(scored.detections) == len(table), "every detection lies in the field searched"
    det_half = np.asarray(table["radius_arcmin"], float) * BOX_SCALE * 60  # arcsec, as the distances
    bubble_half = np.asarray(scored.reference["maj_axis"], float) * BOX_SCALE * 60
    return strict_matches(np.asarray(table["score"], float), scored.distance, det_half, bubble_half), scored.reference


def field_scores(table, keep, i8: Path, catalogue, select) -> dict:
    """`bubblenet.score_field` of the kept detections, the issue's measures only."""
    import bubblenet

    scores = bubblenet.score_field(table[np.asarray(keep, bool)], i8, catalogue, select)
    return {k: scores[k] for k in MEASURES}


def operating_curve(table, probability, i8: Path, catalogue, select) -> list[dict]:
    """For each number of clear bubbles, the fewest unmatched detections per deg² with which some threshold on
    `probability` finds at least that many: the scores at that threshold.

    One-to-one matching can move a match from one detection to another as the threshold falls, so the
    unmatched count is not monotonic in the threshold; every threshold is scored."""
    rows = []
    for threshold in np.unique(probability)[::-1]:
        scores = field_scores(table, probability >= threshold, i8, catalogue, select)
        rows.append({"threshold": float(threshold), **scores})
    most = max((row["clear_found"] for row in rows), default=0)
    return [min((row for row in rows if row["clear_found"] >= k),
                key=lambda row: (row["unmatched_per_deg2"], -row["threshold"])) for k in range(most + 1)]


def best_within_target(curve: list[dict], unmatched_per_deg2: float = 15.0) -> int:
    """The most clear bubbles an `operating_curve` finds within `unmatched_per_deg2`."""
    return max((row["clear_found"] for row in curve if row["unmatched_per_deg2"] <= unmatched_per_deg2), default=0)


def preview(i8: Path, m24: Path, table, kept, path: Path, title: str) -> None:
    """The field with its DR2 bubbles (`bubblenet.plotting.plot_sky`: dashed cyan, the clear ones white), the
    detections `kept` (magenta) and dropped (dashed red) circled."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord
    from matplotlib.patches import Circle

    from bubblenet.catalogues.tables import packaged_catalogue, read_selection, select
    from bubblenet.plotting import plot_sky, save_figure
    from bubblenet.sky.mosaics import open_image, pair_bands

    tile = pair_bands([open_image(i8)], [open_image(m24)])[0]
    data, wcs = tile.read_binned(1)
    dr2 = packaged_catalogue("mwp_dr2")
    fig = plot_sky(data, wcs, catalogue=dr2, selected=select(dr2, read_selection("clear")), title=title)
    ax = fig.axes[0]
    x, y = wcs.world_to_pixel(SkyCoord(np.asarray(table["glon"], float) * u.deg,
                                       np.asarray(table["glat"], float) * u.deg, frame="galactic"))
    radius = np.asarray(table["radius_arcmin"], float) * 60 / tile.pixel_scale.to_value(u.arcsec)
    for xi, yi, ri, keep in zip(x, y, radius, np.asarray(kept, bool)):
        ax.add_patch(Circle((xi, yi), ri, fill=False, edgecolor="magenta" if keep else "red",
                            linestyle="-" if keep else "--", linewidth=1.2 if keep else 0.8))
    save_figure(fig, path)


#: Subsets of `bubblenet.detection.vetting.FEATURES` compared by `subset_aucs`.
SUBSETS = {"score": ("score_logit",), "score+shares": ("score_logit", "point_share_8um", "point_share_24um"),
           "score+peaks": ("score_logit", "point_peak_8um", "point_peak_24um"), "all": None}


def feature_summary(features: np.ndarray, labels: np.ndarray) -> dict:
    """Per feature, the median and quartiles of the bubbles' and of the others' values."""
    from bubblenet.detection.vetting import FEATURES

    def quartiles(values):
        return [float(q) for q in np.nanpercentile(values, [25, 50, 75])]

    return {"bubbles": int(labels.sum()), "others": int((~labels).sum()),
            **{name: {"bubbles": quartiles(features[labels, j]), "others": quartiles(features[~labels, j])}
               for j, name in enumerate(FEATURES)}}


def subset_aucs(training: dict, real_features: np.ndarray, real_labels: np.ndarray) -> dict:
    """ROC AUC of the vetter's regression on each of `SUBSETS`: across the training twins (fitted on all
    vetter seeds but one, scored on that one: mean and sd) and on the real field (fitted on all of them).

    Each fit is `bubblenet.detection.vetting.fit_vetter` with the features outside the subset set to 0 in
    training and scoring alike: a constant column standardises to 0, so its coefficient carries nothing."""
    from sklearn.metrics import roc_auc_score

    from bubblenet.detection.vetting import FEATURES, fit_vetter

    def auc(fit_on: list, x, y, outside) -> float:
        def only(features):
            return np.where(outside, 0.0, features)

        vetter = fit_vetter(only(np.vstack([training[k][0] for k in fit_on])),
                            np.concatenate([training[k][1] for k in fit_on]))
        return float(roc_auc_score(y, vetter.probability(only(x))))

    out = {}
    for name, subset in SUBSETS.items():
        outside = np.array([subset is not None and f not in subset for f in FEATURES])
        held = [auc([k for k in training if k != seed], *training[seed], outside) for seed in training]
        out[name] = {"twins_cv": spread_of(held) if len(training) > 1 else None,
                     "real": auc(list(training), real_features, real_labels, outside)}
    return out


def spread_of(values: list[float]) -> dict:
    """Mean and standard deviation (ddof 1) of numbers."""
    return {"mean": float(np.mean(values)), "sd": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0}


def spread(values: list[dict]) -> dict:
    """`spread_of` each measure."""
    return {k: spread_of([v[k] for v in values]) for k in MEASURES}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vetter-seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4, 5])
    parser.add_argument("--twin-seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--stars-8um", type=float, default=0.0, metavar="N",
                        help="more 8 um stars per deg2 in every twin (Hardening.stars_8um; default none)")
    parser.add_argument("--save", type=Path, metavar="DIR", help="write each vetter there (vetter_s<SEED>.json)")
    parser.add_argument("--preview", type=Path, metavar="PNG",
                        help="picture of the real field's detections down to the floor that the first vetter "
                             f"keeps and drops at the threshold keeping {KEEP * 100:.0f}%%")
    args = parser.parse_args(argv)

    import bench_transfer

    from bubblenet.detection.detector import load_detector
    from bubblenet.detection.vetting import choose_threshold, fit_vetter
    from bubblenet.synth.hardening import HARD
    from bubblenet.synth.realism import mwp_field_twin
    from bubblenet.synth.survey import SELECTION_NAME, TRUTH_NAME

    detector = load_detector(None)
    display = (bench_transfer.REAL_I8, bench_transfer.REAL_M24)
    hardening = dataclasses.replace(HARD, stars_8um=args.stars_8um)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        _, (ri8, rm24) = bench_transfer.register(tmp / "registered")
        fields = {"real": (ri8, rm24, "mwp_dr2", "clear")}
        for seed in args.twin_seeds:
            i8, m24, catalogue = mwp_field_twin(tmp / f"twin_s{seed}", seed=seed, display_like=display,
                                                hardening=hardening, jpeg=True)
            fields[f"hard_jpeg_twin_s{seed}"] = (i8, m24, catalogue, catalogue.parent / SELECTION_NAME)
        searched = {name: detections(detector, i8, m24) for name, (i8, m24, *_) in fields.items()}
        report = {"shipped": {}, "floor": {}}
        for name, (i8, _, catalogue, select) in fields.items():
            table, _ = searched[name]
            score = np.asarray(table["score"], float)
            report["shipped"][name] = field_scores(table, score >= detector.threshold, i8, catalogue, select)
            report["floor"][name] = field_scores(table, score >= FLOOR, i8, catalogue, select)
        real_i8, _, real_catalogue, real_select = fields["real"]
        real_table, real_features = searched["real"]
        report["real_curve"] = operating_curve(real_table, np.asarray(real_table["score"], float), real_i8,
                                               real_catalogue, real_select)
        vetters, training = {}, {}
        for vseed in args.vetter_seeds:
            features, labels = [], []
            for k, centre in enumerate(TRAIN_CENTRES):
                i8, m24, catalogue = mwp_field_twin(tmp / f"train_v{vseed}_{k}", seed=100 + vseed,
                                                    display_like=display, hardening=hardening, jpeg=True,
                                                    centre=centre)
                table, found = detections(detector, i8, m24)
                features.append(found)
                labels.append(matches(table, catalogue.parent / TRUTH_NAME)[0] >= 0)
            features, labels = np.vstack(features), np.concatenate(labels)
            training[vseed] = (features, labels)
            vetter = fit_vetter(features, labels)
            keeping = dataclasses.replace(  # the same regression, the other threshold rule
                vetter, threshold=choose_threshold(vetter.probability(features), labels, keep=KEEP))
            if args.save is not None:
                args.save.mkdir(parents=True, exist_ok=True)
                vetter.save(args.save / f"vetter_s{vseed}_f2.json")
                keeping.save(args.save / f"vetter_s{vseed}_keep{KEEP * 100:.0f}.json")
            row = {"training_detections": len(labels), "training_bubbles": int(labels.sum()),
                   "coef": vetter.coef, "threshold": vetter.threshold, f"threshold_keep_{KEEP}": keeping.threshold,
                   "fields": {}, f"fields_keep_{KEEP}": {}}
            for name, (i8, _, catalogue, select) in fields.items():
                table, found = searched[name]
                probability = vetter.probability(found)
                row["fields"][name] = field_scores(table, probability >= vetter.threshold, i8, catalogue, select)
                row[f"fields_keep_{KEEP}"][name] = field_scores(table, probability >= keeping.threshold, i8,
                                                                catalogue, select)
            if args.preview is not None and vseed == args.vetter_seeds[0]:
                kept = keeping.probability(real_features) >= keeping.threshold
                preview(real_i8, fields["real"][1], real_table, kept, args.preview,
                        f"real field (registered), shipped detector down to {FLOOR}: {int(kept.sum())} kept "
                        f"(magenta), {int((~kept).sum())} dropped (red) by vetter seed {vseed}")
            row["real_curve"] = operating_curve(real_table, vetter.probability(real_features), real_i8,
                                                real_catalogue, real_select)
            row["real_best_clear_within_15"] = best_within_target(row["real_curve"])
            vetters[str(vseed)] = row
        real_labels = matches(real_table, real_catalogue)[0] >= 0
    twins = [n for n in fields if n != "real"]

    def summary(per_field: dict) -> dict:
        return {"real": per_field["real"], "twins": spread([per_field[n] for n in twins])}

    def over_vetters(key: str) -> dict:
        real = [v[key]["real"] for v in vetters.values()]
        twin_means = [{k: float(np.mean([v[key][n][k] for n in twins])) for k in MEASURES} for v in vetters.values()]
        return {"real": spread(real), "twins": spread(twin_means),
                "real_targets_met": [r["clear_found"] >= 5 and r["unmatched_per_deg2"] <= 15 for r in real]}

    print(json.dumps({"experiment": "vetting", "hardening": dataclasses.asdict(hardening),
                      "train_centres": TRAIN_CENTRES, "floor": FLOOR,
                      "shipped": summary(report["shipped"]), "shipped_at_floor": summary(report["floor"]),
                      "shipped_real_curve": report["real_curve"],
                      "shipped_real_best_clear_within_15": best_within_target(report["real_curve"]),
                      "vetters": vetters, "vetted_f2": over_vetters("fields"),
                      f"vetted_keep_{KEEP}": over_vetters(f"fields_keep_{KEEP}"),
                      "features_real": feature_summary(real_features, real_labels),
                      "features_training": feature_summary(np.vstack([f for f, _ in training.values()]),
                                                           np.concatenate([y for _, y in training.values()])),
                      "subset_auc": subset_aucs(training, real_features, real_labels)}))


if __name__ == "__main__":
    main()
