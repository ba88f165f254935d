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
  emission above the local background (the median between `BACKGROUND` and
  `OUTER`) within `BODY`.

Both are ratios of differences of one band's pixels, so a band's gain and
offset leave them unchanged (not a non-linear display stretch). A logistic
regression (`Vetter`, fitted by `fit_vetter` on detections of synthetic
skies labelled by their truth) combines them with the network's own score.
scikit-learn fits it; only its few coefficients are kept, so a vetter is
a small JSON file.
"""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np

__all__ = ["FEATURES", "Vetter", "detection_features", "fit_vetter", "HIGHPASS_ARCSEC"]

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
    x1 = min(int(round(x)) + reach + pad + 1, band.shape[1])
    y1 = min(int(round(y)) + reach + pad + 1, band.shape[0])
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
    spread = max(high - low, 1e-6 * max(abs(high), 1.0))
    peak = float(np.max(highpass[inner]) / spread)
    above = np.clip(cut - np.median(cut[ring]), 0, None)[finite & (r < BODY)].sum()
    share = float(np.clip(highpass[inner], 0, None).sum() / max(above, 1e-6 * spread))
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
        ``(N, len(FEATURES))``; a detection with no finite pixels near it gets NaN measures.
    """
    x, y, radius_px = (np.asarray(a, float).ravel() for a in (x, y, radius_px))
    score = np.clip(np.asarray(score, float).ravel(), 1e-6, 1 - 1e-6)
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
        The standardisation of each feature.
    coef : tuple of float
        The regression's coefficients on the standardised features.
    intercept : float
    threshold : float
        Detections whose probability is below it are dropped.
    """

    mean: tuple
    scale: tuple
    coef: tuple
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
            When the file is not such a vetter.
        """
        from bubblenet.errors import InputError

        try:
            values = json.loads(open(path, encoding="utf-8").read())
            if tuple(values.pop("features")) != FEATURES:
                raise ValueError("its features are not this version's")
            vetter = cls(**{k: tuple(v) if isinstance(v, list) else float(v) for k, v in values.items()})
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise InputError(f"not a detection vetter: {err}", str(path)) from None
        if not len(vetter.mean) == len(vetter.scale) == len(vetter.coef) == len(FEATURES):
            raise InputError(f"not a detection vetter: it has {len(vetter.coef)} coefficients, "
                             f"not {len(FEATURES)}", str(path))
        return vetter


def fit_vetter(features: np.ndarray, labels: np.ndarray, *, beta: float = 2.0, regularisation: float = 0.3,
               ) -> Vetter:
    """Fit a `Vetter` to labelled detections and choose its threshold by F-beta on them.

    Parameters
    ----------
    features : numpy.ndarray
        ``(N, len(FEATURES))`` from `detection_features`.
    labels : numpy.ndarray
        ``(N,)`` bool: which detections are bubbles.
    beta : float
        The threshold maximises F-beta of these detections (2: recall weighs as the detector's validation
        weighs it).
    regularisation : float
        The inverse strength ``C`` of the regression's L2 penalty.

    Returns
    -------
    Vetter
    """
    from sklearn.linear_model import LogisticRegression

    features, labels = np.asarray(features, float), np.asarray(labels, bool)
    if labels.all() or not labels.any():
        raise ValueError("a vetter needs detections of both kinds, bubbles and others")
    mean = np.nanmean(features, axis=0)
    scale = np.nanstd(features, axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    z = np.nan_to_num((features - mean) / scale, nan=0.0)
    model = LogisticRegression(C=regularisation, max_iter=2000).fit(z, labels)
    vetter = Vetter(tuple(mean), tuple(scale), tuple(model.coef_[0]), float(model.intercept_[0]), 0.5)
    p = vetter.probability(features)
    best, best_f = 0.5, -1.0
    for t in np.unique(p):
        kept = p >= t
        tp = int((kept & labels).sum())
        precision, recall = tp / max(kept.sum(), 1), tp / labels.sum()
        f = (1 + beta ** 2) * precision * recall / max(beta ** 2 * precision + recall, 1e-12)
        if f > best_f:
            best, best_f = float(t), f
    return dataclasses.replace(vetter, threshold=best)
