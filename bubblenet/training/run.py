"""One training run from parsed options: what `bubblenet fit` does once and `bubblenet tune` once per trial.

A run folder gets ``history.csv``, ``tensorboard/``, ``backup/`` (the
progress `keras.callbacks.BackupAndRestore` resumes from) and ``best.keras``
(the model of the best validation F2). Running the same options on the same
folder again resumes where an interrupted run stopped; the best model and
score of the epochs before the interruption are kept.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import logging
import math
from pathlib import Path

import keras

from bubblenet.ssd.anchors import AnchorSpec
from bubblenet.data import Survey, training_data
from bubblenet.errors import ConfigError
from bubblenet.ssd.model import PRESETS, build_ssd
from bubblenet.training_data.stream import training_stream
from bubblenet.ssd.targets import TargetEncoder
from bubblenet.training.validation import (DetectionPanel, LearningRateLogger, OptimiserConfig, SurveyValidation,
                                ValidationTile, compile_model, with_targets)

__all__ = ["TrainedRun", "run_anchors", "train", "wandb_callbacks", "BEST_FILE"]

log = logging.getLogger(__name__)

BEST_FILE = "best.keras"


@dataclasses.dataclass
class TrainedRun:
    """What a training run leaves.

    Attributes
    ----------
    model : keras.Model
        The model of the best validation F2 (the last one if never validated).
    spec : AnchorSpec
        Its default boxes.
    scores : dict
        Validation scores at the best threshold (``f2``, ``precision``, ``recall``, ``threshold``, ``strict``).
    sweep : list of dict
        Validation scores at every threshold.
    validation : SurveyValidation
        The validation callback, with the validation tiles and their last detections.
    """

    model: keras.Model
    spec: AnchorSpec
    scores: dict
    sweep: list
    validation: SurveyValidation


def run_anchors(args: argparse.Namespace) -> AnchorSpec:
    """The preset's default boxes, scaled by ``--anchor-scale``."""
    spec = PRESETS[args.preset]["anchors"]
    return spec if args.anchor_scale == 1 else spec.scaled(args.anchor_scale)


def train(args: argparse.Namespace, survey: Survey, folder: Path, *, cache: Path,
          callbacks: list | None = None, strategy=None) -> TrainedRun:
    """Train, validating on the survey's validation tiles, and return the best model.

    Parameters
    ----------
    args : argparse.Namespace
        `bubblenet fit` options.
    survey : Survey
        From `bubblenet.data.load_survey`.
    folder : pathlib.Path
        The run folder (see the module docstring).
    cache : pathlib.Path
        Tile cache folder, shareable between runs.
    callbacks : list, optional
        More Keras callbacks, after the run's own.
    strategy : tf.distribute.Strategy, optional
        Scope the model is built in.
    """
    keras.utils.set_random_seed(args.seed)
    spec = run_anchors(args)
    data, clusters = training_data(args, survey, spec.image_size, cache, folder / "clusters")
    stream = with_targets(training_stream(data, clusters, positives=args.positives, negatives=args.negatives),
                          TargetEncoder(spec))
    by_name = survey.by_name
    validation = SurveyValidation(
        [ValidationTile.from_tile(by_name[n], survey.catalogue, survey.selection, cache) for n in survey.split.val],
        spec, sizes_arcsec=tuple(args.val_sizes), stride_fraction=args.val_stride, every=args.val_every,
        clip_sigma=args.clip_sigma, mode=args.val_mode, bands=args.bands)

    steps = args.steps_per_epoch or max(math.ceil(len(data.positives) / args.positives), 1)
    decay_steps = steps * args.epochs if args.lr_schedule == "cosine" else 0
    optimiser = OptimiserConfig(learning_rate=args.lr, weight_decay=args.weight_decay, clipnorm=args.clipnorm,
                                decay_steps=decay_steps)
    if strategy is None:
        model = compile_model(build_ssd(args.preset, anchors=spec), optimiser)
    else:
        with strategy.scope():
            model = compile_model(build_ssd(args.preset, anchors=spec), optimiser)
    # After an interruption the checkpoint must beat the epochs already run,
    # not start again from nothing and overwrite a better model.
    before = best_in_history(folder / "history.csv")
    best_path = folder / BEST_FILE
    own = [
        validation,  # first: the callbacks after it read val_f2 from the logs
        LearningRateLogger(),
        DetectionPanel(validation, folder / "tensorboard" / "detections"),
        keras.callbacks.ModelCheckpoint(best_path, monitor="val_f2", mode="max", save_best_only=True,
                                        initial_value_threshold=before if best_path.exists() else -math.inf),
        keras.callbacks.EarlyStopping(monitor="val_f2", mode="max", patience=args.patience,
                                      start_from_epoch=args.val_every - 1),
        keras.callbacks.BackupAndRestore(str(folder / "backup"), delete_checkpoint=False),
        keras.callbacks.TensorBoard(str(folder / "tensorboard")),
        keras.callbacks.CSVLogger(str(folder / "history.csv"), append=True),
    ]
    model.fit(stream, epochs=args.epochs, steps_per_epoch=steps, callbacks=own + list(callbacks or []),
              verbose=0 if args.quiet else 2)

    if validation.best is not None and validation.best[0]["f2"] > before and best_path.exists():
        scores, sweep, _ = validation.best  # best.keras was written at that validation
        best = keras.saving.load_model(best_path, safe_mode=True, compile=False)
    else:  # resumed after the best epoch, or never validated: score the model kept
        best = keras.saving.load_model(best_path, safe_mode=True, compile=False) if best_path.exists() else model
        validation.set_model(best)
        scores, sweep = validation.evaluate()
    return TrainedRun(best, spec, scores, sweep, validation)


def best_in_history(path: Path) -> float:
    """The highest ``val_f2`` in a `keras.callbacks.CSVLogger` file; -inf without one."""
    best = -math.inf
    if path.exists():
        with open(path, newline="") as stream:
            for row in csv.DictReader(stream):
                try:
                    value = float(row.get("val_f2", "nan"))
                except ValueError:
                    continue
                if value > best:  # NaN (epochs between validations) never is
                    best = value
    return best


def wandb_callbacks(mode: str, folder: Path, *, config: dict, name: str | None = None,
                    group: str | None = None) -> list:
    """W&B logging when asked for (``offline`` needs no account); none for ``off``.

    Each call starts a W&B run; end it with ``wandb.finish()``.
    """
    if mode == "off":
        return []
    try:
        import wandb
        from wandb.integration.keras import WandbMetricsLogger
    except ImportError:
        raise ConfigError("--wandb needs the 'wandb' extra: pip install 'bubblenet[wandb]'") from None
    plain = {k: (str(v) if isinstance(v, Path) else v) for k, v in config.items()}
    wandb.init(project="bubblenet", dir=str(folder), mode=mode, config=plain, name=name, group=group, reinit=True)
    return [WandbMetricsLogger()]
