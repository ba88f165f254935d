"""``bubblenet tune`` / ``python -m bubblenet.tune``: Bayesian search of `fit`'s hyper-parameters.

keras-tuner's `BayesianOptimization` oracle proposes values
(`bubblenet.training.search_space`); each trial is one `fit` run
(`bubblenet.training.run.train`) scored by the validation F2 of the paper's
whole-tile protocol. Trial 0 is the `fit` configuration itself, so the table
shows what the search gained over it. The output folder (``--out``) gets:

``run.json``
    options, seed, package versions.
``search/``
    keras-tuner's project: ``oracle.json`` and ``trial_NN/executionK/`` run
    folders (``history.csv``, ``tensorboard/`` with the trial's
    hyper-parameters in the HPARAMS tab, ``best.keras``, ``backup/``).
``trials.csv``, ``trials.md``, ``trials.png``
    every trial's values and scores, and score against trial.
``best.yaml``
    a config whose ``fit:`` section trains the best trial's setting:
    ``bubblenet fit --config OUT/best.yaml``.

A killed search continues where it stopped when the same command is run again
(the interrupted trial resumes from its last epoch); ``--overwrite`` starts
again. With ``KERASTUNER_TUNER_ID``, ``KERASTUNER_ORACLE_IP`` and
``KERASTUNER_ORACLE_PORT`` set, processes share one search: the one with
``KERASTUNER_TUNER_ID=chief`` runs the oracle and writes the results, the
others (any other id) run trials (see the README).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import yaml

from bubblenet.cli import make_parser, run_verb
from bubblenet.errors import ConfigError, InputError
from bubblenet.training.config import DEMO_SKY_FOLDER

log = logging.getLogger("bubblenet.tune")

DESCRIPTION = """\
Search fit's hyper-parameters by Bayesian optimisation of the validation F2
(keras-tuner), starting from the fit options of the config file (its 'fit:'
section, then its 'tune:' section) and flags. Writes a table and plot of the
trials and best.yaml, a config that 'bubblenet fit' trains. With no survey,
searches on the demo sky of 'bubblenet fit'. Run the same command again to
continue a killed search.
"""

#: Keys of a config's ``fit:`` section that are not the search's (its own
#: output folder is ``tune: out``).
_FIT_ONLY = ("out", "overwrite")


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    from bubblenet.fit import add_fit_options

    parser = make_parser(prog, DESCRIPTION, section="tune")
    parser.set_defaults(_base_sections=(("fit", _FIT_ONLY),))
    for action in parser._actions:
        if action.dest == "config":
            action.help = ("config file (e.g. experiments/demo.yaml): its 'fit:' section, then its 'tune:' section, "
                           "set defaults that command-line flags override")
    add_fit_options(parser)
    parser.add_argument("--demo-sky", type=Path, default=DEMO_SKY_FOLDER,
                        help="where the demo's synthetic sky is drawn (or found) when no survey is given")
    search = parser.add_argument_group("search")
    search.add_argument("--trials", type=int, default=10, help="trials in all (those already run count)")
    search.add_argument("--executions", type=int, default=1,
                        help="fit runs per trial (seeds seed, seed + 1, ...), scores averaged")
    search.add_argument("--initial-points", type=int, default=None,
                        help="random trials before the Gaussian process (default: 3 per searched value)")
    search.add_argument("--space", type=_space_option, default=None, metavar="YAML",
                        help="changes to the search space, e.g. '{lr: {min: 1.0e-5, max: 1.0e-2, log: true}, "
                             "anchor_scale: null}' (see bubblenet.training.search_space)")
    search.add_argument("--overwrite", action="store_true",
                        help="discard an earlier search in --out (or search in a folder that holds other things)")
    parser.add_argument("--out", type=Path, default=Path("runs/tune"), help="search folder")
    return parser


def _space_option(text: str):
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise argparse.ArgumentTypeError(f"not YAML: {err}") from None
    if value is not None and not isinstance(value, dict):
        raise argparse.ArgumentTypeError("expected a mapping of option: range")
    return value


def run(args: argparse.Namespace) -> int:
    import shutil

    from bubblenet.data import fit_config
    from bubblenet.outputs import claim_output_dir, ensure_dir, run_record, write_json
    from bubblenet.training.run import open_training_survey, prepare_demo
    from bubblenet.training.search_space import resolve_space
    from bubblenet.training.tuning import is_worker, make_tuner, trial_rows, write_results

    if args.trials < 1 or args.executions < 1:
        raise ConfigError(f"need --trials >= 1 and --executions >= 1, got {args.trials} and {args.executions}")
    space = resolve_space(args.space)
    config = fit_config(args)
    if config.is_demo:
        config = prepare_demo(config, args.demo_sky)
    worker = is_worker()
    out = ensure_dir(args.out) if worker else claim_output_dir(args.out, "tune", overwrite=args.overwrite)
    if args.overwrite and not worker:
        for name in ("search", "trials.csv", "trials.md", "trials.png", "best.yaml"):
            path = out / name
            shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    if not worker:
        record = {**config.options(), "trials": args.trials, "executions": args.executions,
                  "initial_points": args.initial_points, "space": space}
        write_json(out / "run.json", run_record("tune", record, seed=config.seed))
    survey = open_training_survey(config, out)
    if not survey.split.val:
        raise ConfigError("tuning needs at least one validation tile (--n-val or --val)")
    tuner = make_tuner(config, survey, space, out, trials=args.trials, executions=args.executions,
                   initial_points=args.initial_points, verbose=not args.quiet)
    import keras_tuner

    try:
        tuner.search(verbose=0 if args.quiet else 1)
    except keras_tuner.errors.FatalError as err:
        if isinstance(err.__cause__, InputError):
            raise err.__cause__ from None
        raise
    if worker:
        return 0
    rows = trial_rows(tuner.oracle)
    write_results(rows, config, out)
    done = [r for r in rows if r["status"] == "COMPLETED"]
    if not done:
        raise ConfigError(f"no trial completed; see the trial messages in {out}/search/")
    best, first = max(done, key=lambda r: r["val_f2"]), rows[0]
    print(f"{len(done)} of {len(rows)} trials completed. Best: trial {best['trial']} with validation F2 "
          f"{best['val_f2']:.3f} (precision {best['val_precision']:.3f}, recall {best['val_recall']:.3f}); "
          f"the fit options (trial {first['trial']}): F2 {first['val_f2']:.3f}")
    print(f"table {out}/trials.md, plot {out}/trials.png; train the best: bubblenet fit --config {out}/best.yaml")
    return 0


def main(argv=None, prog=None) -> int:
    return run_verb(build_parser(prog), run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
