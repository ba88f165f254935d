"""Training samples: bubble cut-outs (positives) and bubble-free sky (negatives).

`TrainingData` holds, for the tiles of one split, everything needed to draw
samples on demand and deterministically: sample ``k`` of a seeded run is
always the same image, whatever order or thread it is drawn in.

Positives (after Nishimoto et al. 2025, PASJ 77, 403): each selected bubble
once per epoch (shuffled per epoch), as either the centred crop (half-size
1.7 MajAxis) or a random translation and scale (half-size 1.72–5.88 MajAxis,
the bubble's box kept inside), then one of the eight symmetries of the
square; or, with ``samples_per_bubble=7``, the paper's seven per bubble and
epoch: the centred crop, one translated crop, its three rotations and its
two flips. The translated crop's scale is uniform in half-size over MajAxis
(ours) or, as the paper draws it, uniform in MajAxis over half-size
(``crop_rule="paper"``: s = 1 / U(0.17, 0.58), median 2.67 rather than 3.8).
The selected bubbles in the crop are labelled, by the paper's rules for
boxes cut by the frame, and the other catalogue bubbles are background, as
in the paper; ``label_all_bubbles=True`` labels every catalogue bubble
instead (bubblenet's rule before the ablation of ``docs/ablation.md``).

Negatives: crops of the same size distribution from sky where catalogue
bubbles are masked — by default the core (a disk of Reff/4, the paper's
choice) of *every* catalogue bubble, not only the selected ones, since the
paper's leakage of other bubbles into its negatives is a known weakness; the
whole label box can be masked instead. Crops touching a mask, missing data
or another split's sky are rejected. The pool of negatives is fixed per
seed so that it can be clustered (`bubblenet.training_data.negatives`) and re-weighted.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from pathlib import Path
from typing import Sequence

import numpy as np
from astropy import units as u
from astropy.table import Table

from bubblenet.catalogues.tables import label_boxes, select, sky_coords
from bubblenet.conventions import BOX_SCALE, inside_pixels
from bubblenet.training_data.cutouts import (BANDS, CLIP_SIGMA, NORM_LEVELS, STAR_RULES, Crop, Normalisation,
                                             block_factor,
                                             dihedral, keep_bands, labels_in_crop, process)
from bubblenet.errors import ConfigError
from bubblenet.training_data.sensors import Randomisation, canonical, randomise
from bubblenet.training_data.splits import Split, forbidden_boxes
from bubblenet.training_data.stretches import random_stretch
from bubblenet.sky.tilecache import MISSING_RULES, ZERO_RULES, BadMap, TileCache

__all__ = ["DataConfig", "TrainingData", "Sample", "CROP_RULES", "PAPER_SYMMETRIES"]

#: How a translated crop's scale is drawn: uniform in half-size / MajAxis (ours), or in its inverse (the paper's).
CROP_RULES = ("uniform", "paper")

#: The paper's six views of a translated crop: as cut, three quarter-turns, a left-right and an up-down flip
#: (`bubblenet.training_data.cutouts.dihedral` numbers; 6 is a half-turn then a left-right flip).
PAPER_SYMMETRIES = (0, 1, 2, 3, 4, 6)

#: Radius over MajAxis that the paper's translated crops keep inside the frame (its bubble circle).
PAPER_KEEP_INSIDE = 0.96

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """How samples are made.

    Attributes
    ----------
    size : int
        Network input side in pixels (the paper: 300).
    box_scale, box_size :
        Label box half-size = `box_scale` x catalogue `box_size` ("maj_axis" or "reff").
    centred_scale : float
        Half-size of the centred crop over MajAxis (1.7).
    crop_scales : tuple of float
        Range of half-size over MajAxis of translated crops (1.72, 5.88).
    crop_rule : {"uniform", "paper"}
        Draw the half-size over MajAxis uniformly in `crop_scales` and keep
        the bubble's label box inside (ours), or draw its inverse uniformly
        (1 / U(0.17, 0.58)) and keep the bubble's 0.96 MajAxis circle inside
        (the paper). Negatives' sizes follow the same rule.
    centred_fraction : float
        Share of positives that are centred crops (the paper: 1 in 7), when
        `samples_per_bubble` is 1.
    samples_per_bubble : {1, 7}
        Positives per selected bubble per epoch: one (a centred or translated
        crop in one of eight symmetries), or the paper's seven (centred;
        translated; its three rotations; its two flips).
    label_all_bubbles : bool
        Label every catalogue bubble in a crop, or only the selected ones
        (the paper's rule and the default), whose other bubbles are then
        background. Measured in ``docs/ablation.md``: labelling only the
        selected bubbles gives the better detector, strict F2 0.60 ± 0.04
        against 0.46 ± 0.05 over 3 seeds.
    mask : {"core", "box"}
        What of each catalogue bubble is kept out of negatives.
    core_fraction : float
        Core disk radius over Reff (the paper: 1/4).
    mask_all_bubbles : bool
        Mask every catalogue bubble (True) or only the selected ones (the paper).
    negatives_per_tile : int
        Size of the negative pool per tile (the paper: 3000).
    mask_stars, quantize : bool
        See `bubblenet.training_data.cutouts.process`.
    max_boxes : int
        Boxes per image after padding.
    clip_sigma : float
        Normalisation saturation, σ above the mean (`bubblenet.training_data.cutouts.normalise`; the paper: 3).
    norm_level : {"shifted", "paper"}
        `bubblenet.training_data.cutouts.Normalisation.level`.
    star_mask : {"weighted", "threshold"}
        `bubblenet.training_data.cutouts.Normalisation.stars`.
    missing : {"fill-max", "interpolate", "interpolate+fill-max"}
        How the tiles' NaN pixels are handled (`bubblenet.sky.tilecache.MISSING_RULES`).
    zeros : {"data", "edge"}
        What the tiles' zero pixels are (`bubblenet.sky.tilecache.ZERO_RULES`).
    bands : {"24+8", "8"}
        What the detector sees (`bubblenet.training_data.cutouts.keep_bands`).
    display_stretch : float
        Share of samples (positives and negatives alike) whose cut-out is
        seen through a random display stretch before processing
        (`bubblenet.training_data.stretches.random_stretch`; domain
        randomisation for display images such as the Milky Way Project's).
        0 by default.
    randomise : tuple of str
        Instrument transforms samples are seen through (domain
        randomisation: `bubblenet.training_data.sensors.RANDOMISATIONS`,
        any of ``"blur"``, ``"noise"``, ``"gradient"``, ``"jpeg"``, kept once
        each in that order); none by default.
    randomise_share : float
        Each of `randomise`'s transforms is applied to a sample (positive or
        negative) independently with this probability.
    hard_negatives : float
        Share of each tile's negative pool centred on compact sources bright
        at both bands (`bubblenet.training_data.hard_negatives.compact_sources`),
        the look-alikes a detector most often takes for bubbles on real
        fields; the rest are placed at random. 0 by default.
    seed : int
    """

    size: int = 128
    box_scale: float = BOX_SCALE
    box_size: str = "maj_axis"
    centred_scale: float = 1.7
    crop_scales: tuple[float, float] = (1.72, 5.88)
    crop_rule: str = "uniform"
    centred_fraction: float = 1 / 7
    samples_per_bubble: int = 1
    label_all_bubbles: bool = False
    mask: str = "core"
    core_fraction: float = 0.25
    mask_all_bubbles: bool = True
    negatives_per_tile: int = 300
    mask_stars: bool = True
    quantize: bool = False
    max_boxes: int = 32
    clip_sigma: float = CLIP_SIGMA
    norm_level: str = "shifted"
    star_mask: str = "weighted"
    missing: str = "fill-max"
    zeros: str = "data"
    bands: str = "24+8"
    display_stretch: float = 0.0
    randomise: tuple[str, ...] = ()
    randomise_share: float = 0.5
    hard_negatives: float = 0.0
    seed: int = 0

    def __post_init__(self):
        object.__setattr__(self, "randomise", canonical(self.randomise))
        self.randomisation  # noqa: B018  (checks randomise and randomise_share)
        share = self.display_stretch
        if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0.0 <= share <= 1.0:
            raise ConfigError(f"display_stretch must be a share in [0, 1], got {self.display_stretch!r}")
        share = self.hard_negatives
        if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0.0 <= share <= 1.0:
            raise ConfigError(f"hard_negatives must be a share in [0, 1], got {self.hard_negatives!r}")
        if self.crop_rule not in CROP_RULES:
            raise ConfigError(f"crop_rule must be one of {', '.join(CROP_RULES)}, got {self.crop_rule!r}")
        if self.samples_per_bubble not in (1, 7):
            raise ConfigError(f"samples_per_bubble must be 1 or 7 (the paper's), got {self.samples_per_bubble!r}")
        if self.zeros not in ZERO_RULES:
            raise ConfigError(f"zeros must be one of {', '.join(ZERO_RULES)}, got {self.zeros!r}")
        if self.missing not in MISSING_RULES:
            raise ConfigError(f"missing must be one of {', '.join(MISSING_RULES)}, got {self.missing!r}")
        if self.star_mask not in STAR_RULES:
            raise ConfigError(f"star_mask must be one of {', '.join(STAR_RULES)}, got {self.star_mask!r}")
        if self.norm_level not in NORM_LEVELS:
            raise ConfigError(f"norm_level must be one of {', '.join(NORM_LEVELS)}, got {self.norm_level!r}")
        if self.mask not in ("core", "box"):
            raise ConfigError(f"mask must be 'core' or 'box', got {self.mask!r}")
        if self.box_size not in ("maj_axis", "reff"):
            raise ConfigError(f"box_size must be 'maj_axis' or 'reff', got {self.box_size!r}")
        if not 16 <= self.size <= 1024:
            raise ConfigError(f"size must be between 16 and 1024 pixels, got {self.size}")
        if self.bands not in BANDS:
            raise ConfigError(f"bands must be one of {BANDS}, got {self.bands!r}")
        if not self.clip_sigma > 0:
            raise ConfigError(f"clip_sigma must be positive, got {self.clip_sigma}")
        if not self.crop_scales[1] >= self.crop_scales[0]:
            raise ConfigError(f"crop_scales {self.crop_scales} must be (smallest, largest)")
        if not self.crop_scales[0] * 1.0 > self.box_scale:
            raise ConfigError(f"crop_scales {self.crop_scales} must exceed box_scale {self.box_scale}")

    @property
    def randomisation(self) -> Randomisation:
        """The instrument transforms of domain randomisation."""
        return Randomisation(self.randomise, self.randomise_share)

    @property
    def normalisation(self) -> Normalisation:
        """The cut-outs' normalisation."""
        return Normalisation(self.clip_sigma, self.norm_level, self.star_mask)

    def crop_scale(self, rng: np.random.Generator) -> float:
        """A translated crop's half-size over MajAxis, drawn by `crop_rule`."""
        low, high = self.crop_scales
        if self.crop_rule == "paper":
            return 1.0 / rng.uniform(1.0 / high, 1.0 / low)
        return rng.uniform(low, high)


@dataclasses.dataclass
class Sample:
    """One network input with its labels (relative ``xyxy`` boxes, padded with -1 labels)."""

    image: np.ndarray  # (size, size, 2) float32
    boxes: np.ndarray  # (max_boxes, 4) float32
    labels: np.ndarray  # (max_boxes,) int32: 1 = bubble, -1 = padding
    crop: Crop
    symmetry: int


@dataclasses.dataclass
class _TileData:
    cache: TileCache
    pixscale: float  # arcsec
    boxes: np.ndarray  # the label boxes of the bubbles labelled in crops (DataConfig.label_all_bubbles), tile pixels
    bad: BadMap  # missing data + other splits
    bad_negative: BadMap  # the same plus bubble masks


class TrainingData:
    """Samples from the tiles of one split.

    Parameters
    ----------
    tiles : sequence of bubblenet.sky.mosaics.SkyTile
        All tiles of the survey (other splits' tiles are needed to keep their sky out).
    catalogue : astropy.table.Table
        Standardised catalogue (`bubblenet.catalogues.tables.read_catalogue`) of all bubbles.
    selection : set of str
        Names of the bubbles that are positives.
    split : bubblenet.training_data.splits.Split
    which : {"train", "val", "test"}
        The split to draw from.
    config : DataConfig
    cache_dir : str or path-like
        Where tile caches are kept.
    """

    def __init__(self, tiles: Sequence, catalogue: Table, selection, split: Split, which: str,
                 config: DataConfig, cache_dir):
        self.config = config
        self.which = which
        names = set(getattr(split, which))
        self.tiles = [t for t in tiles if t.name in names]
        if not self.tiles:
            raise ConfigError(f"the {which} split has no tiles")
        selected = select(catalogue, selection)
        self._tile_data = []
        self.positives: list[tuple[int, float, float, float]] = []  # (tile, x, y, maj_px)
        self._indexed: set[int] = set()  # catalogue rows already indexed
        for i, tile in enumerate(self.tiles):
            data = self._prepare_tile(tile, tiles, split, catalogue, selected, Path(cache_dir))
            self._tile_data.append(data)
            self._index_positives(i, tile, catalogue, selected, data)
        if not self.positives:
            raise ConfigError(f"no selected bubble can be cut from the {which} tiles")
        self.negatives = self._draw_negative_pool(catalogue, selected)
        log.info("%s split: %d tiles, %d positives, %d negatives in the pool", which, len(self.tiles),
                 len(self.positives), len(self.negatives))

    # -- set-up --------------------------------------------------------------------
    def _prepare_tile(self, tile, tiles, split, catalogue, selected, cache_dir) -> _TileData:
        cache = TileCache(tile, cache_dir, missing=self.config.missing, zeros=self.config.zeros)
        pixscale = float(tile.pixel_scale.to_value(u.arcsec))
        boxes = label_boxes(catalogue, tile.wcs, k=self.config.box_scale, size=self.config.box_size)
        labelled = boxes if self.config.label_all_bubbles else boxes[selected]
        bad = BadMap(cache)
        bad.paint_boxes(forbidden_boxes(tiles, split, tile.name))
        bad_negative = bad.copy()
        masked = np.ones(len(catalogue), bool) if self.config.mask_all_bubbles else selected
        if self.config.mask == "box":
            bad_negative.paint_boxes(boxes[masked])
        else:
            x, y = tile.world_to_pixel(sky_coords(catalogue[masked]))
            core = self.config.core_fraction * u.Quantity(catalogue["reff"][masked], u.arcmin, dtype=float)
            r = core.to_value(u.arcsec) / pixscale  # pixels
            inside = np.isfinite(x) & np.isfinite(y)
            bad_negative.paint_disks(x[inside], y[inside], r[inside])
        return _TileData(cache, pixscale, labelled, bad, bad_negative)

    def _index_positives(self, i, tile, catalogue, selected, data: _TileData) -> None:
        x, y = tile.world_to_pixel(sky_coords(catalogue))
        maj = u.Quantity(catalogue["maj_axis"], u.arcmin).to_value(u.arcsec) / data.pixscale  # pixels
        for j in np.flatnonzero(selected & inside_pixels(x, y, tile.shape)):
            if j in self._indexed:
                continue  # already taken from an overlapping tile: once per epoch means once
            crop = self._centred(i, x[j], y[j], maj[j])
            if self._valid(crop, data.bad):
                self.positives.append((i, float(x[j]), float(y[j]), float(maj[j])))
                self._indexed.add(j)

    def _draw_negative_pool(self, catalogue: Table, selected) -> list[Crop]:
        """Bubble-free crops per tile, half-sizes like the positives' (log-normal radii x crop scales)."""
        log_maj = np.log(u.Quantity(catalogue["maj_axis"][selected], u.arcmin, dtype=float).to_value(u.arcsec))
        mu, sigma = float(log_maj.mean()), float(max(log_maj.std(), 0.1))
        pool = []
        for i, data in enumerate(self._tile_data):
            hard = self._hard_negatives(i, data, mu, sigma)
            rng = np.random.default_rng([self.config.seed, 3, i])
            ny, nx = data.cache.shape
            wanted = self.config.negatives_per_tile - len(hard)
            found, tries = [], 0
            while len(found) < wanted and tries < 30 * self.config.negatives_per_tile:
                tries += 1
                radius = math.exp(rng.normal(mu, sigma)) / data.pixscale
                side = self._side(2 * radius * self.config.crop_scale(rng))
                if side >= min(nx, ny):
                    continue
                crop = Crop(i, int(rng.integers(0, nx - side)), int(rng.integers(0, ny - side)), side)
                if not data.bad_negative.touches(crop.x0, crop.y0, crop.side):
                    found.append(crop)
            pool += hard + found
        if not pool:
            raise ConfigError(f"no bubble-free crop found in the {self.which} tiles")
        return pool

    def _hard_negatives(self, tile: int, data: _TileData, mu: float, sigma: float) -> list[Crop]:
        """`DataConfig.hard_negatives` of the tile's pool: bubble-free crops around its compact sources.

        Each crop has a random negative's size and holds one compact source
        (chosen at random among the tile's brightest) within its middle half.
        """
        n = int(round(self.config.hard_negatives * self.config.negatives_per_tile))
        if n == 0:
            return []
        from bubblenet.training_data.hard_negatives import compact_sources

        sources = compact_sources(data.cache.data, data.pixscale, limit=max(5 * n, 50))
        if len(sources) == 0:
            log.warning("%s split: no compact source found in tile %d for hard negatives", self.which, tile)
            return []
        rng = np.random.default_rng([self.config.seed, 9, tile])
        ny, nx = data.cache.shape
        found, tries = [], 0
        while len(found) < n and tries < 30 * n:
            tries += 1
            x, y, _ = sources[rng.integers(len(sources))]
            radius = math.exp(rng.normal(mu, sigma)) / data.pixscale
            side = self._side(2 * radius * self.config.crop_scale(rng))
            if side >= min(nx, ny):
                continue
            x0 = int(round(x - side / 2 + rng.uniform(-0.25, 0.25) * side))
            y0 = int(round(y - side / 2 + rng.uniform(-0.25, 0.25) * side))
            if 0 <= x0 <= nx - side and 0 <= y0 <= ny - side and not data.bad_negative.touches(x0, y0, side):
                found.append(Crop(tile, x0, y0, side))
        return found

    # -- geometry ------------------------------------------------------------------
    def _side(self, side: float) -> int:
        """A crop side in pixels, rounded up to a multiple of its block factor (exact shrinking)."""
        side = max(int(round(side)), 8)
        k = block_factor(side, self.config.size)
        return -(-side // k) * k

    def _centred(self, tile: int, x: float, y: float, maj: float) -> Crop:
        side = self._side(2 * self.config.centred_scale * maj)
        return Crop(tile, int(round(x + 0.5 - side / 2)), int(round(y + 0.5 - side / 2)), side)

    def _translated(self, tile: int, x: float, y: float, maj: float, rng: np.random.Generator) -> Crop:
        side = self._side(2 * self.config.crop_scale(rng) * maj)
        kept = PAPER_KEEP_INSIDE if self.config.crop_rule == "paper" else self.config.box_scale
        room = max(side / 2 - kept * maj - 1, 0)  # keep the bubble (its box, or the paper's circle) inside
        cx, cy = x + rng.uniform(-room, room), y + rng.uniform(-room, room)
        return Crop(tile, int(round(cx + 0.5 - side / 2)), int(round(cy + 0.5 - side / 2)), side)

    def _valid(self, crop: Crop, bad: BadMap) -> bool:
        ny, nx = self._tile_data[crop.tile].cache.shape
        if crop.x0 < 0 or crop.y0 < 0 or crop.x0 + crop.side > nx or crop.y0 + crop.side > ny:
            return False
        return not bad.touches(crop.x0, crop.y0, crop.side)

    # -- samples -------------------------------------------------------------------
    @property
    def positives_per_epoch(self) -> int:
        """Positive samples in one epoch: each selected bubble `DataConfig.samples_per_bubble` times."""
        return len(self.positives) * self.config.samples_per_bubble

    def positive_crop(self, k: int) -> tuple[Crop, int]:
        """Geometry and symmetry of positive sample `k` (deterministic)."""
        if self.config.samples_per_bubble == 7:
            return self._paper_positive_crop(k)
        n = len(self.positives)
        order = np.random.default_rng([self.config.seed, 2, k // n]).permutation(n)
        tile, x, y, maj = self.positives[order[k % n]]
        rng = np.random.default_rng([self.config.seed, 1, k])
        crop = self._centred(tile, x, y, maj)
        if rng.uniform() >= self.config.centred_fraction:
            crop = self._valid_translation(tile, x, y, maj, rng) or crop
        return crop, int(rng.integers(8))

    def _paper_positive_crop(self, k: int) -> tuple[Crop, int]:
        """Sample `k` of the paper's seven per bubble per epoch, the epoch's samples shuffled together."""
        n = len(self.positives)
        epoch, j = divmod(k, 7 * n)
        item = int(np.random.default_rng([self.config.seed, 2, epoch]).permutation(7 * n)[j])
        bubble, view = divmod(item, 7)
        tile, x, y, maj = self.positives[bubble]
        centred = self._centred(tile, x, y, maj)
        if view == 0:
            return centred, 0
        # The six other views share one translated crop per bubble and epoch.
        rng = np.random.default_rng([self.config.seed, 1, epoch, bubble])
        return self._valid_translation(tile, x, y, maj, rng) or centred, PAPER_SYMMETRIES[view - 1]

    def _valid_translation(self, tile: int, x: float, y: float, maj: float, rng) -> Crop | None:
        """A translated crop inside the tile and clear of bad data (20 tries), or None."""
        for _ in range(20):
            candidate = self._translated(tile, x, y, maj, rng)
            if self._valid(candidate, self._tile_data[tile].bad):
                return candidate
        return None

    def negative_crop(self, index: int, k: int) -> tuple[Crop, int]:
        """Pool entry `index` and the symmetry of its `k`-th use (deterministic)."""
        rng = np.random.default_rng([self.config.seed, 4, index, k])
        return self.negatives[index], int(rng.integers(8))

    def render(self, crop: Crop, symmetry: int, *, labelled: bool = True, stretch: np.random.Generator | None = None,
               sensor: np.random.Generator | None = None) -> Sample:
        """Cut, process and transform one crop into a `Sample` (through a random display stretch drawn from
        `stretch`, and the instrument transforms of `DataConfig.randomise` drawn from `sensor`, if given)."""
        data = self._tile_data[crop.tile]
        window = data.cache.window(crop.x0, crop.y0, crop.side)
        if stretch is not None:
            window = random_stretch(window, stretch)
        transform = None
        if sensor is not None:
            drawn = self.config.randomisation.draw(sensor)
            transform = (lambda image: randomise(image, drawn, sensor)) if drawn else None
        image = process(window, self.config.size, pixscale_arcsec=data.pixscale, mask_stars=self.config.mask_stars,
                        stars=data.cache.stars_window(crop.x0, crop.y0, crop.side), quantize=self.config.quantize,
                        norm=self.config.normalisation, transform=transform)
        boxes = labels_in_crop(crop, data.boxes) if labelled else np.zeros((0, 4))
        image, boxes = dihedral(keep_bands(image, self.config.bands), boxes, symmetry)
        m = self.config.max_boxes
        padded = np.zeros((m, 4), np.float32)
        labels = np.full(m, -1, np.int32)
        padded[: min(len(boxes), m)] = boxes[:m]
        labels[: min(len(boxes), m)] = 1
        return Sample(image, padded, labels, crop, symmetry)

    def positive(self, k: int) -> Sample:
        """Positive sample `k`."""
        return self.render(*self.positive_crop(k), stretch=self._stretch(7, k), sensor=self._sensor(11, k))

    def negative(self, index: int, k: int = 0, *, randomised: bool = True) -> Sample:
        """Negative pool entry `index`, `k`-th use (its symmetry varies with `k`); `randomised`: through its
        display stretch and instrument transforms, if `DataConfig.display_stretch` and
        `DataConfig.randomise` give it any (clustering looks at the sky as it is)."""
        stretch = self._stretch(8, index, k) if randomised else None
        sensor = self._sensor(12, index, k) if randomised else None
        return self.render(*self.negative_crop(index, k), labelled=False, stretch=stretch, sensor=sensor)

    def _stretch(self, *key: int) -> np.random.Generator | None:
        """The generator of a sample's display stretch, or None for a sample seen as it is (deterministic)."""
        if self.config.display_stretch == 0:
            return None  # no draw at all: samples stay those of runs made before the option
        # Keys 7 and 8 are this class's alone: 1-4 are the crops' draws here, 5 the stream's (stream.py).
        rng = np.random.default_rng([self.config.seed, *key])
        return rng if rng.uniform() < self.config.display_stretch else None

    def _sensor(self, *key: int) -> np.random.Generator | None:
        """The generator of a sample's instrument transforms, or None when there are none to draw
        (deterministic). The streams' first keys: 1-4 the crops' draws, 5 the stream's (stream.py), 7 and 8
        the display stretches, 9 the hard negatives (per tile), 11 and 12 these; each is used once."""
        if not self.config.randomisation:
            return None  # no draw at all: samples stay those of runs made before the option
        return np.random.default_rng([self.config.seed, *key])


def survey_inputs(*, folder=None, files8=(), files24=(), catalogue=None, selection=None):
    """Open a survey and its catalogue and selection, with the defaults a synthetic survey implies.

    Parameters
    ----------
    folder : path-like, optional
        A survey folder (`bubblenet.sky.mosaics.find_survey_files` names); files may
        also be given as `files8` and `files24`.
    catalogue : str or path-like, optional
        A catalogue file or shipped name; by default the folder's
        ``bubbles_mwp_dr2.csv`` (a synthetic survey's) or else MWP DR2.
    selection : str or path-like, optional
        Positives: a shipped selection or a file of names; by default the
        folder's ``clear_bubbles.txt`` or else the 634 clear DR2 bubbles.

    Returns
    -------
    tiles, catalogue, selection
    """
    from bubblenet.catalogues.tables import CATALOGUES, packaged_catalogue, read_catalogue, read_selection
    from bubblenet.sky.mosaics import gather_survey_files, open_survey

    files8, files24 = gather_survey_files(folder, files8, files24)
    if not files8 or not files24:
        raise ConfigError("give a survey folder or both 8 µm and 24 µm files")
    tiles = open_survey(files8, files24)
    if catalogue is None:
        synthetic = Path(folder) / "bubbles_mwp_dr2.csv" if folder is not None else None
        catalogue = synthetic if synthetic is not None and synthetic.exists() else "mwp_dr2"
    table = packaged_catalogue(str(catalogue)) if str(catalogue) in CATALOGUES else read_catalogue(catalogue)
    if selection is None:
        names = Path(folder) / "clear_bubbles.txt" if folder is not None else None
        selection = names if names is not None and names.exists() else "clear"
    return tiles, table, read_selection(selection)
