"""One normalisation for a whole pyramid level, close to each window's own: the shared search's inputs.

Every window of the other search modes is scaled on its own
(`bubblenet.training_data.cutouts.normalise`): per band ``clip(x - min, <= L) / L``,
with the minimum, mean and σ of that window. Windows that share their
backbone features need one value per level pixel instead. Here each pixel is
scaled with the minimum and level L of the window of the network's input side
centred on it (kept inside the level, as windows are), so that a window's
centre is scaled exactly as the window itself is and the scaling changes
smoothly across it (to within the half pixel between the window's centre and
its central pixels' centres).

The statistics are those of `normalise`, rule for rule (the 8 µm point
sources weighted out or left out, `Normalisation.stars`; the paper's or the
shifted level, `Normalisation.level`), computed for windows whose origins lie
on a grid of `grid` level pixels, from block sums over `grid` x `grid`
blocks, and interpolated bilinearly in between: the sums make the statistics
of every window in a few operations per block rather than per pixel.
Missing pixels (NaN) take no part in the statistics and become 0, the value
the network's zero padding shows at a window's edge.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from bubblenet.conventions import CHANNEL_8UM
from bubblenet.training_data.cutouts import MIN_CLEAR_SHARE, STAR_SHARE, Normalisation

__all__ = ["stats_grid", "local_normalise", "block_reduce", "window_sums"]


def stats_grid(size: int, *, most: int = 16) -> int:
    """The block side of the statistics: the largest divisor of the window side `size` up to `most`."""
    return max(g for g in range(1, most + 1) if size % g == 0)


def block_reduce(a: np.ndarray, grid: int, reduce=np.add) -> np.ndarray:
    """`reduce` over each ``grid x grid`` block of `a` (whole blocks). Rows are reduced first, a block's
    rows added as whole rows of the array (contiguous, vectorised), then the columns of the result: five
    to ten times faster than reducing a ``(n, grid, m, grid)`` view over its two block axes."""
    n, m = a.shape[0] // grid, a.shape[1] // grid
    return reduce.reduce(reduce.reduce(a.reshape(n, grid, m * grid), axis=1).reshape(n, m, grid), axis=2)


def window_sums(blocks: np.ndarray, k: int) -> np.ndarray:
    """Sums over ``k x k`` blocks at every block origin (the windows' sums), from cumulative sums."""
    c = np.zeros((blocks.shape[0] + 1, blocks.shape[1] + 1))
    c[1:, 1:] = blocks.cumsum(0).cumsum(1)
    return c[k:, k:] - c[:-k, k:] - c[k:, :-k] + c[:-k, :-k]


def _moments(d: np.ndarray, weights: np.ndarray | None, grid: int, count: np.ndarray, shift: np.ndarray):
    """Per block, in float64: the (weighted) count, sum and sum of squares of ``x - ref``, from the
    deviations ``d = x - centre`` of each pixel from its block's rough centre (0 where missing) and
    ``shift = centre - ref`` per block.

    Sums of `d` and ``d²`` are small and taken in float32 without loss; the
    block's offset is put back exactly in float64
    (``Σ(x - ref)² = Σd² + 2 shift Σd + n shift²``), so the variance keeps its
    precision however bright the sky is.
    """
    wd = d if weights is None else weights * d
    n_b = count if weights is None else block_reduce(weights, grid).astype(np.float64)
    s_d = block_reduce(wd, grid).astype(np.float64)
    q_d = block_reduce(wd * d, grid).astype(np.float64)
    return n_b, s_d + n_b * shift, q_d + 2 * shift * s_d + n_b * shift * shift


def _window_levels(band: np.ndarray, weights: np.ndarray | None, grid: int, k: int, norm: Normalisation,
                   fallback: str | None) -> tuple[np.ndarray, np.ndarray]:
    """``(low, top)`` of `normalise` for the ``k x k``-block windows at every block origin of one band.

    `weights` (the 8 µm point-source rule's per-pixel weights, 0 where the
    band is missing, or None) are used where `fallback` allows:
    ``"weighted"`` falls back to all pixels where the weights sum to under
    1e-3 of the pixels, ``"threshold"`` where no more than `MIN_CLEAR_SHARE`
    of them are clear, as `normalise` does.
    """
    valid = np.isfinite(band)
    bn, bm = band.shape[0] // grid, band.shape[1] // grid
    if valid.all():  # the usual case: no masking
        x, mask = band, None
        count = np.full((bn, bm), float(grid * grid))
    else:
        mask = valid.astype(np.float32)
        x = np.where(valid, band, np.float32(0))
        count = block_reduce(mask, grid).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        centre = np.where(count > 0, block_reduce(x, grid) / count, 0.0)
    # Sums relative to a reference value keep the windows' cancellation small, as before.
    ref = float(np.median(band[valid][::97])) if valid.any() else 0.0
    d = (x.reshape(bn, grid, bm, grid) - centre.astype(np.float32)[:, None, :, None]).reshape(x.shape)
    if mask is not None:
        d *= mask
        weights = None if weights is None else weights * mask
    shift = centre - ref
    n, s, q = (window_sums(a, k) for a in _moments(d, None, grid, count, shift))
    if weights is not None:
        wn, ws, wq = (window_sums(a, k) for a in _moments(d, weights, grid, count, shift))
        # The point-source rules' fallbacks, judged on the window's own (valid) pixels as `normalise` does.
        use = wn >= 1e-3 * n if fallback == "weighted" else wn > MIN_CLEAR_SHARE * n
        n, s, q = np.where(use, wn, n), np.where(use, ws, s), np.where(use, wq, q)
    minima = block_reduce(band if mask is None else np.where(valid, band, np.float32(np.inf)), grid, np.minimum)
    low = sliding_window_view(minima, (k, k)).min(axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s / n
        sigma = np.sqrt(np.maximum(q / n - mean * mean, 0.0))
        top = mean + ref - low + norm.clip_sigma * sigma + (low if norm.level == "paper" else 0.0)
    empty = ~np.isfinite(low) | (n <= 0)
    return np.where(empty, 0.0, low), np.where(empty | ~np.isfinite(top), 0.0, top)


def _interpolation(centres: np.ndarray, size: int, length: int, origins: np.ndarray):
    """Indices and weights into `origins` (level pixels, increasing) of the window centred on each pixel.

    The window centred on level pixel ``p`` (whose centre is at ``p + 0.5``) starts at
    ``p + 0.5 - size / 2``, kept inside ``[0, length - size]`` and within the origins given.
    """
    wanted = np.clip(centres + 0.5 - size / 2, 0, max(length - size, 0))
    if len(origins) == 1:
        zero = np.zeros(len(centres), np.intp)
        return zero, zero, np.zeros(len(centres), np.float32)
    wanted = np.clip(wanted, origins[0], origins[-1])
    i1 = np.clip(np.searchsorted(origins, wanted, side="right"), 1, len(origins) - 1)
    i0 = i1 - 1
    frac = (wanted - origins[i0]) / (origins[i1] - origins[i0])
    return i0, i1, frac.astype(np.float32)


def _bilinear(grid: np.ndarray, rows, cols) -> np.ndarray:
    """`grid` interpolated at every pixel: along columns on the coarse rows first, then whole rows (row
    gathers are copies of contiguous rows, far cheaper than gathering columns of the full array)."""
    r0, r1, fr = rows
    c0, c1, fc = cols
    coarse = grid[:, c0] * (1 - fc)[None, :] + grid[:, c1] * fc[None, :]
    out = coarse[r0]
    out *= (1 - fr)[:, None]
    out += coarse[r1] * fr[:, None]
    return out


def local_normalise(image: np.ndarray, stars: np.ndarray, size: int, *, offset: tuple[int, int],
                    level_shape: tuple[int, int], norm: Normalisation = Normalisation(),
                    grid: int | None = None, region: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """Scale a piece of a pyramid level to [0, 1], each pixel as the window of side `size` centred on it.

    Parameters
    ----------
    image : numpy.ndarray
        ``(n, m, 2)`` level pixels, channels in `bubblenet.conventions.CHANNELS` order; NaN where missing.
    stars : numpy.ndarray
        ``(n, m)`` share of each level pixel that is an 8 µm point source.
    size : int
        Window side in level pixels (the network's input side).
    offset : (int, int)
        Level row and column of ``image[0, 0]``; multiples of `grid`.
    level_shape : (int, int)
        The whole level's ``(rows, columns)``: windows are kept inside it.
        The piece must hold every window centred on its pixels for the result
        to be the whole level's (the caller reads half a window more each way,
        rounded out to the grid).
    norm : bubblenet.training_data.cutouts.Normalisation
        The model's normalisation.
    grid : int, optional
        Block side of the statistics, a divisor of `size` (default: `stats_grid`).
    region : (int, int, int, int), optional
        ``(row0, row1, col0, col1)`` of the piece to scale (default: all of it);
        the statistics still come from the whole piece.

    Returns
    -------
    numpy.ndarray
        ``(row1 - row0, col1 - col0, 2)`` float32 in [0, 1]; 0 where `image` is NaN.
    """
    grid = grid or stats_grid(size)
    if size % grid or offset[0] % grid or offset[1] % grid:
        raise ValueError(f"grid {grid} must divide the window side {size} and the offset {offset}")
    k = size // grid
    n, m = image.shape[:2]
    y0, y1, x0, x1 = region or (0, n, 0, m)
    # Whole blocks, padded with missing pixels, and at least one window's worth of them.
    bn, bm = max(math.ceil(n / grid), k), max(math.ceil(m / grid), k)
    # Window origins on the grid, in the piece, and with the window inside the level (the level's last
    # window may then start up to grid - 1 pixels before its end, and a window has at most that many
    # pixels more of the level beside it than the flush one would).
    ky = max(1, min(bn - k + 1, (level_shape[0] - size - offset[0]) // grid + 1))
    kx = max(1, min(bm - k + 1, (level_shape[1] - size - offset[1]) // grid + 1))
    origins_y = offset[0] + grid * np.arange(ky)
    origins_x = offset[1] + grid * np.arange(kx)
    rows = _interpolation(offset[0] + np.arange(y0, y1), size, level_shape[0], origins_y)
    cols = _interpolation(offset[1] + np.arange(x0, x1), size, level_shape[1], origins_x)
    out = np.empty((y1 - y0, x1 - x0, image.shape[-1]), np.float32)
    for c in range(image.shape[-1]):
        # Each band as one contiguous plane of whole blocks (NaN beyond the piece).
        band = np.full((bn * grid, bm * grid), np.nan, np.float32)
        band[:n, :m] = image[..., c]
        weights = _star_weights(stars, band.shape, norm.stars) if c == CHANNEL_8UM else None
        low, top = _window_levels(band, weights, grid, k, norm, norm.stars if weights is not None else None)
        low_px = _bilinear(low[:ky, :kx].astype(np.float32), rows, cols)
        top_px = _bilinear(top[:ky, :kx].astype(np.float32), rows, cols)
        with np.errstate(invalid="ignore", divide="ignore"):
            # clip(x - low, 0, top) / top, as clip((x - low) / top, 0, 1); 0 where top is 0 or x missing.
            inverse = np.divide(1.0, top_px, out=np.zeros_like(top_px), where=top_px > 0)
            scaled = np.subtract(band[y0:y1, x0:x1], low_px, out=low_px)
            scaled *= inverse
            np.clip(scaled, 0.0, 1.0, out=scaled)
        scaled[np.isnan(scaled)] = 0.0
        out[..., c] = scaled
    return out


def _star_weights(stars: np.ndarray, shape: tuple[int, int], rule: str) -> np.ndarray:
    """Per-pixel weights of the 8 µm statistics (`Normalisation.stars`), over `shape` (stars beyond the piece: 0)."""
    share = np.zeros(shape, np.float32)
    share[:stars.shape[0], :stars.shape[1]] = np.clip(stars, 0.0, 1.0)
    if rule == "weighted":
        return np.subtract(1.0, share, out=share)
    return (share <= STAR_SHARE).astype(np.float32)
