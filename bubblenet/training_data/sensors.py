"""Domain randomisation of the instrument: blur, noise, background gradients and JPEG compression.

The synthetic survey is drawn with one PSF per band, one noise level and a
smooth background, and written losslessly; the real images a detector is
used on differ in each. The largest measured difference is noise: on the
real MWP field at l = 41.3° (`bubblenet.synth.realism.MWP_FIELD`, display
planes) the pixel-to-pixel noise (the MAD of neighbour differences over
√2) is 0.236 of the 24 µm plane's robust spread, against 0.047 on its
synthetic twin in the same display stretch (seeds 0–1), and 0.12–0.15 at
8 µm on both; the share of the high-passed planes' variance that is white
(uncorrelated between neighbours) is 0.33–0.34 on the real planes against
0.09–0.17 on the twin's; and the correlation width of the high-passed
24 µm plane (from its lags 1 and 2, which noise does not reach) is 2.2 px
on the real plane against 2.6–2.8 px on the twin's (``docs/measurements.md``,
"Domain randomisation"). The real images are also cut from JPEG
composites.

Each transform here acts on a cut-out once it is resampled to the network's
input grid and before it is normalised (`bubblenet.training_data.cutouts.process`),
so that its size is drawn in the pixels the detector sees, whatever the
window's size on the sky, and its cost is that of a 128-px image (about
6 ms for all four). A sample also drawn for a display stretch
(`bubblenet.training_data.stretches`, on the native window) is stretched
first; a real display image adds its noise before its stretch, so the two
are not the same, but each widens what the detector has seen:

``blur``
    A Gaussian of σ drawn in `BLUR_SIGMA_PX` output pixels, per band: a
    broader PSF than the survey's, as another instrument or resolution
    gives (the bilinear resampling already smooths by FWHM 2 output pixels
    when it shrinks). It does not close the measured gap at 24 µm, where
    the twin is the smoother of the two.
``noise``
    White Gaussian noise of σ drawn in `NOISE_LEVELS` times the band's robust
    spread (astropy's `~astropy.stats.mad_std`), per band. The real 24 µm plane's 0.236 is at
    its native pixel; the detector sees about that in its smallest windows
    on that field (64 native px shown on 128) and, averaged over the native
    pixels of each output pixel, down to about a quarter of it in its
    largest, which the range takes in.
``gradient``
    A plane, in a random direction, rising across the window by a share
    drawn in `GRADIENT_LEVELS` of the band's robust spread, per band.
``jpeg``
    The two bands, each mapped linearly onto 0–255 between its own
    `JPEG_PERCENTILES` (a display image's clipping; a single bright core
    would otherwise leave the rest of its band in a few levels, open to the
    other band's texture through the chroma subsampling), written as the red
    (24 µm) and green (8 µm) planes of a colour JPEG of quality drawn in
    `JPEG_QUALITIES` with a chroma subsampling drawn from 4:4:4, 4:2:2 and
    4:2:0 (Pillow; how the MWP composites were compressed is not published,
    and subsampling passes each band's fine texture into the other), read
    back and mapped back; pixels outside the percentiles keep their values.

Which transforms are named changes the order of the draws, so that the
same sample gets other noise under ``("noise",)`` than under all four.

A per-band gain and zero level are not among them because the
normalisation already ignores both: each band is scaled between its own
minimum and its mean + k σ (the default ``"shifted"`` level), so
``a x + b`` with ``a > 0`` gives the same network input as ``x`` (a test
checks it; the paper's level ignores the gain only), and the display
stretch (`bubblenet.training_data.stretches`) clips at the band's own
percentiles.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from astropy.stats import mad_std
from scipy import ndimage

from bubblenet.conventions import CHANNEL_8UM, CHANNEL_24UM
from bubblenet.errors import ConfigError

__all__ = ["RANDOMISATIONS", "Randomisation", "canonical", "randomise"]

#: The transforms, in the order they are applied (that of an instrument and then a display pipeline).
RANDOMISATIONS = ("blur", "noise", "gradient", "jpeg")

#: Extra blur, Gaussian σ in output pixels.
BLUR_SIGMA_PX = (0.0, 1.0)
#: Added white noise, σ over the band's robust spread.
NOISE_LEVELS = (0.0, 0.3)
#: Background plane's rise across the window, over the band's robust spread.
GRADIENT_LEVELS = (0.0, 1.0)
#: JPEG quality.
JPEG_QUALITIES = (50, 95)
#: Percentiles of each band mapped onto levels 0 and 255 for the JPEG.
JPEG_PERCENTILES = (0.5, 99.5)
#: JPEG chroma subsamplings, in Pillow's numbering (0, 1, 2).
JPEG_SUBSAMPLINGS = ("4:4:4", "4:2:2", "4:2:0")


def canonical(transforms) -> tuple[str, ...]:
    """`transforms` once each, in `RANDOMISATIONS` order (names not in it after them, for the error)."""
    names = tuple(dict.fromkeys(transforms))
    return tuple(t for t in RANDOMISATIONS if t in names) + tuple(t for t in names if t not in RANDOMISATIONS)


@dataclasses.dataclass(frozen=True)
class Randomisation:
    """Which instrument transforms training samples are seen through, and how often.

    Parameters
    ----------
    transforms : tuple of str
        Names from `RANDOMISATIONS`; empty (the default) for none.
    share : float
        Each named transform is applied to a sample independently with this
        probability, so a sample may get none, some or all of them.
    """

    transforms: tuple[str, ...] = ()
    share: float = 0.5

    def __post_init__(self):
        unknown = [t for t in self.transforms if t not in RANDOMISATIONS]
        if unknown:
            raise ConfigError(f"randomise: unknown transform(s) {', '.join(map(repr, unknown))}; "
                              f"choose from {', '.join(RANDOMISATIONS)}")
        share = self.share
        if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0.0 <= share <= 1.0:
            raise ConfigError(f"randomise_share must be a share in [0, 1], got {self.share!r}")

    def __bool__(self) -> bool:
        return bool(self.transforms) and self.share > 0

    def draw(self, rng: np.random.Generator) -> tuple[str, ...]:
        """The transforms one sample gets (one uniform draw per named transform, in `RANDOMISATIONS` order)."""
        return tuple(t for t in RANDOMISATIONS if t in self.transforms and rng.uniform() < self.share)


def randomise(image: np.ndarray, transforms: tuple[str, ...], rng: np.random.Generator) -> np.ndarray:
    """`image` through `transforms`, in `RANDOMISATIONS` order, each drawn from `rng`.

    Parameters
    ----------
    image : numpy.ndarray
        ``(size, size, 2)`` network-grid image before normalisation, finite,
        channels in `bubblenet.conventions.CHANNELS` order.
    transforms : tuple of str
        Names from `RANDOMISATIONS` (`Randomisation.draw`).
    rng : numpy.random.Generator

    Returns
    -------
    numpy.ndarray
        float32, the shape of `image`; `image` itself is not changed.
    """
    out = np.array(image, np.float32)
    bands = range(out.shape[-1])
    if "blur" in transforms:
        for c in bands:
            out[..., c] = ndimage.gaussian_filter(out[..., c], rng.uniform(*BLUR_SIGMA_PX), mode="nearest")
    if "noise" in transforms:
        for c in bands:
            sigma = rng.uniform(*NOISE_LEVELS) * float(mad_std(out[..., c]))
            out[..., c] += rng.normal(0.0, 1.0, out.shape[:2]).astype(np.float32) * np.float32(sigma)
    if "gradient" in transforms:
        n = out.shape[0]
        ramp = (np.arange(n, dtype=np.float32) + 0.5) / n - 0.5  # -1/2 .. 1/2 across the window
        for c in bands:
            angle = rng.uniform(0.0, 2 * np.pi)
            rise = rng.uniform(*GRADIENT_LEVELS) * float(mad_std(out[..., c]))
            out[..., c] += np.float32(rise) * (np.cos(angle) * ramp[None, :] + np.sin(angle) * ramp[:, None])
    if "jpeg" in transforms:
        out = _through_jpeg(out, int(rng.integers(JPEG_QUALITIES[0], JPEG_QUALITIES[1] + 1)),
                            int(rng.integers(len(JPEG_SUBSAMPLINGS))))
    return out


def _through_jpeg(image: np.ndarray, quality: int, subsampling: int = 2) -> np.ndarray:
    """`image` written as a red (24 µm) and green (8 µm) JPEG composite of `quality` and chroma
    `subsampling` (an index of `JPEG_SUBSAMPLINGS`) and read back."""
    from bubblenet.synth.display import jpeg_round_trip  # here: the synth package costs a second to import

    bands = image[..., [CHANNEL_24UM, CHANNEL_8UM]]  # red, green; blue (4.5 µm in the MWP composites) stays empty
    low, high = np.percentile(bands, JPEG_PERCENTILES, axis=(0, 1))
    scale = np.where(high > low, high - low, 1.0).astype(np.float32)
    levels = (bands - low) / scale * 255.0
    clipped = (levels < 0) | (levels > 255)
    rgb = np.zeros(image.shape[:2] + (3,), np.uint8)
    rgb[..., :2] = np.round(np.clip(levels, 0, 255))
    back = jpeg_round_trip(rgb, quality=quality, subsampling=subsampling)[..., :2]
    back = np.where(clipped, bands, back / 255.0 * scale + low)
    out = np.empty_like(image, dtype=np.float32)
    out[..., [CHANNEL_24UM, CHANNEL_8UM]] = back
    return out
