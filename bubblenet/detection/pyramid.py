"""Sliding-window inputs cut from an image pyramid: the fast search mode.

The reference search resamples every window to the network input on its own
(`bubblenet.training_data.cutouts.process`). Windows at stride 1/3 overlap, so each tile
pixel is resampled about nine times per window size (four at stride 1/2),
and that, not the network, is most of the search's time. Here each window
size is one level of a pyramid: the whole tile is block-averaged, smoothed and
resampled once to ``size / side`` of its scale (the same three steps as
`bubblenet.training_data.cutouts.resample`), in strips of rows so that memory stays
bounded, and each window is a ``size`` x ``size`` slice of the level,
normalised on its own exactly as before (`bubblenet.training_data.cutouts.normalise`, with
the tile's 8 µm point-source mask brought to the level the same way, as the
share of each level pixel that is a source).

Slices start on whole level pixels, so the window origins on the tile are
multiples of ``side / size`` native pixels rather than whole pixels; `Crop`
keeps them as floats. The inputs differ from per-window processing only where
the smoothing reaches past a window's edge (here it sees the real neighbours)
and in where block averages start.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Iterator, Sequence

import numpy as np
from scipy import ndimage

from bubblenet.conventions import CHANNELS
from bubblenet.detection.local_norm import block_reduce
from bubblenet.training_data.cutouts import Crop, Normalisation, block_factor, normalise
from bubblenet.sky.stars import FWHM_8UM_ARCSEC
from bubblenet.sky.tilecache import BadMap, TileCache
from bubblenet.detection.windows import window_starts

__all__ = ["Level", "plan_levels", "aligned_starts", "pyramid_windows", "LevelStrips"]

#: Level rows made at once: bounds memory to about ``(strip + size) x level width`` per band.
STRIP_ROWS = 1024
#: ... and native rows read at once beyond one window's (a 9000-px-wide GLIMPSE tile: ~75 MB per band).
NATIVE_STRIP_ROWS = 2048


@dataclasses.dataclass(frozen=True)
class Level:
    """One window size of the search, as a pyramid level.

    Attributes
    ----------
    side : int
        Window side on the tile, native pixels.
    size : int
        Network input side, pixels (a window is ``size`` level pixels).
    shape : tuple of int
        ``(rows, columns)`` of the level.
    rows : tuple of (int, tuple of int)
        ``(row start, column starts)`` of the windows, in level pixels, row by row;
        windows that touch missing data are left out.
    """

    side: int
    size: int
    shape: tuple[int, int]
    rows: tuple[tuple[int, tuple[int, ...]], ...]

    @property
    def scale(self) -> float:
        """Native pixels per level pixel."""
        return self.side / self.size

    def crop(self, ly: int, lx: int, tile: int = 0) -> Crop:
        """The tile window of the slice at level pixel ``(ly, lx)``."""
        return Crop(tile, lx * self.scale, ly * self.scale, self.side)

    def __len__(self) -> int:
        return sum(len(xs) for _, xs in self.rows)


def plan_levels(shape: tuple[int, int], sides: Sequence[int], size: int, *, stride_fraction: float = 1 / 3,
                bad: BadMap | None = None, origin: str = "edge", step: int = 1) -> list[Level]:
    """The levels of a search of a ``(ny, nx)`` tile with windows of `sides` native pixels.

    Sides larger than the tile's short side are skipped, as in
    `bubblenet.detection.windows.plan_windows`; the stride is `stride_fraction` of the
    window in level pixels, and rows start as `origin` says
    (`bubblenet.detection.windows.window_starts`). With `bad` (the tile's
    `BadMap`), windows that touch missing data are left out. With `step` > 1
    (the shared search: windows on its feature grid), the stride and every
    start are whole multiples of `step` level pixels (`aligned_starts`): at
    128-px windows and 16-px cells, stride 1/2 stays 64 px, and stride 1/3
    (43 px) becomes 48 px, a fifth fewer windows.
    """
    ny, nx = shape
    stride = max(int(round(size * stride_fraction)), 1)
    if step > 1:
        stride = max(int(round(stride / step)), 1) * step
    levels = []
    for side in sides:
        rows, cols = int(math.floor(ny * size / side)), int(math.floor(nx * size / side))
        if side > min(nx, ny) or min(rows, cols) < size:
            continue
        scale = side / size
        plan = []
        for ly in aligned_starts(rows, size, stride, origin=origin, step=step):
            xs = tuple(lx for lx in aligned_starts(cols, size, stride, origin=origin, step=step)
                       if bad is None or not bad.touches(int(lx * scale), int(ly * scale), side + 1))
            if xs:
                plan.append((ly, xs))
        levels.append(Level(side, size, (rows, cols), tuple(plan)))
    return levels


def aligned_starts(length: int, size: int, stride: int, *, origin: str = "edge", step: int = 1) -> list[int]:
    """`bubblenet.detection.windows.window_starts`, each start moved to the nearest multiple of `step`
    that keeps the window inside ``[0, length)`` (so the last window may end up to ``step - 1`` short of
    the end); with `step` 1, the starts themselves."""
    starts = window_starts(length, size, stride, origin=origin)
    if step <= 1:
        return starts
    last = (length - size) // step * step
    return sorted({min(int(math.floor(s / step + 0.5)) * step, last) for s in starts})


def _axis_weights(n_out: int, scale: float, n_in: int, offset: float = 0.0):
    """Linear-interpolation indices and weights of output pixels along one axis.

    Output pixel ``i`` samples input coordinate ``(i + 0.5) * scale - 0.5 - offset``
    (pixel edges aligned, as ``scipy.ndimage.zoom(grid_mode=True)``), clamped
    to the input (its ``mode="nearest"``).
    """
    coords = np.clip((np.arange(n_out) + 0.5) * scale - 0.5 - offset, 0, n_in - 1)
    low = np.minimum(np.floor(coords).astype(np.intp), max(n_in - 2, 0))
    frac = (coords - low).astype(np.float32)
    high = np.minimum(low + 1, n_in - 1)
    return low, high, frac


def _resample_rows_cols(band: np.ndarray, rows, cols) -> np.ndarray:
    """Separable linear interpolation: `rows` and `cols` from `_axis_weights`."""
    r0, r1, fr = rows
    c0, c1, fc = cols
    out = band[r0] * (1 - fr)[:, None] + band[r1] * fr[:, None]
    return out[:, c0] * (1 - fc)[None, :] + out[:, c1] * fc[None, :]


class LevelStrips:
    """Makes a level of a tile piece by piece: `block` gives level pixels ``[r0, r1) x [c0, c1)``."""

    def __init__(self, cache: TileCache, level: Level):
        self.cache = cache
        self.level = level
        self.k = block_factor(level.side, level.size)
        ny, nx = cache.shape
        self.blocked_shape = (ny // self.k, nx // self.k)
        self.ratio = level.scale / self.k  # blocked pixels per level pixel
        self.sigma = 2 * self.ratio / 2.3548 if self.ratio > 1 else 0.0
        self.margin = int(math.ceil(4 * self.sigma)) + 2  # blocked pixels the smoothing and interpolation reach

    def _span(self, first: int, last: int, length: int) -> tuple[int, int]:
        """Blocked pixels ``[b0, b1)`` that level pixels ``[first, last)`` read, with the margin."""
        b0 = int(math.floor((first + 0.5) * self.ratio - 0.5)) - self.margin
        b1 = int(math.ceil((last - 0.5) * self.ratio - 0.5)) + self.margin + 1
        return max(b0, 0), min(b1, length)

    def block(self, r0: int, r1: int, c0: int, c1: int) -> tuple[np.ndarray, np.ndarray]:
        """``(image (n, m, 2) float32, stars (n, m) float32)`` of level pixels ``[r0, r1) x [c0, c1)``."""
        k, (by, bx) = self.k, self.blocked_shape
        y0, y1 = self._span(r0, r1, by)
        x0, x1 = self._span(c0, c1, bx)
        rows = _axis_weights(r1 - r0, self.ratio, y1 - y0, offset=y0 - r0 * self.ratio)
        cols = _axis_weights(c1 - c0, self.ratio, x1 - x0, offset=x0 - c0 * self.ratio)
        ys, xs = slice(y0 * k, y1 * k), slice(x0 * k, x1 * k)
        out = []
        # One plane at a time (the bands in CHANNELS order, then the point sources),
        # so that one native plane is held at most.
        bands = [lambda c=c: self.cache.data[ys, xs, c] for c in range(len(CHANNELS))]
        for read in (*bands, lambda: self.cache.stars[ys, xs]):
            plane = np.asarray(read(), np.float32)
            if k > 1:
                plane = block_reduce(plane, k) / np.float32(k * k)  # block means
            if self.sigma:
                # Inside the tile the margin stands in for the neighbours; at the tile's
                # own edges "nearest" repeats the edge, as per-window processing does.
                plane = ndimage.gaussian_filter(plane, self.sigma, mode="nearest")
            out.append(_resample_rows_cols(plane, rows, cols))
        return np.stack(out[:len(CHANNELS)], axis=-1), out[len(CHANNELS)]


def pyramid_windows(cache: TileCache, levels: Sequence[Level], *, pixscale_arcsec: float,
                    norm: Normalisation = Normalisation(), tile: int = 0,
                    strip_rows: int = STRIP_ROWS) -> Iterator[tuple[Crop, np.ndarray]]:
    """``(crop, network input)`` for the windows of each level, level by level, row by row.

    Parameters
    ----------
    cache : TileCache
        The tile's bands and 8 µm point-source mask.
    levels : sequence of Level
        From `plan_levels` (with the tile's `BadMap`, so that no work goes to
        windows over missing data; any that still hold a NaN are skipped).
    pixscale_arcsec : float
        Native pixel side (sizes the point-source kernel, as in `bubblenet.training_data.cutouts.process`).
    norm : bubblenet.training_data.cutouts.Normalisation
        The model's normalisation.
    tile : int
        Tile index put in each `Crop`.
    strip_rows : int
        Level rows made at once (memory).
    """
    for level in levels:
        strips = LevelStrips(cache, level)
        fwhm = FWHM_8UM_ARCSEC / (pixscale_arcsec * level.scale)
        per_strip = max(1, min(strip_rows, int(NATIVE_STRIP_ROWS / level.scale)))
        pending = list(level.rows)
        while pending:
            # The window rows that start in one strip, and the level pixels they span.
            batch = [(ly, xs) for ly, xs in pending if ly < pending[0][0] + per_strip]
            pending = pending[len(batch):]
            r0, r1 = batch[0][0], batch[-1][0] + level.size
            c0 = min(xs[0] for _, xs in batch)
            c1 = max(xs[-1] for _, xs in batch) + level.size
            image, stars = strips.block(r0, r1, c0, c1)
            for ly, xs in batch:
                for lx in xs:
                    rows, cols = slice(ly - r0, ly - r0 + level.size), slice(lx - c0, lx - c0 + level.size)
                    window = image[rows, cols]
                    if not np.isfinite(window).all():
                        continue
                    share = np.clip(stars[rows, cols], 0.0, 1.0)  # of each level pixel that is a point source
                    yield level.crop(ly, lx, tile), normalise(window, fwhm8_px=fwhm, stars=share, norm=norm)
