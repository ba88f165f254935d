"""Bilinear resampling of one sky image onto another's pixel grid, the pixel mapping computed on a coarse grid.

`reproject.reproject_interp` sends every output pixel through both WCSs
exactly (pixel to sky to pixel, then back again to check the round trip):
about 1 µs a pixel, which made up two thirds of the fixed work on a GLIMPSE
tile at 1.2″/px (65 s of the 97 s to cache a 9000 x 7200 px tile pair, most of
it in wcslib). The mapping between two sky grids is smooth on the scale of
pixels. A bilinear interpolation of it over cells of ``h`` pixels is off by
at most ``h² / 8`` times its second derivative. For two celestial projections
a few degrees from their reference points, that is about a pixel per radius
of curvature of the sky in pixels (~10⁵ px at 1.2″/px). So here the mapping is
computed exactly (with reproject's round-trip check) at every `STEP`-th pixel
of the output grid and at its last row and column, and interpolated
bilinearly in between. It is also computed exactly at the cells' centres:
where interpolation misses those by more than `TOLERANCE_PX` (a grid across a
projection's discontinuity or too near a pole), or where a node has no
mapping, the whole grid is mapped pixel by pixel instead.

The data are then interpolated as `reproject_interp(order="bilinear")` does:
`scipy.ndimage.map_coordinates` of order 1, NaN outside the input, and the
outer half of each border pixel given the border pixel's value.

wcslib keeps scratch space inside each WCS, so `pixel_mapping` must not run
on one WCS from two threads at once: `bubblenet.sky.mosaics` holds a lock
around it and runs only the reading and `resample_bilinear` in parallel.
"""

from __future__ import annotations

import numpy as np
from astropy.wcs import WCS
from astropy.wcs.utils import pixel_to_pixel
from scipy import ndimage

__all__ = ["pixel_mapping", "interpolate_mapping", "resample_bilinear", "STEP", "TOLERANCE_PX"]

#: Output pixels between the nodes where the mapping is computed exactly.
STEP = 16
#: Largest error of the interpolated mapping at the cells' centres (input pixels) before the exact one is used.
TOLERANCE_PX = 1e-3


def _exact(wcs_out: WCS, wcs_in: WCS, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Input-grid ``(x, y)`` of output pixels ``(x, y)``, NaN where the round trip misses by over a pixel
    (reproject's rule)."""
    xi, yi = pixel_to_pixel(wcs_out, wcs_in, x, y)
    xb, yb = pixel_to_pixel(wcs_in, wcs_out, xi, yi)
    lost = ~((np.abs(xb - x) <= 1) & (np.abs(yb - y) <= 1))
    return np.where(lost, np.nan, xi), np.where(lost, np.nan, yi)


def _nodes(n: int, step: int) -> np.ndarray:
    """Every `step`-th pixel of ``[0, n)`` and the last one."""
    return np.unique(np.append(np.arange(0, n, step), n - 1)).astype(np.float64)


def _axis(nodes: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices and weights of pixels ``0 .. n - 1`` between `nodes` (increasing, from 0 to n - 1)."""
    if len(nodes) == 1:
        zero = np.zeros(n, np.intp)
        return zero, zero, np.zeros(n)
    at = np.arange(n, dtype=np.float64)
    high = np.clip(np.searchsorted(nodes, at, side="right"), 1, len(nodes) - 1)
    low = high - 1
    return low, high, (at - nodes[low]) / (nodes[high] - nodes[low])


def interpolate_mapping(grid: np.ndarray, rows, cols) -> np.ndarray:
    """A mapping known at the nodes (``grid``, ``(len(rows nodes), len(cols nodes))``) at every pixel;
    `rows` and `cols` from `_axis`."""
    r0, r1, fr = rows
    c0, c1, fc = cols
    out = grid[r0] * (1 - fr)[:, None] + grid[r1] * fr[:, None]
    return out[:, c0] * (1 - fc)[None, :] + out[:, c1] * fc[None, :]


def pixel_mapping(wcs_out: WCS, wcs_in: WCS, shape_out: tuple[int, int], *, step: int = STEP):
    """Where each pixel of the output grid falls on the input grid, exactly at the nodes.

    Parameters
    ----------
    wcs_out, wcs_in : astropy.wcs.WCS
        Celestial WCSs of the output grid and of the input image.
    shape_out : (int, int)
        ``(ny, nx)`` of the output grid.
    step : int
        Output pixels between nodes (`STEP`); 1 maps every pixel exactly.

    Returns
    -------
    nodes : tuple of numpy.ndarray
        ``(y nodes, x nodes)``, output pixel indices.
    y_in, x_in : numpy.ndarray
        ``(len(y nodes), len(x nodes))`` input-grid coordinates at the nodes;
        with ``step == 1`` (or when interpolation would not be close enough),
        every pixel's, and the nodes are all pixels.
    """
    ny, nx = shape_out
    ys, xs = _nodes(ny, step), _nodes(nx, step)
    gx, gy = np.meshgrid(xs, ys)
    x_in, y_in = _exact(wcs_out, wcs_in, gx, gy)
    if step > 1 and not _close_enough((ys, xs), y_in, x_in, wcs_out, wcs_in):
        return pixel_mapping(wcs_out, wcs_in, shape_out, step=1)
    return (ys, xs), y_in, x_in


def _close_enough(nodes, y_in, x_in, wcs_out, wcs_in) -> bool:
    """Whether the bilinear interpolation of the node mapping meets the exact one at the cells' centres."""
    ys, xs = nodes
    if not (np.isfinite(y_in).all() and np.isfinite(x_in).all()):
        return False
    if len(ys) < 2 or len(xs) < 2:
        return True
    cy, cx = (ys[:-1] + ys[1:]) / 2, (xs[:-1] + xs[1:]) / 2
    mx, my = np.meshgrid(cx, cy)
    ex, ey = _exact(wcs_out, wcs_in, mx, my)
    # The cells' centres lie halfway between nodes: the interpolation there is the mean of four nodes.
    def mid(a):
        return (a[:-1, :-1] + a[1:, :-1] + a[:-1, 1:] + a[1:, 1:]) / 4

    with np.errstate(invalid="ignore"):
        worst = max(np.max(np.abs(mid(x_in) - ex)), np.max(np.abs(mid(y_in) - ey)))
    return bool(worst <= TOLERANCE_PX)


def resample_bilinear(array: np.ndarray, mapping) -> np.ndarray:
    """`array` (the input image) at the output grid's pixels, bilinearly; NaN outside it.

    Only the output pixels whose nodes fall on the input image (within one
    cell) are interpolated: a 24 µm image under part of an 8 µm strip costs
    only that part.

    Parameters
    ----------
    array : numpy.ndarray
        ``(ny_in, nx_in)`` image on the input grid.
    mapping : tuple
        `pixel_mapping`'s result.

    Returns
    -------
    numpy.ndarray
        float32, the output grid's shape.
    """
    (ys, xs), y_in, x_in = mapping
    out = np.full((int(ys[-1]) + 1, int(xs[-1]) + 1), np.nan, np.float32)
    box = _covered(array.shape, y_in, x_in)
    if box is None:
        return out
    (i0, i1), (j0, j1) = box
    ys, xs, y_in, x_in = ys[i0:i1 + 1], xs[j0:j1 + 1], y_in[i0:i1 + 1, j0:j1 + 1], x_in[i0:i1 + 1, j0:j1 + 1]
    shape = (int(ys[-1] - ys[0]) + 1, int(xs[-1] - xs[0]) + 1)
    if y_in.shape != shape:  # known at the nodes only
        rows, cols = _axis(ys - ys[0], shape[0]), _axis(xs - xs[0], shape[1])
        y_in, x_in = interpolate_mapping(y_in, rows, cols), interpolate_mapping(x_in, rows, cols)
    coords = np.stack([y_in, x_in])
    for axis, n in enumerate(array.shape):
        c = coords[axis]
        # The outer half of the border pixels: the border value (as reproject does).
        c[(c < 0) & (c >= -0.5)] = 0
        c[(c >= n - 1) & (c < n - 0.5)] = n - 1
    coords[~np.isfinite(coords)] = -2.0  # no mapping: outside, NaN
    out[int(ys[0]):int(ys[-1]) + 1, int(xs[0]):int(xs[-1]) + 1] = ndimage.map_coordinates(
        np.asarray(array, np.float32), coords, order=1, mode="constant", cval=np.nan, output=np.float32)
    return out


def _covered(shape_in: tuple[int, int], y_in: np.ndarray, x_in: np.ndarray):
    """``((first, last) node row, (first, last) node column)`` of the nodes that map onto the input image
    or within one cell of it (a pixel between nodes maps within a cell of them), or None."""
    def step(a, axis):
        return np.nanmax(np.abs(np.diff(a, axis=axis)), initial=0.0)

    # A pixel of a cell lies within one row step plus one column step of each corner node, in each input
    # coordinate (a rotated grid moves both coordinates along each axis).
    with np.errstate(invalid="ignore"):
        reach = max(step(y_in, 0) + step(y_in, 1), step(x_in, 0) + step(x_in, 1)) + 1.0
        near = ((y_in >= -reach) & (y_in <= shape_in[0] - 1 + reach)
                & (x_in >= -reach) & (x_in <= shape_in[1] - 1 + reach))
    rows, cols = np.flatnonzero(near.any(axis=1)), np.flatnonzero(near.any(axis=0))
    if not len(rows):
        return None
    return (rows[0], rows[-1]), (cols[0], cols[-1])
