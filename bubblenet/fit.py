"""``bubblenet fit`` / ``python -m bubblenet.fit``: train the SSD on a survey.

The run folder (``--out``) gets: ``run.json`` (options, seed, versions),
``split.json``, ``history.csv``, ``tensorboard/``, ``backup/`` (progress for
resuming: run the same command again after an interruption), ``best.keras``
(best validation F2), ``model.keras`` and ``savedmodel/`` (with the threshold
chosen on validation), and ``validation.json`` (the threshold sweep).
"""

from __future__ import annotations

import argparse
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
reuses) a synthetic twin of l = 10.6°-37.4°, |b| <= 1° at 2.4"/px, trains the
lite model on tiles l = 24°-36°, validates on one of them, and reports recall
and precision on the paper's test tiles l = 12°, 15°, 18°, 21°.
"""

#: The demo: a synthetic twin sky and the options `fit` uses on it when given no survey.
# 2.4"/px (twice GLIMPSE's pixel): at 4.8"/px the demo found 4 of the 26 clear
# test bubbles with boxes under 60" and 0.45 of all 89; at 2.4"/px, 22 of 26 and 0.91.
DEMO_SKY = {"l": (10.56, 37.44), "b": (-1.0, 1.0), "pixscale": 2.4, "seed": 0}
DEMO_OPTIONS = {"n_val": 1, "epochs": 12, "steps_per_epoch": 50, "positives": 8, "negatives": 4, "lr": 2e-3,
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
    train.add_argument("--anchor-scale", type=float, default=1.0,
                       help="multiply the preset's default box sizes by this")
    train.add_argument("--patience", type=int, default=15, help="early stopping patience on val_f2, epochs")
    train.add_argument("--val-sizes", type=float, nargs=2, default=[150.0, 3600.0], metavar=("MIN", "MAX"),
                       help="validation window sides on the sky, arcsec")
    train.add_argument("--val-stride", type=float, default=1 / 3, help="validation window stride over side")
    train.add_argument("--val-mode", choices=("fast", "paper"), default="fast",
                       help="validation windows cut from an image pyramid (fast) or each processed on its own "
                            "(paper)")
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
    from bubblenet.data import load_survey
    from bubblenet.ssd.detector import INFO_FILE, MODEL_FILE, model_info
    from bubblenet.export import export_savedmodel
    from bubblenet.outputs import atomic_path, ensure_dir, run_record, write_json
    from bubblenet.training.run import train, wandb_callbacks

    demo = args.survey is None and not args.i8 and not args.m24
    if demo:
        _demo(args, {a.dest: a.default for a in build_parser()._actions})
    out = ensure_dir(args.out)
    write_json(out / "run.json", run_record("fit", vars(args), seed=args.seed))
    survey = load_survey(args, out)
    if not survey.split.val:
        raise ConfigError("training needs at least one validation tile (--n-val or --val)")
    trained = train(args, survey, out, cache=out / "cache", callbacks=wandb_callbacks(args.wandb, out, config=vars(args)),
                    strategy=_strategy())
    scores, spec = trained.scores, trained.spec
    write_json(out / "validation.json", {"best": scores, "sweep": trained.sweep})
    print(f"validation: F2 {scores['f2']:.3f} (precision {scores['precision']:.3f}, recall {scores['recall']:.3f}) "
          f"at threshold {scores['threshold']:.2f}; strict F2 {scores['strict']['f2']:.3f}")
    split = survey.split
    test = _report_test(trained.model, spec, survey, scores["threshold"], args, out) if split.test else None
    info = model_info(args.preset, spec, scores["threshold"],
                      trained_on="synthetic twin sky (the fit demo)" if demo else str(args.survey or args.i8),
                      split={"train": list(split.train), "val": list(split.val), "test": list(split.test)},
                      validation=scores, test=test, seed=args.seed, normalisation={"clip_sigma": args.clip_sigma},
                      bands=args.bands,
                      search={"sizes_arcsec": list(args.val_sizes), "stride": args.val_stride, "per_octave": 2,
                              "mode": args.val_mode})
    with atomic_path(out / MODEL_FILE) as tmp:
        trained.model.save(tmp)
    write_json(out / INFO_FILE, info)  # with model.keras, makes the run folder a detector (bubblenet.ssd.detector)
    export_savedmodel(trained.model, spec, out / "savedmodel", threshold=scores["threshold"], preset=args.preset,
                      info=info)
    print(f"run folder {out}/: model.keras + model_info.json (the detector), savedmodel/, validation.json, "
          "history.csv, tensorboard/")
    return 0


def _report_test(model, spec, survey, threshold, args, out) -> dict:
    """Scores on the test tiles at the validation threshold (returned), and a picture of the first one."""
    from bubblenet.evaluation.metrics import found_by_size
    from bubblenet.outputs import atomic_path, write_json
    from bubblenet.training.validation import SurveyValidation, ValidationTile, detection_panel

    split, by_name = survey.split, survey.by_name
    tiles = [ValidationTile.from_tile(by_name[n], survey.catalogue, survey.selection, out / "cache")
             for n in split.test]
    test = SurveyValidation(tiles, spec, sizes_arcsec=tuple(args.val_sizes), stride_fraction=args.val_stride,
                            clip_sigma=args.clip_sigma, mode=args.val_mode, bands=args.bands)
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


def main(argv=None, prog=None) -> int:
    return run_verb(build_parser(prog), run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
