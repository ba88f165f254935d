"""A tile's two bands, resampled and hole-filled once, memory-mapped for fast cut-outs.

Missing data (NaN) are handled by one of two rules (`MISSING_RULES`), chosen
per cache and recorded by each detector:

* ``"fill-max"`` (the default, and the reference method's): every NaN island
  of a band smaller than `PAPER_ISLAND_AREA_ARCSEC2` (70,000 px at GLIMPSE's
  1.2″/px, about 28 arcmin²) is filled with that band's maximum over the tile.
  MIPSGAL leaves the saturated 24 µm cores of bright HII regions NaN, often
  inside bubbles; filled with the maximum they look like what they are (too
  bright to measure), and the windows around them can be trained on and
  searched. Larger islands (survey edges, missing coverage) stay NaN;
* ``"interpolate"``: holes of at most `bubblenet.sky.mosaics.SMALL_HOLE_AREA`
  pixels are interpolated from their surroundings and any window touching
  the remaining NaN is rejected — a bubble with a saturated core is then
  never trained on nor searched. Earlier bubblenet detectors (which record
  no rule) were trained this way;
* ``"interpolate+fill-max"``: both — holes of at most
  `bubblenet.sky.mosaics.SMALL_HOLE_AREA` pixels (bad pixels, masked star
  cores) interpolated, then the remaining islands smaller than
  `PAPER_ISLAND_AREA_ARCSEC2` filled with the maximum.

Zeros are data by default. Images of external galaxies mark the edge of
their coverage with zeros rather than NaN; with ``zeros="edge"`` (the
original code's rule for them) every zero pixel of a band is replaced by
that band's `ZERO_PERCENTILE`-th percentile over the tile, and a window is
rejected only when at least `ZERO_WINDOW_LIMIT` of it was zero (the map of
those pixels is kept beside the cache, ``.zeros.npy``).

Training cuts thousands of windows of every size from the same tiles each
epoch. Resampling the 24 µm band for each of them would dominate the cost,
so each tile is resampled once, in strips of rows (bounded memory) read and
resampled in parallel threads (`workers`), into a ``(ny, nx, 2)`` float32 ``.npy`` file under a cache folder and then read
through a memory map. The cache key holds the input files' paths, sizes and
modification times, so a changed input is never served from a stale cache.
Beside it, a ``.stars.npy`` bool map of the 8 µm point sources
(`bubblenet.sky.stars.tile_point_source_mask`), found once per tile so that no
cut-out has to search its own.

A per-tile *bad map* marks what no sample may touch: pixels still NaN after
hole filling (survey edges, gaps) and anything painted by the caller (bubble
masks, other splits' sky). It is kept at 1/`BAD_MAP_FACTOR` resolution,
conservatively (a coarse cell is bad if any pixel in it is), with a summed-area
table so that "does this window touch a bad pixel?" costs four look-ups.
"""

from __future__ import annotations

import hashlib
import logging
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from astropy import units as u

from bubblenet.conventions import CHANNEL_8UM, CHANNELS
from bubblenet.outputs import atomic_path, ensure_dir
from bubblenet.sky.mosaics import SkyTile, Window

__all__ = ["TileCache", "BadMap", "BAD_MAP_FACTOR", "MISSING_RULES", "ZERO_RULES", "PAPER_ISLAND_AREA_ARCSEC2",
           "ZERO_PERCENTILE", "ZERO_WINDOW_LIMIT", "fill_islands", "fill_zeros"]

log = logging.getLogger(__name__)

#: Coarsening of the bad map: cells of 4 x 4 pixels.
BAD_MAP_FACTOR = 4
_STRIP_ROWS = 512
#: Most threads building a cache by default (memory: each holds one strip).
MAX_WORKERS = 4

#: How NaN pixels are handled (see the module notes).
MISSING_RULES = ("fill-max", "interpolate", "interpolate+fill-max")

#: What zero pixels are: data, or the edge of an external galaxy's coverage (see the module notes).
ZERO_RULES = ("data", "edge")
#: Zeros of a coverage edge are replaced by this percentile of the band's other pixels (a "low percentile").
ZERO_PERCENTILE = 1.0
#: A window at least this share zero (before replacement) is not used (the original code's 70 %).
ZERO_WINDOW_LIMIT = 0.7

#: Largest NaN island the reference method fills with the tile's maximum: 70,000 px at 1.2"/px, on the sky
#: (so that the rule means the same at other pixel scales).
PAPER_ISLAND_AREA_ARCSEC2 = 70_000 * 1.2 ** 2


def fill_islands(band: np.ndarray, max_area_px: float) -> int:
    """Fill, in place, the NaN islands of `band` smaller than `max_area_px` pixels with its maximum.

    Islands are connected NaN regions (4-connectivity) within the array.

    Returns
    -------
    int
        Pixels filled.
    """
    from scipy import ndimage

    missing = ~np.isfinite(band)
    if not missing.any() or missing.all():
        return 0
    labels, n = ndimage.label(missing)
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    small = sizes < max_area_px
    small[0] = False  # label 0: the pixels with data
    fill = small[labels]
    count = int(fill.sum())
    if count:
        band[fill] = band[np.isfinite(band)].max()
    return count


def fill_zeros(band: np.ndarray) -> np.ndarray:
    """Replace, in place, the zero pixels of `band` by the `ZERO_PERCENTILE`-th percentile of its other finite
    pixels; return the bool map of the pixels replaced."""
    zero = band == 0
    rest = band[~zero & np.isfinite(band)]
    if zero.any() and rest.size:
        band[zero] = np.percentile(rest, ZERO_PERCENTILE)
    return zero


def _cache_key(tile: SkyTile, missing: str, zeros: str = "data") -> str:
    parts = [image.fingerprint() for image in (tile.image8, *tile.images24)]
    if missing != "interpolate":  # caches of the first rule keep their names
        parts.append(f"missing={missing}")
    if zeros != "data":
        parts.append(f"zeros={zeros}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


class TileCache:
    """Both bands of a `SkyTile` on its 8 µm grid, missing data handled, memory-mapped.

    Parameters
    ----------
    tile : bubblenet.sky.mosaics.SkyTile
    folder : str or path-like or None
        Cache folder; the file is built there on first use (atomically).
        None holds both bands in memory instead (for images held in memory,
        or a one-off search of a small tile).
    missing : {"fill-max", "interpolate", "interpolate+fill-max"}
        How NaN pixels are handled (`MISSING_RULES`, see the module notes).
    zeros : {"data", "edge"}
        What zero pixels are (`ZERO_RULES`, see the module notes).
    workers : int, optional
        Threads that read and resample strips and find point sources when the
        cache is built (default: the CPU count, at most `MAX_WORKERS`; each
        holds one strip, about 40 bytes a pixel of a strip's row width).

    Attributes
    ----------
    zeros : numpy.ndarray or None
        ``(ny, nx)`` bool: the pixels that were zero in a band, with ``zeros="edge"``; None otherwise.
    """

    def __init__(self, tile: SkyTile, folder: str | os.PathLike | None, *, missing: str = "fill-max",
                 zeros: str = "data", workers: int | None = None):
        if missing not in MISSING_RULES:
            raise ValueError(f"missing-data rule must be one of {', '.join(MISSING_RULES)}, got {missing!r}")
        if zeros not in ZERO_RULES:
            raise ValueError(f"zeros rule must be one of {', '.join(ZERO_RULES)}, got {zeros!r}")
        if workers is not None and workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.workers = workers or max(1, min(os.cpu_count() or 1, MAX_WORKERS))
        self.tile = tile
        self.missing = missing
        self.zero_rule = zeros
        self.zeros = None
        if folder is None:
            self.path = self.stars_path = None
            self.data = self._fill(np.empty(self.tile.shape + (len(CHANNELS),), np.float32))
            self.stars = self._find_stars(np.empty(self.shape, bool))
            return
        key = _cache_key(tile, missing, zeros)
        self.path = ensure_dir(folder) / f"{tile.name}.{key}.npy"
        self.stars_path = self.path.with_name(f"{tile.name}.{key}.stars.npy")
        zeros_path = self.path.with_name(f"{tile.name}.{key}.zeros.npy")
        if not self.path.exists() or (zeros == "edge" and not zeros_path.exists()):
            self._build()
            if self.zeros is not None:
                with atomic_path(zeros_path) as tmp:
                    np.save(tmp, self.zeros)
        self.data = np.load(self.path, mmap_mode="r")
        if zeros == "edge":
            self.zeros = np.load(zeros_path, mmap_mode="r")
        if not self.stars_path.exists():
            self._build_stars()
        self.stars = np.load(self.stars_path, mmap_mode="r")

    def _build(self) -> None:
        ny, nx = self.tile.shape
        log.info("caching %s (%d x %d px, both bands) in %s", self.tile.name, nx, ny, self.path.parent)
        with atomic_path(self.path) as tmp:
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(ny, nx, len(CHANNELS)))
            self._fill(out).flush()
            del out

    def _fill(self, out: np.ndarray) -> np.ndarray:
        """Read the tile's two bands into `out` in strips of rows (bounded memory), then apply the missing-data rule."""
        ny, nx = self.tile.shape
        interpolate = self.missing in ("interpolate", "interpolate+fill-max")
        fill_max = self.missing in ("fill-max", "interpolate+fill-max")

        def strip(y0: int) -> None:
            rows = min(_STRIP_ROWS, ny - y0)
            out[y0:y0 + rows] = self.tile.read(Window(0, y0, nx, rows), fill_holes=interpolate)

        # Strips are independent: resampling (numpy and scipy, which release the GIL) runs in threads.
        with ThreadPoolExecutor(self.workers) as pool:
            for done in pool.map(strip, range(0, ny, _STRIP_ROWS)):
                pass  # (re-raises a strip's error)
        if fill_max or self.zero_rule == "edge":
            # Islands are judged on the whole tile: a strip would cut them. One band at a time (memory).
            limit = PAPER_ISLAND_AREA_ARCSEC2 / float(self.tile.pixel_scale.to_value(u.arcsec)) ** 2
            zeros = np.zeros(self.tile.shape, bool) if self.zero_rule == "edge" else None
            for c in range(len(CHANNELS)):
                band = np.array(out[..., c])
                changed = bool(fill_islands(band, limit)) if fill_max else False
                if zeros is not None:
                    replaced = fill_zeros(band)
                    zeros |= replaced
                    changed |= bool(replaced.any())
                if changed:
                    out[..., c] = band
            self.zeros = zeros
        return out

    def _build_stars(self) -> None:
        with atomic_path(self.stars_path) as tmp:
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=bool, shape=self.shape)
            self._find_stars(out).flush()
            del out

    def _find_stars(self, out: np.ndarray) -> np.ndarray:
        """Mark the 8 µm point sources in `out` (`bubblenet.sky.stars.tile_point_source_mask`)."""
        from bubblenet.sky.stars import FWHM_8UM_ARCSEC, tile_point_source_mask

        fwhm = FWHM_8UM_ARCSEC / float(self.tile.pixel_scale.to_value(u.arcsec))
        tile_point_source_mask(self.data[..., CHANNEL_8UM], fwhm, out, workers=self.workers)
        return out

    @property
    def shape(self) -> tuple[int, int]:
        """``(ny, nx)``."""
        return self.data.shape[:2]

    def window(self, x0: int, y0: int, size: int) -> np.ndarray | None:
        """The square ``size`` x ``size`` window at ``(x0, y0)``, or None if it leaves the tile."""
        ny, nx = self.shape
        if x0 < 0 or y0 < 0 or x0 + size > nx or y0 + size > ny:
            return None
        return np.asarray(self.data[y0:y0 + size, x0:x0 + size])

    def stars_window(self, x0: int, y0: int, size: int) -> np.ndarray | None:
        """The 8 µm point-source mask of the same window as `window`."""
        ny, nx = self.shape
        if x0 < 0 or y0 < 0 or x0 + size > nx or y0 + size > ny:
            return None
        return np.asarray(self.stars[y0:y0 + size, x0:x0 + size])


class BadMap:
    """Where samples must not reach, at coarse resolution, with O(1) window tests.

    Parameters
    ----------
    cache : TileCache
        Its NaN pixels start the map; with its zero map (``zeros="edge"``), a window at least
        `ZERO_WINDOW_LIMIT` zero is refused too.
    """

    def __init__(self, cache: TileCache):
        ny, nx = cache.shape
        f = BAD_MAP_FACTOR
        self.shape = (-(-ny // f), -(-nx // f))
        self.cells = np.zeros(self.shape, dtype=bool)
        zero_cells = np.zeros(self.shape, dtype=np.float64) if cache.zeros is not None else None
        for y0 in range(0, ny, _STRIP_ROWS):
            block = np.asarray(cache.data[y0:y0 + _STRIP_ROWS])
            bad = ~np.isfinite(block).all(axis=-1)
            ys, xs = np.nonzero(bad)
            self.cells[(ys + y0) // f, xs // f] = True
            if zero_cells is not None:
                ys, xs = np.nonzero(np.asarray(cache.zeros[y0:y0 + _STRIP_ROWS]))
                np.add.at(zero_cells, ((ys + y0) // f, xs // f), 1.0 / (f * f))  # share of each cell
        self._table = None
        self._zero_table = None
        if zero_cells is not None:
            self._zero_table = np.zeros((self.shape[0] + 1, self.shape[1] + 1))
            self._zero_table[1:, 1:] = zero_cells.cumsum(0).cumsum(1)

    def copy(self) -> "BadMap":
        """An independent copy (to paint more on)."""
        other = object.__new__(BadMap)
        other.shape, other.cells, other._table = self.shape, self.cells.copy(), None
        other._zero_table = self._zero_table
        return other

    def paint_disks(self, x, y, r) -> None:
        """Mark disks (pixel centres and radii, tile pixels) as bad."""
        f = BAD_MAP_FACTOR
        for cx, cy, cr in zip(np.atleast_1d(x), np.atleast_1d(y), np.atleast_1d(r)):
            cr = max(float(cr), 0.5)
            y0, y1 = max(int((cy - cr) // f), 0), min(int((cy + cr) // f) + 1, self.shape[0])
            x0, x1 = max(int((cx - cr) // f), 0), min(int((cx + cr) // f) + 1, self.shape[1])
            if y0 >= y1 or x0 >= x1:
                continue
            gy, gx = np.mgrid[y0:y1, x0:x1]
            # distance from the disk centre to the nearest point of each cell
            dx = np.clip(cx, gx * f - 0.5, gx * f + f - 0.5) - cx
            dy = np.clip(cy, gy * f - 0.5, gy * f + f - 0.5) - cy
            self.cells[y0:y1, x0:x1] |= dx * dx + dy * dy <= cr * cr
        self._table = None

    def paint_boxes(self, boxes) -> None:
        """Mark ``xyxy`` pixel boxes as bad."""
        f = BAD_MAP_FACTOR
        for x0, y0, x1, y1 in np.asarray(boxes, float).reshape(-1, 4):
            a, b = max(int((y0 + 0.5) // f), 0), min(int((y1 + 0.5) // f) + 1, self.shape[0])
            c, d = max(int((x0 + 0.5) // f), 0), min(int((x1 + 0.5) // f) + 1, self.shape[1])
            if a < b and c < d:
                self.cells[a:b, c:d] = True
        self._table = None

    def _summed(self) -> np.ndarray:
        if self._table is None:
            table = np.zeros((self.shape[0] + 1, self.shape[1] + 1), dtype=np.int64)
            table[1:, 1:] = self.cells.cumsum(0).cumsum(1)
            self._table = table
        return self._table

    def touches(self, x0: int, y0: int, size: int) -> bool:
        """Whether the window ``[x0, x0 + size) x [y0, y0 + size)`` touches a bad cell (or is mostly zero edge)."""
        f = BAD_MAP_FACTOR
        a, b = max(y0 // f, 0), min((y0 + size - 1) // f + 1, self.shape[0])
        c, d = max(x0 // f, 0), min((x0 + size - 1) // f + 1, self.shape[1])
        if a >= b or c >= d:
            return True
        t = self._summed()
        if t[b, d] - t[a, d] - t[b, c] + t[a, c] > 0:
            return True
        if self._zero_table is not None:
            z = self._zero_table
            share = (z[b, d] - z[a, d] - z[b, c] + z[a, c]) / ((b - a) * (d - c))
            return bool(share >= ZERO_WINDOW_LIMIT)
        return False
