"""Scoring detections against a catalogue: the paper's rule and a strict one.

Both work on boxes in one pixel frame (a tile's), ``xyxy`` as in
`bubblenet.boxes`: detections, and the catalogue bubbles' label boxes.

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

from bubblenet.boxes import box_area, box_intersection, xyxy_to_centre_halfsize

__all__ = ["score_paper", "score_strict", "f_beta", "summarise", "sweep_thresholds", "COVERAGE", "THRESHOLDS"]

#: Share of a bubble's box a detection must cover to hit it (paper rule).
COVERAGE = 1 / 3
#: Confidence thresholds swept on validation (the paper: 0.50–0.95).
THRESHOLDS = tuple(np.round(np.arange(0.50, 0.951, 0.05), 2))


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
    selected = np.asarray(selected, bool)
    hits = coverage(detections, bubbles) >= COVERAGE  # (D, B)
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
    selected = np.asarray(selected, bool)
    bubbles = np.asarray(bubbles, float).reshape(-1, 4)
    found = (coverage(np.asarray(detections, float).reshape(-1, 4), bubbles) >= COVERAGE).any(axis=0)
    side = (bubbles[:, 2] - bubbles[:, 0]) * pixscale
    rows = []
    for low, high in zip(edges_arcsec[:-1], edges_arcsec[1:]):
        inside = selected & (side >= low) & (side < high)
        rows.append({"box_arcsec": [float(low), float(high)], "bubbles": int(inside.sum()),
                     "found": int((found & inside).sum())})
    return rows


def score_strict(detections: np.ndarray, scores: np.ndarray, bubbles: np.ndarray, selected: np.ndarray, *,
                 centre_tolerance: float = 0.5, size_ratio: float = 2.0) -> dict:
    """Precision, recall, F1, F2 under the strict one-to-one rule (see the module notes)."""
    selected = np.asarray(selected, bool)
    dx, dy, dh = xyxy_to_centre_halfsize(detections)
    bx, by, bh = xyxy_to_centre_halfsize(bubbles)
    taken = np.zeros(len(bx), bool)
    tp = fp = 0
    for i in np.argsort(-np.asarray(scores, float), kind="stable"):
        distance = np.hypot(bx - dx[i], by - dy[i])
        ratio = np.maximum(dh[i] / np.maximum(bh, 1e-9), bh / max(dh[i], 1e-9))
        ok = ~taken & (distance <= centre_tolerance * bh) & (ratio <= size_ratio)
        if not ok.any():
            fp += 1
            continue
        j = int(np.flatnonzero(ok)[np.argmin(distance[ok])])
        taken[j] = True
        tp += bool(selected[j])
    fn = int((selected & ~taken).sum())
    return summarise(tp, fp, fn)


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
