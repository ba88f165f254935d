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

from bubblenet.cli import add_output_options, make_parser, run_verb
from bubblenet.training.config import DEMO_SKY_FOLDER

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


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = make_parser(prog, DESCRIPTION, section="fit")
    add_fit_options(parser)
    parser.add_argument("--demo-sky", type=Path, default=DEMO_SKY_FOLDER,
                        help="where the demo's synthetic sky is drawn (or found) when no survey is given")
    add_output_options(parser, Path("runs/fit"), help="run folder",
                       overwrite="train in a run folder that holds other things (never needed to resume a run)")
    return parser


def add_fit_options(parser: argparse.ArgumentParser) -> None:
    """Every option of `bubblenet.training.config.FitConfig` (`tune` has them too), its defaults from there."""
    from bubblenet.data import add_sample_options, add_survey_options
    from bubblenet.detection.search import SEARCH_MODES
    from bubblenet.detection.windows import WINDOW_ORIGINS
    from bubblenet.training.config import CLIPS, INITS, LOSS_NORMS, LR_SCHEDULES, PRESET_NAMES, WANDB_MODES, FitConfig

    d = FitConfig()
    add_survey_options(parser)
    add_sample_options(parser)
    train = parser.add_argument_group("training")
    train.add_argument("--preset", choices=PRESET_NAMES, default=d.preset, help="SSD preset")
    train.add_argument("--init", choices=INITS, default=d.init,
                       help="convolution kernels' initialisation (paper: kaiming)")
    train.add_argument("--epochs", type=int, default=d.epochs, help="maximum epochs (paper: 300)")
    train.add_argument("--steps-per-epoch", type=int, default=d.steps_per_epoch,
                       help="steps per epoch (default: each positive --samples-per-bubble times)")
    train.add_argument("--lr", type=float, default=d.lr, help="AdamW learning rate")
    train.add_argument("--lr-schedule", choices=LR_SCHEDULES, default=d.lr_schedule,
                       help="constant (the paper) or cosine decay to zero over the run")
    train.add_argument("--weight-decay", type=float, default=d.weight_decay, help="AdamW weight decay")
    train.add_argument("--clipnorm", type=float, default=d.clipnorm,
                       help="gradient clipping level (a global norm, or each element's value with --clip value)")
    train.add_argument("--clip", choices=CLIPS, default=d.clip,
                       help="clip gradients by their global norm, or each by value (paper: value)")
    train.add_argument("--loss-norm", choices=LOSS_NORMS, default=d.loss_norm,
                       help="loss terms summed over the matched priors' count, or each averaged over its own "
                            "count (paper)")
    train.add_argument("--anchor-scale", type=float, default=d.anchor_scale,
                       help="multiply the preset's default box sizes by this")
    train.add_argument("--patience", type=int, default=d.patience, help="early stopping patience on val_f2, epochs")
    train.add_argument("--val-sizes", type=float, nargs=2, default=list(d.val_sizes), metavar=("MIN", "MAX"),
                       help="validation window sides on the sky, arcsec (the detector's search: detection uses it)")
    train.add_argument("--val-sides", type=float, nargs="*", default=list(d.val_sides),
                       help="an explicit list of validation window sides, arcsec, instead of --val-sizes' series "
                            "(paper: 180 360 720 1080 1440 2160 2880 3600)")
    train.add_argument("--val-stride", type=float, default=d.val_stride, help="validation window stride over side")
    train.add_argument("--val-origin", choices=WINDOW_ORIGINS, default=d.val_origin,
                       help="rows of windows cover the tile edge to edge, or start at a fifth of the side (paper)")
    train.add_argument("--val-per-window", type=int, default=d.val_per_window,
                       help="validation detections kept per window (paper: 100)")
    train.add_argument("--val-per-tile", type=int, default=d.val_per_tile,
                       help="validation detections kept per tile, by score (paper: no cap; give 0 for none)")
    train.add_argument("--threshold-step", type=float, default=d.threshold_step,
                       help="step of the validation sweep of thresholds 0.50-0.95 (paper: 0.01)")
    train.add_argument("--val-mode", choices=SEARCH_MODES, default=d.val_mode,
                       help="validation windows cut from an image pyramid (fast) or each processed on its own "
                            "(paper)")
    train.add_argument("--val-every", type=int, default=d.val_every, help="validate every N epochs")
    train.add_argument("--wandb", choices=WANDB_MODES, default=d.wandb,
                       help="log to Weights & Biases (needs the 'wandb' extra)")


def run(args: argparse.Namespace) -> int:
    from bubblenet.data import fit_config
    from bubblenet.training.run import fit

    result = fit(fit_config(args), args.out, demo_sky=args.demo_sky, overwrite=args.overwrite,
                 verbose=not args.quiet)
    scores, out = result.validation, result.folder
    print(f"validation: F2 {scores['f2']:.3f} (precision {scores['precision']:.3f}, recall {scores['recall']:.3f}) "
          f"at threshold {scores['threshold']:.2f}; strict F2 {scores['strict']['f2']:.3f}")
    if result.test is not None:
        _print_test(result.test, result.split)
        print(f"picture of {result.split.test[0]} with detections (green) and clear bubbles (white): "
              f"{out}/test_detections.png")
    print(f"run folder {out}/: model.keras + model_info.json (the detector), savedmodel/, validation.json, "
          "history.csv, tensorboard/")
    return 0


def _print_test(row: dict, split) -> None:
    print(f"test tiles {', '.join(split.test)}: recall {row['recall']:.3f}, precision {row['precision']:.3f}, "
          f"F2 {row['f2']:.3f} on {row['tp'] + row['fn']} selected bubbles (paper rule); strict recall "
          f"{row['strict']['recall']:.3f}, precision {row['strict']['precision']:.3f}")
    print("  found, by label-box side: " + ", ".join(
        f"{_size_label(*r['box_arcsec'])} {r['found']}/{r['bubbles']}" for r in row["found_by_box_side"]
        if r["bubbles"]))


def _size_label(low: float, high: float) -> str:
    return f">= {low:.0f}\"" if math.isinf(high) else f"{low:.0f}-{high:.0f}\""


def main(argv=None, prog=None) -> int:
    return run_verb(build_parser(prog), run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
