"""Merging detections across windows, scales and tiles, in sky coordinates.

Suppression inside a tile (IoU 0.3 in tile pixels, as the reference method
does) leaves two kinds of duplicate behind:

* the same bubble found in two overlapping survey tiles, whose pixel grids
  differ, so it can only be recognised on the sky;
* one bubble reported at two window scales as nested boxes around nearly the
  same centre: a box well inside a larger one has a small IoU with it (a box
  of half the size has IoU 1/4), so IoU-0.3 suppression keeps both.

`merge_sky` removes both, keeping the higher score: two detections are one
bubble when their boxes, laid out on the tangent plane of the brighter one,
overlap with IoU >= 0.3, or when the smaller lies at least 80 % inside the
larger with its centre within half the smaller's half-size of the larger's
centre. A small bubble on the rim of a large one (nested star formation, as
seen in real shells) is off-centre and is kept.
"""

from __future__ import annotations

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord

__all__ = ["merge_sky", "same_bubble", "SAME_IOU", "NESTED_INSIDE", "NESTED_CENTRE"]

#: IoU at or above which two detections are one bubble (the reference method's merge IoU).
SAME_IOU = 0.3
#: Share of the smaller box inside the larger, and centre offset over the smaller's
#: half-size, under which a nested pair is one bubble seen at two scales.
NESTED_INSIDE = 0.8
NESTED_CENTRE = 0.5


def same_bubble(dx, dy, half_a, half_b, *, iou: float = SAME_IOU, inside: float = NESTED_INSIDE,
                centre: float = NESTED_CENTRE) -> np.ndarray:
    """Whether square boxes of half-sizes `half_a` (at the origin) and `half_b` (at `dx`, `dy`) are one bubble.

    All lengths in the same unit (arcsec on the sky, or pixels). Arrays broadcast.
    """
    dx, dy, half_a, half_b = (np.asarray(v, float) for v in (dx, dy, half_a, half_b))
    wx = np.clip(np.minimum(half_a, dx + half_b) - np.maximum(-half_a, dx - half_b), 0, None)
    wy = np.clip(np.minimum(half_a, dy + half_b) - np.maximum(-half_a, dy - half_b), 0, None)
    inter = wx * wy
    area_a, area_b = (2 * half_a) ** 2, (2 * half_b) ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        overlap = inter / (area_a + area_b - inter)
        smaller = np.minimum(half_a, half_b)
        nested = (inter / (2 * smaller) ** 2 >= inside) & (np.hypot(dx, dy) <= centre * smaller)
    return (overlap >= iou) | nested


def merge_sky(coords: SkyCoord, half_arcsec, scores) -> np.ndarray:
    """Indices of the detections to keep, highest score first (greedy suppression on the sky).

    Parameters
    ----------
    coords : astropy.coordinates.SkyCoord
        ``(N,)`` box centres.
    half_arcsec : array_like
        ``(N,)`` box half-sizes, arcsec.
    scores : array_like
        ``(N,)`` confidences.
    """
    half = np.asarray(half_arcsec, float).ravel()
    scores = np.asarray(scores, float).ravel()
    n = len(scores)
    if n == 0:
        return np.zeros(0, int)
    # Only detections closer than the sum of the two largest half-sizes (x sqrt 2) can overlap.
    reach = 2 * np.sqrt(2) * half.max() * u.arcsec
    left, right, _, _ = coords.search_around_sky(coords, reach)
    neighbours: list[list[int]] = [[] for _ in range(n)]
    for i, j in zip(left, right):
        if i != j:
            neighbours[i].append(j)
    order = np.argsort(-scores, kind="stable")
    rank = np.empty(n, int)
    rank[order] = np.arange(n)
    removed = np.zeros(n, bool)
    keep = []
    for i in order:
        if removed[i]:
            continue
        keep.append(i)
        later = [j for j in neighbours[i] if not removed[j] and rank[j] > rank[i]]
        if not later:
            continue
        dlon, dlat = coords[i].spherical_offsets_to(coords[later])
        same = same_bubble(dlon.to_value(u.arcsec), dlat.to_value(u.arcsec), half[i], half[later])
        removed[np.asarray(later)[same]] = True
    return np.asarray(keep, int)
