"""Hostile inputs through the command line: each gives exit status 2, one message naming the file, no output.

Every case builds a damaged copy of one valid input (a small 8 µm + 24 µm
pair, a catalogue, a detector folder) and runs the verb that reads it in a
fresh process, as a user would.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from conftest import REPO, car_header, write_fits

ENV = {**os.environ, "PYTHONPATH": str(REPO)}
SHAPE = (120, 160)


def _pair(folder: Path) -> tuple[Path, Path]:
    """A valid 8 µm / 24 µm pair at l = 30° (noise), 2″/px."""
    rng = np.random.default_rng(0)
    i8 = write_fits(folder / "good_I4.fits", 50 + rng.normal(size=SHAPE), car_header(SHAPE))
    m24 = write_fits(folder / "good_024.fits", 20 + rng.normal(size=SHAPE), car_header(SHAPE))
    return i8, m24


def _fits(folder: Path, name: str, data=None, header=None, **cards) -> Path:
    header = car_header(SHAPE) if header is None else header
    for key, value in cards.items():
        if value is None:
            header.remove(key, ignore_missing=True)
        else:
            header[key] = value
    data = np.random.default_rng(1).normal(50, 1, SHAPE) if data is None else data
    return write_fits(folder / name, data, header)


def _truncated(folder: Path) -> Path:
    good = _fits(folder, "whole_I4.fits")
    path = folder / "truncated_I4.fits"
    path.write_bytes(good.read_bytes()[: 2880 + 1000])  # header and a sliver of the data
    return path


def _text_file(folder: Path) -> Path:
    path = folder / "text_I4.fits"
    path.write_text("hello, this is not an image")
    return path


def _linear_wcs(folder: Path) -> Path:
    header = fits.Header({"CTYPE1": "LINEAR", "CTYPE2": "LINEAR", "CRPIX1": 1.0, "CRPIX2": 1.0, "CDELT1": 1.0,
                          "CDELT2": 1.0, "CRVAL1": 0.0, "CRVAL2": 0.0, "BUNIT": "MJy/sr"})
    return _fits(folder, "linear_I4.fits", header=header)


def _detect(i8: Path, m24: Path, out: Path, *extra: str) -> list[str]:
    return ["bubblenet.detect", "--i8", str(i8), "--m24", str(m24), "--out", str(out), "--no-previews", *extra]


def _fits_case(make_bad, band: str):
    """A detect run where the `band` ("8" or "24") input is replaced by ``make_bad(folder)``."""
    def case(folder: Path, out: Path):
        i8, m24 = _pair(folder)
        bad = make_bad(folder)
        return (_detect(bad, m24, out) if band == "8" else _detect(i8, bad, out)), bad.name
    return case


def _far_24um(folder: Path, out: Path):
    i8, m24 = _pair(folder)
    far = _fits(folder, "far_024.fits", header=car_header(SHAPE, lon=50.0))
    return ["bubblenet.detect", "--i8", str(i8), "--m24", str(m24), str(far), "--out", str(out)], far.name


def _corrupt_model(folder: Path, out: Path):
    from bubblenet.detection.detector import default_model_path

    i8, m24 = _pair(folder)
    model = folder / "model"
    shutil.copytree(default_model_path(), model)
    data = (model / "model.keras").read_bytes()
    (model / "model.keras").write_bytes(data[: len(data) // 3])
    return _detect(i8, m24, out, "--model", str(model)), "model.keras"


def _model_without_info(folder: Path, out: Path):
    from bubblenet.detection.detector import default_model_path

    i8, m24 = _pair(folder)
    model = folder / "model_noinfo"
    model.mkdir()
    shutil.copy(default_model_path() / "model.keras", model)
    return _detect(i8, m24, out, "--model", str(model)), "model_noinfo"


def _garbled_model_info(folder: Path, out: Path):
    from bubblenet.detection.detector import default_model_path

    i8, m24 = _pair(folder)
    model = folder / "model_badinfo"
    shutil.copytree(default_model_path(), model)
    (model / "model_info.json").write_text(json.dumps({"preset": "lite"}))
    return _detect(i8, m24, out, "--model", str(model)), "model_info.json"


def _unwritable_out(folder: Path, out: Path):
    i8, m24 = _pair(folder)
    blocker = folder / "a_file"
    blocker.write_text("not a folder")
    return _detect(i8, m24, blocker / "out"), "a_file"


def _catalogue_case(text: str, name: str):
    """`evaluate` of a valid (empty) detections file against a damaged reference catalogue."""
    def case(folder: Path, out: Path):
        from astropy.table import Table

        detections = folder / "bubbles.ecsv"
        Table({"glon": [30.0], "glat": [0.0], "radius_arcmin": [1.0], "score": [0.9]}).write(detections)
        catalogue = folder / name
        catalogue.write_text(text)
        return ["bubblenet.evaluate", "--detections", str(detections), "--catalogue", str(catalogue),
                "--l", "29.9", "30.1", "--b", "-0.1", "0.1", "--out", str(out)], name
    return case


CASES = {
    "truncated FITS": (_fits_case(_truncated, "8"), "truncated"),
    "not FITS at all": (_fits_case(_text_file, "8"), "FITS"),
    "all-NaN 8 µm": (_fits_case(lambda f: _fits(f, "nan_I4.fits", np.full(SHAPE, np.nan)), "8"), "NaN"),
    "constant 24 µm": (_fits_case(lambda f: _fits(f, "flat_024.fits", np.full(SHAPE, 3.0)), "24"), "constant"),
    "radio units": (_fits_case(lambda f: _fits(f, "kelvin_I4.fits", BUNIT="K"), "8"), "surface brightness"),
    "flux per beam": (_fits_case(lambda f: _fits(f, "beam_024.fits", BUNIT="Jy/beam"), "24"), "surface brightness"),
    "no WCS": (_fits_case(lambda f: write_fits(f / "plain_I4.fits", np.ones(SHAPE)), "8"), "WCS"),
    "non-celestial WCS": (_fits_case(_linear_wcs, "8"), "WCS"),
    "24 µm over no 8 µm tile": (_far_24um, "overlap"),
    "corrupt model file": (_corrupt_model, "cannot load"),
    "model without its description": (_model_without_info, "model_info.json"),
    "model description without threshold": (_garbled_model_info, "threshold"),
    "unwritable output": (_unwritable_out, "output folder"),
    "catalogue missing columns": (_catalogue_case("MWP,GLON\nx,30.0\n", "nocols.csv"), "GLAT"),
    "non-numeric catalogue value": (_catalogue_case(
        "MWP,GLON,GLAT,MajAxis,MinAxis,Reff\nMWP2G0300000+0000000,30.0,abc,1.0,1.0,1.0\n", "text.csv"), "GLAT"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_input_gives_one_clear_error_and_no_output(name, tmp_path):
    make, phrase = CASES[name]
    folder = tmp_path / "inputs"
    folder.mkdir()
    out = tmp_path / "out"
    args, culprit = make(folder, out)
    result = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, env=ENV, timeout=300)
    # TensorFlow's C++ start-up lines go to stderr before Python runs; the message is ours: "<prog>: error: ...".
    ours = [line for line in result.stderr.splitlines() if ": error:" in line]
    assert result.returncode == 2, result.stderr[-3000:]
    assert len(ours) == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert culprit in ours[0] and phrase.lower() in ours[0].lower(), ours[0]
    written = [p for p in out.rglob("*") if p.is_file()] if out.exists() else []
    assert not written, written


def test_a_model_file_carrying_code_is_refused_without_running_it(tmp_path):
    """Keras ``safe_mode``: a ``.keras`` file with a Python lambda inside is not loaded, and the lambda never runs."""
    import keras

    from bubblenet.detection.detector import default_model_path

    marker = tmp_path / "code_ran"
    model_dir = tmp_path / "trojan"
    shutil.copytree(default_model_path(), model_dir)
    inputs = keras.Input((128, 128, 2))
    touched = keras.layers.Lambda(lambda x, p: x + 0.0 * len(open(p, "w").name), arguments={"p": str(marker)})(inputs)
    keras.Model(inputs, touched).save(model_dir / "model.keras")
    marker.unlink()
    i8, m24 = _pair(tmp_path)
    result = subprocess.run([sys.executable, "-m", *_detect(i8, m24, tmp_path / "out", "--model", str(model_dir))],
                            capture_output=True, text=True, env=ENV, timeout=300)
    assert result.returncode == 2 and "model.keras" in result.stderr and "cannot load" in result.stderr
    assert not marker.exists(), "code inside the model file was executed"
