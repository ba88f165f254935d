"""Hard negatives: bubble-free crops centred on compact sources bright at both bands.

A detector trained on random bubble-free sky rarely sees what it most often
mistakes for a bubble on real fields: compact 24 µm sources with 8 µm
counterparts or halos (young stellar objects, compact HII regions; Nishimoto
et al. 2025 name compact sources and Mira variables as their contaminants).
`compact_sources` finds them in a tile's own two bands, with no catalogue,
so that the same rule works on a real survey and on a synthetic one; the
sample pool then centres a share of its negatives on them
(`bubblenet.training_data.samples.DataConfig.hard_negatives`).

Found by hand rather than with `photutils.detection.find_peaks`: the tile is
first block-averaged to about 6″ pixels (a whole GLIMPSE tile at 1.2″/px
would not fit a running median in memory and time), and the two bands must
be compared at the same peaks, which a few `scipy.ndimage` filters do
directly.
"""

from __future__ import annotations

import warnings

import numpy as np
from astropy.stats import mad_std
from scipy import ndimage

from bubblenet.conventions import CHANNEL_8UM, CHANNEL_24UM

__all__ = ["compact_sources"]

#: Pixel side (arcsec) the tile is block-averaged to before the search: the 24 µm beam (6″).
SEARCH_PIXEL_ARCSEC = 6.0
#: Running-median background window, in search pixels (90″: larger than a compact source).
BACKGROUND_PX = 15


def _background(image: np.ndarray) -> np.ndarray:
    """A running median of about `BACKGROUND_PX` pixels, taken on a 3x coarser grid and brought back.

    The background varies over more than a compact source's size, so the
    coarse median loses nothing that matters and costs a ninth as much.
    """
    ny, nx = image.shape
    k = 3
    py, px = -ny % k, -nx % k
    padded = np.pad(image, ((0, py), (0, px)), mode="edge")
    coarse = padded.reshape(padded.shape[0] // k, k, padded.shape[1] // k, k).mean(axis=(1, 3))
    coarse = ndimage.median_filter(coarse, max(BACKGROUND_PX // k, 3))
    return ndimage.zoom(coarse, k, order=1, mode="nearest", grid_mode=True)[:ny, :nx]


def compact_sources(bands: np.ndarray, pixscale_arcsec: float, *, limit: int = 1000,
                    min_sigma: float = 5.0, min_sigma_8um: float = 2.0) -> np.ndarray:
    """Compact sources of a tile, brightest first: local 24 µm peaks with an 8 µm excess.

    Parameters
    ----------
    bands : numpy.ndarray
        ``(ny, nx, 2)`` a tile's bands in `bubblenet.conventions.CHANNELS` order (a memory map is fine).
    pixscale_arcsec : float
        The tile's pixel side.
    limit : int
        At most this many are returned.
    min_sigma, min_sigma_8um : float
        A peak's 24 µm and 8 µm excess over the local background, in robust standard deviations of each
        band's background-subtracted image (measured where the band has data). Peaks within three
        search pixels (18″) of missing data in either band are left out.

    Returns
    -------
    numpy.ndarray
        ``(n, 3)`` rows of ``x``, ``y`` (tile pixels) and the 24 µm excess in sigmas.
    """
    factor = max(int(round(SEARCH_PIXEL_ARCSEC / pixscale_arcsec)), 1)
    ny, nx = bands.shape[0] // factor * factor, bands.shape[1] // factor * factor
    if ny == 0 or nx == 0:
        return np.zeros((0, 3))
    residual, usable = {}, None
    for channel in (CHANNEL_24UM, CHANNEL_8UM):
        band = np.asarray(bands[:ny, :nx, channel], np.float32)
        blocks = band.reshape(ny // factor, factor, nx // factor, factor)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN blocks: NaN, masked below
            small = np.nanmean(blocks, axis=(1, 3))
        finite = np.isfinite(small)
        usable = finite if usable is None else usable & finite
        small = np.where(finite, small, np.median(small[finite]) if finite.any() else 0.0)
        small = ndimage.gaussian_filter(small, 1.0)
        res = small - _background(small)
        # The noise of the sky there is, not of the filled-in gaps (which would make it small).
        sigma = float(mad_std(res[finite])) if finite.any() else 0.0
        residual[channel] = res / sigma if sigma > 0 else np.zeros_like(res)
    # Away from missing data: the filled gaps' edges would look like sources.
    usable = ndimage.binary_erosion(usable, iterations=3, border_value=1)
    z24, z8 = residual[CHANNEL_24UM], residual[CHANNEL_8UM]
    peaks = (z24 == ndimage.maximum_filter(z24, 5)) & (z24 >= min_sigma) & (z8 >= min_sigma_8um) & usable
    y, x = np.nonzero(peaks)
    strength = z24[y, x]
    order = np.argsort(strength)[::-1][:limit]
    centre = (factor - 1) / 2  # a block's centre in tile pixels
    return np.column_stack([x[order] * factor + centre, y[order] * factor + centre, strength[order]])
