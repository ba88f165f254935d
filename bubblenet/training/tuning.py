"""Bayesian search of `fit`'s hyper-parameters with keras-tuner: the work of ``bubblenet tune``.

keras-tuner's `BayesianOptimization` oracle proposes values
(`bubblenet.training.search_space`); each trial is one training run
(`bubblenet.training.run.train`) scored by the validation F2 of the paper's
whole-tile protocol. Trial 0 is the `FitConfig` itself, so the results show
what the search gained over it. `make_tuner` builds the search (resumable in
its folder; distributed when keras-tuner's environment variables say so,
`is_worker`), `trial_rows` reads the trials back and `write_results` writes
``trials.csv``, ``trials.md``, ``trials.png`` and ``best.yaml`` (a config
that ``bubblenet fit`` trains, `best_config`).
"""

from __future__ import annotations

import csv
import io
import math
import os
import socket
from pathlib import Path

import yaml

from bubblenet.errors import InputError

__all__ = ["make_tuner", "is_worker", "trial_rows", "write_results", "best_config", "METRICS"]

#: The scores each trial reports.
METRICS = ("val_f2", "val_precision", "val_recall", "val_threshold", "val_strict_f2")


def is_worker() -> bool:
    """Whether this process runs trials for a chief elsewhere (keras-tuner's distributed mode)."""
    return "KERASTUNER_ORACLE_IP" in os.environ and os.environ.get("KERASTUNER_TUNER_ID", "chief") != "chief"


def make_tuner(config, survey, space, out, *, trials: int, executions: int, initial_points: int | None,
           verbose: bool):
    """The keras-tuner `Tuner` of a search from `config` (a `FitConfig`) over `space`."""
    import keras_tuner

    from bubblenet.training.search_space import apply_values, declare

    class FitHyperModel(keras_tuner.HyperModel):
        """Declares the space; a trial's "model" is the `FitConfig` it gives."""

        def build(self, hp):
            declare(hp, space, config)
            return apply_values(config, hp.values)

    class StartFromFitOracle(keras_tuner.oracles.BayesianOptimizationOracle):
        """Bayesian optimisation whose first trial is the `fit` options (the hyper-parameters' defaults)."""

        def populate_space(self, trial_id):
            if not self.trials:
                return {"status": keras_tuner.engine.trial.TrialStatus.RUNNING,
                        "values": {hp.name: hp.default for hp in self.hyperparameters.space}}
            return super().populate_space(trial_id)

    class FitTuner(keras_tuner.Tuner):
        """Runs each trial as `fit` runs in the trial's folder, resuming an interrupted one."""

        def run_trial(self, trial, *_, **__):
            from bubblenet.outputs import write_json
            from bubblenet.training.run import train, wandb_callbacks

            results = []
            for execution in range(self.executions_per_trial):
                folder = Path(self.get_trial_dir(trial.trial_id)) / f"execution{execution}"
                values = trial.hyperparameters.values
                trial_config = apply_values(config, values, seed=config.seed + execution)
                name = f"trial_{trial.trial_id}" + (f"_execution{execution}" if self.executions_per_trial > 1 else "")
                callbacks = wandb_callbacks(config.wandb, folder, config=dict(values), name=name, group=str(out))
                try:
                    trained = train(trial_config, survey, folder, cache=out / "cache", callbacks=callbacks,
                                    verbose=verbose)
                except InputError as err:
                    raise keras_tuner.errors.FatalError(str(err)) from err
                finally:
                    finish_wandb(config.wandb)
                scores = trained.scores
                result = {"val_f2": scores["f2"], "val_precision": scores["precision"],
                          "val_recall": scores["recall"], "val_threshold": scores["threshold"],
                          "val_strict_f2": scores["strict"]["f2"]}
                _log_hparams(folder / "tensorboard", name, values, result)
                write_json(folder / "execution.json", {
                    "trial": trial.trial_id, "execution": execution, "seed": trial_config.seed,
                    "values": {k: _plain(v) for k, v in values.items()},
                    "scores": result, "tuner_id": self.tuner_id, "host": socket.gethostname(), "pid": os.getpid()})
                results.append(result)
            return results

    oracle = StartFromFitOracle(objective=keras_tuner.Objective("val_f2", "max"), max_trials=trials,
                                num_initial_points=initial_points, seed=config.seed)
    return FitTuner(oracle=oracle, hypermodel=FitHyperModel(), directory=str(out), project_name="search",
                    overwrite=False, executions_per_trial=executions)


def finish_wandb(mode: str) -> None:
    if mode != "off":
        import wandb

        wandb.finish()


def _log_hparams(log_dir: Path, name: str, values: dict, result: dict) -> None:
    """The trial's values and scores for TensorBoard's HPARAMS tab."""
    import tensorflow as tf
    from tensorboard.plugins.hparams import api as hparams

    with tf.summary.create_file_writer(str(log_dir / "hparams")).as_default():
        hparams.hparams({k: _plain(v) for k, v in values.items()}, trial_id=name)
        for key, value in result.items():
            tf.summary.scalar(key, value, step=0)


def trial_rows(oracle) -> list[dict]:
    """One row per trial, in order: id, status, hyper-parameter values, scores (NaN if not completed)."""
    rows = []
    for trial_id in sorted(oracle.trials):
        trial = oracle.trials[trial_id]
        row = {"trial": trial_id, "status": str(trial.status)}
        row.update({k: _plain(v) for k, v in trial.hyperparameters.values.items()})
        for key in METRICS:
            value = trial.metrics.get_last_value(key) if trial.metrics.exists(key) else None
            row[key] = float(value) if value is not None else math.nan
        rows.append(row)
    return rows


def write_results(rows: list[dict], config, out: Path) -> None:
    """``trials.csv``, ``trials.md``, ``trials.png`` and ``best.yaml`` in `out`, each written atomically."""
    from bubblenet.outputs import atomic_path

    columns = list(dict.fromkeys(k for row in rows for k in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns)
    writer.writeheader()
    writer.writerows(rows)
    with atomic_path(out / "trials.csv") as tmp:
        tmp.write_text(buffer.getvalue())
    with atomic_path(out / "trials.md") as tmp:
        tmp.write_text(_markdown(rows, columns))
    with atomic_path(out / "trials.png") as tmp:
        _plot(rows, tmp)
    done = [r for r in rows if r["status"] == "COMPLETED"]
    if done:
        best = max(done, key=lambda r: r["val_f2"])
        with atomic_path(out / "best.yaml") as tmp:
            tmp.write_text(best_config(best, config, out))


def _markdown(rows: list[dict], columns: list[str]) -> str:
    def cell(value):
        if isinstance(value, float):
            return "" if math.isnan(value) else f"{value:.4g}"
        return str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    scores = np.array([r["val_f2"] for r in rows], float)
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
    ax.plot(x, scores, "o", label="trial")
    ax.plot(x, np.fmax.accumulate(np.nan_to_num(scores, nan=-np.inf)), "-", drawstyle="steps-post",
            label="best so far")
    ax.axhline(scores[0], color="0.6", ls=":", label="fit options (trial 0)")
    ax.set(xlabel="trial", ylabel="validation F2", xticks=x)
    ax.legend(loc="lower right", fontsize="small")
    fig.savefig(path, format="png", dpi=120)
    plt.close(fig)


def best_config(best: dict, config, out: Path) -> str:
    """A config file whose ``fit:`` section is `config` (a `FitConfig`) with the best trial's values.

    It lists the options that differ from the defaults, and the searched ones always (to be read).
    """
    from bubblenet.training.config import FitConfig
    from bubblenet.training.search_space import apply_values

    values = {k: v for k, v in best.items() if k not in ("trial", "status", *METRICS)}
    tuned, defaults = apply_values(config, values).options(), FitConfig().options()
    searched = {"cluster_weights" if k.startswith("cluster_weight_") else k for k in values}
    section = {}
    for name, value in tuned.items():
        if value != defaults[name] or name in searched:
            if name in ("survey", "i8", "m24") and value:  # the config may be used from another folder
                value = Path(value) if name == "survey" else [Path(p) for p in value]
            section[name.replace("_", "-")] = _plain(value)
    section["out"] = str(out / "best_fit")
    header = (f"# Written by 'bubblenet tune' ({out}): trial {best['trial']}, validation F2 {best['val_f2']:.4f} "
              f"(precision {best['val_precision']:.4f}, recall {best['val_recall']:.4f}).\n"
              f"# Train it with: bubblenet fit --config {out / 'best.yaml'}\n")
    return header + yaml.safe_dump({"fit": section}, sort_keys=False)


def _plain(value):
    """YAML-safe: paths as strings, numpy scalars as Python numbers, sequences as lists."""
    if isinstance(value, Path):
        return str(value.resolve())  # the config may be used from another folder
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value.item() if hasattr(value, "item") else value
