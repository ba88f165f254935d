"""The package's conventions, stated once: arrays, pixels, bands, boxes, the image's extent.

Every stage (sky, catalogues, training data, SSD, detection, evaluation)
follows these; a module that needs another form converts at its edge.

Arrays and pixels
-----------------
* Arrays are indexed ``(y, x)`` = (row, column); image shapes are
  ``(ny, nx)``; x runs along FITS ``NAXIS1`` (the last numpy axis).
* Pixel coordinates are 0-based with integer values at pixel *centres*, as
  astropy's ``WCS.world_to_pixel`` / ``pixel_to_world`` use them: pixel
  ``(0, 0)`` is FITS pixel ``(1, 1)``, and the value at a sky position
  ``(x, y) = wcs.world_to_pixel(c)`` is ``data[floor(y + 0.5), floor(x + 0.5)]``
  (the nearest pixel centre).
* Row 0 is the first row of the FITS file, which FITS viewers (and
  ``imshow(origin="lower")``) draw at the *bottom*; with the usual Galactic
  headers (``CDELT2 > 0``, ``CDELT1 < 0``) latitude grows with y and
  longitude falls with x. Directions follow that picture: relative y grows
  upwards, and the quarter-turns of
  `bubblenet.training_data.cutouts.dihedral` are counter-clockwise as drawn so.
* A two-band tile or window is ``(ny, nx, 2)`` float32 and a network input
  ``(size, size, 2)`` (batches ``(B, size, size, 2)``), channels in
  `CHANNELS` order: ``CHANNEL_24UM`` = 0 (MIPSGAL 24 µm, resampled onto the
  8 µm grid), ``CHANNEL_8UM`` = 1 (GLIMPSE 8 µm, whose grid is the tile's) —
  the order of the reference method's network input.

Inside an image
---------------
Pixel ``i`` covers ``[i - 0.5, i + 0.5)``, so an image covers the half-open
``[-0.5, nx - 0.5) x [-0.5, ny - 0.5)``: a position is inside exactly when
``floor(x + 0.5)``, ``floor(y + 0.5)`` index a pixel of it (`inside_pixels`,
and `inside_sky` for sky positions). The closed box of the image's edges,
for areas and clipping, is `image_box`.

Boxes
-----
* A box is ``xyxy`` = ``(x_min, y_min, x_max, y_max)`` in float pixel
  coordinates of its *edges*: the box around pixels 0..9 is
  ``(-0.5, -0.5, 9.5, 9.5)``, width 10.
* Arrays of boxes have shape ``(N, 4)``, float64; functions accept N = 0 and
  never modify their inputs.
* *Relative* boxes (training labels, a window's decoded detections; the
  SSD's default boxes are relative too, in centre-size form inside
  `bubblenet.ssd`) are ``xyxy`` on the unit square of a square window
  whose first pixel is ``(x0, y0)`` and whose side is ``side`` pixels: its
  edges ``x0 - 0.5`` and ``x0 + side - 0.5`` map to 0 and 1, likewise in y
  (`to_relative`, `from_relative`). Resampling a window keeps its edges
  (`bubblenet.training_data.cutouts.resample`), so relative boxes hold at
  any input size.
* A catalogue bubble's label box is the square of half-side
  ``BOX_SCALE x MajAxis`` on its centre
  (`bubblenet.catalogues.tables.label_boxes`); a detection's radius is its
  box half-side over `BOX_SCALE`.

Units
-----
Sizes and scales stay astropy Quantities (catalogue columns in arcmin,
``SkyTile.pixel_scale`` in arcsec) until arithmetic needs floats; they are then
converted by astropy (``q.to_value(u.arcsec)``, ``u.arcmin.to(u.arcsec)``), and a
float that carries a unit names it (``pixscale_arcsec``, ``radius_arcmin``).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "CHANNELS",
    "CHANNEL_24UM",
    "CHANNEL_8UM",
    "BOX_SCALE",
    "centre_halfsize_to_xyxy",
    "xyxy_to_centre_halfsize",
    "to_relative",
    "from_relative",
    "image_box",
    "inside_pixels",
    "inside_sky",
    "box_area",
    "box_iou",
    "box_intersection",
    "clip_fraction_inside",
]

#: The bands of a two-band array, in channel order.
CHANNELS = ("24um", "8um")
#: Channel of the 24 µm band (MIPSGAL), resampled onto the 8 µm grid.
CHANNEL_24UM = CHANNELS.index("24um")
#: Channel of the 8 µm band (GLIMPSE), the band whose grid a tile has.
CHANNEL_8UM = CHANNELS.index("8um")

#: Half-side of a bubble's label box in units of its size (MajAxis): 1.3, the
#: choice of Nishimoto et al. 2025 (PASJ 77, 403).
BOX_SCALE = 1.3


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


def _window_origin(x0, y0) -> np.ndarray:
    """The ``xyxy`` offset of a window's lower-left pixel edge, ``(x0 - 0.5, y0 - 0.5)`` twice."""
    return np.array([x0, y0, x0, y0], dtype=np.float64) - 0.5


def to_relative(boxes, x0, y0, side) -> np.ndarray:
    """Pixel boxes in the 0..1 frame of a square window; the inverse of `from_relative`.

    Parameters
    ----------
    boxes : array_like
        ``(N, 4)`` ``xyxy`` boxes, pixels of the image the window is cut from.
    x0, y0 : float
        The window's first pixel (column, row): the window holds pixels
        ``[x0, x0 + side) x [y0, y0 + side)``.
    side : float
        The window's side, pixels.

    Returns
    -------
    numpy.ndarray
        ``(N, 4)`` float64 relative ``xyxy``: the window's edges
        ``x0 - 0.5`` and ``x0 + side - 0.5`` (likewise in y) are 0 and 1.
        Boxes reaching outside the window fall outside [0, 1]; nothing is clipped.

    Examples
    --------
    >>> to_relative([[9.5, 19.5, 14.5, 24.5]], 10, 20, 10)  # pixels 10..14, 20..24 of a window at (10, 20)
    array([[0. , 0. , 0.5, 0.5]])
    """
    return (_as_boxes(boxes) - _window_origin(x0, y0)) / side


def from_relative(boxes, x0, y0, side) -> np.ndarray:
    """Relative boxes of a square window back in pixels of its image; the inverse of `to_relative`.

    Parameters
    ----------
    boxes : array_like
        ``(N, 4)`` relative ``xyxy`` boxes (0..1 on the window).
    x0, y0, side : float
        The window, as in `to_relative`.

    Returns
    -------
    numpy.ndarray
        ``(N, 4)`` float64 ``xyxy`` boxes, pixels of the image.
    """
    return _as_boxes(boxes) * side + _window_origin(x0, y0)


def image_box(shape: tuple[int, int]) -> np.ndarray:
    """The ``xyxy`` box of an image's outer pixel edges.

    Parameters
    ----------
    shape : tuple of int
        Image shape ``(ny, nx)``.

    Returns
    -------
    numpy.ndarray
        ``(4,)`` float64 ``(-0.5, -0.5, nx - 0.5, ny - 0.5)``. As a set of
        positions the image is this box without its upper edges (`inside_pixels`).
    """
    ny, nx = shape
    return np.array([-0.5, -0.5, nx - 0.5, ny - 0.5])


def inside_pixels(x, y, shape: tuple[int, int], *, margin: float = 0.0) -> np.ndarray:
    """Which pixel positions lie inside an image: the package's one "inside" rule.

    Parameters
    ----------
    x, y : array_like
        Pixel coordinates (broadcast against each other); NaN is outside.
    shape : tuple of int
        Image shape ``(ny, nx)``.
    margin : float
        Pixels added on every side (negative to keep away from the edges).

    Returns
    -------
    numpy.ndarray of bool
        ``-0.5 - margin <= x < nx - 0.5 + margin`` and the same for y.

    Notes
    -----
    Pixel ``i`` covers ``[i - 0.5, i + 0.5)``, so with no margin a position
    is inside exactly when ``floor(x + 0.5)`` and ``floor(y + 0.5)`` index a
    pixel: a point on the edge between two images belongs to one of them,
    never to both or neither.

    Examples
    --------
    >>> inside_pixels([-0.5, 9.49, 9.5], 0.0, (1, 10))
    array([ True,  True, False])
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    lo_x, lo_y, hi_x, hi_y = image_box(shape) + np.array([-margin, -margin, margin, margin])
    return (x >= lo_x) & (x < hi_x) & (y >= lo_y) & (y < hi_y)


def inside_sky(coords, wcs, shape: tuple[int, int], *, margin: float = 0.0) -> np.ndarray:
    """Which sky positions lie inside an image, by `inside_pixels`.

    Parameters
    ----------
    coords : astropy.coordinates.SkyCoord
        Positions, any frame the WCS can convert from.
    wcs : astropy.wcs.WCS
        WCS of the image (only its celestial part is used).
    shape : tuple of int
        Image shape ``(ny, nx)``.
    margin : float
        Pixels added on every side, as in `inside_pixels`.

    Returns
    -------
    numpy.ndarray of bool
        One per position; positions the WCS cannot place (NaN pixels) are outside.
    """
    x, y = wcs.celestial.world_to_pixel(coords)
    return inside_pixels(x, y, shape, margin=margin)


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
        Image shape ``(ny, nx)``; the image's edges are `image_box`.

    Returns
    -------
    numpy.ndarray
        ``(N,)`` fractions in [0, 1]; 0 for degenerate boxes.
    """
    b = _as_boxes(boxes)
    lo, hi = image_box(shape).reshape(2, 2)  # (x, y) of the lower and upper edges
    inside = np.concatenate([np.clip(b[:, :2], lo, hi), np.clip(b[:, 2:], lo, hi)], axis=-1)
    area = box_area(b)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(area > 0, box_area(inside) / area, 0.0)
