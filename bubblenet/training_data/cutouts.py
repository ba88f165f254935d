"""From a tile window to a network input: resampling, normalisation, labels, symmetries.

A cut-out is a square window of the tile cache, ``side`` native pixels wide.
It becomes a ``(size, size, 2)`` float32 image in [0, 1], channels in
`bubblenet.conventions.CHANNELS` order (24 µm, then 8 µm), the way Nishimoto et
al. (2025, PASJ 77, 403) prepare theirs:

1. anti-alias smoothing when shrinking — a Gaussian of FWHM 2 output
   pixels — then bilinear resampling to ``size`` (`resample`);
2. per-channel normalisation ``x = clip(x - min, <= L) / L`` with the level
   L = mean + 3σ (`Normalisation`), the 8 µm mean and σ taken without the
   point sources found by `photutils.detection.DAOStarFinder` (`normalise`).
   The sources are found at the survey's own resolution, once per tile
   (`bubblenet.sky.stars`), and the window's part of that mask is resampled
   with it; the paper searched each cut-out, which costs more than all the
   rest of a cut-out's preparation.

Where this departs from the paper, on purpose:

* the result stays float32; the paper wrote 8-bit PNGs every epoch, which
  quantises faint structure (``quantize=True`` gives the paper's 256 levels);
* the window is exactly square and its labels are computed in the same
  frame, whereas the paper's margin/trim arithmetic scaled crops by 51/52
  (2 %) relative to their labels — that error is not reproduced;
* shrinking by large factors first block-averages by an integer factor
  (exact, and an anti-alias filter in itself), so a 3000-pixel window costs
  little more than a 300-pixel one;
* the point-source mask is brought to the output grid as the share of each
  output pixel's native pixels that are a source, and the 8 µm statistics
  weight each output pixel by the share that is not (``stars="weighted"``,
  `Normalisation.stars`). The paper takes its statistics on the smoothed
  cut-out at native resolution without the sources' 4-px disks; once the
  anti-alias smoothing has spread a source's flux over many native pixels,
  the weights are the same thing on the output grid, and they change
  smoothly with the window size. The earlier rule (``"threshold"``) left
  out every output pixel more than 5 % source (`STAR_SHARE`) and dropped the
  mask altogether when under 10 % of the pixels were clear
  (`MIN_CLEAR_SHARE`): large windows are past that point (at 1.2″/px a
  2400–3000 px window is 84–91 % masked), so the level jumped between
  neighbouring window sizes. Detectors made with it keep it (they record
  no rule);
* the level L is ``mean(x - min) + 3σ`` by default: the paper's
  ``mean(x) + 3σ`` (``Normalisation(level="paper")``) depends on the
  image's zero point, which differs between calibrated mosaics (a sky
  background of tens of MJy/sr) and display images.

Labels are ``xyxy`` boxes relative to the cut-out (0..1, see
`bubblenet.conventions.to_relative`, which `Crop.relative` applies): the
bubbles whose box is at least 3/5 inside, with aspect between 1/3 and 3 and
area at least 1/36 of the frame after clipping (the paper's rules for a box
cut by the frame). Which bubbles are labelled — every catalogue bubble, or
only the selected ones as the paper does — is the caller's choice
(`bubblenet.training_data.samples.DataConfig.label_all_bubbles`).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import ndimage

from bubblenet.conventions import CHANNEL_8UM, CHANNEL_24UM, to_relative
from bubblenet.sky.stars import FWHM_8UM_ARCSEC, point_source_mask

__all__ = [
    "Crop",
    "Normalisation",
    "NORM_LEVELS",
    "block_factor",
    "resample",
    "normalise",
    "process",
    "labels_in_crop",
    "dihedral",
    "LABEL_MIN_INSIDE",
    "LABEL_ASPECT",
    "LABEL_MIN_AREA",
    "CLIP_SIGMA",
    "STAR_SHARE",
    "MIN_CLEAR_SHARE",
    "STAR_RULES",
    "clear_pixels",
    "BANDS",
    "keep_bands",
]

#: The normalisation saturates at mean + 3σ of each band (Nishimoto et al. 2025).
CLIP_SIGMA = 3.0

#: An output pixel is a point source for the 8 µm statistics when more than this share of it is one.
STAR_SHARE = 0.05
#: Below this share of clear pixels the threshold rule does not use the point-source mask (all pixels are).
MIN_CLEAR_SHARE = 0.1

#: How 8 µm point sources leave a cut-out's statistics (see the module notes).
STAR_RULES = ("weighted", "threshold")

#: Where the mean of the saturation level is taken: after subtracting the minimum (ours) or before (the paper's).
NORM_LEVELS = ("shifted", "paper")


@dataclasses.dataclass(frozen=True)
class Normalisation:
    """How a cut-out's bands are scaled to [0, 1]: ``clip(x - min, <= L) / L``, per band.

    Attributes
    ----------
    clip_sigma : float
        k: the level L is k standard deviations above the mean (the paper: 3).
    level : {"shifted", "paper"}
        ``"shifted"``: L = mean(x - min) + kσ, independent of the image's zero
        point; ``"paper"``: L = mean(x) + kσ, the mean taken before the
        minimum is subtracted, as the original code does.
    stars : {"weighted", "threshold"}
        How 8 µm point sources leave the statistics (`STAR_RULES`, see the module notes).
    """

    clip_sigma: float = CLIP_SIGMA
    level: str = "shifted"
    stars: str = "weighted"

    def __post_init__(self):
        if self.stars not in STAR_RULES:
            raise ValueError(f"point-source rule must be one of {', '.join(STAR_RULES)}, got {self.stars!r}")
        if not (np.isfinite(self.clip_sigma) and self.clip_sigma > 0):
            raise ValueError(f"clip_sigma must be > 0, got {self.clip_sigma}")
        if self.level not in NORM_LEVELS:
            raise ValueError(f"normalisation level must be one of {', '.join(NORM_LEVELS)}, got {self.level!r}")

    def to_dict(self) -> dict:
        """Plain values (``model_info.json``)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values) -> "Normalisation":
        """From `to_dict`'s values.

        A detector that records no ``level`` was made before the level and the
        point-source rule were choices: it gets ``"shifted"`` and
        ``"threshold"``, the rules of its time. One that records a level but no
        point-source rule used ``"weighted"``.
        """
        values = dict(values or {})
        stars = values.get("stars", "weighted" if "level" in values else "threshold")
        return cls(clip_sigma=float(values.get("clip_sigma", CLIP_SIGMA)), level=values.get("level", "shifted"),
                   stars=stars)

#: What a detector looks at: 24 + 8 µm (the paper's bubbles), or 8 µm alone
#: (the paper's 8 µm list: bubbles whose 8 µm shell alone is clear, with or without 24 µm).
BANDS = ("24+8", "8")


def keep_bands(images: np.ndarray, bands: str) -> np.ndarray:
    """Inputs ``(..., 2)`` as a detector on `bands` sees them: for ``"8"`` the 24 µm channel is zero.

    An 8 µm-only detector keeps the two-channel network, with its 24 µm input
    always zero, rather than a one-channel one: training, validation,
    detection and the SavedModel then share one input shape and one code path,
    and the first convolution simply learns nothing from the empty channel.
    """
    if bands not in BANDS:
        raise ValueError(f"bands must be one of {BANDS}, got {bands!r}")
    if bands == "24+8":
        return images
    out = np.array(images, dtype=np.float32, copy=True)
    out[..., CHANNEL_24UM] = 0.0
    return out

#: Labelling rules of Nishimoto et al. 2025 for bubbles cut by a crop's edge.
LABEL_MIN_INSIDE = 3 / 5
LABEL_ASPECT = (1 / 3, 3.0)
LABEL_MIN_AREA = 1 / 36


@dataclasses.dataclass(frozen=True)
class Crop:
    """A square window of a tile: pixels ``[x0, x0 + side) x [y0, y0 + side)``."""

    tile: int
    x0: int
    y0: int
    side: int

    def relative(self, boxes: np.ndarray) -> np.ndarray:
        """Tile-pixel ``xyxy`` boxes in this crop's 0..1 frame (`bubblenet.conventions.to_relative`)."""
        return to_relative(boxes, self.x0, self.y0, self.side)


def block_factor(side: int, size: int) -> int:
    """Integer pre-reduction for a window of `side` px shrunk to `size`: keeps ≥ 2 px per output px."""
    return max(1, side // (2 * size))


def resample(window: np.ndarray, size: int) -> np.ndarray:
    """Shrink (or enlarge) a square ``(n, n, c)`` window to ``(size, size, c)``.

    Block-averages by `block_factor` when `n` is a multiple of it (callers
    choose such sides), smooths with a Gaussian of FWHM 2 output pixels when
    shrinking, then resamples bilinearly with pixel edges aligned
    (``grid_mode``), so relative box coordinates carry over unchanged.
    """
    n = window.shape[0]
    k = block_factor(n, size)
    if k > 1 and n % k == 0:
        window = window.reshape(n // k, k, n // k, k, -1).mean(axis=(1, 3))
        n //= k
    ratio = n / size
    out = np.empty((size, size, window.shape[-1]), dtype=np.float32)
    for c in range(window.shape[-1]):
        band = window[..., c].astype(np.float32)
        if ratio > 1:
            band = ndimage.gaussian_filter(band, 2 * ratio / 2.3548, mode="nearest")
        out[..., c] = ndimage.zoom(band, size / n, order=1, grid_mode=True, mode="nearest")[:size, :size]
    return out


def normalise(image: np.ndarray, *, fwhm8_px: float, mask_stars: bool = True,
              stars: np.ndarray | None = None, norm: Normalisation = Normalisation()) -> np.ndarray:
    """Per-channel ``clip(x - min, <= L) / L``, in [0, 1], with L from `norm`.

    Parameters
    ----------
    image : numpy.ndarray
        ``(n, n, 2)``, channels in `bubblenet.conventions.CHANNELS` order.
    fwhm8_px : float
        8 µm PSF FWHM in this image's pixels (at least 1.5 is used).
    mask_stars : bool
        Take the 8 µm mean and σ without point sources, as the paper does.
    stars : numpy.ndarray, optional
        ``(n, n)`` share of each pixel that is an 8 µm point source (a bool
        mask at native resolution; a float in [0, 1] after resampling), found
        beforehand; the statistics weight each pixel by the share that is not
        a source (``norm.stars == "weighted"``) or leave out the pixels more
        than `STAR_SHARE` source (``"threshold"``, `clear_pixels`). When
        omitted, the sources are searched for in `image`.
    norm : Normalisation
        The level's definition.
    """
    out = np.empty_like(image, dtype=np.float32)
    for c in range(image.shape[-1]):
        band = image[..., c].astype(np.float32)
        low = band.min()
        shifted = band - low
        sample, weights = shifted.ravel(), None
        if mask_stars and c == CHANNEL_8UM:
            found = np.asarray(stars if stars is not None else point_source_mask(band, fwhm8_px), np.float32).ravel()
            if norm.stars == "threshold":
                sample = sample[clear_pixels(found)]
            elif (1.0 - found).sum() >= 1e-3 * found.size:  # not a window that is all point source
                weights = 1.0 - found
        mean = float(np.average(sample, weights=weights))
        sigma = float(np.sqrt(np.average((sample - mean) ** 2, weights=weights)))
        top = mean + norm.clip_sigma * sigma + (float(low) if norm.level == "paper" else 0.0)
        out[..., c] = np.clip(shifted, 0, top) / top if top > 0 else 0.0
    return out


def clear_pixels(share: np.ndarray) -> np.ndarray:
    """Indices of the pixels whose statistics stand for the background: those at most `STAR_SHARE` point
    source, or all pixels when not more than `MIN_CLEAR_SHARE` of them are."""
    clear = np.flatnonzero(share <= STAR_SHARE)
    if clear.size > MIN_CLEAR_SHARE * share.size:
        return clear
    return np.arange(share.size)


def process(window: np.ndarray, size: int, *, pixscale_arcsec: float, mask_stars: bool = True,
            stars: np.ndarray | None = None, quantize: bool = False,
            norm: Normalisation = Normalisation(), transform=None) -> np.ndarray:
    """A native-resolution window as a normalised ``(size, size, 2)`` network input.

    Parameters
    ----------
    window : numpy.ndarray
        ``(side, side, 2)`` from the tile cache, finite.
    size : int
        Model input side, pixels.
    pixscale_arcsec : float
        Native pixel side, to size the star finder's kernel.
    mask_stars : bool
        Leave 8 µm point sources out of the statistics.
    stars : numpy.ndarray of bool, optional
        ``(side, side)`` point-source mask of the window at native resolution
        (`bubblenet.sky.tilecache.TileCache.stars_window`); resampled with the
        image into the share of each output pixel that is a source. Without
        it, the sources are searched for in the window itself.
    quantize : bool
        Round to 256 levels, like the paper's 8-bit PNGs.
    norm : Normalisation
        The normalisation (`normalise`).
    transform : callable, optional
        Applied to the resampled ``(size, size, 2)`` image before it is
        normalised (domain randomisation: `bubblenet.training_data.sensors.randomise`).
    """
    image = resample(window, size)
    if transform is not None:
        image = transform(image)
    side = window.shape[0]
    if mask_stars and stars is None:
        # Search the native pixels (the paper's sources are point sources at
        # the survey's resolution), then bring the mask to the output grid.
        stars = point_source_mask(np.asarray(window[..., CHANNEL_8UM], np.float32), FWHM_8UM_ARCSEC / pixscale_arcsec)
    share = None
    if mask_stars:
        # The share of each output pixel's native pixels that are a source.
        share = np.clip(resample(np.asarray(stars, np.float32)[..., None], size)[..., 0], 0.0, 1.0)
    out_scale = pixscale_arcsec * side / size
    image = normalise(image, fwhm8_px=FWHM_8UM_ARCSEC / out_scale, mask_stars=mask_stars, stars=share, norm=norm)
    if quantize:
        image = np.round(image * 255) / 255
    return image.astype(np.float32)


def labels_in_crop(crop: Crop, boxes: np.ndarray) -> np.ndarray:
    """The label boxes of a crop: relative ``xyxy``, clipped to the frame, paper's rules applied.

    Parameters
    ----------
    crop : Crop
    boxes : numpy.ndarray
        ``(N, 4)`` tile-pixel boxes of every catalogue bubble of the tile.

    Returns
    -------
    numpy.ndarray
        ``(M, 4)`` relative boxes in [0, 1].
    """
    rel = crop.relative(boxes)
    if len(rel) == 0:
        return rel
    clipped = np.clip(rel, 0.0, 1.0)
    w, h = clipped[:, 2] - clipped[:, 0], clipped[:, 3] - clipped[:, 1]
    full = (rel[:, 2] - rel[:, 0]) * (rel[:, 3] - rel[:, 1])
    with np.errstate(invalid="ignore", divide="ignore"):
        inside = np.where(full > 0, w * h / full, 0)
        aspect = np.where(h > 0, w / h, 0)
    keep = (inside >= LABEL_MIN_INSIDE) & (aspect >= LABEL_ASPECT[0]) & (aspect <= LABEL_ASPECT[1]) & (
        w * h >= LABEL_MIN_AREA)
    return clipped[keep]


def dihedral(image: np.ndarray, boxes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Apply symmetry `k` (0..7) of the square to an image and its relative boxes, exactly.

    ``k % 4`` quarter-turns counter-clockwise (in array display with row 0 at
    the bottom, as FITS), then a left-right flip if ``k >= 4``. Written by
    hand rather than with `keras.layers.RandomRotation`, which interpolates
    arbitrary angles and enlarges boxes: these eight maps only permute
    pixels, so images and boxes stay exact.
    """
    image = np.asarray(image)
    boxes = np.asarray(boxes, float).reshape(-1, 4)
    x0, y0, x1, y1 = boxes.T
    for _ in range(k % 4):
        # A quarter-turn takes relative point (x, y) to (1 - y, x).
        image = np.rot90(image, 1, axes=(1, 0))
        x0, y0, x1, y1 = 1 - y1, x0, 1 - y0, x1
    if k >= 4:
        image = image[:, ::-1]
        x0, x1 = 1 - x1, 1 - x0
    return np.ascontiguousarray(image), np.stack([x0, y0, x1, y1], axis=-1).reshape(-1, 4)
