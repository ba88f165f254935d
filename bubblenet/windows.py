"""Planning multi-scale sliding windows over a tile (pure geometry, no model).

The reference method searches each tile with square windows of several
sizes (150–3000 px for validation, 100–3000 px for surveys, at 1.2″/px),
stride one third of the size, and resizes each window to the network input.
Its edge windows were truncated and resized anisotropically while labels
assumed squares; here every window is a full square: the last window of a
row or column is moved back to end at the tile's edge instead.
"""

from __future__ import annotations

import math
from typing import Iterator, Sequence

import numpy as np

from bubblenet.cutouts import Crop

__all__ = ["window_sizes", "window_starts", "plan_windows", "PAPER_SIZES_ARCSEC"]

#: The paper's survey window sizes, converted from 100–3000 px at GLIMPSE's 1.2″/px.
PAPER_SIZES_ARCSEC = (120.0, 3600.0)


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


def window_starts(length: int, size: int, stride: int) -> list[int]:
    """Window starts covering [0, length) with full windows; the last is flush with the end."""
    if size >= length:
        return [0]
    starts = list(range(0, length - size + 1, stride))
    if starts[-1] != length - size:
        starts.append(length - size)
    return starts


def plan_windows(shape: tuple[int, int], sizes: Sequence[int], *, stride_fraction: float = 1 / 3,
                 tile: int = 0) -> Iterator[Crop]:
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

    Yields
    ------
    Crop
    """
    ny, nx = shape
    for size in sizes:
        if size > min(nx, ny):
            continue
        stride = max(int(round(size * stride_fraction)), 1)
        for y0 in window_starts(ny, size, stride):
            for x0 in window_starts(nx, size, stride):
                yield Crop(tile, x0, y0, size)
