"""Point sources of the 8 µm band, for normalisation statistics that ignore them.

Nishimoto et al. (2025) take each cut-out's 8 µm mean and σ after masking
the point sources `photutils.detection.DAOStarFinder` finds in it (threshold
3σ above the sigma-clipped median). Running the finder on every cut-out costs
more than everything else a cut-out needs (3–4 ms of 4–8), so it is run once
per tile instead, at the native pixel scale, block by block (each block with
its own background statistics, as the Galactic plane's brightness changes
steeply with latitude), and the mask is cached with the tile
(`bubblenet.sky.tilecache.TileCache`); cut-outs resample their part of it.
`point_source_mask` also serves a lone image, as a fallback.
"""

from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from photutils.utils.exceptions import NoDetectionsWarning

# An image without stars is normal, not worth a warning; filtered once here
# because `warnings.catch_warnings` is not thread-safe.
warnings.filterwarnings("ignore", category=NoDetectionsWarning)

__all__ = ["point_source_mask", "tile_point_source_mask", "FWHM_8UM_ARCSEC", "MASK_RADIUS_FWHM"]

#: FWHM of the IRAC 8 µm PSF, arcsec: sets the finder's kernel.
FWHM_8UM_ARCSEC = 2.0
#: Masked radius around each source, in FWHM.
MASK_RADIUS_FWHM = 1.5
_BLOCK = 512
_MARGIN = 16


def point_source_mask(band: np.ndarray, fwhm_px: float, *, invalid: np.ndarray | None = None) -> np.ndarray:
    """Pixels within 1.5 FWHM of the point sources DAOStarFinder finds 3σ above the background.

    The background and σ are the sigma-clipped (3σ) median and standard
    deviation of `band`; the finder searches ``band - median`` with
    ``threshold = 3σ``.

    Parameters
    ----------
    band : numpy.ndarray
        ``(ny, nx)`` image.
    fwhm_px : float
        PSF FWHM in pixels (at least 1.5 is used: the finder's kernel needs a few pixels).
    invalid : numpy.ndarray of bool, optional
        Pixels to ignore (NaN survey edges).
    """
    from astropy.stats import sigma_clipped_stats
    from photutils.detection import DAOStarFinder

    fwhm_px = max(float(fwhm_px), 1.5)
    mask = np.zeros(band.shape, bool)
    _, median, std = sigma_clipped_stats(band, sigma=3.0, mask=invalid)
    if not std > 0:
        return mask
    sources = DAOStarFinder(fwhm=fwhm_px, threshold=3.0 * std)(band - median, mask=invalid)
    if sources is None or len(sources) == 0:
        return mask
    yy, xx = np.ogrid[: band.shape[0], : band.shape[1]]
    radius = MASK_RADIUS_FWHM * fwhm_px
    # photutils 3 renamed the centroid columns (old names still work, slowly, with warnings).
    xcol, ycol = ("x_centroid", "y_centroid") if "x_centroid" in sources.colnames else ("xcentroid", "ycentroid")
    for x, y in zip(sources[xcol], sources[ycol]):
        y0, y1 = max(int(y - radius), 0), min(int(y + radius) + 2, band.shape[0])
        x0, x1 = max(int(x - radius), 0), min(int(x + radius) + 2, band.shape[1])
        mask[y0:y1, x0:x1] |= (xx[:, x0:x1] - x) ** 2 + (yy[y0:y1] - y) ** 2 <= radius**2
    return mask


def tile_point_source_mask(band, fwhm_px: float, out: np.ndarray, *, workers: int = 1) -> np.ndarray:
    """Fill `out` (``(ny, nx)`` bool, e.g. a memory map) with a whole tile's point-source mask.

    Works in blocks of 512 px with 16-px margins, so memory stays bounded and
    the background statistics follow the sky; blocks are independent and run
    in `workers` threads (part of the finder holds the GIL: 2 threads give
    about 1.3x).
    """
    ny, nx = band.shape

    def block_mask(y0: int, x0: int) -> None:
        ya, yb = max(y0 - _MARGIN, 0), min(y0 + _BLOCK + _MARGIN, ny)
        xa, xb = max(x0 - _MARGIN, 0), min(x0 + _BLOCK + _MARGIN, nx)
        block = np.asarray(band[ya:yb, xa:xb], np.float32)
        invalid = ~np.isfinite(block)
        inner = (slice(y0 - ya, y0 - ya + min(_BLOCK, ny - y0)), slice(x0 - xa, x0 - xa + min(_BLOCK, nx - x0)))
        if invalid.mean() > 0.9:
            out[y0:y0 + _BLOCK, x0:x0 + _BLOCK] = False
            return
        found = point_source_mask(np.where(invalid, 0, block), fwhm_px, invalid=invalid)
        out[y0:y0 + _BLOCK, x0:x0 + _BLOCK] = (found & ~invalid)[inner]

    starts = [(y0, x0) for y0 in range(0, ny, _BLOCK) for x0 in range(0, nx, _BLOCK)]
    with ThreadPoolExecutor(max(1, workers)) as pool:
        for done in pool.map(lambda at: block_mask(*at), starts):
            pass  # (re-raises a block's error)
    return out
