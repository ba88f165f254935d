"""Vetting detections: what lies under each box, and a classifier that re-scores the boxes on it.

On real fields most of the SSD's false positives sit on compact sources, a
24 µm point source with an 8 µm halo (young stellar objects; Nishimoto et al.
2025 name compact sources and Mira variables among their contaminants),
while a bubble's emission under its box is extended. The network sees a
window resampled to its input size, where a point source and a small shell
can look alike; these measures look at the field's own pixels instead. Per
band, with the band's high-pass image (the band minus its running median over
`HIGHPASS_ARCSEC`), in radii of the detection:

* **point peak**: the highest high-pass pixel within `INNER` of the centre,
  over the band's spread within `OUTER` (its 90th minus 10th percentile);
* **point share**: the positive high-pass emission within `INNER`, over the
  emission above the local background (the band's median in the ring from
  `BACKGROUND` to `OUTER`) within `BODY`.

Both are ratios of differences of one band's pixels, so a band's gain and
offset leave them unchanged (not a non-linear display stretch). A logistic
regression (`Vetter`, fitted by `fit_vetter` on detections of synthetic
skies labelled by their truth, its threshold by `choose_threshold`)
combines them with the network's own score.
scikit-learn fits it; only its few coefficients are kept, so a vetter is
a small JSON file.
"""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np

__all__ = ["Vetter", "detection_features", "fit_vetter", "choose_threshold", "FEATURES", "HIGHPASS_ARCSEC", "INNER", "BODY",
           "BACKGROUND", "OUTER"]

#: Running-median size of the high-pass image, arcsec: wider than the MIPS 24 µm PSF (6″ FWHM) by a factor
#: of 8, so that a point source stands out of it whole, and smaller than all but the smallest bubbles.
HIGHPASS_ARCSEC = 47.0
#: Radii, in detection radii: the centre searched for a point source, the body, and the outer annulus
#: (from BACKGROUND to OUTER) that sets the local background.
INNER, BODY, BACKGROUND, OUTER = 0.7, 1.05, 1.5, 2.2
#: The classifier's inputs, in order (`detection_features`).
FEATURES = ("score_logit", "point_share_8um", "point_share_24um", "point_peak_8um", "point_peak_24um")
_SHARE_FLOOR = 0.01  # the shares enter as log(share + floor): a share of 0 is common for shells


def _band_measures(band: np.ndarray, x: float, y: float, radius_px: float, highpass_px: int) -> tuple[float, float]:
    """(point peak, point share) of one band around one detection (see the module notes)."""
    from scipy.ndimage import median_filter

    reach = int(np.ceil(OUTER * radius_px)) + 1
    pad = highpass_px // 2
    x0, y0 = max(int(round(x)) - reach - pad, 0), max(int(round(y)) - reach - pad, 0)
    x1 = max(min(int(round(x)) + reach + pad + 1, band.shape[1]), x0)  # a box off the image: an empty cut-out
    y1 = max(min(int(round(y)) + reach + pad + 1, band.shape[0]), y0)
    cut = np.asarray(band[y0:y1, x0:x1], float)
    finite = np.isfinite(cut)
    if not finite.any():
        return np.nan, np.nan
    # NaN (saturated or off the survey) filled with the cut-out's median for the running median only.
    filled = np.where(finite, cut, np.median(cut[finite]))
    highpass = cut - median_filter(filled, size=highpass_px, mode="reflect")
    yy, xx = np.mgrid[y0:y1, x0:x1]
    r = np.hypot(xx - x, yy - y) / max(radius_px, 1e-6)
    around, inner = finite & (r <= OUTER), finite & (r < INNER)
    ring = finite & (r >= BACKGROUND) & (r <= OUTER)
    if not inner.any() or not ring.any():
        return np.nan, np.nan
    low, high = np.percentile(cut[around], [10, 90])
    spread = high - low
    if not spread > 0:  # a flat patch (a saturated plateau): nothing to measure against
        return np.nan, np.nan
    peak = float(np.max(highpass[inner]) / spread)
    above = np.clip(cut - np.median(cut[ring]), 0, None)[finite & (r < BODY)].sum()
    share = float(np.clip(highpass[inner], 0, None).sum() / max(above, 1e-6 * spread))  # both scale with the gain
    return peak, share


def detection_features(data8: np.ndarray, data24: np.ndarray, x, y, radius_px, score, *,
                       pixel_arcsec: float) -> np.ndarray:
    """The classifier's inputs (`FEATURES`) for each detection of one field.

    Parameters
    ----------
    data8, data24 : numpy.ndarray
        ``(ny, nx)`` 8 and 24 µm planes on one pixel grid.
    x, y, radius_px : array_like
        ``(N,)`` detection centres (0-based pixels) and radii (pixels).
    score : array_like
        ``(N,)`` the network's scores, in (0, 1).
    pixel_arcsec : float
        The grid's pixel scale.

    Returns
    -------
    numpy.ndarray
        ``(N, len(FEATURES))``. A band's measures are NaN where it has no finite pixel within `INNER`
        radii or between `BACKGROUND` and `OUTER`, or is flat there (`Vetter.probability` takes NaN
        as the training mean).

    Raises
    ------
    ValueError
        When the detections' arrays differ in length, or a centre or radius is not finite.
    """
    x, y, radius_px = (np.asarray(a, float).ravel() for a in (x, y, radius_px))
    score = np.clip(np.asarray(score, float).ravel(), 1e-6, 1 - 1e-6)
    if not len(x) == len(y) == len(radius_px) == len(score):
        raise ValueError(f"x, y, radius_px and score differ in length: {len(x)}, {len(y)}, {len(radius_px)}, "
                         f"{len(score)}")
    if not (np.isfinite(x).all() and np.isfinite(y).all() and np.isfinite(radius_px).all()):
        raise ValueError("detection centres and radii must be finite")
    highpass_px = max(3, int(round(HIGHPASS_ARCSEC / pixel_arcsec)) | 1)  # odd, at least 3
    rows = []
    for xi, yi, ri in zip(x, y, radius_px):
        (peak8, share8), (peak24, share24) = (_band_measures(band, xi, yi, ri, highpass_px)
                                              for band in (data8, data24))
        rows.append((np.log(share8 + _SHARE_FLOOR), np.log(share24 + _SHARE_FLOOR), peak8, peak24))
    measures = np.array(rows, float).reshape(len(x), 4)
    return np.column_stack([np.log(score / (1 - score)), measures])


@dataclasses.dataclass(frozen=True)
class Vetter:
    """A logistic regression on `FEATURES`, standardised, and the threshold on its probability.

    Attributes
    ----------
    mean, scale : tuple of float
        The standardisation of each feature: ``(value - mean) / scale``.
    coef : tuple of float
        The regression's coefficients on the standardised features.
    intercept : float
        The regression's intercept: the log-odds of a detection whose features are all at their mean.
    threshold : float
        Detections whose probability is below it are dropped.
    """

    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    threshold: float

    def probability(self, features: np.ndarray) -> np.ndarray:
        """The probability that each row of `features` is a bubble; NaN measures count as the mean."""
        z = (np.asarray(features, float) - np.asarray(self.mean)) / np.asarray(self.scale)
        z = np.nan_to_num(z, nan=0.0)
        return 1.0 / (1.0 + np.exp(-(z @ np.asarray(self.coef) + self.intercept)))

    def save(self, path: str | os.PathLike) -> None:
        """Write the vetter as JSON (atomically)."""
        from bubblenet.outputs import atomic_path

        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps({"features": list(FEATURES), **dataclasses.asdict(self)}, indent=1))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Vetter":
        """Read a vetter `save` wrote.

        Raises
        ------
        bubblenet.errors.InputError
            When the file cannot be read or is not such a vetter (naming the file).
        """
        from bubblenet.errors import InputError

        try:
            with open(path, encoding="utf-8") as file:
                values = json.load(file)
            if not isinstance(values, dict):
                raise ValueError("it holds no object")
            if tuple(values.get("features", ())) != FEATURES:
                raise ValueError(f"its features are not this version's ({', '.join(FEATURES)})")
            vectors = {k: tuple(_number(v) for v in _sequence(values[k])) for k in ("mean", "scale", "coef")}
            numbers = {k: _number(values[k]) for k in ("intercept", "threshold")}
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise InputError(f"not a detection vetter: {err}", path) from None
        if any(len(v) != len(FEATURES) for v in vectors.values()):
            raise InputError(f"not a detection vetter: mean, scale and coef need {len(FEATURES)} values each", path)
        every = [*vectors["mean"], *vectors["scale"], *vectors["coef"], *numbers.values()]
        if not (np.isfinite(every).all() and min(vectors["scale"]) > 0 and 0 <= numbers["threshold"] <= 1):
            raise InputError("not a detection vetter: its values must be finite, its scales positive and its "
                             "threshold in [0, 1]", path)
        return cls(**vectors, **numbers)


def _sequence(value) -> list:
    """`value` if it is a JSON array; else TypeError."""
    if not isinstance(value, list):
        raise TypeError(f"expected a list of numbers, got {type(value).__name__}")
    return value


def _number(value) -> float:
    """`value` as a float if it is a JSON number (not a bool or a string); else TypeError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"expected a number, got {value!r}")
    return float(value)


def choose_threshold(probability: np.ndarray, labels: np.ndarray, *, beta: float = 2.0,
                     keep: float | None = None) -> float:
    """The threshold on a vetter's `probability` for labelled detections: the best F-beta, or by recall.

    Parameters
    ----------
    probability : numpy.ndarray
        ``(N,)`` `Vetter.probability` of the detections.
    labels : numpy.ndarray
        ``(N,)`` bool: which detections are bubbles (some must be).
    beta : float
        Without `keep`, the threshold maximises F-beta of these detections (2: recall weighs as the
        detector's validation weighs it); of equal F-betas, the lowest threshold.
    keep : float, optional
        Instead, the highest threshold that keeps this share (0-1] of the bubbles among them.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        When `keep` is not in (0, 1] or no detection is a bubble.
    """
    from bubblenet.evaluation.metrics import f_beta

    probability, labels = np.asarray(probability, float), np.asarray(labels, bool)
    if not labels.any():
        raise ValueError("a threshold needs some detections that are bubbles")
    if keep is not None:
        if not 0 < keep <= 1:
            raise ValueError(f"keep is a share of the bubbles in (0, 1], got {keep!r}")
        ranked = np.sort(probability[labels])[::-1]
        # The fewest bubbles that make up `keep` of them; the 1e-9 absorbs float error in keep * n (0.55 * 100).
        return float(ranked[int(np.ceil(keep * len(ranked) - 1e-9)) - 1])
    best, best_f = 0.5, -1.0
    for threshold in np.unique(probability):  # ascending: a tie keeps the lower threshold
        kept = probability >= threshold
        tp = int((kept & labels).sum())
        f = f_beta(tp / kept.sum(), tp / labels.sum(), beta)
        if f > best_f:
            best, best_f = float(threshold), f
    return best


def fit_vetter(features: np.ndarray, labels: np.ndarray, *, beta: float = 2.0, keep: float | None = None,
               c: float = 0.3) -> Vetter:
    """Fit a `Vetter` to labelled detections, its threshold chosen on them (`choose_threshold`).

    Parameters
    ----------
    features : numpy.ndarray
        ``(N, len(FEATURES))`` from `detection_features`.
    labels : numpy.ndarray
        ``(N,)`` bool: which detections are bubbles.
    beta, keep : float
        `choose_threshold`'s rule: the best F-beta, or the highest threshold keeping `keep` of the bubbles.
    c : float
        scikit-learn's ``C``, the inverse strength of the regression's L2 penalty (larger: weaker).

    Returns
    -------
    Vetter

    Raises
    ------
    ValueError
        When `features` do not have a column per feature, `labels` hold one kind only, a feature has no
        finite value, or `keep` is not in (0, 1].
    """
    from sklearn.linear_model import LogisticRegression

    features, labels = np.asarray(features, float), np.asarray(labels, bool)
    if features.ndim != 2 or features.shape[1] != len(FEATURES):
        raise ValueError(f"features must be (N, {len(FEATURES)}): one column per FEATURES, got {features.shape}")
    if labels.all() or not labels.any():
        raise ValueError("a vetter needs detections of both kinds, bubbles and others")
    if not np.isfinite(features).any(axis=0).all():
        raise ValueError("every feature needs a finite value in some detection")
    if keep is not None and not 0 < keep <= 1:
        raise ValueError(f"keep is a share of the bubbles in (0, 1], got {keep!r}")
    mean = np.nanmean(features, axis=0)
    scale = np.nanstd(features, axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    z = np.nan_to_num((features - mean) / scale, nan=0.0)
    model = LogisticRegression(C=c, max_iter=2000).fit(z, labels)
    vetter = Vetter(tuple(map(float, mean)), tuple(map(float, scale)), tuple(map(float, model.coef_[0])),
                    float(model.intercept_[0]), 0.5)
    threshold = choose_threshold(vetter.probability(features), labels, beta=beta, keep=keep)
    return dataclasses.replace(vetter, threshold=threshold)
