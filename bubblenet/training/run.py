"""One training run from a `FitConfig`: what `bubblenet fit` does once and `bubblenet tune` once per trial.

`train` trains and validates in a run folder; `fit` is the whole of
``bubblenet fit``: it also writes the detector, a SavedModel and the test
tiles' scores. A run folder gets ``history.csv``, ``tensorboard/``, ``backup/`` (the
progress `keras.callbacks.BackupAndRestore` resumes from) and ``best.keras``
(the model of the best validation F2). Running the same options on the same
folder again resumes where an interrupted run stopped; the best model and
score of the epochs before the interruption are kept.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import math
from pathlib import Path

import keras

from bubblenet.errors import ConfigError
from bubblenet.ssd.anchors import AnchorSpec
from bubblenet.ssd.model import PRESETS, build_ssd
from bubblenet.ssd.targets import TargetEncoder
from bubblenet.training.config import DEMO_SKY_FOLDER, FitConfig
from bubblenet.training_data.inputs import TrainingSurvey, load_training_survey, training_data
from bubblenet.training_data.stream import training_stream
from bubblenet.training.validation import (BestCheckpoint, DetectionPanel, LearningRateLogger, OptimiserConfig,
                                           SurveyValidation,
                                ValidationTile, compile_model, with_targets)

__all__ = ["TrainedRun", "FitResult", "run_anchors", "open_training_survey", "train", "fit", "wandb_callbacks",
           "BEST_FILE"]

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


def run_anchors(config: FitConfig) -> AnchorSpec:
    """The preset's default boxes, scaled by `FitConfig.anchor_scale`."""
    spec = PRESETS[config.preset]["anchors"]
    return spec if config.anchor_scale == 1 else spec.scaled(config.anchor_scale)


def open_training_survey(config: FitConfig, out: Path | None = None) -> TrainingSurvey:
    """The survey and split `config` names; the split is written to ``out/split.json`` when `out` is given."""
    from bubblenet.outputs import ensure_dir

    return load_training_survey(folder=config.survey, files8=config.i8, files24=config.m24,
                                catalogue=config.catalogue, selection=config.select, test_longitudes=config.test_l,
                                val=config.val if config.val else config.n_val, split_seed=config.split_seed,
                                split_file=None if out is None else ensure_dir(out) / "split.json")


def train(config: FitConfig, survey: TrainingSurvey, folder: Path, *, cache: Path, callbacks: list | None = None,
          strategy=None, verbose: bool = True) -> TrainedRun:
    """Train, validating on the survey's validation tiles, and return the best model.

    Parameters
    ----------
    config : FitConfig
    survey : TrainingSurvey
        From `open_training_survey`.
    folder : pathlib.Path
        The run folder (see the module docstring).
    cache : pathlib.Path
        Tile cache folder, shareable between runs.
    callbacks : list, optional
        More Keras callbacks, after the run's own.
    strategy : tf.distribute.Strategy, optional
        Scope the model is built in.
    verbose : bool
        Keras' one line per epoch.
    """
    keras.utils.set_random_seed(config.seed)
    spec = run_anchors(config)
    data, clusters = training_data(survey, config.data_config(spec.image_size), cache, clusters=config.clusters,
                                   drop_clusters=config.drop_clusters, cluster_weights=config.cluster_weights,
                                   montages=folder / "clusters")
    stream = with_targets(training_stream(data, clusters, positives=config.positives, negatives=config.negatives),
                          TargetEncoder(spec))
    by_name = survey.by_name
    validation = SurveyValidation(
        [ValidationTile.from_tile(by_name[n], survey.catalogue, survey.selection, cache, missing=config.missing_data,
                                  zeros=config.zeros) for n in survey.split.val],
        survey.catalogue, spec, config.search, every=config.val_every, norm=config.normalisation, bands=config.bands,
        thresholds=config.thresholds)

    steps = config.steps_per_epoch or max(math.ceil(data.positives_per_epoch / config.positives), 1)
    decay_steps = steps * config.epochs if config.lr_schedule == "cosine" else 0
    optimiser = OptimiserConfig(learning_rate=config.lr, weight_decay=config.weight_decay, clipnorm=config.clipnorm,
                                decay_steps=decay_steps, clip=config.clip, loss_norm=config.loss_norm)
    if strategy is None:
        model = compile_model(build_ssd(config.preset, anchors=spec, init=config.init), optimiser)
    else:
        with strategy.scope():
            model = compile_model(build_ssd(config.preset, anchors=spec, init=config.init), optimiser)
    # After an interruption the checkpoint must beat the epochs already run,
    # not start again from nothing and overwrite a better model.
    before = best_in_history(folder / "history.csv")
    best_path = folder / BEST_FILE
    own = [
        validation,  # first: the callbacks after it read val_f2 from the logs
        LearningRateLogger(),
        DetectionPanel(validation, folder / "tensorboard" / "detections"),
        BestCheckpoint(best_path, monitor="val_f2", best=before if best_path.exists() else -math.inf),
        keras.callbacks.EarlyStopping(monitor="val_f2", mode="max", patience=config.patience,
                                      start_from_epoch=config.val_every - 1),
        # double_checkpoint: the previous state is kept, so a kill while the backup is written loses one epoch.
        keras.callbacks.BackupAndRestore(str(folder / "backup"), delete_checkpoint=False, double_checkpoint=True),
        keras.callbacks.TensorBoard(str(folder / "tensorboard")),
        keras.callbacks.CSVLogger(str(folder / "history.csv"), append=True),
    ]
    model.fit(stream, epochs=config.epochs, steps_per_epoch=steps, callbacks=own + list(callbacks or []),
              verbose=2 if verbose else 0)

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


@dataclasses.dataclass
class FitResult:
    """What `fit` leaves in its run folder, and the scores it printed.

    Attributes
    ----------
    folder : pathlib.Path
        The run folder: also a detector folder (`bubblenet.detection.detector.load_detector`).
    info : dict
        The detector's ``model_info.json``.
    validation : dict
        Validation scores at the chosen threshold (``f2``, ``precision``, ``recall``, ``threshold``, ``strict``).
    test : dict or None
        Test tiles' scores at that threshold, with ``found_by_box_side``; None without test tiles.
    split : bubblenet.training_data.splits.Split
    """

    folder: Path
    info: dict
    validation: dict
    test: dict | None
    split: object


def fit(config: FitConfig, out: Path, *, demo_sky: Path = DEMO_SKY_FOLDER, overwrite: bool = False,
        callbacks: list | None = None, verbose: bool = True, cache: Path | None = None) -> FitResult:
    """Train a detector on `config`'s survey (the demo's without one) and write it, a SavedModel and its
    test scores to `out`: what ``bubblenet fit`` does.

    Writes ``run.json`` (options, seed, versions), ``split.json``, the
    training files of `train`, ``validation.json`` (the threshold sweep),
    ``model.keras`` + ``model_info.json`` (the detector, with the threshold
    chosen on validation and the validation search it was chosen on),
    ``savedmodel/``, and with test tiles ``test.json`` and
    ``test_detections.png``.

    Parameters
    ----------
    config : FitConfig
        The options; with no survey, the demo (`prepare_demo`).
    out : pathlib.Path
        The run folder; a run interrupted there resumes. A folder that holds
        other things is refused unless `overwrite` (`bubblenet.outputs.claim_output_dir`).
    demo_sky : pathlib.Path
        Where the demo's sky is drawn, or found.
    overwrite : bool
        Train in an `out` that holds other things.
    callbacks : list, optional
        More Keras callbacks (W&B logging is added when `FitConfig.wandb` asks for it).
    verbose : bool
        Keras' line per epoch.
    cache : pathlib.Path, optional
        Tile cache folder (default ``out/cache``); runs on the same survey can share one.

    Raises
    ------
    ConfigError
        If the split has no validation tile.
    """
    from bubblenet.detection.detector import Detector, model_info, save_detector
    from bubblenet.detection.savedmodel import export_savedmodel
    from bubblenet.outputs import claim_output_dir, run_record, write_json

    out = claim_output_dir(out, "fit", overwrite=overwrite)
    demo = config.is_demo
    if demo:
        config = prepare_demo(config, demo_sky)
    if not overwrite:
        check_resumable(out, config)
    write_json(out / "run.json", run_record("fit", config.options(), seed=config.seed))
    survey = open_training_survey(config, out)
    if not survey.split.val:
        raise ConfigError("training needs at least one validation tile (--n-val or --val)")
    callbacks = wandb_callbacks(config.wandb, out, config=config.options()) + list(callbacks or [])
    cache = out / "cache" if cache is None else Path(cache)
    trained = train(config, survey, out, cache=cache, callbacks=callbacks, strategy=default_strategy(),
                    verbose=verbose)
    scores, spec, split = trained.scores, trained.spec, survey.split
    write_json(out / "validation.json", {"best": scores, "sweep": trained.sweep})
    test = score_test_tiles(trained.model, spec, survey, scores["threshold"], config, out, cache=cache) \
        if split.test else None
    info = model_info(config.preset, spec, scores["threshold"],
                      trained_on="synthetic twin sky (the fit demo)" if demo
                      else str(config.survey or [str(p) for p in config.i8]),
                      split={"train": list(split.train), "val": list(split.val), "test": list(split.test)},
                      validation=scores, test=test, seed=config.seed, normalisation=config.normalisation.to_dict(),
                      bands=config.bands, search=config.search.to_dict(), options=config.options())
    save_detector(Detector(trained.model, spec, scores["threshold"], info), out)  # the run folder is a detector
    export_savedmodel(trained.model, spec, out / "savedmodel", threshold=scores["threshold"], preset=config.preset,
                      info=info)
    return FitResult(out, info, scores, test, split)


#: Options a run may change when it is run again in its folder: how long it trains and where it logs.
RESUMABLE_CHANGES = ("epochs", "patience", "wandb")


def check_resumable(out: Path, config: FitConfig) -> None:
    """Refuse to continue the run recorded in `out` (``run.json``) with other options than its own.

    Training resumes from the folder's backup, so a run continued with other options would mix two recipes
    in one detector, as would one started before a default changed (the labels' rule, 2026-12) and resumed
    after. Only `RESUMABLE_CHANGES` may differ.

    Raises
    ------
    ConfigError
        Naming the options that differ, with the recorded and the new value.
    """
    record = out / "run.json"
    if not record.exists():
        return
    try:
        before = json.loads(record.read_text())["options"]
    except (OSError, ValueError, KeyError, TypeError):
        raise ConfigError("the run record is unreadable; use another output folder", record) from None
    now, defaults = (json.loads(json.dumps(c.options())) for c in (config, FitConfig()))
    changed = []
    for name, value in now.items():
        # An option added since the run was recorded did what its default does.
        was = before.get(name, defaults[name])
        if name not in RESUMABLE_CHANGES and was != value:
            changed.append(f"{name.replace('_', '-')}: {was!r} then, {value!r} now")
    if changed:
        raise ConfigError("this folder holds a run made with other options (" + "; ".join(changed) + "): run it "
                          "again with its own options to resume it, or choose another output folder", out)


def score_test_tiles(model, spec, survey: TrainingSurvey, threshold: float, config: FitConfig, out: Path, *,
                     cache: Path | None = None) -> dict:
    """Scores on the test tiles at `threshold` (``out/test.json``), and a picture of the first (``test_detections.png``).

    The test tiles are searched with the validation search (`FitConfig.search`) and scored like validation:
    on the sky, each bubble once however many tiles hold it (`bubblenet.training.validation.SkyScores`).
    """
    from PIL import Image

    from bubblenet.evaluation.metrics import found_by_side
    from bubblenet.outputs import atomic_path, write_json
    from bubblenet.training.validation import SurveyValidation, ValidationTile, detection_panel

    split, by_name = survey.split, survey.by_name
    cache = out / "cache" if cache is None else cache
    tiles = [ValidationTile.from_tile(by_name[n], survey.catalogue, survey.selection, cache,
                                      missing=config.missing_data, zeros=config.zeros) for n in split.test]
    test = SurveyValidation(tiles, survey.catalogue, spec, config.search, norm=config.normalisation,
                            bands=config.bands, thresholds=sorted(set(config.thresholds) | {float(threshold)}))
    test.set_model(model)
    _, sweep = test.evaluate()
    row = min(sweep, key=lambda r: abs(r["threshold"] - threshold))
    sky = test.sky
    by_size = found_by_side(sky.found(threshold), 2 * sky.bubble_half, sky.selected)
    row = {**row, "found_by_box_side": by_size}
    write_json(out / "test.json", {"threshold": threshold, "scores": row, "tiles": list(split.test)})
    boxes, scores = test.detections[0]
    panel = detection_panel(tiles[0].cache.data, boxes[scores >= threshold], tiles[0].bubbles[tiles[0].selected],
                            max_pixels=1600)
    with atomic_path(out / "test_detections.png") as tmp:
        Image.fromarray(panel).save(tmp, format="PNG")
    return row


def default_strategy():
    """Mirrored training over all GPUs when there are several; the default device otherwise."""
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        log.info("training on %d GPUs (MirroredStrategy)", len(gpus))
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def prepare_demo(config: FitConfig, sky: Path) -> FitConfig:
    """`config` on the demo's synthetic sky at `sky`, drawn there first if it is not (about a minute)."""
    from bubblenet.synth import Region, SynthConfig, make_survey
    from bubblenet.training.config import DEMO_SKY, with_demo

    sky = Path(sky)
    if not (sky / "synth_run.json").exists():
        log.info("drawing the demo sky in %s (once)", sky)
        make_survey(sky, SynthConfig(Region(*DEMO_SKY["l"], *DEMO_SKY["b"]), DEMO_SKY["pixscale"],
                                     seed=DEMO_SKY["seed"]))
    return with_demo(config, sky)
