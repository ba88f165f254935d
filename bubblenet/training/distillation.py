"""The shared search's own network: a detector distilled onto shared features.

A detector trained on windows normalised one by one, run in the shared search
mode (`bubblenet.detection.shared`), sees inputs it never saw in training:
each pixel scaled by the window centred on it, and a trunk whose cells near a
window's edge see the sky beyond it instead of the zero padding. Used as it
is, it finds fewer bubbles there (``docs/measurements.md``, "The shared
search"). `distil_shared` fine-tunes a copy of it so that, given what the
shared search gives it, it answers what the detector answers on each window
alone (knowledge distillation, Hinton et al. 2015): the student sees a
window of a pyramid level with the trunk's context around it, normalised the
shared way, and learns the teacher's outputs for that window normalised on
its own (`bubblenet.detection.pyramid.pyramid_windows`), for every default
box: the bubble-minus-background logit and, weighted by the teacher's
confidence, the four box offsets. No catalogue is needed; the windows are
those of the teacher's own search over the tiles given.

The teacher stays the detector for the per-window search modes; the student
is saved beside it (`bubblenet.detection.detector.SHARED_MODEL_FILE`) and used
by the shared mode only. Batch normalisation keeps the teacher's statistics
(the student runs in inference mode throughout).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Sequence

import numpy as np

from bubblenet.errors import ConfigError

__all__ = ["DistilConfig", "distillation_windows", "distil_shared", "distillation_loss"]

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class DistilConfig:
    """How the shared search's network is distilled (`distil_shared`).

    Attributes
    ----------
    windows_per_tile : int
        Windows drawn at random from each tile's search, all window sizes
        together (on average: each window is kept with the same chance).
    epochs : int
    batch : int
    lr : float
        Adam's learning rate (small: the student starts as the teacher).
    box_weight : float
        Weight of the box-offset term against the logit term.
    val_share : float
        Share of the windows held out to measure agreement.
    seed : int
        Draws the windows, the held-out share and the batch order.
    """

    windows_per_tile: int = 4500
    epochs: int = 3
    batch: int = 16
    lr: float = 1e-4
    box_weight: float = 5.0
    val_share: float = 0.1
    seed: int = 0

    def __post_init__(self):
        for name in ("windows_per_tile", "epochs", "batch"):
            value = getattr(self, name)
            if int(value) != value or value < 1:
                raise ConfigError(f"distillation {name} must be a whole number >= 1, got {value}")
        if not self.lr > 0 or not self.box_weight >= 0:
            raise ConfigError(f"distillation lr must be > 0 and box_weight >= 0, got {self.lr}, {self.box_weight}")
        if not 0 < self.val_share < 1:
            raise ConfigError(f"distillation val_share must be in (0, 1), got {self.val_share}")


def distillation_windows(detector, caches: Sequence, pixscale_arcsec: float, config: DistilConfig):
    """Windows of the detector's shared search over `caches`, with the teacher's outputs for each.

    Parameters
    ----------
    detector : bubblenet.detection.detector.Detector
        The teacher (its search's windows, normalisation and bands).
    caches : sequence of bubblenet.sky.tilecache.TileCache
    pixscale_arcsec : float
        The tiles' pixel side.
    config : DistilConfig

    Returns
    -------
    inputs : numpy.ndarray
        ``(n, s + 2m, s + 2m, 2)`` float16: each window (side s) of a level, normalised as the
        shared search does, with the trunk's margin m of context around it.
    outputs : numpy.ndarray
        ``(n, N, 4 + C)`` float16: the teacher's outputs for the same windows normalised on their own.

    Notes
    -----
    Everything is held in memory: about 0.35 MB a window for the lite
    preset (1.6 GB for the default 4500 windows of each of two tiles, twice
    that while the arrays are stacked).
    """
    from bubblenet.detection.pyramid import Level, plan_levels, pyramid_windows
    from bubblenet.detection.shared import normalised_strips
    from bubblenet.sky.tilecache import BadMap
    from bubblenet.ssd.sharing import split_of
    from bubblenet.training_data.cutouts import keep_bands

    split = split_of(detector.model)
    margin, size = split.margin, split.size
    rng = np.random.default_rng(config.seed)
    sides = detector.search.window_sides(pixscale_arcsec)
    inputs, outputs = [], []
    for cache in caches:
        levels = plan_levels(cache.shape, sides, size, stride_fraction=detector.search.stride, bad=BadMap(cache),
                             origin=detector.search.origin, step=split.step)
        keep = min(1.0, config.windows_per_tile / max(sum(map(len, levels)), 1))
        for level in levels:
            for y0, x0, trunk_input, windows in normalised_strips(cache, level, split, norm=detector.normalisation,
                                                                   bands=detector.bands):
                chosen = [w for w in windows if rng.random() < keep]
                if not chosen:
                    continue
                own = Level(level.side, size, level.shape, tuple((ly, (lx,)) for ly, lx in chosen))
                made = {(round(crop.y0 / level.scale), round(crop.x0 / level.scale)): image
                        for crop, image in pyramid_windows(cache, [own], pixscale_arcsec=pixscale_arcsec,
                                                           norm=detector.normalisation)}
                chosen = [w for w in chosen if w in made]  # the fast mode skips a window a NaN reaches
                for ly, lx in chosen:
                    # The trunk's input starts a margin before the strip's first window row and column.
                    ry, rx = ly - y0, lx - x0
                    inputs.append(trunk_input[ry - margin:ry + size + margin,
                                              rx - margin:rx + size + margin].astype(np.float16))
                if not chosen:
                    continue
                images = np.stack([made[w] for w in chosen])
                for i in range(0, len(images), 128):
                    teacher = detector.model.predict_on_batch(keep_bands(images[i:i + 128], detector.bands))
                    outputs.append(np.asarray(teacher).astype(np.float16))
    if not inputs:
        raise ConfigError("the tiles give no window to distil on (all missing data?)")
    return np.stack(inputs), np.concatenate(outputs)


def distillation_loss(teacher, student, box_weight: float = 5.0):
    """Mean over default boxes of the Huber distance between the bubble-minus-background logits, weighted
    ``1 + 20 p`` by the teacher's bubble probability p (and nothing where both are below -8, sure
    background), plus `box_weight` times the Huber distance of the box offsets weighted by p."""
    import tensorflow as tf

    if teacher.shape[-1] != 6:
        raise ValueError(f"distillation_loss is for two classes (outputs of 4 + 2), got {teacher.shape[-1]}")
    teacher = tf.cast(teacher, tf.float32)
    margin_t = teacher[..., -1] - teacher[..., -2]
    margin_s = student[..., -1] - student[..., -2]
    p = tf.sigmoid(margin_t)
    sure = tf.cast((margin_t < -8.0) & (margin_s < -8.0), tf.float32)
    logits = tf.reduce_mean((1.0 + 20.0 * p) * (1.0 - sure) * _huber(margin_s - margin_t))
    boxes = tf.reduce_mean(p * tf.reduce_sum(_huber(student[..., :4] - teacher[..., :4]), axis=-1))
    return logits + box_weight * boxes


def _huber(error):
    import tensorflow as tf

    size = tf.abs(error)
    return tf.where(size < 1.0, 0.5 * error * error, size - 0.5)


def _window_forward(split, crops):
    """The student's ``(B, N, 4 + C)`` outputs for context crops: the trunk, then each window's cells."""
    conv5, loc0, conf0 = split.trunk(crops, training=False)
    k5, k0 = split.margin // split.step, split.margin // split.head_step
    c, h = split.cells, split.head_cells
    return split.assemble(loc0[:, k0:k0 + h, k0:k0 + h], conf0[:, k0:k0 + h, k0:k0 + h],
                          split.tail(conv5[:, k5:k5 + c, k5:k5 + c], training=False))


def _agreement(forward, inputs, outputs, rows, threshold: float) -> dict:
    """On `rows`: the share of windows whose best score is on the same side of `threshold` for student and
    teacher, and the mean absolute difference of the best scores."""
    import tensorflow as tf

    same, diff = [], []
    for i in range(0, len(rows), 64):
        r = rows[i:i + 64]
        student = forward(np.asarray(inputs[r], np.float32)).numpy()
        best = [tf.nn.softmax(np.asarray(o, np.float32)[..., 4:], axis=-1).numpy()[..., 1].max(axis=1)
                for o in (student, outputs[r])]
        same.append((best[0] >= threshold) == (best[1] >= threshold))
        diff.append(np.abs(best[0] - best[1]))
    return {"same_side_of_threshold": round(float(np.concatenate(same).mean()), 4),
            "mean_abs_best_score_difference": round(float(np.concatenate(diff).mean()), 4)}


def distil_shared(detector, caches: Sequence, pixscale_arcsec: float, config: DistilConfig = DistilConfig(),
                  progress: bool = True):
    """Fine-tune a copy of `detector`'s network for the shared search (see the module notes).

    Parameters
    ----------
    detector : bubblenet.detection.detector.Detector
        The teacher.
    caches : sequence of bubblenet.sky.tilecache.TileCache
        Tiles to draw windows from (not the detector's test tiles).
    pixscale_arcsec : float
        Their pixel side.
    config : DistilConfig
    progress : bool
        Log each epoch.

    Returns
    -------
    student : keras.Model
        The teacher's architecture with the distilled weights.
    record : dict
        The options, the window count, each epoch's loss, and the held-out agreement before and after
        (the held-out windows come from the same tiles as the others, so it is no test of new sky:
        ``experiments/shared_search_tiles.py`` is).
    """
    import keras
    import tensorflow as tf

    from bubblenet.ssd.sharing import split_ssd

    inputs, outputs = distillation_windows(detector, caches, pixscale_arcsec, config)
    rng = np.random.default_rng([config.seed, 1])
    order = rng.permutation(len(outputs))
    held = max(1, int(round(config.val_share * len(order))))
    val, train = np.sort(order[:held]), order[held:]
    if len(train) < config.batch:
        raise ConfigError(f"{len(train)} windows to distil on, fewer than one batch of {config.batch}")
    keras.utils.set_random_seed(config.seed)
    student = keras.models.clone_model(detector.model)
    student.set_weights(detector.model.get_weights())
    split = split_ssd(student)
    optimiser = keras.optimizers.Adam(config.lr)
    forward = tf.function(lambda crops: _window_forward(split, crops))

    @tf.function
    def step(crops, teacher):
        with tf.GradientTape() as tape:
            loss = distillation_loss(teacher, _window_forward(split, crops), config.box_weight)
        grads = tape.gradient(loss, student.trainable_variables)
        optimiser.apply_gradients(zip(grads, student.trainable_variables))
        return loss

    record = {"config": dataclasses.asdict(config), "windows": int(len(outputs)), "held_out": int(held),
              "before": _agreement(forward, inputs, outputs, val, detector.threshold), "epochs": []}
    for epoch in range(config.epochs):
        losses = []
        shuffled = rng.permutation(train)
        for i in range(0, len(shuffled) - config.batch + 1, config.batch):
            rows = np.sort(shuffled[i:i + config.batch])
            losses.append(float(step(np.asarray(inputs[rows], np.float32), np.asarray(outputs[rows], np.float32))))
        entry = {"epoch": epoch + 1, "loss": round(float(np.mean(losses)), 5),
                 **_agreement(forward, inputs, outputs, val, detector.threshold)}
        record["epochs"].append(entry)
        if progress:
            log.info("distillation epoch %d: %s", epoch + 1, entry)
    record["after"] = {k: v for k, v in record["epochs"][-1].items() if k not in ("epoch", "loss")}
    return student, record
