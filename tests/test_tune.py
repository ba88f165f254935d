"""`bubblenet tune`: the search space, a 2-trial search that round-trips into `fit`, resuming, chief + workers."""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import keras_tuner
import pytest
import yaml

from bubblenet.errors import ConfigError
from bubblenet.training.search_space import DEFAULT_SPACE, apply_values, declare, resolve_space
from conftest import TINY_FIT


def _fit_config(**changes):
    from bubblenet.training.config import FitConfig

    return FitConfig(**changes)


def test_space_has_the_papers_ranges_and_checks_changes():
    space = resolve_space(None)
    assert space["lr"] == {"min": 1e-6, "max": 1e-3, "log": True} == space["weight_decay"]
    assert space["positives"] == [2, 4, 8, 16, 32] and space["negatives"] == {"min": 1, "max": 6}
    narrowed = resolve_space({"lr": {"min": 1e-4, "max": 1e-2, "log": True}, "anchor-scale": None})
    assert narrowed["lr"]["max"] == 1e-2 and "anchor_scale" not in narrowed
    for bad in ({"seed": [0, 1]}, {"lr": {"min": 1e-3, "max": 1e-4}}, {"lr": {"min": 0, "max": 1, "log": True}},
                {"negatives": {"low": 1}}, {"positives": []}):
        with pytest.raises(ConfigError):
            resolve_space(bad)


def test_declared_defaults_are_the_fit_options_and_values_map_back():
    args = _fit_config(lr=2e-4, positives=16, clusters=4, drop_clusters=[2], cluster_weights=None)
    hp = keras_tuner.HyperParameters()
    declare(hp, resolve_space(None), args)
    defaults = {p.name: p.default for p in hp.space}
    assert defaults["lr"] == 2e-4 and defaults["positives"] == 16 and defaults["clip_sigma"] == 3.0
    assert sorted(n for n in defaults if n.startswith("cluster_weight")) == \
        ["cluster_weight_0", "cluster_weight_1", "cluster_weight_3"]  # cluster 2 is dropped
    tuned = apply_values(args, {"lr": 5e-5, "negatives": 3, "cluster_weight_1": 0.25}, seed=7)
    assert (tuned.lr, tuned.negatives, tuned.seed) == (5e-5, 3, 7)
    assert tuned.cluster_weights == (1.0, 0.25, 1.0, 1.0) and args.lr == 2e-4  # a copy
    # Outside the range, trial 0 starts from the nearest value rather than failing.
    hp = keras_tuner.HyperParameters()
    declare(hp, {"lr": DEFAULT_SPACE["lr"]}, _fit_config(lr=2e-3))
    assert hp.space[0].default == 1e-3


def _tune(sky, out, *extra):
    return [sys.executable, "-m", "bubblenet.tune", "--survey", str(sky), *TINY_FIT, "--out", str(out), "-q",
            *extra]


def _rows(out: Path) -> list[dict]:
    with open(out / "trials.csv", newline="") as stream:
        return list(csv.DictReader(stream))


def test_two_trial_search_writes_results_and_its_best_config_trains(fit_sky, tmp_path):
    from bubblenet.tune import main

    out = tmp_path / "search"
    assert main(["--survey", str(fit_sky), *TINY_FIT, "--epochs", "1", "--trials", "2", "--out", str(out),
                 "--space", "{max_crop_scale: null, lr: {min: 1.0e-5, max: 1.0e-2, log: true}}", "-q"]) == 0
    rows = _rows(out)
    assert [r["trial"] for r in rows] == ["0", "1"] and {r["status"] for r in rows} == {"COMPLETED"}
    assert float(rows[0]["lr"]) == 1e-4 and int(rows[0]["positives"]) == 4  # trial 0: the fit options
    assert "max_crop_scale" not in rows[0] and rows[0] != rows[1]
    scores = [float(r["val_f2"]) for r in rows]
    assert all(0 <= s <= 1 for s in scores)
    for name in ("trials.md", "trials.png", "run.json", "best.yaml"):
        assert (out / name).stat().st_size > 0, name
    # Each trial is its own run folder, with its values in TensorBoard's HPARAMS tab.
    for trial in ("trial_0", "trial_1"):
        run = out / "search" / trial / "execution0"
        assert (run / "best.keras").exists() and (run / "history.csv").exists()
        assert list((run / "tensorboard" / "hparams").glob("events.out.tfevents.*"))

    best = rows[max(range(2), key=lambda i: scores[i])]
    config = yaml.safe_load((out / "best.yaml").read_text())["fit"]
    assert config["lr"] == pytest.approx(float(best["lr"])) and config["positives"] == int(best["positives"])
    assert config["anchor-scale"] == pytest.approx(float(best["anchor_scale"])) or best["trial"] == "0"

    from bubblenet.fit import main as fit

    trained = tmp_path / "fit"
    assert fit(["--config", str(out / "best.yaml"), "--out", str(trained), "-q"]) == 0
    record = json.loads((trained / "run.json").read_text())["options"]
    assert record["lr"] == pytest.approx(float(best["lr"])) and record["negatives"] == int(best["negatives"])
    info = json.loads((trained / "model_info.json").read_text())
    assert info["normalisation"]["clip_sigma"] == pytest.approx(float(best["clip_sigma"]))
    from bubblenet.ssd.model import PRESETS

    lite = PRESETS["lite"]["anchors"].min_sizes
    assert info["anchors"]["min_sizes"] == pytest.approx([s * float(best["anchor_scale"]) for s in lite])


@pytest.mark.slow
def test_killed_search_continues_where_it_stopped(fit_sky, tmp_path):
    out = tmp_path / "search"
    command = _tune(fit_sky, out, "--epochs", "3", "--steps-per-epoch", "30", "--trials", "2",
                    "--space", "{anchor_scale: null, clip_sigma: null}")
    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    history = out / "search" / "trial_0" / "execution0" / "history.csv"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and first.poll() is None:
        if history.exists() and len(history.read_text().splitlines()) >= 2:  # header + epoch 0
            break
        time.sleep(0.2)
    time.sleep(1.0)
    assert first.poll() is None, "the search ended before it could be interrupted"
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert not (out / "trials.csv").exists()

    assert subprocess.run(command, capture_output=True).returncode == 0
    rows = _rows(out)
    assert [r["trial"] for r in rows] == ["0", "1"] and {r["status"] for r in rows} == {"COMPLETED"}
    with open(history, newline="") as stream:  # trial 0 resumed: each epoch once
        assert [int(r["epoch"]) for r in csv.DictReader(stream)] == [0, 1, 2]
    # Asking again for the same number of trials runs nothing more; --overwrite starts again.
    again = subprocess.run(command, capture_output=True, text=True)
    assert again.returncode == 0 and _rows(out) == rows


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # 65 s on 2 cores; a distributed search is the single-process one's oracle shared (test_tune's others)
def test_chief_and_two_workers_share_one_search(fit_sky, tmp_path):
    out = tmp_path / "search"
    command = _tune(fit_sky, out, "--epochs", "1", "--trials", "2")
    env = {**os.environ, "KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": str(_free_port())}
    chief = subprocess.Popen(command, env={**env, "KERASTUNER_TUNER_ID": "chief"}, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    time.sleep(8)  # let the chief's oracle come up (workers retry, but not for ever)
    workers = [subprocess.Popen(command, env={**env, "KERASTUNER_TUNER_ID": f"tuner{i}"}, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True) for i in range(2)]
    try:
        logs = [w.communicate(timeout=400)[0] for w in workers]
        assert [w.returncode for w in workers] == [0, 0], logs
        chief_log = chief.communicate(timeout=120)[0]
        assert chief.returncode == 0, chief_log
    finally:
        for p in (chief, *workers):
            if p.poll() is None:
                p.kill()
    rows = _rows(out)
    assert [r["trial"] for r in rows] == ["0", "1"] and {r["status"] for r in rows} == {"COMPLETED"}
    # Each worker ran one trial (they ran at the same time, so neither could take both).
    runners = [json.loads((out / "search" / f"trial_{i}" / "execution0" / "execution.json").read_text())["tuner_id"]
               for i in range(2)]
    assert sorted(runners) == ["tuner0", "tuner1"] and (out / "best.yaml").exists()


def test_bad_search_options_are_clear_errors(tmp_path, capsys):
    from bubblenet.tune import main

    out = tmp_path / "never"
    assert main(["--space", "{seed: [0, 1]}", "--out", str(out)]) == 2
    assert "cannot search 'seed'" in capsys.readouterr().err
    assert main(["--trials", "0", "--out", str(out)]) == 2
    assert "--trials" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        main(["--space", "[unclosed", "--out", str(out)])
    assert stop.value.code == 2 and "--space" in capsys.readouterr().err
    assert not out.exists()
