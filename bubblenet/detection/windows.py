"""Planning multi-scale sliding windows over a tile (pure geometry, no model).

The reference method searches each tile with square windows of several
sizes (150–3000 px for validation, 100–3000 px for surveys, at 1.2″/px),
stride one third of the size, and resizes each window to the network input.
Its edge windows were truncated and resized anisotropically while labels
assumed squares; here every window is a full square: the last window of a
row or column is moved back to end at the tile's edge instead.

Where the windows start is a named choice (`WINDOW_ORIGINS`): ``"edge"``
(ours) covers the tile from its first pixel to its last; ``"paper"`` starts
at a fifth of the window side and steps by the stride up to, not including,
``stride x (floor(length / stride) - 1)``, as the original code does, which
leaves a strip at each edge unsearched (windows that would leave the tile
are dropped rather than truncated).
"""

from __future__ import annotations

import math
from typing import Iterator, Sequence

import numpy as np

from bubblenet.training_data.cutouts import Crop

__all__ = ["window_sizes", "sky_window_sizes", "window_starts", "plan_windows", "PAPER_SIZES_ARCSEC",
           "PAPER_VALIDATION_SIDES_ARCSEC", "PAPER_SURVEY_SIDES_ARCSEC", "MIN_WINDOW_PX", "WINDOW_ORIGINS"]

#: The paper's survey window sizes, converted from 100–3000 px at GLIMPSE's 1.2″/px.
PAPER_SIZES_ARCSEC = (120.0, 3600.0)

#: The original code's window list, 150, 300, 600, 900, 1200, 1800, 2400 and 3000 px at 1.2″/px, in arcsec;
#: its survey search adds 100 px.
PAPER_VALIDATION_SIDES_ARCSEC = tuple(1.2 * px for px in (150, 300, 600, 900, 1200, 1800, 2400, 3000))
PAPER_SURVEY_SIDES_ARCSEC = (120.0,) + PAPER_VALIDATION_SIDES_ARCSEC

#: Where a row of windows starts (see the module notes).
WINDOW_ORIGINS = ("edge", "paper")

#: Smallest window searched, native pixels. Windows sized in arcsec shrink to a handful of pixels on
#: coarse images (200″ is 30 px at the MWP field's 6.75″/px), and a window blown up from so few pixels
#: shows noise as rings: on that field 200″ windows gave 163 detections at precision 0.04, windows from
#: 432″ (64 px) 36 at 0.14. 64 px keeps the magnification to the 128 px input at most 2x; the paper's
#: smallest window is 100 px.
MIN_WINDOW_PX = 64


def window_sizes(smallest: float, largest: float, *, per_octave: int = 2) -> list[int]:
    """Window sides (pixels) in a geometric series from `smallest` to `largest`.

    Parameters
    ----------
    smallest, largest : float
        Pixels.
    per_octave : int
        Sizes per factor of two.
    """
    if not 0 < smallest <= largest:
        raise ValueError(f"need 0 < smallest <= largest, got {smallest}, {largest}")
    n = max(int(math.ceil(math.log2(largest / smallest) * per_octave)), 0) + 1
    sizes = np.geomspace(smallest, largest, n) if n > 1 else np.array([smallest])
    return sorted({int(round(s)) for s in sizes})


def sky_window_sizes(sizes_arcsec: Sequence[float], pixscale_arcsec: float, *, per_octave: int = 2,
                     min_px: float = MIN_WINDOW_PX) -> list[int]:
    """Window sides (pixels) for a search sized on the sky, none under `min_px` pixels.

    Parameters
    ----------
    sizes_arcsec : (float, float)
        Smallest and largest window side, arcsec.
    pixscale_arcsec : float
        Pixel side of the image searched.
    per_octave : int
        Sizes per factor of two.
    min_px : float
        Floor on the side in pixels (`MIN_WINDOW_PX`).
    """
    largest = sizes_arcsec[1] / pixscale_arcsec
    smallest = min(max(sizes_arcsec[0] / pixscale_arcsec, min_px), largest)
    return window_sizes(smallest, largest, per_octave=per_octave)


def window_starts(length: int, size: int, stride: int, *, origin: str = "edge") -> list[int]:
    """Starts of full windows of `size` along [0, length).

    ``origin="edge"``: from 0, the last flush with the end. ``"paper"``: from
    ``size // 5`` in steps of `stride`, below ``stride * (length // stride - 1)``,
    windows that would leave [0, length) dropped (the original code's rows).
    """
    if origin == "paper":
        return [x for x in range(size // 5, stride * (length // stride - 1), stride) if x + size <= length]
    if origin != "edge":
        raise ValueError(f"window origin must be one of {', '.join(WINDOW_ORIGINS)}, got {origin!r}")
    if size >= length:
        return [0]
    starts = list(range(0, length - size + 1, stride))
    if starts[-1] != length - size:
        starts.append(length - size)
    return starts


def plan_windows(shape: tuple[int, int], sizes: Sequence[int], *, stride_fraction: float = 1 / 3,
                 tile: int = 0, origin: str = "edge") -> Iterator[Crop]:
    """Square windows covering a tile at each size.

    Parameters
    ----------
    shape : tuple of int
        ``(ny, nx)`` of the tile.
    sizes : sequence of int
        Window sides, pixels; sizes larger than the tile's short side are skipped.
    stride_fraction : float
        Stride over window side (the paper: 1/3).
    tile : int
        Tile index stored in each `Crop`.
    origin : {"edge", "paper"}
        Where rows and columns of windows start (`window_starts`).

    Yields
    ------
    Crop
    """
    ny, nx = shape
    for size in sizes:
        if size > min(nx, ny):
            continue
        stride = max(int(round(size * stride_fraction)), 1)
        for y0 in window_starts(ny, size, stride, origin=origin):
            for x0 in window_starts(nx, size, stride, origin=origin):
                yield Crop(tile, x0, y0, size)
