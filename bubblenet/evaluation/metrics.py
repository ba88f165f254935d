"""Scoring detections against a catalogue: the paper's rule and a strict one.

`score_paper` and `score_strict` work on boxes in one pixel frame (a
tile's), ``xyxy`` as in `bubblenet.conventions`: detections, and the catalogue
bubbles' label boxes. `score_on_sky` applies the same two rules to square
boxes on the sky (centres and half-sizes), for catalogues spanning many tiles.

*Paper rule* (Nishimoto et al. 2025): a detection *hits* a bubble when it
covers at least 1/3 of the bubble's box. TP = selected bubbles hit by any
detection, FN = selected bubbles hit by none, FP = detections that hit no
selected bubble. Duplicates cost nothing, oversized boxes can hit several
bubbles, and detections of real but unselected bubbles count as FP.

*Strict rule*: detections, best score first, are matched one-to-one to the
catalogue bubble (selected or not) whose centre is nearest, if that centre is
within half the bubble's box half-size and the two sizes agree within a
factor of 2. TP = detections matched to selected bubbles; matches to
unselected catalogue bubbles are neither TP nor FP (they are real bubbles);
every other detection — duplicates included — is FP; FN = selected bubbles
left unmatched.

F-scores: F_beta = (1 + β²) P R / (β² P + R); the paper selects on F2.
"""

from __future__ import annotations

import numpy as np

from bubblenet.conventions import box_area, box_intersection, xyxy_to_centre_halfsize

__all__ = ["score_paper", "score_strict", "strict_matches", "score_on_sky", "score_geometry", "sky_geometry", "f_beta",
           "summarise", "sweep_thresholds", "COVERAGE", "STRICT_CENTRE_TOLERANCE", "STRICT_SIZE_RATIO", "THRESHOLDS",
           "thresholds", "found_by_side"]

#: Share of a bubble's box a detection must cover to hit it (paper rule).
COVERAGE = 1 / 3

#: Strict rule: how far a detection's centre may lie from the bubble's, in units of the bubble's box half-size
#: (the box half-size is `bubblenet.conventions.BOX_SCALE` × MajAxis, so this is 0.65 MajAxis).
STRICT_CENTRE_TOLERANCE = 0.5

#: Strict rule: the largest ratio between a detection's and the bubble's box sizes, either way round.
STRICT_SIZE_RATIO = 2.0


def thresholds(step: float = 0.05) -> tuple[float, ...]:
    """Confidence thresholds swept on validation: 0.50 to 0.95 in steps of `step` (the original code: 0.01)."""
    if not 0 < step <= 0.45:
        raise ValueError(f"threshold step must be in (0, 0.45], got {step}")
    n = int(round(0.45 / step))
    return tuple(float(t) for t in np.round(np.linspace(0.50, 0.50 + n * step, n + 1), 4) if t <= 0.95 + 1e-9)


#: Confidence thresholds swept on validation by default (the paper: 0.50–0.95).
THRESHOLDS = thresholds(0.05)


def f_beta(precision: float, recall: float, beta: float) -> float:
    """The F-score weighting recall `beta` times as much as precision (0 when both are 0)."""
    b2 = beta * beta
    denominator = b2 * precision + recall
    return float((1 + b2) * precision * recall / denominator) if denominator > 0 else 0.0


def summarise(tp: int, fp: int, fn: int) -> dict:
    """Precision, recall, F1 and F2 from counts."""
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return {"tp": int(tp), "fp": int(fp), "fn": int(fn), "precision": precision, "recall": recall,
            "f1": f_beta(precision, recall, 1.0), "f2": f_beta(precision, recall, 2.0)}


def coverage(detections: np.ndarray, bubbles: np.ndarray) -> np.ndarray:
    """``(D, B)`` share of each bubble box covered by each detection box."""
    inter = box_intersection(detections, bubbles)
    area = box_area(bubbles)[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(area > 0, inter / area, 0.0)


def score_paper(detections: np.ndarray, bubbles: np.ndarray, selected: np.ndarray) -> dict:
    """Precision, recall, F1, F2 under the paper's rule.

    Parameters
    ----------
    detections : numpy.ndarray
        ``(D, 4)`` detection boxes.
    bubbles : numpy.ndarray
        ``(B, 4)`` catalogue label boxes.
    selected : numpy.ndarray of bool
        ``(B,)`` which bubbles are the positives (e.g. the clear ones).
    """
    return _paper(coverage(detections, bubbles) >= COVERAGE, selected)


def _paper(hits: np.ndarray, selected) -> dict:
    """Paper-rule counts from the ``(D, B)`` hit matrix."""
    selected = np.asarray(selected, bool)
    hit_selected = hits[:, selected]
    tp = int(hit_selected.any(axis=0).sum())
    fn = int(selected.sum()) - tp
    fp = int((~hit_selected.any(axis=1)).sum())
    return summarise(tp, fp, fn)


def found_by_size(detections: np.ndarray, bubbles: np.ndarray, selected: np.ndarray, *, pixscale: float,
                  edges_arcsec=(0.0, 60.0, 120.0, 240.0, np.inf)) -> list[dict]:
    """Selected bubbles found under the paper's rule, by label-box side on the sky.

    Shows where recall is lost: bubbles a few pixels across cannot be seen at
    a coarse pixel scale or in windows much larger than they are.

    Returns
    -------
    list of dict
        Per size bin: ``box_arcsec`` ``[low, high)``, ``bubbles``, ``found``.
    """
    bubbles = np.asarray(bubbles, float).reshape(-1, 4)
    found = (coverage(np.asarray(detections, float).reshape(-1, 4), bubbles) >= COVERAGE).any(axis=0)
    return found_by_side(found, (bubbles[:, 2] - bubbles[:, 0]) * pixscale, selected, edges_arcsec=edges_arcsec)


def found_by_side(found, side_arcsec, selected, *, edges_arcsec=(0.0, 60.0, 120.0, 240.0, np.inf)) -> list[dict]:
    """`found_by_size` from which bubbles were found and their label-box sides (arcsec)."""
    found, side, selected = np.asarray(found, bool), np.asarray(side_arcsec, float), np.asarray(selected, bool)
    rows = []
    for low, high in zip(edges_arcsec[:-1], edges_arcsec[1:]):
        inside = selected & (side >= low) & (side < high)
        rows.append({"box_arcsec": [float(low), float(high)], "bubbles": int(inside.sum()),
                     "found": int((found & inside).sum())})
    return rows


def score_strict(detections: np.ndarray, scores: np.ndarray, bubbles: np.ndarray, selected: np.ndarray, *,
                 centre_tolerance: float = STRICT_CENTRE_TOLERANCE, size_ratio: float = STRICT_SIZE_RATIO) -> dict:
    """Precision, recall, F1, F2 under the strict one-to-one rule (see the module notes)."""
    dx, dy, dh = xyxy_to_centre_halfsize(detections)
    bx, by, bh = xyxy_to_centre_halfsize(bubbles)
    distance = np.hypot(bx[None, :] - dx[:, None], by[None, :] - dy[:, None])
    return _strict(scores, distance, dh, bh, selected, centre_tolerance=centre_tolerance, size_ratio=size_ratio)


def _strict(scores, distance: np.ndarray, dh: np.ndarray, bh: np.ndarray, selected, *, centre_tolerance: float,
            size_ratio: float) -> dict:
    """Strict-rule counts from the ``(D, B)`` centre distances and the half-sizes of both sides."""
    selected = np.asarray(selected, bool)
    match = strict_matches(scores, distance, dh, bh, centre_tolerance=centre_tolerance, size_ratio=size_ratio)
    matched = match[match >= 0]
    tp = int(selected[matched].sum())
    fn = int(selected.sum()) - tp
    return summarise(tp, int((match < 0).sum()), fn)


def strict_matches(scores, distance: np.ndarray, dh: np.ndarray, bh: np.ndarray, *,
                   centre_tolerance: float = STRICT_CENTRE_TOLERANCE,
                   size_ratio: float = STRICT_SIZE_RATIO) -> np.ndarray:
    """The strict rule's one-to-one matching (see the module notes).

    Parameters
    ----------
    scores : array_like
        ``(D,)`` detection scores: the best is matched first.
    distance : numpy.ndarray
        ``(D, B)`` centre distances.
    dh, bh : array_like
        ``(D,)`` and ``(B,)`` box half-sizes, in the units of `distance`.
    centre_tolerance, size_ratio : float
        The rule's limits.

    Returns
    -------
    numpy.ndarray
        ``(D,)`` int: the bubble each detection is matched to, or -1.
    """
    dh, bh = np.asarray(dh, float).ravel(), np.asarray(bh, float).ravel()
    taken = np.zeros(len(bh), bool)
    match = np.full(len(dh), -1)
    for i in np.argsort(-np.asarray(scores, float), kind="stable"):
        ratio = np.maximum(dh[i] / np.maximum(bh, 1e-9), bh / max(dh[i], 1e-9))
        ok = ~taken & (distance[i] <= centre_tolerance * bh) & (ratio <= size_ratio)
        if ok.any():
            j = int(np.flatnonzero(ok)[np.argmin(distance[i][ok])])
            taken[j] = True
            match[i] = j
    return match


def sky_geometry(detections, det_half, bubbles, bubble_half) -> tuple[np.ndarray, np.ndarray]:
    """Coverage of each bubble's box by each detection's, and centre distances, on the sky.

    Boxes are squares of the given half-sizes (arcsec) aligned with the
    bubble's local frame; each pair is laid out on the tangent plane at the
    bubble's centre. Pairs too far apart to touch get coverage 0 and
    distance inf.

    Parameters
    ----------
    detections, bubbles : astropy.coordinates.SkyCoord
        ``(D,)`` and ``(B,)`` centres.
    det_half, bubble_half : array_like
        Half-sizes, arcsec.

    Returns
    -------
    coverage, distance : numpy.ndarray
        ``(D, B)``; distance in arcsec.
    """
    from astropy import units as u

    det_half, bubble_half = np.asarray(det_half, float).ravel(), np.asarray(bubble_half, float).ravel()
    cover = np.zeros((len(det_half), len(bubble_half)))
    distance = np.full(cover.shape, np.inf)
    if cover.size == 0:
        return cover, distance
    reach = np.sqrt(2) * (det_half.max() + bubble_half.max()) * u.arcsec
    b_idx, d_idx, _, _ = detections.search_around_sky(bubbles, reach)  # (index into bubbles, into detections)
    dlon, dlat = bubbles[b_idx].spherical_offsets_to(detections[d_idx])
    dx, dy = dlon.to_value(u.arcsec), dlat.to_value(u.arcsec)
    h, big = det_half[d_idx], bubble_half[b_idx]
    wx = np.clip(np.minimum(big, dx + h) - np.maximum(-big, dx - h), 0, None)
    wy = np.clip(np.minimum(big, dy + h) - np.maximum(-big, dy - h), 0, None)
    cover[d_idx, b_idx] = wx * wy / (2 * big) ** 2
    distance[d_idx, b_idx] = np.hypot(dx, dy)
    return cover, distance


def score_on_sky(detections, det_half, scores, bubbles, bubble_half, selected, *,
                 centre_tolerance: float = STRICT_CENTRE_TOLERANCE, size_ratio: float = STRICT_SIZE_RATIO) -> dict:
    """Both rules on the sky: ``{"paper": {...}, "strict": {...}}`` (see `sky_geometry` for the boxes)."""
    cover, distance = sky_geometry(detections, det_half, bubbles, bubble_half)
    return score_geometry(cover, distance, det_half, scores, bubble_half, selected,
                          centre_tolerance=centre_tolerance, size_ratio=size_ratio)


def score_geometry(cover, distance, det_half, scores, bubble_half, selected, *,
                   centre_tolerance: float = STRICT_CENTRE_TOLERANCE, size_ratio: float = STRICT_SIZE_RATIO) -> dict:
    """Both rules from a `sky_geometry` result, for a caller that needs the geometry itself too."""
    return {"paper": _paper(cover >= COVERAGE, selected),
            "strict": _strict(scores, distance, np.asarray(det_half, float).ravel(),
                              np.asarray(bubble_half, float).ravel(), selected, centre_tolerance=centre_tolerance,
                              size_ratio=size_ratio)}


def sweep_thresholds(detections: np.ndarray, scores: np.ndarray, bubbles: np.ndarray, selected: np.ndarray,
                     thresholds=THRESHOLDS) -> list[dict]:
    """Paper-rule and strict scores at each confidence threshold."""
    detections = np.asarray(detections, float).reshape(-1, 4)
    scores = np.asarray(scores, float)
    out = []
    for t in thresholds:
        keep = scores >= t
        row = {"threshold": float(t), **score_paper(detections[keep], bubbles, selected)}
        row["strict"] = score_strict(detections[keep], scores[keep], bubbles, selected)
        out.append(row)
    return out
