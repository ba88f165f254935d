"""Domain randomisation: training cut-outs seen through random display stretches.

A detector trained on the synthetic survey only ever sees calibrated
MJy/sr, but the real 8 + 24 µm images at hand are the Milky Way Project's
8-bit display planes: a stretch that is not published, saturation at both
ends and 256 levels. Shown in that stretch, the synthetic twin of the real
field loses what the real field loses (``docs/measurements.md``, "The real
field beside its twin"), so the stretch is part of the sim-to-real gap.

`random_stretch` passes each band of a native-resolution cut-out, before it
is resampled and normalised, through its own random monotonic display
curve, drawn from the family display tools use (DS9's and astropy's
``visualization`` stretches): the band is clipped between a low and a high
percentile, mapped to [0, 1] by a linear, power-law, asinh or log curve,
and rounded to 256 levels; the ranges of the draws take in the real MWP
field's own stretch (`LOW_PERCENTILES` and the others, below). The curve is written out here rather than taken
from ``astropy.visualization`` because each of its parameters is drawn at
random per sample and band, and the clipping limits are percentiles of the
cut-out itself; the arithmetic is one line per curve.
"""

from __future__ import annotations

import numpy as np

__all__ = ["STRETCHES", "random_stretch"]

#: The curves drawn from, with equal odds.
STRETCHES = ("linear", "power", "asinh", "log")

#: The ranges each curve's parameters are drawn from. They are set to take in the stretch of the real
#: MWP field (l = 41.3°): mapping its synthetic twin's MJy/sr onto the real planes quantile by quantile
#: (`bubblenet.synth.display.match_display`) and fitting these curves to the map, the best fits clip at
#: the 10th and 99.9th percentiles with exponent 0.5 at 8 µm (or log with a = 10, asinh with a = 40,
#: about as close), and at the 10th and 99th-99.5th with exponent 1.1-1.5 at 24 µm, whose real plane is
#: 0 in 7 % of its pixels (RMS 0.016 and 0.029 of the full scale).
LOW_PERCENTILES = (0.0, 10.0)
HIGH_PERCENTILES = (99.0, 100.0)
POWER_EXPONENTS = (0.3, 1.5)
ASINH_A_LOG10 = (0.0, 2.0)
LOG_A_LOG10 = (0.0, 3.0)


def random_stretch(window: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """`window` with each band through a random display stretch, in 8-bit levels (0-255).

    Parameters
    ----------
    window : numpy.ndarray
        ``(side, side, bands)``, finite (a tile cache window).
    rng : numpy.random.Generator
        Draws the percentiles and the curve of each band.

    Returns
    -------
    numpy.ndarray
        float32, the shape of `window`: whole numbers in [0, 255], each band
        a monotonic function of the same band of `window`.
    """
    out = np.empty(window.shape, np.float32)
    for c in range(window.shape[-1]):
        band = np.asarray(window[..., c], np.float64)
        low, high = np.percentile(band, [rng.uniform(*LOW_PERCENTILES), rng.uniform(*HIGH_PERCENTILES)])
        x = np.clip((band - low) / (high - low), 0.0, 1.0) if high > low else np.zeros_like(band)
        curve = STRETCHES[int(rng.integers(len(STRETCHES)))]
        if curve == "power":
            x = x ** rng.uniform(*POWER_EXPONENTS)
        elif curve == "asinh":
            a = 10 ** rng.uniform(*ASINH_A_LOG10)
            x = np.arcsinh(a * x) / np.arcsinh(a)
        elif curve == "log":
            a = 10 ** rng.uniform(*LOG_A_LOG10)
            x = np.log1p(a * x) / np.log1p(a)
        out[..., c] = np.round(x * 255.0)
    return out
