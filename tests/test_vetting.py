"""Vetting detections (`bubblenet.detection.vetting`) and the strict rule's one-to-one matching it is trained on."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bubblenet.detection.vetting import FEATURES, Vetter, choose_threshold, detection_features, fit_vetter
from bubblenet.errors import InputError
from bubblenet.evaluation.metrics import score_strict, strict_matches

PIXEL = 6.75  # arcsec: the real MWP field's grid, where the measures were designed


def _sky(seed: int = 0, shape=(120, 160)) -> np.ndarray:
    """Smooth noisy background, display-like levels."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    return 40 + 0.1 * xx + rng.normal(0, 2, shape)


def _ring(sky: np.ndarray, x: float, y: float, radius: float, amplitude: float) -> np.ndarray:
    yy, xx = np.mgrid[:sky.shape[0], :sky.shape[1]]
    return sky + amplitude * np.exp(-0.5 * ((np.hypot(xx - x, yy - y) - radius) / 1.5) ** 2)


def _disk(sky: np.ndarray, x: float, y: float, radius: float, amplitude: float) -> np.ndarray:
    yy, xx = np.mgrid[:sky.shape[0], :sky.shape[1]]
    return sky + amplitude * (np.hypot(xx - x, yy - y) < radius)


def _point(sky: np.ndarray, x: float, y: float, amplitude: float) -> np.ndarray:
    yy, xx = np.mgrid[:sky.shape[0], :sky.shape[1]]
    return sky + amplitude * np.exp(-0.5 * np.hypot(xx - x, yy - y) ** 2 / 0.8 ** 2)


def test_a_point_source_measures_as_one_and_a_shell_does_not():
    sky = _sky()
    shell8, shell24 = _ring(sky, 40, 60, 8, 60), _disk(sky, 40, 60, 6, 30)  # an 8 µm rim around 24 µm dust
    star8, star24 = _point(sky, 40, 60, 150), _point(sky, 40, 60, 200)
    shell = detection_features(shell8, shell24, [40], [60], [9], [0.7], pixel_arcsec=PIXEL)[0]
    star = detection_features(star8, star24, [40], [60], [9], [0.7], pixel_arcsec=PIXEL)[0]
    share8, share24, peak8, peak24 = (FEATURES.index(f"point_{k}") for k in
                                      ("share_8um", "share_24um", "peak_8um", "peak_24um"))
    assert star[share8] > shell[share8] + 1.0 and star[share24] > shell[share24] + 1.0  # log shares
    assert star[peak8] > 2 * shell[peak8] and star[peak24] > 2 * shell[peak24]
    assert shell[FEATURES.index("score_logit")] == pytest.approx(np.log(0.7 / 0.3))
    # Each band is measured on its own: a star at 8 µm only moves the 8 µm measures.
    mixed = detection_features(star8, shell24, [40], [60], [9], [0.7], pixel_arcsec=PIXEL)[0]
    assert mixed[share8] == pytest.approx(star[share8]) and mixed[peak8] == pytest.approx(star[peak8])
    assert mixed[share24] == pytest.approx(shell[share24]) and mixed[peak24] == pytest.approx(shell[peak24])
    # The star's own pixels, not the ring around it: moved 0.85 radii off, the star leaves the inner disc.
    off = detection_features(star8, star24, [40 + 0.85 * 9], [60], [9], [0.7], pixel_arcsec=PIXEL)[0]
    assert off[peak8] < 0.5 * star[peak8] and off[share8] < star[share8] - 1.0


def test_measures_ignore_a_band_gain_and_offset_and_survive_missing_pixels():
    sky = _ring(_point(_sky(1), 70, 50, 90), 70, 50, 10, 40)
    args = ([70, 20], [50, 20], [12, 6], [0.6, 0.4])
    plain = detection_features(sky, sky, *args, pixel_arcsec=PIXEL)
    scaled = detection_features(3.0 * sky + 17, 0.5 * sky - 4, *args, pixel_arcsec=PIXEL)
    np.testing.assert_allclose(scaled, plain, rtol=1e-6, atol=1e-9)
    holed = sky.copy()
    holed[:45, :45] = np.nan  # the second detection lies in it; the first sees part of it
    features = detection_features(holed, holed, *args, pixel_arcsec=PIXEL)
    assert np.isfinite(features[0]).all() and np.isnan(features[1, 1:]).all()
    flat = np.full_like(sky, 250.0)  # a saturated plateau with one bright pixel: no spread to measure against
    flat[50, 70] = 255.0
    assert np.isnan(detection_features(flat, flat, [70], [50], [6], [0.5], pixel_arcsec=PIXEL)[0, 1:]).all()
    off_image = detection_features(sky, sky, [-40, 500], [-30, 50], [3, 3], [0.5, 0.5], pixel_arcsec=PIXEL)
    assert np.isnan(off_image[:, 1:]).all()
    with pytest.raises(ValueError, match="differ in length"):
        detection_features(sky, sky, [1, 2], [1], [3, 3], [0.5, 0.5], pixel_arcsec=PIXEL)
    with pytest.raises(ValueError, match="finite"):
        detection_features(sky, sky, [np.nan], [1], [3], [0.5], pixel_arcsec=PIXEL)


def _labelled(seed: int, n: int = 300):
    """Features where bubbles score higher and have small point measures, others large ones."""
    rng = np.random.default_rng(seed)
    bubble = rng.random(n) < 0.3
    score = np.where(bubble, rng.normal(1.0, 1.0, n), rng.normal(0.0, 1.0, n))
    point = np.where(bubble, rng.normal(-2.5, 0.5, (2, n)), rng.normal(-1.5, 0.5, (2, n)))
    peak = np.where(bubble, rng.normal(0.7, 0.3, (2, n)), rng.normal(1.6, 0.5, (2, n)))
    return np.column_stack([score, point[0], point[1], peak[0], peak[1]]), bubble


def test_fitted_vetter_separates_held_out_detections_and_round_trips(tmp_path):
    features, labels = _labelled(0)
    vetter = fit_vetter(features, labels)
    assert vetter.coef[FEATURES.index("point_peak_8um")] < 0 and vetter.coef[FEATURES.index("score_logit")] > 0
    # The threshold is the best F2 on the training detections, of equal ones the lowest.
    from bubblenet.evaluation.metrics import f_beta

    probability = vetter.probability(features)
    f2 = {t: f_beta(((probability >= t) & labels).sum() / (probability >= t).sum(),
                    ((probability >= t) & labels).sum() / labels.sum(), 2.0) for t in np.unique(probability)}
    assert vetter.threshold == min(t for t, f in f2.items() if f == max(f2.values()))
    # By recall instead: the highest threshold that keeps 90 % of the training bubbles.
    by_recall = fit_vetter(features, labels, keep=0.9)
    assert by_recall.coef == vetter.coef
    kept_bubbles = (probability[labels] >= by_recall.threshold).mean()
    assert kept_bubbles >= 0.9 and (probability[labels] > by_recall.threshold).mean() < 0.9
    held, truth = _labelled(1)
    kept = vetter.probability(held) >= vetter.threshold
    assert (kept & truth).sum() / truth.sum() > 0.8  # the F2 threshold keeps most bubbles
    assert (kept & ~truth).sum() / (~truth).sum() < 0.3  # and drops most of the rest
    vetter.save(tmp_path / "vetter.json")
    again = Vetter.load(tmp_path / "vetter.json")
    np.testing.assert_array_equal(again.probability(held), vetter.probability(held))
    nan_row = np.full((1, len(FEATURES)), np.nan)
    assert np.isfinite(vetter.probability(nan_row)).all()  # missing measures count as the training mean


def test_fit_and_load_reject_bad_input(tmp_path):
    features, labels = _labelled(0)
    with pytest.raises(ValueError, match="both kinds"):
        fit_vetter(features, np.ones(len(labels), bool))
    with pytest.raises(ValueError, match="keep is a share"):
        fit_vetter(features, labels, keep=1.5)
    with pytest.raises(ValueError, match=r"must be \(N, 5\)"):
        fit_vetter(features[:, :4], labels)
    corrupt = tmp_path / "broken.json"
    corrupt.write_text("{not json")
    with pytest.raises(InputError, match="broken.json: not a detection vetter"):
        Vetter.load(corrupt)
    fit_vetter(features, labels).save(tmp_path / "ok.json")
    good = json.loads((tmp_path / "ok.json").read_text())
    broken = {"features": ({"features": [*FEATURES[:-1], "something_else"]}, "features are not this version's"),
              "missing": ({"threshold": None}, "threshold"), "short": ({"mean": good["mean"][:-1]}, "need 5 values"),
              "flat": ({"scale": [0.0] + good["scale"][1:]}, "scales positive"),
              "infinite": ({"intercept": float("inf")}, "finite"), "range": ({"threshold": 1.5}, r"in \[0, 1\]"),
              "text": ({"intercept": "a"}, "expected a number"), "string": ({"mean": "12345"}, "expected a list"),
              "bool": ({"threshold": True}, "expected a number")}
    for name, (change, reason) in broken.items():
        values = {k: v for k, v in {**good, **change}.items() if v is not None}  # None: the key left out
        (tmp_path / f"{name}.json").write_text(json.dumps(values))
        with pytest.raises(InputError, match=f"{name}.json: not a detection vetter: .*{reason}"):
            Vetter.load(tmp_path / f"{name}.json")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(InputError, match="list.json: not a detection vetter: it holds no object"):
        Vetter.load(tmp_path / "list.json")
    with pytest.raises(InputError, match="absent.json: not a detection vetter"):
        Vetter.load(tmp_path / "absent.json")


def test_thresholds_by_recall_keep_the_fewest_bubbles_that_make_the_share():
    probability = np.linspace(0.0, 1.0, 201)
    labels = np.zeros(201, bool)
    labels[101:] = True  # 100 bubbles, probabilities 0.505 ... 1.0
    bubbles = np.sort(probability[labels])[::-1]
    assert choose_threshold(probability, labels, keep=1.0) == bubbles[-1]
    assert choose_threshold(probability, labels, keep=0.55) == bubbles[54]  # 55 exactly, though 0.55 * 100 > 55
    assert choose_threshold(probability, labels, keep=0.554) == bubbles[55]  # 55.4: 56 bubbles
    assert choose_threshold(probability, labels, keep=0.001) == bubbles[0]
    # By F2 on perfectly separated detections: the lowest bubble's probability.
    assert choose_threshold(probability, labels) == bubbles[-1]
    with pytest.raises(ValueError, match="some detections that are bubbles"):
        choose_threshold(probability, np.zeros(201, bool))


def test_strict_matches_are_one_to_one_best_score_first():
    # Two detections on bubble 0 (the better-scoring one takes it), one on bubble 1 at 1.5x its size (allowed),
    # one on bubble 1's centre at 2.5x its size (not allowed, though it scores higher), one far from both, one on
    # the unselected bubble 2 (neither TP nor FP).
    bubbles = np.array([[0, 0, 20, 20], [100, 100, 120, 120], [200, 0, 220, 20]], float)
    detections = np.array([[1, 1, 21, 21], [0, 0, 20, 20], [95, 95, 125, 125], [85, 85, 135, 135],
                           [300, 300, 320, 320], [201, 0, 221, 20]], float)
    scores = np.array([0.6, 0.9, 0.5, 0.8, 0.7, 0.4])
    centres_d = (detections[:, :2] + detections[:, 2:]) / 2
    centres_b = (bubbles[:, :2] + bubbles[:, 2:]) / 2
    distance = np.hypot(*(centres_d[:, None, :] - centres_b[None, :, :]).transpose(2, 0, 1))
    match = strict_matches(scores, distance, (detections[:, 2] - detections[:, 0]) / 2,
                           (bubbles[:, 2] - bubbles[:, 0]) / 2)
    assert match.tolist() == [-1, 0, 1, -1, -1, 2]
    counts = score_strict(detections, scores, bubbles, np.array([True, True, False]))
    assert (counts["tp"], counts["fp"], counts["fn"]) == (2, 3, 0)
    counts = score_strict(detections[:2], scores[:2], bubbles, np.array([True, True, False]))
    assert (counts["tp"], counts["fp"], counts["fn"]) == (1, 1, 1)
