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

__all__ = ["stats_grid", "local_normalise"]


def stats_grid(size: int, *, most: int = 16) -> int:
    """The block side of the statistics: the largest divisor of the window side `size` up to `most`."""
    return max(g for g in range(1, most + 1) if size % g == 0)


def _block_sums(values: np.ndarray, weights: np.ndarray | None, grid: int):
    """Per ``grid x grid`` block: sum of weights (None: not summed), of weight x value, of weight x value
    squared. `values` are 0 where missing and `weights` (None: 1) 0 there too. Float64 throughout: the
    squares of values far from the reference would lose the variance in float32."""
    n, m = values.shape[0] // grid, values.shape[1] // grid

    def blocks(a):
        return a.reshape(n, grid, m, grid).sum(axis=3).sum(axis=1)

    wv = values if weights is None else weights * values
    return blocks(weights) if weights is not None else None, blocks(wv), blocks(wv * values)


def _window_sums(blocks: np.ndarray, k: int) -> np.ndarray:
    """Sums over ``k x k`` blocks at every block origin (the windows' sums), from cumulative sums."""
    c = np.zeros((blocks.shape[0] + 1, blocks.shape[1] + 1))
    c[1:, 1:] = blocks.cumsum(0).cumsum(1)
    return c[k:, k:] - c[:-k, k:] - c[k:, :-k] + c[:-k, :-k]


def _window_levels(band: np.ndarray, weights: np.ndarray | None, grid: int, k: int, norm: Normalisation,
                   fallback: str | None) -> tuple[np.ndarray, np.ndarray]:
    """``(low, top)`` of `normalise` for the ``k x k``-block windows at every block origin of one band.

    `weights` (the 8 µm point-source rule's per-pixel weights, or None) are used
    where `fallback` allows: ``"weighted"`` falls back to all pixels where the
    weights sum to under 1e-3 of the pixels, ``"threshold"`` where no more than
    `MIN_CLEAR_SHARE` of them are clear, as `normalise` does.
    """
    valid = np.isfinite(band)
    # Sums relative to a reference value keep the variance's cancellation small.
    ref = float(np.median(band[valid][::97])) if valid.any() else 0.0
    x = np.where(valid, band.astype(np.float64) - ref, 0.0)
    everyone = valid.astype(np.float64)
    _, s_b, q_b = _block_sums(x, None, grid)
    n_b = everyone.reshape(s_b.shape[0], grid, s_b.shape[1], grid).sum(axis=3).sum(axis=1)
    n, s, q = (_window_sums(a, k) for a in (n_b, s_b, q_b))
    if weights is not None:
        w = weights * everyone
        wn, ws, wq = (_window_sums(a, k) for a in _block_sums(x, w, grid))
        # The point-source rules' fallbacks, judged on the window's own (valid) pixels as `normalise` does.
        use = wn >= 1e-3 * n if fallback == "weighted" else wn > MIN_CLEAR_SHARE * n
        n, s, q = np.where(use, wn, n), np.where(use, ws, s), np.where(use, wq, q)
    minima = np.where(valid, band, np.inf).reshape(band.shape[0] // grid, grid, -1, grid).min(axis=(1, 3))
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
    r0, r1, fr = rows
    c0, c1, fc = cols
    out = grid[r0] * (1 - fr)[:, None] + grid[r1] * fr[:, None]
    return out[:, c0] * (1 - fc)[None, :] + out[:, c1] * fc[None, :]


def local_normalise(image: np.ndarray, stars: np.ndarray, size: int, *, offset: tuple[int, int],
                    level_shape: tuple[int, int], norm: Normalisation = Normalisation(),
                    grid: int | None = None) -> np.ndarray:
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

    Returns
    -------
    numpy.ndarray
        ``(n, m, 2)`` float32 in [0, 1]; 0 where `image` is NaN.
    """
    grid = grid or stats_grid(size)
    if size % grid or offset[0] % grid or offset[1] % grid:
        raise ValueError(f"grid {grid} must divide the window side {size} and the offset {offset}")
    k = size // grid
    n, m = image.shape[:2]
    # Whole blocks, padded with missing pixels, and at least one window's worth of them.
    bn, bm = max(math.ceil(n / grid), k), max(math.ceil(m / grid), k)
    padded = np.full((bn * grid, bm * grid, image.shape[-1]), np.nan, np.float32)
    padded[:n, :m] = image
    share = np.zeros(padded.shape[:2], np.float32)
    share[:n, :m] = np.clip(stars, 0.0, 1.0)
    weights = {"weighted": 1.0 - share, "threshold": (share <= STAR_SHARE).astype(np.float32)}[norm.stars]
    # Window origins on the grid, in the piece, and with the window inside the level (the level's last
    # window may then start up to grid - 1 pixels before its end, and a window has at most that many
    # pixels more of the level beside it than the flush one would).
    ky = max(1, min(bn - k + 1, (level_shape[0] - size - offset[0]) // grid + 1))
    kx = max(1, min(bm - k + 1, (level_shape[1] - size - offset[1]) // grid + 1))
    origins_y = offset[0] + grid * np.arange(ky)
    origins_x = offset[1] + grid * np.arange(kx)
    rows = _interpolation(offset[0] + np.arange(n), size, level_shape[0], origins_y)
    cols = _interpolation(offset[1] + np.arange(m), size, level_shape[1], origins_x)
    out = np.zeros(image.shape, np.float32)
    for c in range(image.shape[-1]):
        starred = c == CHANNEL_8UM
        low, top = _window_levels(padded[..., c], weights if starred else None, grid, k, norm,
                                  norm.stars if starred else None)
        low_px = _bilinear(low[:ky, :kx].astype(np.float32), rows, cols)
        top_px = _bilinear(top[:ky, :kx].astype(np.float32), rows, cols)
        band = image[..., c]
        with np.errstate(invalid="ignore", divide="ignore"):
            scaled = np.clip(band - low_px, 0.0, top_px) / top_px
        out[..., c] = np.where(np.isfinite(scaled) & (top_px > 0), scaled, 0.0)
    return out
