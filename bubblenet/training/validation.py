"""Training the SSD: targets for the stream, the optimiser, and validation on whole tiles.

`SurveyValidation` scores the model the reference method's way at the end
of each epoch: multi-scale sliding windows over whole validation tiles,
detections merged per tile, matched to the catalogue under the paper's rule
(a detection hits a bubble when it covers 1/3 of its box) with the
confidence threshold swept from 0.50 to 0.95; it writes ``val_f2`` (at the
best threshold), ``val_precision``, ``val_recall``, ``val_f1``,
``val_threshold`` and the strict rule's ``val_strict_f2`` into the epoch's
logs, where checkpointing and early stopping read them.
"""

from __future__ import annotations

import dataclasses
import logging

import keras
import numpy as np
from astropy import units as u
import tensorflow as tf

from bubblenet.catalogues.tables import label_boxes, select
from bubblenet.conventions import BOX_SCALE
from bubblenet.training_data.cutouts import CLIP_SIGMA
from bubblenet.detection.search import SearchConfig, search_tile
from bubblenet.ssd.losses import MultiBoxLoss
from bubblenet.evaluation.metrics import THRESHOLDS, summarise, sweep_thresholds
from bubblenet.ssd.targets import TargetEncoder
from bubblenet.sky.tilecache import TileCache

__all__ = ["OptimiserConfig", "compile_model", "with_targets", "SurveyValidation", "ValidationTile",
           "LearningRateLogger", "DetectionPanel", "detection_panel"]

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class OptimiserConfig:
    """AdamW as in Nishimoto et al. 2025: lr 1e-4, weight decay 1e-3, gradient clipping 10.

    ``decay_steps`` > 0 replaces the paper's constant learning rate by a cosine
    decay to zero over that many steps (a short run then ends on a settled
    model rather than wherever the last large step left it).
    """

    learning_rate: float = 1e-4
    weight_decay: float = 1e-3
    clipnorm: float = 10.0
    decay_steps: int = 0


def compile_model(model: keras.Model, config: OptimiserConfig = OptimiserConfig()) -> keras.Model:
    """Attach AdamW and the MultiBox loss."""
    rate = config.learning_rate
    if config.decay_steps > 0:
        rate = keras.optimizers.schedules.CosineDecay(rate, config.decay_steps)
    optimiser = keras.optimizers.AdamW(learning_rate=rate, weight_decay=config.weight_decay,
                                       clipnorm=config.clipnorm)
    model.compile(optimizer=optimiser, loss=MultiBoxLoss())
    return model


def with_targets(stream: tf.data.Dataset, encoder: TargetEncoder) -> tf.data.Dataset:
    """``(images, boxes, classes)`` batches -> ``(images, y_true)`` with y_true ``(B, N, 5)`` (offsets, class)."""
    def encode(images, boxes, classes):
        offsets, labels = encoder.batch(boxes, classes)
        return images, tf.concat([offsets, tf.cast(labels[..., None], tf.float32)], axis=-1)

    return stream.map(encode, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


@dataclasses.dataclass
class ValidationTile:
    """One validation tile: its cache, pixel scale, catalogue label boxes and which are selected."""

    name: str
    cache: TileCache
    pixscale: float
    bubbles: np.ndarray
    selected: np.ndarray

    @classmethod
    def from_tile(cls, tile, catalogue, selection, cache_dir, *, box_scale: float = BOX_SCALE) -> "ValidationTile":
        from bubblenet.catalogues.tables import in_image

        inside = in_image(catalogue, tile.wcs, tile.shape)
        table = catalogue[inside]
        return cls(tile.name, TileCache(tile, cache_dir), float(tile.pixel_scale.to_value(u.arcsec)),
                   label_boxes(table, tile.wcs, k=box_scale), select(table, selection))


class SurveyValidation(keras.callbacks.Callback):
    """Whole-tile validation with the paper's matching rule; puts ``val_f2`` and friends into the logs.

    Parameters
    ----------
    tiles : list of ValidationTile
    spec : bubblenet.ssd.anchors.AnchorSpec
        The model's default boxes.
    search : bubblenet.detection.search.SearchConfig
        The search (window sizes, stride, mode, caps), the same that detection
        with the trained model uses (it is stored in its ``model_info.json``).
    every : int
        Validate at the end of every this many epochs, of the last epoch, and
        of the first epoch after resuming; epochs in between repeat the last
        scores (NaN before the first, which `BestCheckpoint` never takes for
        an improvement; give `keras.callbacks.EarlyStopping`
        ``start_from_epoch=every - 1`` so that it skips them).
    clip_sigma : float
        The normalisation the model is trained with (`bubblenet.training_data.cutouts.normalise`).
    bands : {"24+8", "8"}
        What the model sees (`bubblenet.training_data.cutouts.keep_bands`).
    """

    def __init__(self, tiles, spec, search: SearchConfig = SearchConfig(), *, every: int = 1,
                 clip_sigma: float = CLIP_SIGMA, bands: str = "24+8"):
        super().__init__()
        self.tiles = tiles
        self.spec = spec
        self.search = search
        self.every = every
        self.clip_sigma = clip_sigma
        self.bands = bands
        self.last: dict = {}
        self.sweep: list[dict] = []
        self.detections: list[tuple[np.ndarray, np.ndarray]] = []  # per tile, from the last evaluation
        #: ``(best row, sweep, detections)`` of the highest F2 so far, the epoch
        #: `BestCheckpoint` keeps (it too needs a strict improvement).
        self.best: tuple[dict, list[dict], list] | None = None

    def evaluate(self) -> tuple[dict, list[dict]]:
        """Scores of the current model: (best row, all threshold rows)."""
        totals = None
        self.detections = []
        for tile in self.tiles:
            found = search_tile(self.model, self.spec, tile.cache, self.search, pixscale_arcsec=tile.pixscale,
                                clip_sigma=self.clip_sigma, bands=self.bands, confidence=min(THRESHOLDS))
            boxes, scores = found.boxes, found.scores
            self.detections.append((boxes, scores))
            rows = sweep_thresholds(boxes, scores, tile.bubbles, tile.selected)
            totals = rows if totals is None else [_add(a, b) for a, b in zip(totals, rows)]
        rows = [_finish(r) for r in totals]
        best = max(rows, key=lambda r: (r["f2"], -r["threshold"]))
        return best, rows

    def on_train_begin(self, logs=None):
        self._first_epoch = None

    def on_epoch_begin(self, epoch, logs=None):
        if self._first_epoch is None:
            self._first_epoch = epoch  # > 0 when BackupAndRestore resumed the run

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        last_epoch = self.params.get("epochs") if self.params else None
        resumed = not self.last and bool(getattr(self, "_first_epoch", 0))
        if (epoch + 1) % self.every == 0 or epoch + 1 == last_epoch or resumed:
            best, self.sweep = self.evaluate()
            self.last = {"val_f2": best["f2"], "val_f1": best["f1"], "val_precision": best["precision"],
                         "val_recall": best["recall"], "val_threshold": best["threshold"],
                         "val_strict_f2": best["strict"]["f2"]}
            if self.best is None or best["f2"] > self.best[0]["f2"]:
                self.best = (best, self.sweep, self.detections)
            log.info("epoch %d validation: F2 %.3f (P %.3f, R %.3f) at threshold %.2f; strict F2 %.3f", epoch + 1,
                     best["f2"], best["precision"], best["recall"], best["threshold"], best["strict"]["f2"])
        logs.update(self.last or dict.fromkeys(_LOG_KEYS, float("nan")))


_LOG_KEYS = ("val_f2", "val_f1", "val_precision", "val_recall", "val_threshold", "val_strict_f2")


def _add(a: dict, b: dict) -> dict:
    out = {"threshold": a["threshold"]}
    for key in ("tp", "fp", "fn"):
        out[key] = a[key] + b[key]
    out["strict"] = {key: a["strict"][key] + b["strict"][key] for key in ("tp", "fp", "fn")}
    return out


def _finish(row: dict) -> dict:
    return {"threshold": row["threshold"], **summarise(row["tp"], row["fp"], row["fn"]),
            "strict": summarise(row["strict"]["tp"], row["strict"]["fp"], row["strict"]["fn"])}


class BestCheckpoint(keras.callbacks.Callback):
    """Save the model to `path` whenever the logged `monitor` beats its best so far, atomically.

    Written by hand because `keras.callbacks.ModelCheckpoint` writes its file
    in place: a run killed during the write would leave a damaged best model.
    This one writes beside it and renames (`bubblenet.outputs.atomic_path`).

    Parameters
    ----------
    path : path-like
        A ``.keras`` file.
    monitor : str
        A key of the epoch logs (higher is better; NaN never improves).
    best : float
        The score to beat (from before an interruption; -inf for a new run).
    """

    def __init__(self, path, *, monitor: str = "val_f2", best: float = -np.inf):
        super().__init__()
        self.path = path
        self.monitor = monitor
        self.best = best

    def on_epoch_end(self, epoch, logs=None):
        """Save when this epoch's score is a strict improvement."""
        from bubblenet.outputs import atomic_path

        value = (logs or {}).get(self.monitor)
        if value is not None and value > self.best:  # False for NaN
            self.best = float(value)
            with atomic_path(self.path) as tmp:
                self.model.save(tmp)


class LearningRateLogger(keras.callbacks.Callback):
    """Put the optimiser's current learning rate into each epoch's logs (for TensorBoard and CSV)."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))


class DetectionPanel(keras.callbacks.Callback):
    """After each validation, draw the first validation tile with its detections into TensorBoard.

    Catalogue boxes of selected bubbles are white, detections at the chosen
    threshold green. The tile is subsampled (every f-th pixel) to at most `max_pixels` a side.
    """

    def __init__(self, validation: SurveyValidation, log_dir, *, max_pixels: int = 512):
        super().__init__()
        self.validation = validation
        self.writer = tf.summary.create_file_writer(str(log_dir))
        self.max_pixels = max_pixels

    def on_epoch_end(self, epoch, logs=None):
        if not self.validation.tiles or not self.validation.detections:
            return
        tile = self.validation.tiles[0]
        boxes, scores = self.validation.detections[0]
        threshold = self.validation.last.get("val_threshold", 0.5)
        panel = detection_panel(tile.cache.data, boxes[scores >= threshold], tile.bubbles[tile.selected],
                                max_pixels=self.max_pixels)
        with self.writer.as_default():
            tf.summary.image(f"validation/{tile.name}", panel[None], step=epoch)
        self.writer.flush()


def detection_panel(data, detections, truth, *, max_pixels: int = 512) -> np.ndarray:
    """An RGB picture (uint8, row 0 at the top) of a two-band tile with truth (white) and detections (green)."""
    from PIL import Image, ImageDraw

    ny, nx = data.shape[:2]
    f = max(1, int(np.ceil(max(ny, nx) / max_pixels)))
    small = np.asarray(data[: ny // f * f: f, : nx // f * f: f], np.float32)
    rgb = np.zeros(small.shape[:2] + (3,), np.uint8)
    for c, channel in ((0, 0), (1, 1)):
        band = small[..., c]
        lo, hi = np.nanpercentile(band, [1, 99.5]) if np.isfinite(band).any() else (0, 1)
        rgb[..., channel] = np.clip(np.nan_to_num((band - lo) / max(hi - lo, 1e-9)) * 255, 0, 255)
    image = Image.fromarray(rgb[::-1])
    draw = ImageDraw.Draw(image)
    h = rgb.shape[0]
    for boxes, colour in ((truth, (255, 255, 255)), (detections, (0, 255, 0))):
        for x0, y0, x1, y1 in np.asarray(boxes, float).reshape(-1, 4) / f:
            draw.rectangle([x0, h - y1, x1, h - y0], outline=colour)
    return np.asarray(image)
