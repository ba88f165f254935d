"""``bubblenet fit`` / ``python -m bubblenet.fit``: train the SSD on a survey.

The run folder (``--out``) gets: ``run.json`` (options, seed, versions),
``split.json``, ``history.csv``, ``tensorboard/``, ``backup/`` (progress for
resuming: run the same command again after an interruption), ``best.keras``
(best validation F2), ``model.keras`` and ``savedmodel/`` (with the threshold
chosen on validation), and ``validation.json`` (the threshold sweep).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from pathlib import Path

from bubblenet.cli import make_parser, run_verb
from bubblenet.errors import ConfigError

log = logging.getLogger("bubblenet.fit")

DESCRIPTION = """\
Train the SSD bubble detector on a survey (a folder of GLIMPSE/MIPSGAL-style
tiles, or --i8/--m24 files, with a catalogue), validating each epoch on whole
validation tiles the reference method's way (sliding windows, paper matching
rule, F2 with the confidence threshold swept). Interrupted runs resume when
the same command is run again. With no survey given, runs the demo: draws (or
reuses) a synthetic twin of l = 10.6°-46.4°, |b| <= 1° at 4.8"/px, trains the
lite model on tiles l = 24°-45°, validates on one of them, and reports recall
and precision on the paper's test tiles l = 12°, 15°, 18°, 21°.
"""

#: The demo: a synthetic twin sky and the options `fit` uses on it when given no survey.
DEMO_SKY = {"l": (10.56, 46.44), "b": (-1.0, 1.0), "pixscale": 4.8, "seed": 0}
DEMO_OPTIONS = {"n_val": 1, "epochs": 24, "steps_per_epoch": 50, "positives": 8, "negatives": 4, "lr": 2e-3,
                "lr_schedule": "cosine", "val_sizes": [420.0, 3600.0], "val_stride": 0.5, "val_every": 4,
                "patience": 24}


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    from bubblenet.data import build_parser as data_parser

    parser = make_parser(prog, DESCRIPTION, section="fit")
    # Survey, split and sample options are those of `bubblenet data`.
    for action in data_parser()._actions:
        if action.dest in ("help", "config", "verbose", "quiet", "_section", "action", "out", "size"):
            continue
        parser._add_action(action)
    train = parser.add_argument_group("training")
    train.add_argument("--preset", choices=("lite", "paper"), default="lite", help="SSD preset")
    train.add_argument("--epochs", type=int, default=30, help="maximum epochs (paper: 300)")
    train.add_argument("--steps-per-epoch", type=int, default=None,
                       help="steps per epoch (default: each positive once)")
    train.add_argument("--lr", type=float, default=1e-4, help="AdamW learning rate")
    train.add_argument("--lr-schedule", choices=("constant", "cosine"), default="constant",
                       help="constant (the paper) or cosine decay to zero over the run")
    train.add_argument("--weight-decay", type=float, default=1e-3, help="AdamW weight decay")
    train.add_argument("--clipnorm", type=float, default=10.0, help="gradient clipping norm")
    train.add_argument("--patience", type=int, default=15, help="early stopping patience on val_f2, epochs")
    train.add_argument("--val-sizes", type=float, nargs=2, default=[150.0, 3600.0], metavar=("MIN", "MAX"),
                       help="validation window sides on the sky, arcsec")
    train.add_argument("--val-stride", type=float, default=1 / 3, help="validation window stride over side")
    train.add_argument("--val-every", type=int, default=1, help="validate every N epochs")
    train.add_argument("--wandb", choices=("off", "offline", "online"), default="off",
                       help="log to Weights & Biases (needs the 'wandb' extra)")
    parser.add_argument("--demo-sky", type=Path, default=Path("demo_fit_sky"),
                        help="where the demo's synthetic sky is drawn (or found) when no survey is given")
    parser.add_argument("--out", type=Path, default=Path("runs/fit"), help="run folder")
    return parser


def _demo(args: argparse.Namespace, parser_defaults: dict) -> None:
    """Fill in the demo: its sky (drawn once) and its options, where the user left the defaults."""
    from bubblenet.synth import Region, SynthConfig, make_survey

    sky = args.demo_sky
    if not (sky / "synth_run.json").exists():
        log.info("drawing the demo sky in %s (once)", sky)
        make_survey(sky, SynthConfig(Region(*DEMO_SKY["l"], *DEMO_SKY["b"]), DEMO_SKY["pixscale"],
                                     seed=DEMO_SKY["seed"]))
    args.survey = sky
    for key, value in DEMO_OPTIONS.items():
        if getattr(args, key) == parser_defaults.get(key):
            setattr(args, key, value)


def run(args: argparse.Namespace) -> int:
    import keras

    from bubblenet.dataset import DataConfig, TrainingData, survey_inputs
    from bubblenet.detector import INFO_FILE, MODEL_FILE, model_info
    from bubblenet.export import export_savedmodel
    from bubblenet.model import PRESETS, build_ssd
    from bubblenet.outputs import atomic_path, ensure_dir, run_record, write_json
    from bubblenet.splits import split_tiles
    from bubblenet.stream import training_stream
    from bubblenet.targets import TargetEncoder
    from bubblenet.training import (DetectionPanel, LearningRateLogger, OptimiserConfig, SurveyValidation,
                                    ValidationTile, compile_model, with_targets)

    demo = args.survey is None and not args.i8 and not args.m24
    if demo:
        _demo(args, {a.dest: a.default for a in build_parser()._actions})
    keras.utils.set_random_seed(args.seed)
    out = ensure_dir(args.out)
    write_json(out / "run.json", run_record("fit", vars(args), seed=args.seed))
    spec = PRESETS[args.preset]["anchors"]
    tiles, catalogue, selection = survey_inputs(folder=args.survey, files8=args.i8, files24=args.m24,
                                                catalogue=args.catalogue, selection=args.select)
    split = split_tiles(tiles, test_longitudes=args.test_l, val=args.val if args.val else args.n_val,
                        seed=args.split_seed)
    split.to_json(out / "split.json")
    if not split.val:
        raise ConfigError("training needs at least one validation tile (--n-val or --val)")
    cache = out / "cache"
    config = DataConfig(size=spec.image_size, mask=args.mask, mask_all_bubbles=not args.mask_selected_only,
                        negatives_per_tile=args.negatives_per_tile, quantize=args.paper_exact, seed=args.seed)
    data = TrainingData(tiles, catalogue, selection, split, "train", config, cache)
    clusters = None
    if args.clusters:
        import numpy as np

        from bubblenet.negatives import cluster_negatives

        pool = np.stack([data.negative(i).image for i in range(len(data.negatives))])
        clusters = cluster_negatives(pool, k=args.clusters, seed=args.seed, drop=args.drop_clusters,
                                     weights=args.cluster_weights, out_dir=out / "clusters")
    stream = with_targets(training_stream(data, clusters, positives=args.positives, negatives=args.negatives),
                          TargetEncoder(spec))
    by_name = {t.name: t for t in tiles}
    validation = SurveyValidation(
        [ValidationTile.from_tile(by_name[n], catalogue, selection, cache) for n in split.val], spec,
        sizes_arcsec=tuple(args.val_sizes), stride_fraction=args.val_stride, every=args.val_every)

    steps = args.steps_per_epoch or max(math.ceil(len(data.positives) / args.positives), 1)
    decay_steps = steps * args.epochs if args.lr_schedule == "cosine" else 0
    with _strategy().scope():
        model = compile_model(build_ssd(args.preset),
                              OptimiserConfig(learning_rate=args.lr, weight_decay=args.weight_decay,
                                              clipnorm=args.clipnorm, decay_steps=decay_steps))
    callbacks = [
        validation,  # first: the callbacks after it read val_f2 from the logs
        LearningRateLogger(),
        DetectionPanel(validation, out / "tensorboard" / "detections"),
        keras.callbacks.ModelCheckpoint(out / "best.keras", monitor="val_f2", mode="max", save_best_only=True,
                                        initial_value_threshold=-math.inf),
        keras.callbacks.EarlyStopping(monitor="val_f2", mode="max", patience=args.patience,
                                      start_from_epoch=args.val_every - 1),
        keras.callbacks.BackupAndRestore(str(out / "backup"), delete_checkpoint=False),
        keras.callbacks.TensorBoard(str(out / "tensorboard")),
        keras.callbacks.CSVLogger(str(out / "history.csv"), append=True),
        *_wandb_callbacks(args.wandb, out),
    ]
    model.fit(stream, epochs=args.epochs, steps_per_epoch=steps, callbacks=callbacks, verbose=0 if args.quiet else 2)

    best = keras.saving.load_model(out / "best.keras", safe_mode=True, compile=False) \
        if (out / "best.keras").exists() else model
    if validation.best is not None and (out / "best.keras").exists():
        scores, sweep, _ = validation.best  # best.keras was written at that validation
    else:  # resumed after the best epoch, or never validated: score the model kept
        validation.set_model(best)
        scores, sweep = validation.evaluate()
    write_json(out / "validation.json", {"best": scores, "sweep": sweep})
    print(f"validation: F2 {scores['f2']:.3f} (precision {scores['precision']:.3f}, recall {scores['recall']:.3f}) "
          f"at threshold {scores['threshold']:.2f}; strict F2 {scores['strict']['f2']:.3f}")
    test = _report_test(best, spec, split, by_name, catalogue, selection, cache, scores["threshold"], args, out) \
        if split.test else None
    info = model_info(args.preset, spec, scores["threshold"],
                      trained_on="synthetic twin sky (the fit demo)" if demo else str(args.survey or args.i8),
                      split={"train": list(split.train), "val": list(split.val), "test": list(split.test)},
                      validation=scores, test=test, seed=args.seed,
                      search={"sizes_arcsec": list(args.val_sizes), "stride": args.val_stride, "per_octave": 2})
    with atomic_path(out / MODEL_FILE) as tmp:
        best.save(tmp)
    write_json(out / INFO_FILE, info)  # with model.keras, makes the run folder a detector (bubblenet.detector)
    export_savedmodel(best, spec, out / "savedmodel", threshold=scores["threshold"], preset=args.preset, info=info)
    print(f"run folder {out}/: model.keras + model_info.json (the detector), savedmodel/, validation.json, "
          "history.csv, tensorboard/")
    return 0


def _report_test(model, spec, split, by_name, catalogue, selection, cache, threshold, args, out) -> dict:
    """Scores on the test tiles at the validation threshold (returned), and a picture of the first one."""
    from bubblenet.metrics import found_by_size
    from bubblenet.outputs import atomic_path, write_json
    from bubblenet.training import SurveyValidation, ValidationTile, detection_panel

    tiles = [ValidationTile.from_tile(by_name[n], catalogue, selection, cache) for n in split.test]
    test = SurveyValidation(tiles, spec, sizes_arcsec=tuple(args.val_sizes), stride_fraction=args.val_stride)
    test.set_model(model)
    _, sweep = test.evaluate()
    row = min(sweep, key=lambda r: abs(r["threshold"] - threshold))
    by_size = None
    for tile, (boxes, scores) in zip(tiles, test.detections):
        rows = found_by_size(boxes[scores >= threshold], tile.bubbles, tile.selected, pixscale=tile.pixscale)
        by_size = rows if by_size is None else [{**a, "bubbles": a["bubbles"] + b["bubbles"],
                                                 "found": a["found"] + b["found"]} for a, b in zip(by_size, rows)]
    row = {**row, "found_by_box_side": by_size}
    write_json(out / "test.json", {"threshold": threshold, "scores": row, "tiles": list(split.test)})
    boxes, scores = test.detections[0]
    from PIL import Image

    panel = detection_panel(tiles[0].cache.data, boxes[scores >= threshold], tiles[0].bubbles[tiles[0].selected],
                            max_pixels=1600)
    with atomic_path(out / "test_detections.png") as tmp:
        Image.fromarray(panel).save(tmp, format="PNG")
    print(f"test tiles {', '.join(split.test)}: recall {row['recall']:.3f}, precision {row['precision']:.3f}, "
          f"F2 {row['f2']:.3f} on {row['tp'] + row['fn']} selected bubbles (paper rule); strict recall "
          f"{row['strict']['recall']:.3f}, precision {row['strict']['precision']:.3f}")
    print("  found, by label-box side: " + ", ".join(
        f"{_size_label(*r['box_arcsec'])} {r['found']}/{r['bubbles']}" for r in by_size if r["bubbles"]))
    print(f"picture of {split.test[0]} with detections (green) and clear bubbles (white): {out}/test_detections.png")
    return row


def _size_label(low: float, high: float) -> str:
    return f">= {low:.0f}\"" if math.isinf(high) else f"{low:.0f}-{high:.0f}\""


def _strategy():
    """Mirrored training over all GPUs when there are several; the default device otherwise."""
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        log.info("training on %d GPUs (MirroredStrategy)", len(gpus))
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def _wandb_callbacks(mode: str, out: Path) -> list:
    """W&B logging when asked for; offline mode needs no account."""
    if mode == "off":
        return []
    try:
        import wandb
        from wandb.integration.keras import WandbMetricsLogger
    except ImportError:
        raise ConfigError("--wandb needs the 'wandb' extra: pip install 'bubblenet[wandb]'") from None
    wandb.init(project="bubblenet", dir=str(out), mode=mode, config=json.loads((out / "run.json").read_text()))
    return [WandbMetricsLogger()]


def main(argv=None, prog=None) -> int:
    return run_verb(build_parser(prog), run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
