"""Training the SSD: targets for the stream, the optimiser, and validation on whole tiles.

`SurveyValidation` scores the model the reference method's way at the end
of each epoch: multi-scale sliding windows over whole validation tiles,
detections merged per tile and then across tiles on the sky
(`bubblenet.detection.merging.merge_sky`, as ``bubblenet detect`` merges
its catalogue), matched on the sky to the catalogue bubbles of the tiles,
each bubble once however many tiles hold it (the 0.1° overlaps of adjacent
tiles), under the paper's rule (a detection hits a bubble when it covers
1/3 of its box) and the strict one, with the confidence threshold swept
from 0.50 to 0.95 (`bubblenet.evaluation.metrics.thresholds`). It writes
``val_f2`` (at the best threshold), ``val_precision``, ``val_recall``,
``val_f1``, ``val_threshold`` and the strict rule's ``val_strict_f2`` into
the epoch's logs, where checkpointing and early stopping read them. The
scores equal those of ``bubblenet evaluate`` on the same detections.
"""

from __future__ import annotations

import dataclasses
import logging

import keras
import numpy as np
from astropy import units as u
import tensorflow as tf

from astropy.coordinates import SkyCoord

from bubblenet.catalogues.tables import label_boxes, select, sky_coords
from bubblenet.conventions import BOX_SCALE
from bubblenet.detection.merging import merge_sky
from bubblenet.detection.search import SearchConfig, search_tile
from bubblenet.evaluation.metrics import THRESHOLDS, score_geometry, sky_geometry
from bubblenet.ssd.losses import MultiBoxLoss
from bubblenet.ssd.targets import TargetEncoder
from bubblenet.sky.tilecache import TileCache
from bubblenet.training_data.cutouts import Normalisation

__all__ = ["OptimiserConfig", "compile_model", "with_targets", "SurveyValidation", "ValidationTile",
           "LearningRateLogger", "DetectionPanel", "detection_panel", "SkyScores"]

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class OptimiserConfig:
    """AdamW as in Nishimoto et al. 2025: lr 1e-4, weight decay 1e-3, gradient clipping 10.

    ``decay_steps`` > 0 replaces the paper's constant learning rate by a cosine
    decay to zero over that many steps (a short run then ends on a settled
    model rather than wherever the last large step left it). ``clip`` says
    how gradients are clipped at ``clipnorm``: by their global norm (ours),
    or each element by value (the original code's ``clip_grad_value_``).
    ``loss_norm`` is `bubblenet.ssd.losses.MultiBoxLoss`'s ``normalisation``.
    """

    learning_rate: float = 1e-4
    weight_decay: float = 1e-3
    clipnorm: float = 10.0
    decay_steps: int = 0
    clip: str = "norm"
    loss_norm: str = "positives"


def compile_model(model: keras.Model, config: OptimiserConfig = OptimiserConfig()) -> keras.Model:
    """Attach AdamW and the MultiBox loss."""
    rate = config.learning_rate
    if config.decay_steps > 0:
        rate = keras.optimizers.schedules.CosineDecay(rate, config.decay_steps)
    clipping = {"global_clipnorm": config.clipnorm} if config.clip == "norm" else {"clipvalue": config.clipnorm}
    optimiser = keras.optimizers.AdamW(learning_rate=rate, weight_decay=config.weight_decay, **clipping)
    model.compile(optimizer=optimiser, loss=MultiBoxLoss(normalisation=config.loss_norm))
    return model


def with_targets(stream: tf.data.Dataset, encoder: TargetEncoder) -> tf.data.Dataset:
    """``(images, boxes, classes)`` batches -> ``(images, y_true)`` with y_true ``(B, N, 5)`` (offsets, class)."""
    def encode(images, boxes, classes):
        offsets, labels = encoder.batch(boxes, classes)
        return images, tf.concat([offsets, tf.cast(labels[..., None], tf.float32)], axis=-1)

    return stream.map(encode, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


@dataclasses.dataclass
class ValidationTile:
    """One validation tile: its cache, pixel scale, and its catalogue bubbles.

    Attributes
    ----------
    name : str
    cache : TileCache
    pixscale : float
        Arcsec per pixel.
    bubbles : numpy.ndarray
        ``(B, 4)`` label boxes of the catalogue bubbles inside the tile, tile pixels.
    selected : numpy.ndarray
        ``(B,)`` bool: the positives among them.
    rows : numpy.ndarray
        ``(B,)`` their rows in the catalogue (a bubble in two tiles has the same row in both).
    tile : bubblenet.sky.mosaics.SkyTile
        For pixel-to-sky conversion.
    box_scale : float
        Label-box half-side over MajAxis.
    """

    name: str
    cache: TileCache
    pixscale: float
    bubbles: np.ndarray
    selected: np.ndarray
    rows: np.ndarray
    tile: object
    box_scale: float = BOX_SCALE

    @classmethod
    def from_tile(cls, tile, catalogue, selection, cache_dir, *, box_scale: float = BOX_SCALE,
                  missing: str = "fill-max", zeros: str = "data") -> "ValidationTile":
        """The tile's cache (with the `missing` and `zeros` rules) and the catalogue bubbles inside it."""
        from bubblenet.catalogues.tables import in_image

        inside = in_image(catalogue, tile.wcs, tile.shape)
        table = catalogue[inside]
        return cls(tile.name, TileCache(tile, cache_dir, missing=missing, zeros=zeros),
                   float(tile.pixel_scale.to_value(u.arcsec)),
                   label_boxes(table, tile.wcs, k=box_scale), select(table, selection), np.flatnonzero(inside), tile,
                   box_scale)


@dataclasses.dataclass
class SkyScores:
    """Detections of several tiles merged on the sky, with their geometry against the tiles' unique bubbles.

    Attributes
    ----------
    scores : numpy.ndarray
        ``(D,)`` confidences of the merged detections.
    det_half : numpy.ndarray
        ``(D,)`` their box half-sides, arcsec.
    bubble_half : numpy.ndarray
        ``(B,)`` the bubbles' label-box half-sides, arcsec.
    selected : numpy.ndarray
        ``(B,)`` bool.
    cover, distance : numpy.ndarray
        ``(D, B)`` from `bubblenet.evaluation.metrics.sky_geometry`.
    """

    scores: np.ndarray
    det_half: np.ndarray
    bubble_half: np.ndarray
    selected: np.ndarray
    cover: np.ndarray
    distance: np.ndarray

    @classmethod
    def from_tiles(cls, tiles, detections, catalogue) -> "SkyScores":
        """Merge per-tile pixel detections on the sky and lay them out against the catalogue's bubbles.

        Parameters
        ----------
        tiles : list of ValidationTile
        detections : list of (boxes, scores)
            Per tile, pixel ``xyxy`` boxes and scores.
        catalogue : astropy.table.Table
            The catalogue the tiles' `ValidationTile.rows` index.
        """
        from bubblenet.detection.runs import sky_boxes

        centres, half = zip(*(sky_boxes(t.tile, boxes, t.pixscale) for t, (boxes, _) in zip(tiles, detections)))
        centres, half = np.concatenate(centres), np.concatenate(half)
        scores = np.concatenate([np.asarray(found, float) for _, found in detections])
        coords = SkyCoord(centres[:, 0], centres[:, 1], unit="deg", frame="galactic")
        keep = merge_sky(coords, half, scores)  # the same bubble found in two tiles is one detection
        coords, half, scores = coords[keep], half[keep], scores[keep]
        rows, first = np.unique(np.concatenate([t.rows for t in tiles]), return_index=True)
        selected = np.concatenate([t.selected for t in tiles])[first]
        table = catalogue[rows]
        bubble_half = u.Quantity(table["maj_axis"], u.arcmin).to_value(u.arcsec) * tiles[0].box_scale
        cover, distance = sky_geometry(coords, half, sky_coords(table), bubble_half)
        return cls(scores, half, bubble_half, selected, cover, distance)

    def at(self, threshold: float) -> dict:
        """Both rules' scores of the detections scoring at least `threshold` (`bubblenet.evaluation.metrics.score_geometry`)."""
        keep = self.scores >= threshold
        return score_geometry(self.cover[keep], self.distance[keep], self.det_half[keep], self.scores[keep],
                              self.bubble_half, self.selected)

    def found(self, threshold: float) -> np.ndarray:
        """``(B,)`` bool: the bubbles hit under the paper's rule at `threshold`."""
        from bubblenet.evaluation.metrics import COVERAGE

        return (self.cover[self.scores >= threshold] >= COVERAGE).any(axis=0)


class SurveyValidation(keras.callbacks.Callback):
    """Whole-tile validation with the paper's matching rule; puts ``val_f2`` and friends into the logs.

    Parameters
    ----------
    tiles : list of ValidationTile
    catalogue : astropy.table.Table
        The catalogue the tiles' bubbles come from (`ValidationTile.rows`).
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
    norm : bubblenet.training_data.cutouts.Normalisation
        The normalisation the model is trained with.
    bands : {"24+8", "8"}
        What the model sees (`bubblenet.training_data.cutouts.keep_bands`).
    thresholds : sequence of float
        The confidence thresholds swept (`bubblenet.evaluation.metrics.thresholds`).
    """

    def __init__(self, tiles, catalogue, spec, search: SearchConfig = SearchConfig(), *, every: int = 1,
                 norm: Normalisation = Normalisation(), bands: str = "24+8", thresholds=THRESHOLDS):
        super().__init__()
        self.tiles = tiles
        self.catalogue = catalogue
        self.spec = spec
        self.search = search
        self.every = every
        self.norm = norm
        self.bands = bands
        self.thresholds = tuple(float(t) for t in thresholds)
        self.last: dict = {}
        self.sweep: list[dict] = []
        self.detections: list[tuple[np.ndarray, np.ndarray]] = []  # per tile, from the last evaluation
        self.sky: SkyScores | None = None  # the last evaluation's detections on the sky
        #: ``(best row, sweep, detections)`` of the highest F2 so far, the epoch
        #: `BestCheckpoint` keeps (it too needs a strict improvement).
        self.best: tuple[dict, list[dict], list] | None = None

    def evaluate(self) -> tuple[dict, list[dict]]:
        """Scores of the current model: (best row, all threshold rows)."""
        self.detections = []
        for tile in self.tiles:
            found = search_tile(self.model, self.spec, tile.cache, self.search, pixscale_arcsec=tile.pixscale,
                                norm=self.norm, bands=self.bands, confidence=min(self.thresholds))
            self.detections.append((found.boxes, found.scores))
        self.sky = SkyScores.from_tiles(self.tiles, self.detections, self.catalogue)
        rows = []
        for t in self.thresholds:
            both = self.sky.at(t)
            rows.append({"threshold": t, **both["paper"], "strict": both["strict"]})
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
