"""Box conventions for the whole package, stated once.

* Arrays are indexed ``(y, x)``; image shapes are ``(ny, nx)``; x runs along
  FITS ``NAXIS1``.
* Pixel coordinates are 0-based with integer values at pixel *centres*, as
  astropy's ``WCS.world_to_pixel`` returns them. Pixel ``i`` covers
  ``[i - 0.5, i + 0.5)``, so an image spans ``[-0.5, nx - 0.5]`` in x.
* A box is ``xyxy`` = ``(x_min, y_min, x_max, y_max)`` in float pixel
  coordinates of its *edges*: the box around pixels 0..9 is
  ``(-0.5, -0.5, 9.5, 9.5)``, width 10.
* So the pixel value at sky position ``(x, y) = wcs.world_to_pixel(c)`` is
  ``data[round(y), round(x)]``.
* Arrays of boxes have shape ``(N, 4)``, float64; functions accept N = 0 and
  never modify their inputs.

Other conventions (normalised coordinates, centre-size encodings for the
network) are converted to and from these at the edges of the modules that
need them.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "centre_halfsize_to_xyxy",
    "xyxy_to_centre_halfsize",
    "box_area",
    "box_iou",
    "box_intersection",
    "clip_fraction_inside",
]


def _as_boxes(boxes) -> np.ndarray:
    """Boxes as a new-or-viewed ``(N, 4)`` float64 array (an empty input gives ``(0, 4)``)."""
    return np.asarray(boxes, dtype=np.float64).reshape(-1, 4)


def centre_halfsize_to_xyxy(x, y, half) -> np.ndarray:
    """Square boxes from centres and half-sizes, all in pixels.

    Parameters
    ----------
    x, y : array_like
        Box centres, pixel coordinates.
    half : array_like
        Half the side of each box, pixels (broadcast against `x`, `y`).

    Returns
    -------
    numpy.ndarray
        ``(N, 4)`` float64 boxes ``(x_min, y_min, x_max, y_max)``.

    Examples
    --------
    >>> centre_halfsize_to_xyxy(4.5, 4.5, 5.0)  # the box around pixels 0..9
    array([[-0.5, -0.5,  9.5,  9.5]])
    """
    x, y, half = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64).ravel() for v in (x, y, half)))
    return np.stack([x - half, y - half, x + half, y + half], axis=-1).reshape(-1, 4)


def xyxy_to_centre_halfsize(boxes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centres and half-sizes of boxes; the inverse of `centre_halfsize_to_xyxy`.

    Parameters
    ----------
    boxes : array_like
        ``(N, 4)`` ``xyxy`` boxes.

    Returns
    -------
    x, y, half : numpy.ndarray
        ``(N,)`` centres and half-sizes, pixels. For a box that is not square
        `half` is the mean of its half width and half height.
    """
    b = _as_boxes(boxes)
    x = (b[:, 0] + b[:, 2]) / 2
    y = (b[:, 1] + b[:, 3]) / 2
    half = ((b[:, 2] - b[:, 0]) + (b[:, 3] - b[:, 1])) / 4
    return x, y, half


def box_area(boxes) -> np.ndarray:
    """Areas of boxes.

    Parameters
    ----------
    boxes : array_like
        ``(N, 4)`` ``xyxy`` boxes.

    Returns
    -------
    numpy.ndarray
        ``(N,)`` areas in square pixels; 0 for a box with ``x_max <= x_min``
        or ``y_max <= y_min``.
    """
    b = _as_boxes(boxes)
    return np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)


def box_intersection(a, b) -> np.ndarray:
    """Area shared by every box in `a` ``(N, 4)`` with every box in `b` ``(M, 4)``: ``(N, M)``."""
    a, b = _as_boxes(a), _as_boxes(b)
    lo = np.maximum(a[:, None, :2], b[None, :, :2])  # (N, M, 2)
    hi = np.minimum(a[:, None, 2:], b[None, :, 2:])  # (N, M, 2)
    return np.prod(np.clip(hi - lo, 0, None), axis=-1)  # (N, M)


def box_iou(a, b) -> np.ndarray:
    """Intersection over union of every box in `a` with every box in `b`.

    Parameters
    ----------
    a, b : array_like
        ``(N, 4)`` and ``(M, 4)`` ``xyxy`` boxes.

    Returns
    -------
    numpy.ndarray
        ``(N, M)`` IoU in [0, 1]; 0 where the union is empty (two degenerate boxes).
    """
    a, b = _as_boxes(a), _as_boxes(b)
    inter = box_intersection(a, b)
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def clip_fraction_inside(boxes, shape: tuple[int, int]) -> np.ndarray:
    """Fraction of each box's area inside an image.

    Parameters
    ----------
    boxes : array_like
        ``(N, 4)`` ``xyxy`` boxes.
    shape : tuple of int
        Image shape ``(ny, nx)``; the image covers
        ``[-0.5, nx - 0.5] x [-0.5, ny - 0.5]``.

    Returns
    -------
    numpy.ndarray
        ``(N,)`` fractions in [0, 1]; 0 for degenerate boxes.
    """
    b = _as_boxes(boxes)
    ny, nx = shape
    inside = np.stack([np.clip(b[:, 0], -0.5, nx - 0.5), np.clip(b[:, 1], -0.5, ny - 0.5),
                       np.clip(b[:, 2], -0.5, nx - 0.5), np.clip(b[:, 3], -0.5, ny - 0.5)], axis=-1)
    area = box_area(b)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(area > 0, box_area(inside) / area, 0.0)
