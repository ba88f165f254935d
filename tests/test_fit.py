"""`bubblenet fit` end to end on a tiny sky: run folder, export, and resuming after an interruption."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import tensorflow as tf

from bubblenet.synth import Region, SynthConfig, make_survey


@pytest.fixture(scope="module")
def sky(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fit_sky")
    make_survey(folder, SynthConfig(Region(26.0, 34.0, -1.0, 1.0), 9.6, seed=4))
    return folder


def _fit(sky, out, epochs):
    from bubblenet.fit import main

    return main(["--survey", str(sky), "--test-l", "30", "--n-val", "1", "--epochs", str(epochs),
                 "--steps-per-epoch", "2", "--positives", "4", "--negatives", "2", "--negatives-per-tile", "20",
                 "--val-sizes", "900", "1800", "--val-stride", "1.0", "--out", str(out), "-q"])


def test_fit_writes_a_run_and_resumes(sky, tmp_path):
    out = tmp_path / "run"
    assert _fit(sky, out, 1) == 0
    for name in ("run.json", "split.json", "history.csv", "model.keras", "validation.json"):
        assert (out / name).exists(), name
    record = json.loads((out / "run.json").read_text())
    assert record["seed"] == 0 and "keras" in record["versions"]
    validation = json.loads((out / "validation.json").read_text())
    assert 0.5 <= validation["best"]["threshold"] <= 0.95 and len(validation["sweep"]) == 10
    loaded = tf.saved_model.load(str(out / "savedmodel"))  # keep a reference: its variables live in it
    served = loaded.serve(tf.zeros((1, 128, 128, 2)))
    assert served["boxes"].shape == (1, 100, 4)
    info = json.loads((out / "savedmodel" / "model_info.json").read_text())
    assert info["threshold"] == validation["best"]["threshold"] and info["preset"] == "lite"

    # Run the same command with more epochs: training continues from the backup, not from scratch.
    assert _fit(sky, out, 2) == 0
    with open(out / "history.csv") as handle:
        epochs = [int(row["epoch"]) for row in csv.DictReader(handle)]
    assert epochs == [0, 1]


def test_fit_without_validation_tiles_is_a_clear_error(sky, tmp_path):
    from bubblenet.fit import main

    status = main(["--survey", str(sky), "--test-l", "30", "--n-val", "0", "--out", str(tmp_path / "x"), "-q"])
    assert status == 2
