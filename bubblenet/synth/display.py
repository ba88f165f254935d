"""A synthetic plane shown the way a real display image shows the sky: the real image's own stretch.

The Milky Way Project's subject images, the only real 8 + 24 µm images
offline, are 8-bit display planes cut from colour JPEG composites (red
24 µm, green 8 µm): a stretch that is not published, saturation at 255 (the
24 µm plane reaches it in its brightest 0.1 %) and 256 levels. A synthetic
twin in MJy/sr differs from them in all three, whatever its sky looks like.

`match_display` takes the stretch from the real plane itself: the monotonic
map that sends each quantile of the synthetic plane to the same quantile of
the real one (histogram matching), then 256 levels. The twin's one-point
distribution becomes the real field's (up to its NaN pixels, which become
the brightest level), so that what still differs between the two is the
structure of the sky — where the bright pixels are, not how many there
are. JPEG compression is not imitated.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

__all__ = ["match_display"]


def match_display(data: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """`data` stretched to the distribution of the display plane `reference`, in its 8-bit levels.

    Parameters
    ----------
    data : numpy.ndarray
        A synthetic plane (any unit). NaN pixels, which stand for saturated
        or masked sources in the synthetic survey, become the brightest
        level, as saturated pixels are in a display image.
    reference : numpy.ndarray
        The real display plane (values 0-255); its NaN pixels are ignored.

    Returns
    -------
    numpy.ndarray
        float32, the shape of `data`, whole numbers in the range of
        `reference`; the map is monotonic (it keeps the order of `data`'s
        finite pixels).
    """
    data = np.asarray(data, float)
    levels = np.sort(np.asarray(reference, float)[np.isfinite(reference)])
    if levels.size == 0:
        raise ValueError("the reference display plane has no finite pixel")
    out = np.full(data.shape, levels[-1], np.float32)
    finite = np.isfinite(data)
    values = data[finite]
    if values.size:
        # Each pixel's quantile among the synthetic pixels (mid-rank; equal values share one), read off the
        # real plane's sorted values.
        quantile = (rankdata(values, method="average") - 0.5) / values.size
        out[finite] = np.round(np.interp(quantile * (levels.size - 1), np.arange(levels.size), levels))
    return out
