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
are.

`through_mwp_jpeg` then compresses the two planes as the composites were:
the red (24 µm) and green (8 µm) planes of a colour JPEG with the real
file's own quantisation tables (`MWP_JPEG_TABLES`, read from the real
field's composite: fine tables of Adobe Photoshop, steps 2-12 for
luminance, 3-15 for colour) and no chroma subsampling, as that file has
(after a first generation: below). The composites' blue plane (IRAC 4.5 µm, mostly stars) has no
synthetic counterpart and stays empty. On the twin of the real field the
round trip raises the 24 µm plane's pixel-to-pixel noise from 0.047 to
0.141 of its robust spread (the real plane's is 0.236; docs/measurements.md,
"HII regions and the composites' compression"), so the compression
is part of what the real planes have and the display twin alone lacks.

The real composite's colour is also smooth at the pixel scale, which its
own 4:4:4 encoding cannot make: its colour difference carries 0.08-0.09 of
the luminance's pixel-to-pixel power along both axes
(`bubblenet.synth.realism.colour_share`) and its red and green planes
high-passed over 3 px correlate at 0.89
(`bubblenet.synth.realism.band_correlation`); hardened twins written with
the file's tables alone have 0.27-0.29 and 0.56-0.58. A composite encoded
once before with 4:2:0 chroma subsampling (colour at half resolution on
both axes) and then saved with the file's tables comes close to both
(`FIRST_GENERATION`), so `through_mwp_jpeg` writes the planes through that
first generation too: fine structure of one band then shows in the other,
as on the real planes.
"""

from __future__ import annotations

import io

import numpy as np
from scipy.stats import rankdata

__all__ = ["match_display", "through_mwp_jpeg", "jpeg_round_trip", "MWP_JPEG_TABLES", "FIRST_GENERATION"]

#: The encoding the composites went through before the one their files carry (Pillow's JPEG options):
#: 4:2:0 chroma subsampling, at a quality fine enough to add little of its own. Measured on the hardened twins
#: of the real field (seeds 0-2): red-green correlation high-passed over 3, 7 and 21 px 0.93, 0.87, 0.75 against
#: the real planes' 0.89, 0.85, 0.79, and colour share 0.06-0.07 against 0.08-0.09; 4:2:2 (horizontal only)
#: would leave the colour sharp along y (0.19 there, 0.10 along x), which the real file's is not.
FIRST_GENERATION = {"quality": 95, "subsampling": 2}

#: The luminance and chrominance quantisation tables of the Milky Way Project composite of GLM_04130-0013
#: (``mwp_GLM_04130-0013_I24M1.jpg`` of the project's shared data, as Pillow reads them), which carries no
#: chroma subsampling.
MWP_JPEG_TABLES = (
    (2, 2, 2, 2, 3, 4, 5, 6, 2, 2, 2, 2, 3, 4, 5, 6, 2, 2, 2, 2, 4, 5, 7, 9, 2, 2, 2, 4, 5, 7, 9, 12,
     3, 3, 4, 5, 8, 10, 12, 12, 4, 4, 5, 7, 10, 12, 12, 12, 5, 5, 7, 9, 12, 12, 12, 12, 6, 6, 9, 12, 12, 12, 12, 12),
    (3, 3, 5, 9, 13, 15, 15, 15, 3, 4, 6, 10, 14, 12, 12, 12, 5, 6, 9, 14, 12, 12, 12, 12, 9, 10, 14, 12, 12, 12,
     12, 12, 13, 14, 12, 12, 12, 12, 12, 12, 15, 12, 12, 12, 12, 12, 12, 12, 15, 12, 12, 12, 12, 12, 12, 12, 15, 12,
     12, 12, 12, 12, 12, 12),
)


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


def jpeg_round_trip(rgb: np.ndarray, **save_options) -> np.ndarray:
    """An 8-bit colour image written as a JPEG by Pillow with `save_options` and read back.

    Parameters
    ----------
    rgb : numpy.ndarray
        ``(ny, nx, 3)`` uint8.
    **save_options
        Pillow's JPEG options (``quality``, ``qtables``, ``subsampling``).

    Returns
    -------
    numpy.ndarray
        ``(ny, nx, 3)`` float32 levels, as decoded.
    """
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.asarray(rgb, np.uint8), "RGB").save(buffer, format="JPEG", **save_options)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"), np.float32)


def through_mwp_jpeg(red: np.ndarray, green: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two display planes compressed as the Milky Way Project's composites were, and read back.

    Parameters
    ----------
    red, green : numpy.ndarray
        The 24 and 8 µm planes in 8-bit display levels (`match_display`'s output); NaN pixels are
        written as the brightest level, as `match_display` leaves saturated pixels.

    Returns
    -------
    red, green : numpy.ndarray
        float32 levels after two JPEG round trips: `FIRST_GENERATION` (chroma subsampled), then
        `MWP_JPEG_TABLES` without subsampling, as the real file carries (the blue plane empty).
    """
    if np.shape(red) != np.shape(green):
        raise ValueError(f"the two display planes differ in shape: {np.shape(red)} and {np.shape(green)}")
    rgb = np.zeros(np.shape(red) + (3,), np.uint8)
    for k, plane in enumerate((red, green)):
        rgb[..., k] = np.round(np.clip(np.nan_to_num(np.asarray(plane, float), nan=255.0), 0, 255))
    first = np.round(np.clip(jpeg_round_trip(rgb, **FIRST_GENERATION), 0, 255)).astype(np.uint8)
    back = jpeg_round_trip(first, qtables=[list(t) for t in MWP_JPEG_TABLES], subsampling=0)
    return back[..., 0], back[..., 1]
