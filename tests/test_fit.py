"""`bubblenet fit` end to end on a tiny sky: run folder, export, and resuming after an interruption."""

from __future__ import annotations

import csv
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from conftest import REPO, TINY_FIT


@pytest.fixture(scope="module")
def sky(fit_sky):
    return fit_sky


def _fit(sky, out, epochs):
    from bubblenet.fit import main

    return main(["--survey", str(sky), *TINY_FIT, "--epochs", str(epochs), "--out", str(out), "-q"])


def test_fit_writes_a_run_and_resumes(sky, tmp_path, capsys):
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
    # TensorBoard gets the learning rate and a panel of validation detections.
    with open(out / "history.csv") as handle:
        assert float(next(csv.DictReader(handle))["learning_rate"]) == pytest.approx(1e-4)
    events = list((out / "tensorboard" / "detections").glob("events.out.tfevents.*"))
    assert events
    tags = set()
    for event in tf.compat.v1.train.summary_iterator(str(events[0])):
        tags |= {v.tag for v in event.summary.value}
    assert any(tag.startswith("validation/GLM_") for tag in tags)

    # The run folder is a detector, and `bubblenet export` turns it into a SavedModel.
    from bubblenet.detection.detector import load_detector
    from bubblenet.export import main as export

    detector = load_detector(out)
    assert detector.threshold == validation["best"]["threshold"] and detector.preset == "lite"
    assert detector.info["validation"]["f2"] == validation["best"]["f2"] and "test" in detector.info
    image = np.random.default_rng(1).uniform(size=(2, 128, 128, 2)).astype(np.float32)
    assert export(["--model", str(out), "--out", str(tmp_path / "same"), "-q"]) == 0
    same_model = tf.saved_model.load(str(tmp_path / "same"))  # keep: its variables live in it
    same = same_model.serve(image)
    as_fit = loaded.serve(image)
    np.testing.assert_allclose(same["boxes"], as_fit["boxes"], atol=1e-6)
    assert export(["--model", str(out / "best.keras"), "--out", str(tmp_path / "strict"), "--threshold", "0.99",
                   "-q"]) == 0
    strict_model = tf.saved_model.load(str(tmp_path / "strict"))
    strict = strict_model.serve(image)
    assert (strict["counts"].numpy() <= as_fit["counts"].numpy()).all()
    assert json.loads((tmp_path / "strict" / "model_info.json").read_text())["threshold"] == 0.99

    # Run the same command with more epochs: training continues from the backup, not from scratch.
    assert _fit(sky, out, 2) == 0
    with open(out / "history.csv") as handle:
        epochs = [int(row["epoch"]) for row in csv.DictReader(handle)]
    assert epochs == [0, 1]

    # ... but not with another recipe, which would mix two in one detector (e.g. a default changed since).
    from bubblenet.fit import main

    before = (out / "run.json").read_text()
    code = main(["--survey", str(sky), *TINY_FIT, "--epochs", "3", "--label-all-bubbles", "--out", str(out), "-q"])
    assert code == 2
    message = capsys.readouterr().err
    assert "other options (label-selected-only: True then, False now)" in message and str(out) in message
    assert (out / "run.json").read_text() == before


def test_fit_without_validation_tiles_is_a_clear_error(sky, tmp_path, capsys):
    from bubblenet.fit import main

    status = main(["--survey", str(sky), "--test-l", "30", "--n-val", "0", "--out", str(tmp_path / "x"), "-q"])
    assert status == 2
    assert capsys.readouterr().err.splitlines() == [
        "python -m bubblenet.fit: error: training needs at least one validation tile (--n-val or --val)"]



def test_detection_panel_draws_boxes():
    from bubblenet.training.validation import detection_panel

    data = np.random.default_rng(0).uniform(size=(100, 200, 2)).astype(np.float32)
    panel = detection_panel(data, np.array([[10, 10, 30, 30]]), np.array([[50, 50, 80, 80]]), max_pixels=100)
    assert panel.shape == (50, 100, 3) and panel.dtype == np.uint8
    assert (panel == [0, 255, 0]).all(axis=-1).sum() > 10 and (panel == 255).all(axis=-1).sum() > 10


@pytest.mark.slow
def test_demo_mode_draws_its_sky_and_reports_test_tiles(tmp_path, monkeypatch, capsys):
    import bubblenet.fit as fit
    import bubblenet.training.config as config

    monkeypatch.setattr(config, "DEMO_SKY", {"l": (26.0, 34.0), "b": (-1.0, 1.0), "pixscale": 9.6, "seed": 1})
    monkeypatch.setattr(config, "DEMO_OPTIONS", {"n_val": 1, "epochs": 1, "val_sizes": (900.0, 1800.0),
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


class _Scripted:
    """Stand-in for `SurveyValidation.evaluate`: returns F2 values from a list, counting calls."""

    def __init__(self, values):
        self.values, self.calls = list(values), 0

    def __call__(self):
        f2 = self.values[self.calls]
        self.calls += 1
        row = {"threshold": 0.5, "f2": f2, "f1": f2, "precision": f2, "recall": f2, "strict": {"f2": f2}}
        return row, [row]


def _run_epochs(validation, epochs, *, total, first=0):
    validation.set_params({"epochs": total})
    validation.on_train_begin()
    logs = []
    for epoch in range(first, first + epochs):
        validation.on_epoch_begin(epoch)
        entry = {}
        validation.on_epoch_end(epoch, entry)
        logs.append(entry["val_f2"])
    return logs


def test_validation_runs_every_n_epochs_and_at_the_end_and_keeps_the_best():
    from bubblenet.ssd.model import PRESETS
    from bubblenet.training.validation import SurveyValidation

    validation = SurveyValidation([], None, PRESETS["lite"]["anchors"], every=3)
    validation.evaluate = _Scripted([0.4, 0.7, 0.6])
    logs = _run_epochs(validation, 7, total=7)
    # NaN until the first validation (epoch 3), fresh scores at 3 and 6 and at the last epoch (7).
    assert np.isnan(logs[:2]).all() and logs[2:] == [0.4, 0.4, 0.4, 0.7, 0.6]
    assert validation.evaluate.calls == 3 and validation.best[0]["f2"] == 0.7

    # Resumed at epoch 4 (BackupAndRestore): validated at once, not left at NaN until epoch 6.
    resumed = SurveyValidation([], None, PRESETS["lite"]["anchors"], every=3)
    resumed.evaluate = _Scripted([0.5, 0.8, 0.6])
    assert _run_epochs(resumed, 3, total=7, first=4) == [0.5, 0.8, 0.6]


def test_nan_before_the_first_validation_neither_checkpoints_nor_stops(tmp_path):
    import math

    import keras

    from bubblenet.ssd.model import PRESETS
    from bubblenet.training.validation import SurveyValidation

    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    validation = SurveyValidation([], None, PRESETS["lite"]["anchors"], every=3)
    validation.evaluate = _Scripted([0.2, 0.3, 0.1])
    saved = []

    class Saves(keras.callbacks.ModelCheckpoint):
        """Records the epochs it would save at (its own rule), without writing files."""

        def _should_save_model(self, epoch, batch, logs, filepath):
            if super()._should_save_model(epoch, batch, logs, filepath):
                saved.append(epoch)
            return False

    stop = keras.callbacks.EarlyStopping(monitor="val_f2", mode="max", patience=3, start_from_epoch=2)
    model.fit(np.zeros((4, 1)), np.zeros((4, 1)), epochs=8, verbose=0, callbacks=[
        validation, Saves(tmp_path / "best.keras", monitor="val_f2", mode="max", save_best_only=True,
                          initial_value_threshold=-math.inf), stop])
    assert saved == [2, 5]  # the two improvements, not the NaN epochs
    assert validation.evaluate.calls == 3 and stop.stopped_epoch == 0  # ran all 8 epochs: 0.3 at epoch 6 is fresh


def test_cosine_schedule_decays_to_zero():
    import keras

    from bubblenet.training.validation import OptimiserConfig, compile_model

    model = compile_model(keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)]),
                          OptimiserConfig(learning_rate=1e-3, decay_steps=10))
    model.compile(optimizer=model.optimizer, loss="mse")  # the schedule is the optimiser's, whatever the loss
    model.fit(np.zeros((5, 1)), np.zeros((5, 1)), epochs=1, batch_size=1, verbose=0)  # 5 steps
    halfway = float(model.optimizer.learning_rate)
    schedule = model.optimizer._learning_rate
    rates = [float(schedule(step)) for step in (0, 5, 10)]
    assert halfway == pytest.approx(rates[1])
    assert rates[0] == pytest.approx(1e-3) and rates[1] == pytest.approx(5e-4) and rates[2] == pytest.approx(0.0)


def test_damaged_or_incomplete_detectors_are_clear_errors(tmp_path, capsys):
    from bubblenet.export import main as export
    from bubblenet.ssd.model import PRESETS

    folder = tmp_path / "damaged"
    folder.mkdir()
    (folder / "model.keras").write_bytes(b"PK\x03\x04 not really a zip")
    assert export(["--model", str(folder), "--out", str(tmp_path / "x")]) == 2
    assert "model_info.json" in capsys.readouterr().err  # missing description named first
    (folder / "model_info.json").write_text(json.dumps(
        {"preset": "lite", "threshold": 0.5, "anchors": PRESETS["lite"]["anchors"].to_dict()}))
    assert export(["--model", str(folder), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "cannot load the model" in err and "model.keras" in err
    assert not (tmp_path / "x").exists()
    assert export(["--model", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x")]) == 2
    assert f"error: {tmp_path / 'nowhere'}: no such model" in capsys.readouterr().err


@pytest.mark.slow
def test_fit_killed_mid_epoch_resumes_to_the_same_end(sky, tmp_path):
    """SIGKILL during the second epoch; the same command then finishes all epochs once each."""
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "run"
    command = [sys.executable, "-m", "bubblenet.fit", "--survey", str(sky), "--test-l", "30", "--n-val", "1",
               "--epochs", "3", "--steps-per-epoch", "40", "--positives", "4", "--negatives", "2",
               "--negatives-per-tile", "20", "--val-sizes", "900", "1800", "--val-stride", "1.0", "--out", str(out),
               "-q"]
    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    history = out / "history.csv"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and first.poll() is None:
        if history.exists() and len(history.read_text().splitlines()) >= 2:  # header + epoch 0
            break
        time.sleep(0.2)
    time.sleep(1.0)  # into epoch 1
    assert first.poll() is None, "the run ended before it could be interrupted"
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert not (out / "model.keras").exists()

    assert subprocess.run(command, capture_output=True).returncode == 0
    with open(history) as handle:
        assert [int(row["epoch"]) for row in csv.DictReader(handle)] == [0, 1, 2]
    from bubblenet.detection.detector import load_detector

    assert load_detector(out).model.count_params() > 0


@pytest.mark.slow
def test_an_8um_only_detector_never_sees_24um(sky, tmp_path, capsys):
    """fit --bands 8: training inputs, the detector record, the SavedModel and detect all drop 24 µm."""
    from bubblenet.detect import main as detect
    from bubblenet.fit import main

    out = tmp_path / "shells"
    assert main(["--survey", str(sky), *TINY_FIT, "--epochs", "1", "--bands", "8", "--out", str(out), "-q"]) == 0
    info = json.loads((out / "model_info.json").read_text())
    assert info["bands"] == "8"
    served = tf.saved_model.load(str(out / "savedmodel"))
    image = np.random.default_rng(3).uniform(size=(1, 128, 128, 2)).astype(np.float32)
    other = image.copy()
    other[..., 0] = np.random.default_rng(4).uniform(size=(1, 128, 128))
    np.testing.assert_allclose(served.serve(image)["scores"], served.serve(other)["scores"], atol=1e-6)
    # The shipped (24 + 8 µm) detector cannot be asked for 8 µm only; this one runs with --bands 8.
    assert detect(["--survey", str(sky), "--bands", "8", "--out", str(tmp_path / "x"), "-q"]) == 2
    assert "--bands 8" in capsys.readouterr().err and not (tmp_path / "x").exists()
    assert detect(["--survey", str(sky), "--model", str(out), "--bands", "8", "--sizes", "900", "1800",
                   "--no-previews", "--out", str(tmp_path / "d"), "-q"]) == 0
    from astropy.table import Table

    assert Table.read(tmp_path / "d" / "bubbles.ecsv").meta["bands"] == "8"


@pytest.mark.slow
def test_fit_runs_with_every_switch_of_the_original_and_records_them(sky, tmp_path):
    """The lite network trained with every training- and search-side switch of experiments/paper.yaml set to
    the original's value: the run works end to end, and the detector records the rules detection needs."""
    from bubblenet.detection.detector import load_detector
    from bubblenet.fit import main

    out = tmp_path / "paper_switches"
    switches = ["--missing-data", "fill-max", "--label-selected-only", "--mask-selected-only", "--norm-level",
                "paper", "--crop-rule", "paper", "--samples-per-bubble", "7", "--paper-exact", "--loss-norm",
                "paper", "--init", "kaiming", "--clip", "value", "--val-origin", "paper", "--val-mode", "paper",
                "--val-per-window", "100", "--val-per-tile", "0", "--threshold-step", "0.01"]
    assert main(["--survey", str(sky), *TINY_FIT, "--epochs", "1", *switches, "--out", str(out), "-q"]) == 0
    validation = json.loads((out / "validation.json").read_text())
    assert len(validation["sweep"]) == 46  # 0.50, 0.51, ..., 0.95
    detector = load_detector(out)
    search = detector.search
    assert (search.origin, search.mode, search.missing, search.per_window, search.per_tile) == (
        "paper", "paper", "fill-max", 100, None)
    assert detector.normalisation.level == "paper" and detector.normalisation.stars == "weighted"
    record = json.loads((out / "run.json").read_text())["options"]
    assert record["loss_norm"] == "paper" and record["init"] == "kaiming" and record["samples_per_bubble"] == 7


def test_merge_skies_joins_strips_into_one_survey_that_fit_reads(tmp_path, capsys):
    """Two strips drawn apart (as a training sky that skips the real field must be) read as one survey."""
    import importlib.util

    from bubblenet.synth import Region, SynthConfig, make_survey
    from bubblenet.training_data.samples import survey_inputs

    spec = importlib.util.spec_from_file_location("merge_skies", REPO / "experiments" / "merge_skies.py")
    merge_skies = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(merge_skies)
    west, east = tmp_path / "west", tmp_path / "east"
    make_survey(west, SynthConfig(Region(26.0, 28.4, -1.0, 1.0), 9.6, seed=1))
    make_survey(east, SynthConfig(Region(31.6, 34.0, -1.0, 1.0), 9.6, seed=2))
    assert merge_skies.main([str(west), str(east), "--out", str(tmp_path / "sky")]) == 0
    tiles, catalogue, selection = survey_inputs(folder=tmp_path / "sky")
    parts = [survey_inputs(folder=strip) for strip in (west, east)]
    assert len(tiles) == sum(len(part[0]) for part in parts) == 2
    assert len(catalogue) == sum(len(part[1]) for part in parts) > 0
    assert set(selection) == set(parts[0][2]) | set(parts[1][2]) and len(selection) > 0
    links = sorted((tmp_path / "sky").glob("*.fits"))
    assert links and all(path.is_symlink() and not os.path.isabs(os.readlink(path)) for path in links)
    # A folder already written, or one strip given twice, is refused with exit status 2 and the reason.
    assert merge_skies.main([str(west), str(east), "--out", str(tmp_path / "sky")]) == 2
    assert "already exists" in capsys.readouterr().err
    assert merge_skies.main([str(west), str(west), "--out", str(tmp_path / "again")]) == 2
    assert "is in both" in capsys.readouterr().err and not (tmp_path / "again").exists()
