"""Everything a training run is told, in one frozen dataclass: `FitConfig`.

Its fields are ``bubblenet fit``'s options, by the same names (``--max-crop-scale``
is `FitConfig.max_crop_scale`), so a config file's ``fit:`` section, the
flags, ``bubblenet tune``'s trials and the ``best.yaml`` a search writes all
speak of the same things. The dataclass owns every default (the command
line takes its defaults from here) and checks every value, naming the
option. The parts each stage needs come out of it typed:
`FitConfig.data_config` (`bubblenet.training_data.samples.DataConfig`) and
`FitConfig.search` (`bubblenet.detection.search.SearchConfig`).

The demo (``bubblenet fit`` with no survey) is `DEMO_SKY` and `DEMO_OPTIONS`,
applied by `with_demo`; ``experiments/demo.yaml`` states the same values (a
test checks that they agree).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, Mapping

from bubblenet.detection.search import SEARCH_MODES, SearchConfig
from bubblenet.detection.windows import WINDOW_ORIGINS
from bubblenet.errors import ConfigError
from bubblenet.sky.tilecache import MISSING_RULES, ZERO_RULES
from bubblenet.training_data.cutouts import BANDS, CLIP_SIGMA, NORM_LEVELS, STAR_RULES
from bubblenet.training_data.samples import CROP_RULES, DataConfig
from bubblenet.training_data.sensors import RANDOMISATIONS, canonical
from bubblenet.training_data.splits import PAPER_TEST_LONGITUDES

__all__ = ["FitConfig", "MASKS", "LR_SCHEDULES", "WANDB_MODES", "DEMO_SKY", "DEMO_SKY_FOLDER", "DEMO_OPTIONS",
           "with_demo", "PRESET_NAMES", "PAPER_RECIPE", "INITS", "CLIPS", "LOSS_NORMS"]

#: SSD presets (`bubblenet.ssd.model.PRESETS`), named here so that checking a config needs no Keras.
PRESET_NAMES = ("lite", "paper")
#: What of each catalogue bubble negatives avoid; learning-rate schedules; Weights & Biases modes.
MASKS = ("core", "box")
LR_SCHEDULES = ("constant", "cosine")
WANDB_MODES = ("off", "offline", "online")
#: Kernel initialisations (`bubblenet.ssd.model.INITS`), gradient clipping, loss normalisations
#: (`bubblenet.ssd.losses.LOSS_NORMS`), named here so that checking a config needs no Keras.
INITS = ("glorot", "kaiming")
CLIPS = ("norm", "value")
LOSS_NORMS = ("positives", "paper")

#: The demo's synthetic twin sky: 2.4"/px (twice GLIMPSE's pixel). At 4.8"/px the demo found 4 of the 26 clear
#: test bubbles with boxes under 60" and 0.45 of all 89; at 2.4"/px, 22 of 26 and 0.91.
DEMO_SKY = {"l": (10.56, 37.44), "b": (-1.0, 1.0), "pixscale": 2.4, "seed": 0}

#: Where the demo's sky is drawn (once) when no folder is given.
DEMO_SKY_FOLDER = Path("demo_fit_sky")

#: The options the demo changes from the defaults (where the user left them at the default).
DEMO_OPTIONS = {"n_val": 1, "epochs": 12, "steps_per_epoch": 50, "positives": 8, "negatives": 4, "lr": 2e-3,
                "lr_schedule": "cosine", "val_sizes": (420.0, 3600.0), "val_stride": 0.5, "val_every": 4,
                "patience": 24}

_DATA = DataConfig()
_SEARCH = SearchConfig()

#: The original code's value of every option on which bubblenet can depart from it (Nishimoto et al. 2025;
#: the reference method's "details of the original code"). ``experiments/paper.yaml`` sets each; the
#: defaults are those that measured best (docs/ablation.md), the original's for the missing data and labels.
PAPER_RECIPE = {
    "missing_data": "fill-max",         # NaN islands < 70,000 px filled with the tile's maximum
    "label_selected_only": True,        # only the selected (clear) bubbles are boxes
    "mask_selected_only": True,         # only the selected bubbles are masked out of negatives
    "norm_level": "paper",              # level mean(x) + 3σ, the mean before the minimum is subtracted
    "clip_sigma": 3.0,
    "crop_rule": "paper",               # half-size / MajAxis = 1 / U(0.17, 0.58)
    "samples_per_bubble": 7,            # centred, translated, 3 rotations, 2 flips
    "loss_norm": "paper",               # each loss term averaged over its own count
    "init": "kaiming",                  # Kaiming normal kernels
    "clip": "value",                    # gradients clipped by value ...
    "clipnorm": 10.0,                   # ... at 10
    "paper_exact": True,                # inputs written as 8-bit PNGs
    "val_sides": tuple(1.2 * px for px in (150, 300, 600, 900, 1200, 1800, 2400, 3000)),  # arcsec
    "val_stride": 1 / 3,
    "val_origin": "paper",              # rows of windows from a fifth of the side
    "val_mode": "paper",                # each window cut and normalised on its own
    "val_per_window": 100,              # the decoder's detections per window ...
    "val_per_tile": None,               # ... and no cap per tile
    "threshold_step": 0.01,             # thresholds 0.50, 0.51, ..., 0.95
    "preset": "paper",
    "positives": 8,
    "negatives": 8,
    "negatives_per_tile": 3000,
    "lr": 1e-4,
    "weight_decay": 1e-3,
    "epochs": 300,
    "patience": 15,
}


@dataclasses.dataclass(frozen=True)
class FitConfig:
    """The options of one training run (``bubblenet fit``; one trial of ``bubblenet tune``).

    Survey: `survey` (a folder of GLIMPSE/MIPSGAL-named tiles) or `i8` and
    `m24` (files); `catalogue` (a file or shipped name; default the survey's
    own or MWP DR2) and `select` (positives: a shipped selection or a file of
    names; default the survey's ``clear_bubbles.txt`` or the clear DR2 list).

    Split: `test_l` (centre longitudes of the test tiles), `val` (of the
    validation tiles; None: `n_val` drawn with `split_seed`).

    Samples (`bubblenet.training_data.samples.DataConfig`): `positives` and
    `negatives` per step, `negatives_per_tile` (the pool), `mask` (what of each
    catalogue bubble negatives avoid), `mask_selected_only` (the paper: only
    the selected), `paper_exact` (8-bit inputs like the paper's PNGs),
    `clusters`, `drop_clusters`, `cluster_weights` (negative clustering),
    `max_crop_scale` and `crop_rule` (augmentation), `samples_per_bubble`
    (1, or the paper's 7 per epoch), `label_selected_only` (only the
    selected bubbles are boxes, as in the paper, the default; False: every
    catalogue bubble), `clip_sigma`, `norm_level` and
    `star_mask` (normalisation), `missing_data` (how NaN pixels are handled: the paper's
    ``"fill-max"`` or ``"interpolate"``), `zeros` (``"edge"``: zero pixels
    are an external galaxy's coverage edge, the original's rule for them),
    `bands` (``"24+8"`` or ``"8"``), `display_stretch` (share of samples
    seen through a random display stretch: domain randomisation),
    `randomise` and `randomise_share` (instrument transforms samples are
    seen through, each with that probability: more domain randomisation,
    `bubblenet.training_data.sensors`),
    `hard_negatives` (share of the negative pool centred on compact sources),
    `seed` (of every sample and of the weights).

    Training: `preset`, `init` (``"glorot"`` or the paper's ``"kaiming"``),
    `epochs`, `steps_per_epoch` (None: each positive `samples_per_bubble`
    times), `lr`, `lr_schedule` (``"constant"`` or ``"cosine"``),
    `weight_decay`, `clipnorm` and `clip` (by global ``"norm"`` or the
    paper's by ``"value"``), `loss_norm` (``"positives"`` or the paper's
    per-term means), `anchor_scale`, `patience` (early stopping on
    validation F2, epochs), `val_every`, `threshold_step` (of the validation
    sweep; the paper: 0.01), `wandb` (``"off"``, ``"offline"``, ``"online"``).

    Validation search, which the trained detector records and detection
    uses (`bubblenet.detection.search.SearchConfig`): `val_sizes` (window
    sides, arcsec), `val_sides` (an explicit list instead), `val_stride`,
    `val_mode`, `val_origin` (where rows of windows start), `val_per_window`
    and `val_per_tile` (detections kept per window and per tile; None: all).

    Every departure from the original code is one of these options, and
    `PAPER_RECIPE` lists the value of each that reproduces the original
    (``experiments/paper.yaml`` sets them; a test checks that it does).

    Raises
    ------
    ConfigError
        On a value out of range, naming the option.
    """

    # survey
    survey: Path | None = None
    i8: tuple[Path, ...] = ()
    m24: tuple[Path, ...] = ()
    catalogue: str | None = None
    select: str | None = None
    # split
    test_l: tuple[float, ...] = PAPER_TEST_LONGITUDES
    val: tuple[float, ...] | None = None
    n_val: int = 4
    split_seed: int = 0
    # samples
    positives: int = 8
    negatives: int = 8
    negatives_per_tile: int = _DATA.negatives_per_tile
    mask: str = _DATA.mask
    mask_selected_only: bool = not _DATA.mask_all_bubbles
    paper_exact: bool = _DATA.quantize
    clusters: int = 0
    drop_clusters: tuple[int, ...] = ()
    cluster_weights: tuple[float, ...] | None = None
    max_crop_scale: float = _DATA.crop_scales[1]
    crop_rule: str = _DATA.crop_rule
    samples_per_bubble: int = _DATA.samples_per_bubble
    label_selected_only: bool = not _DATA.label_all_bubbles
    clip_sigma: float = CLIP_SIGMA
    norm_level: str = _DATA.norm_level
    star_mask: str = _DATA.star_mask
    missing_data: str = _SEARCH.missing
    zeros: str = _SEARCH.zeros
    bands: str = _DATA.bands
    display_stretch: float = _DATA.display_stretch
    randomise: tuple[str, ...] = _DATA.randomise
    randomise_share: float = _DATA.randomise_share
    hard_negatives: float = _DATA.hard_negatives
    seed: int = 0
    # training
    preset: str = "lite"
    init: str = "glorot"
    epochs: int = 30
    steps_per_epoch: int | None = None
    lr: float = 1e-4
    lr_schedule: str = "constant"
    weight_decay: float = 1e-3
    clipnorm: float = 10.0
    clip: str = "norm"
    loss_norm: str = "positives"
    anchor_scale: float = 1.0
    patience: int = 15
    val_every: int = 1
    threshold_step: float = 0.05
    wandb: str = "off"
    # validation search
    val_sizes: tuple[float, float] = _SEARCH.sizes_arcsec
    val_sides: tuple[float, ...] = _SEARCH.sides_arcsec
    val_stride: float = _SEARCH.stride
    val_mode: str = _SEARCH.mode
    val_origin: str = _SEARCH.origin
    val_per_window: int = _SEARCH.per_window
    val_per_tile: int | None = _SEARCH.per_tile

    def __post_init__(self):
        # Sequences arrive as lists from flags and YAML: store tuples (hashable, immutable).
        for name in ("i8", "m24", "test_l", "val", "drop_clusters", "cluster_weights", "val_sizes", "val_sides"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, tuple(value))
        for name in ("i8", "m24"):
            object.__setattr__(self, name, tuple(Path(p) for p in getattr(self, name)))
        object.__setattr__(self, "randomise", canonical(self.randomise))  # a set of names, as a tuple in one order
        if self.survey is not None:
            object.__setattr__(self, "survey", Path(self.survey))
        if self.val_per_tile == 0:  # the command line's "no cap"
            object.__setattr__(self, "val_per_tile", None)
        self._check()

    def _check(self) -> None:
        def need(ok: bool, option: str, text: str, value) -> None:
            if not ok:
                raise ConfigError(f"option --{option.replace('_', '-')}: {text}, got {value!r}")

        for name in ("positives", "negatives", "negatives_per_tile", "n_val", "epochs", "val_every", "patience"):
            value = getattr(self, name)
            minimum = 0 if name in ("negatives", "n_val", "patience") else 1
            need(isinstance(value, int) and value >= minimum, name, f"must be a whole number >= {minimum}", value)
        need(self.steps_per_epoch is None or (isinstance(self.steps_per_epoch, int) and self.steps_per_epoch >= 1),
             "steps_per_epoch", "must be a whole number >= 1 (or unset: each positive samples_per_bubble times)", self.steps_per_epoch)
        need(isinstance(self.clusters, int) and self.clusters >= 0, "clusters", "must be a whole number >= 0",
             self.clusters)
        need(not self.drop_clusters or self.clusters > 0, "drop_clusters", "needs --clusters K (clusters to drop)",
             list(self.drop_clusters))
        need(all(0 <= k < self.clusters for k in self.drop_clusters), "drop_clusters",
             f"must be cluster numbers 0-{self.clusters - 1}", list(self.drop_clusters))
        for name in ("mask_selected_only", "paper_exact", "label_selected_only"):
            need(isinstance(getattr(self, name), bool), name, "must be true or false", getattr(self, name))
        need(self.cluster_weights is None or (len(self.cluster_weights) == self.clusters
                                              and all(w >= 0 for w in self.cluster_weights)),
             "cluster_weights", f"must be {self.clusters} weights >= 0, one per cluster",
             None if self.cluster_weights is None else list(self.cluster_weights))
        for name in ("lr", "clipnorm", "anchor_scale", "clip_sigma"):
            value = getattr(self, name)
            need(math.isfinite(value) and value > 0, name, "must be > 0", value)
        need(math.isfinite(self.weight_decay) and self.weight_decay >= 0, "weight_decay", "must be >= 0",
             self.weight_decay)
        for name in ("display_stretch", "hard_negatives", "randomise_share"):
            value = getattr(self, name)
            need(not isinstance(value, bool) and isinstance(value, (int, float)) and 0 <= value <= 1, name,
                 "must be a share in [0, 1]", value)
        need(all(t in RANDOMISATIONS for t in self.randomise), "randomise",
             f"must be names from {', '.join(RANDOMISATIONS)}", list(self.randomise))
        need(self.max_crop_scale > _DATA.crop_scales[0], "max_crop_scale",
             f"must exceed the smallest translated crop, {_DATA.crop_scales[0]} MajAxis", self.max_crop_scale)
        need(all(-360 <= l <= 360 for l in self.test_l), "test_l", "must be longitudes in degrees", list(self.test_l))
        need(self.val is None or all(-360 <= l <= 360 for l in self.val), "val", "must be longitudes in degrees",
             self.val)
        need(self.samples_per_bubble in (1, 7), "samples_per_bubble", "must be 1 or 7 (the paper's)",
             self.samples_per_bubble)
        # The shared search cuts the network on 16-px cells; the paper preset's 300-px input is not whole cells.
        need(self.val_mode != "shared" or self.preset == "lite", "val_mode",
             "'shared' needs the lite preset (a 128-px input of whole 16-px cells)", self.val_mode)
        need(math.isfinite(self.threshold_step) and 0 < self.threshold_step <= 0.45, "threshold_step",
             "must be in (0, 0.45]", self.threshold_step)
        for name, choices in (("mask", MASKS), ("bands", BANDS), ("preset", PRESET_NAMES),
                              ("lr_schedule", LR_SCHEDULES), ("wandb", WANDB_MODES), ("val_mode", SEARCH_MODES),
                              ("crop_rule", CROP_RULES), ("norm_level", NORM_LEVELS), ("star_mask", STAR_RULES), ("missing_data", MISSING_RULES), ("zeros", ZERO_RULES),
                              ("init", INITS), ("clip", CLIPS), ("loss_norm", LOSS_NORMS),
                              ("val_origin", WINDOW_ORIGINS)):
            need(getattr(self, name) in choices, name, f"must be one of {', '.join(choices)}", getattr(self, name))
        need(not (set(self.i8) & set(self.m24)), "m24", "the same file is given as both bands (--i8 and --m24)",
             sorted(str(p) for p in set(self.i8) & set(self.m24)))
        try:
            self.search  # noqa: B018  (checks val_sizes and val_stride)
        except ConfigError as err:
            raise ConfigError(f"validation search (the --val-* options): {err}") from None

    # -- the parts each stage needs ------------------------------------------------------------
    @property
    def search(self) -> SearchConfig:
        """The validation search, which the trained detector records for detection."""
        return dataclasses.replace(_SEARCH, sizes_arcsec=self.val_sizes, sides_arcsec=self.val_sides,
                                   stride=self.val_stride, mode=self.val_mode, origin=self.val_origin,
                                   missing=self.missing_data, zeros=self.zeros, per_window=self.val_per_window,
                                   per_tile=self.val_per_tile)

    def data_config(self, size: int) -> DataConfig:
        """How samples are made, for a network input of `size` px."""
        return DataConfig(size=size, mask=self.mask, mask_all_bubbles=not self.mask_selected_only,
                          negatives_per_tile=self.negatives_per_tile, quantize=self.paper_exact,
                          crop_scales=(_DATA.crop_scales[0], self.max_crop_scale), crop_rule=self.crop_rule,
                          samples_per_bubble=self.samples_per_bubble, label_all_bubbles=not self.label_selected_only,
                          clip_sigma=self.clip_sigma, norm_level=self.norm_level, star_mask=self.star_mask,
                          missing=self.missing_data,
                          zeros=self.zeros, bands=self.bands, display_stretch=self.display_stretch,
                          randomise=self.randomise, randomise_share=self.randomise_share, hard_negatives=self.hard_negatives, seed=self.seed)

    @property
    def normalisation(self):
        """The inputs' normalisation (`bubblenet.training_data.cutouts.Normalisation`)."""
        from bubblenet.training_data.cutouts import Normalisation

        return Normalisation(self.clip_sigma, self.norm_level, self.star_mask)

    @property
    def thresholds(self) -> tuple[float, ...]:
        """The validation sweep's confidence thresholds (`bubblenet.evaluation.metrics.thresholds`)."""
        from bubblenet.evaluation.metrics import thresholds

        return thresholds(self.threshold_step)

    @property
    def is_demo(self) -> bool:
        """No survey given: `bubblenet fit` runs the demo (`with_demo`)."""
        return self.survey is None and not self.i8 and not self.m24

    def replace(self, **changes) -> "FitConfig":
        """A copy with some options changed (and checked)."""
        return dataclasses.replace(self, **changes)

    def options(self) -> dict[str, Any]:
        """The options as plain values (paths as strings, tuples as lists), for records and YAML."""
        def plain(value):
            if isinstance(value, Path):
                return str(value)
            if isinstance(value, tuple):
                return [plain(v) for v in value]
            return value

        return {f.name: plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> "FitConfig":
        """A config from option values by name; names that are not fit options are an error."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ConfigError(f"not fit option(s): {', '.join(unknown)}")
        return cls(**options)


def with_demo(config: FitConfig, sky: Path) -> FitConfig:
    """`config` on the demo sky at `sky`, with `DEMO_OPTIONS` wherever `config` has the default value."""
    defaults = FitConfig()
    changes = {k: v for k, v in DEMO_OPTIONS.items() if getattr(config, k) == getattr(defaults, k)}
    return config.replace(survey=Path(sky), **changes)
