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


def test_tensorboard_gets_learning_rate_and_detection_panel(sky, tmp_path):
    out = tmp_path / "tb"
    assert _fit(sky, out, 1) == 0
    with open(out / "history.csv") as handle:
        row = next(csv.DictReader(handle))
    assert float(row["learning_rate"]) == pytest.approx(1e-4)
    events = list((out / "tensorboard" / "detections").glob("events.out.tfevents.*"))
    assert events
    tags = set()
    for event in tf.compat.v1.train.summary_iterator(str(events[0])):
        tags |= {v.tag for v in event.summary.value}
    assert any(tag.startswith("validation/GLM_") for tag in tags)


def test_detection_panel_draws_boxes():
    from bubblenet.training import detection_panel

    data = np.random.default_rng(0).uniform(size=(100, 200, 2)).astype(np.float32)
    panel = detection_panel(data, np.array([[10, 10, 30, 30]]), np.array([[50, 50, 80, 80]]), max_pixels=100)
    assert panel.shape == (50, 100, 3) and panel.dtype == np.uint8
    assert (panel == [0, 255, 0]).all(axis=-1).sum() > 10 and (panel == 255).all(axis=-1).sum() > 10


def test_demo_mode_draws_its_sky_and_reports_test_tiles(tmp_path, monkeypatch, capsys):
    import bubblenet.fit as fit

    monkeypatch.setattr(fit, "DEMO_SKY", {"l": (26.0, 34.0), "b": (-1.0, 1.0), "pixscale": 9.6, "seed": 1})
    monkeypatch.setattr(fit, "DEMO_OPTIONS", {"n_val": 1, "epochs": 1, "val_sizes": [900.0, 1800.0],
                                              "val_stride": 1.0})
    status = fit.main(["--demo-sky", str(tmp_path / "sky"), "--test-l", "30", "--steps-per-epoch", "1",
                       "--positives", "2", "--negatives", "1", "--negatives-per-tile", "10",
                       "--out", str(tmp_path / "run"), "-q"])
    assert status == 0
    assert (tmp_path / "sky" / "synth_run.json").exists()
    report = json.loads((tmp_path / "run" / "test.json").read_text())
    assert report["tiles"] == ["GLM_03000+0000_mosaic_I4"]
    assert report["scores"]["tp"] + report["scores"]["fn"] > 0  # the test tile's clear bubbles are counted
    assert (tmp_path / "run" / "test_detections.png").exists()
    assert "test tiles GLM_03000+0000_mosaic_I4: recall" in capsys.readouterr().out
