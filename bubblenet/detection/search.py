"""How a tile is searched, stated once: `SearchConfig`, and the one function that searches (`search_tile`).

Validation during training (`bubblenet.training.validation.SurveyValidation`)
and detection (`bubblenet.detection.runs`) both call `search_tile` with the
detector's `SearchConfig` (stored in its ``model_info.json``), so the
confidence threshold chosen on validation is applied to exactly the search it
was chosen on. Validation decodes at the lowest threshold of its sweep and
cuts afterwards; because non-maximum suppression is greedy by score, the
detections at or above any threshold are the same as a search run at that
threshold (a box below the threshold never suppresses one above it).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import threading
import weakref
from typing import Any, Mapping

import numpy as np

from bubblenet.detection.windows import (MIN_WINDOW_PX, PAPER_SURVEY_SIDES_ARCSEC, WINDOW_ORIGINS,
                                         sky_window_sizes)
from bubblenet.errors import ConfigError
from bubblenet.sky.tilecache import MISSING_RULES, ZERO_RULES

__all__ = ["SearchConfig", "SEARCH_MODES", "PRECISIONS", "TileDetections", "search_tile", "window_batches",
           "resolve_search", "resolve_threshold", "PAPER_SURVEY_THRESHOLD"]

#: The reference method's survey catalogue keeps detections scoring at least this.
PAPER_SURVEY_THRESHOLD = 0.95

#: How a tile's windows are made: from an image pyramid (fast), each on its own (the reference method), or
#: from an image pyramid with the backbone's features shared between overlapping windows (shared).
SEARCH_MODES = ("fast", "paper", "shared")

#: What the network computes in: float32, or bfloat16 (float32 weights; `bubblenet.ssd.model.in_precision`).
PRECISIONS = ("float32", "bfloat16")


@dataclasses.dataclass(frozen=True)
class SearchConfig:
    """A multi-scale sliding-window search, sized on the sky.

    Attributes
    ----------
    sizes_arcsec : (float, float)
        Smallest and largest window side, arcsec.
    sides_arcsec : tuple of float
        An explicit list of window sides, arcsec, in place of the geometric
        series from `sizes_arcsec` (the original code's list:
        `bubblenet.detection.windows.PAPER_VALIDATION_SIDES_ARCSEC`); empty: the series.
    stride : float
        Window stride over window side, in (0, 1] (the reference method: 1/3).
    per_octave : int
        Window sizes per factor of two.
    mode : {"fast", "paper", "shared"}
        Windows cut from an image pyramid (fast) or each cut and normalised
        on its own (the reference method; `bubblenet.detection.inference.search_inputs`),
        or the backbone run once over each pyramid level and its features
        shared by the windows, whose starts move onto its 16-pixel grid
        (`bubblenet.detection.shared`).
    min_window_px : float
        No window under this many native pixels (`bubblenet.detection.windows.MIN_WINDOW_PX`;
        0 for the reference method's windows exactly).
    per_window : int
        Detections kept per window after non-maximum suppression.
    per_tile : int or None
        Detections kept per tile after the merge across windows, by score
        (None: all). A window holds a few bubbles and a tile some hundreds;
        the caps keep an untrained model's flood of boxes from stalling
        validation.
    origin : {"edge", "paper"}
        Where rows of windows start (`bubblenet.detection.windows.window_starts`):
        covering the tile edge to edge, or the original code's rows from a
        fifth of the window side.
    missing : {"fill-max", "interpolate", "interpolate+fill-max"}
        How the tile's missing data are handled (`bubblenet.sky.tilecache.MISSING_RULES`).
        A recorded search that names no rule is from before the rule was a
        choice, and gets ``"interpolate"`` (`from_dict`).
    zeros : {"data", "edge"}
        Whether zero pixels are data or an external galaxy's coverage edge
        (`bubblenet.sky.tilecache.ZERO_RULES`).
    precision : {"float32", "bfloat16"}
        What the network computes in (`PRECISIONS`). bfloat16 is faster on
        CPUs with AVX512-BF16 or AMX (1.3x in the fast mode on the benchmark
        tile, the same detections: ``docs/measurements.md``, "The shared
        search") and may be slower where the CPU has neither.

    Raises
    ------
    ConfigError
        On a value out of range, naming the option.
    """

    sizes_arcsec: tuple[float, float] = (150.0, 3600.0)
    stride: float = 1 / 3
    per_octave: int = 2
    mode: str = "fast"
    min_window_px: float = MIN_WINDOW_PX
    per_window: int = 20
    per_tile: int | None = 2000
    sides_arcsec: tuple[float, ...] = ()
    origin: str = "edge"
    missing: str = "fill-max"
    zeros: str = "data"
    precision: str = "float32"

    def __post_init__(self):
        sizes = tuple(float(s) for s in self.sizes_arcsec)
        object.__setattr__(self, "sizes_arcsec", sizes)
        sides = tuple(float(s) for s in self.sides_arcsec)
        object.__setattr__(self, "sides_arcsec", sides)
        if not all(math.isfinite(s) and s > 0 for s in sides):
            raise ConfigError(f"search window sides must be > 0 (arcsec), got {list(sides)}")
        if self.origin not in WINDOW_ORIGINS:
            raise ConfigError(f"search origin must be one of {', '.join(WINDOW_ORIGINS)}, got {self.origin!r}")
        if self.missing not in MISSING_RULES:
            raise ConfigError(f"search missing-data rule must be one of {', '.join(MISSING_RULES)}, "
                              f"got {self.missing!r}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"search precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.zeros not in ZERO_RULES:
            raise ConfigError(f"search zeros rule must be one of {', '.join(ZERO_RULES)}, got {self.zeros!r}")
        if len(sizes) != 2 or not (math.isfinite(sizes[0]) and math.isfinite(sizes[1])) \
                or not 0 < sizes[0] <= sizes[1]:
            raise ConfigError(f"search sizes must be two window sides 0 < MIN <= MAX (arcsec), got {list(sizes)}")
        if not 0 < self.stride <= 1:
            raise ConfigError(f"search stride must be in (0, 1] (a fraction of the window side), got {self.stride}")
        if int(self.per_octave) != self.per_octave or self.per_octave < 1:
            raise ConfigError(f"search per-octave must be a whole number >= 1, got {self.per_octave}")
        if self.mode not in SEARCH_MODES:
            raise ConfigError(f"search mode must be one of {', '.join(SEARCH_MODES)}, got {self.mode!r}")
        if not self.min_window_px >= 0:
            raise ConfigError(f"search min_window_px must be >= 0, got {self.min_window_px}")
        if int(self.per_window) != self.per_window or self.per_window < 1:
            raise ConfigError(f"search per_window must be a whole number >= 1, got {self.per_window}")
        if self.per_tile is not None and (int(self.per_tile) != self.per_tile or self.per_tile < 1):
            raise ConfigError(f"search per_tile must be a whole number >= 1 or null, got {self.per_tile}")

    @classmethod
    def paper(cls) -> "SearchConfig":
        """The reference method's survey search: the original code's windows of 100, 150, 300, 600, 900, 1200,
        1800, 2400 and 3000 px at 1.2"/px, stride 1/3, rows from a fifth of the side, each window processed
        on its own, NaN islands filled with the tile's maximum; the decoder's 100 detections per window, no
        cap per tile. (Its catalogue then keeps scores >= `PAPER_SURVEY_THRESHOLD`.)"""
        return cls(sizes_arcsec=(min(PAPER_SURVEY_SIDES_ARCSEC), max(PAPER_SURVEY_SIDES_ARCSEC)), stride=1 / 3,
                   per_octave=2, mode="paper", min_window_px=0, per_window=100, per_tile=None,
                   sides_arcsec=PAPER_SURVEY_SIDES_ARCSEC, origin="paper", missing="fill-max")

    def to_dict(self) -> dict[str, Any]:
        """Plain values for JSON (``model_info.json``, run records)."""
        out = dataclasses.asdict(self)
        out["sizes_arcsec"] = list(self.sizes_arcsec)
        out["sides_arcsec"] = list(self.sides_arcsec)
        return out

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None) -> "SearchConfig":
        """The search a ``model_info.json`` records; entries it lacks take the defaults.

        Raises
        ------
        ConfigError
            On an unknown entry or a value out of range.
        """
        values = dict(values or {})
        if values:
            values.setdefault("missing", "interpolate")  # recorded before the missing-data rule was a choice
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown search entr{'y' if len(unknown) == 1 else 'ies'} {', '.join(unknown)} "
                              f"(known: {', '.join(sorted(known))})")
        return cls(**values)

    def window_sides(self, pixscale_arcsec: float) -> list[int]:
        """Window sides in native pixels of an image with this pixel scale (none under `min_window_px`)."""
        if self.sides_arcsec:
            sides = {int(round(s / pixscale_arcsec)) for s in self.sides_arcsec}
            return sorted(s for s in sides if s >= max(self.min_window_px, 1))
        return sky_window_sizes(self.sizes_arcsec, pixscale_arcsec, per_octave=int(self.per_octave),
                                min_px=self.min_window_px)


def resolve_search(stored: SearchConfig, *, paper: bool = False, sizes_arcsec=None, stride=None, per_octave=None,
                   mode=None, missing=None, zeros=None, precision=None) -> SearchConfig:
    """The search a detection run uses: the detector's (or the paper's), with any option given replacing its own.

    Parameters
    ----------
    stored : SearchConfig
        The detector's search (`bubblenet.detection.detector.Detector.search`).
    paper : bool
        Start from `SearchConfig.paper` instead (keeping the detector's `SearchConfig.missing` and
        `SearchConfig.zeros` rules).
    sizes_arcsec, stride, per_octave, mode, missing, zeros, precision : optional
        Replacements; None keeps the value.
    """
    # The paper's windows, with the detector's own data rules: a detector is searched as it was trained.
    base = dataclasses.replace(SearchConfig.paper(), missing=stored.missing, zeros=stored.zeros) if paper else stored
    changes = {k: v for k, v in (("sizes_arcsec", sizes_arcsec), ("stride", stride), ("per_octave", per_octave),
                                 ("mode", mode), ("missing", missing), ("zeros", zeros),
                                 ("precision", precision)) if v is not None}
    if sizes_arcsec is not None:
        changes["sides_arcsec"] = ()  # sizes given: their geometric series, not a recorded list
    return dataclasses.replace(base, **changes)


def resolve_threshold(detector_threshold: float, *, paper: bool = False, threshold: float | None = None) -> float:
    """The confidence threshold of a detection run: `threshold` if given, else the paper's survey cut
    (`PAPER_SURVEY_THRESHOLD`) with `paper`, else the detector's (chosen on validation)."""
    if threshold is not None:
        return float(threshold)
    return PAPER_SURVEY_THRESHOLD if paper else float(detector_threshold)


@dataclasses.dataclass
class TileDetections:
    """One tile's detections in tile pixels.

    Attributes
    ----------
    boxes : numpy.ndarray
        ``(K, 4)`` ``xyxy`` tile pixels, by decreasing score.
    scores : numpy.ndarray
        ``(K,)`` confidences.
    windows : int
        Windows planned over the tile.
    """

    boxes: np.ndarray
    scores: np.ndarray
    windows: int


@functools.lru_cache(maxsize=16)
def _decoder(spec, max_detections: int):
    """One `bubblenet.ssd.decoder.Decoder` per anchor layout and detection count, so that its traced
    function serves every tile of a survey (a new one would trace again for each)."""
    from bubblenet.ssd.decoder import Decoder

    return Decoder(spec, max_detections=max_detections)


def search_tile(model, spec, cache, search: SearchConfig, *, pixscale_arcsec: float, norm, bands: str,
                confidence: float, progress: str | None = None) -> TileDetections:
    """Search one tile: plan the windows, make their inputs, run the network (in the search's precision),
    decode, merge, cap.

    Parameters
    ----------
    model : keras.Model
        The SSD (`bubblenet.ssd.model.build_ssd`) the search's mode runs
        (`bubblenet.detection.detector.Detector.model_for`: for the shared
        mode, the detector's distilled network when it has one).
    spec : bubblenet.ssd.anchors.AnchorSpec
        Its default boxes.
    cache : bubblenet.sky.tilecache.TileCache
        The tile's two bands (made with ``missing=search.missing, zeros=search.zeros``).
    search : SearchConfig
    pixscale_arcsec : float
        The tile's pixel side.
    norm : bubblenet.training_data.cutouts.Normalisation
        The normalisation the model was trained with.
    bands : {"24+8", "8"}
        What the model sees.
    confidence : float
        Per-window score threshold.
    progress : str, optional
        Draw a windows progress bar with this label.
    """
    from bubblenet.detection.inference import detect_outputs

    if search.precision != "float32":
        model = _in_precision(model, search.precision)
    count, batches = window_batches(model, cache, search.window_sides(pixscale_arcsec), mode=search.mode,
                                    stride_fraction=search.stride, pixscale_arcsec=pixscale_arcsec, norm=norm,
                                    bands=bands, origin=search.origin)
    if progress:
        batches = _counted(batches, count, progress)
    boxes, scores = detect_outputs(batches, decoder=_decoder(spec, int(search.per_window)), confidence=confidence)
    if search.per_tile is not None:
        boxes, scores = boxes[: search.per_tile], scores[: search.per_tile]  # merge() sorts by score
    return TileDetections(np.asarray(boxes).reshape(-1, 4), np.asarray(scores), count)


def window_batches(model, cache, sides, *, mode: str, stride_fraction: float, pixscale_arcsec: float, norm,
                   bands: str, origin: str = "edge"):
    """``(windows planned, (crops, outputs) batches)`` of a search of `cache` with windows of `sides` native
    pixels in `mode`: the network run on each window's own input (fast, paper;
    `bubblenet.detection.inference.search_inputs`) or on the shared trunk's cells
    (shared; `bubblenet.detection.shared.shared_search`). The other arguments are `search_tile`'s."""
    from bubblenet.detection.inference import model_outputs, search_inputs
    from bubblenet.detection.shared import shared_search

    if mode == "shared":
        return shared_search(model, cache, sides, stride_fraction=stride_fraction, norm=norm, bands=bands,
                             origin=origin)
    count, inputs = search_inputs(cache, sides, model.input_shape[1], stride_fraction=stride_fraction,
                                  pixscale_arcsec=pixscale_arcsec, norm=norm, mode=mode, origin=origin)
    return count, model_outputs(model, inputs, bands=bands)


#: Each network's copy in another precision, made once per network and precision.
_COPIES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_COPIES_LOCK = threading.Lock()


def _in_precision(model, precision: str):
    """`model` computing in `precision` (`bubblenet.ssd.model.in_precision`): the copy is made once per
    network and its weights refreshed on every call, so that a network in training is searched as it is now."""
    from bubblenet.ssd.model import in_precision

    policy = {"bfloat16": "mixed_bfloat16"}[precision]
    with _COPIES_LOCK:
        copies = _COPIES.setdefault(model, {})
        if policy not in copies:
            copies[policy] = in_precision(model, policy)
        else:
            copies[policy].set_weights(model.get_weights())
        return copies[policy]


def _counted(batches, total: int, label: str):
    """`batches` of ``(crops, outputs)`` with a windows progress bar."""
    from tqdm import tqdm

    with tqdm(total=total, desc=label, unit="window", leave=False) as bar:
        for crops, outputs in batches:
            bar.update(len(crops))
            yield crops, outputs
