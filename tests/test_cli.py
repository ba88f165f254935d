"""The command line: both spellings of every verb, config files, exit codes and messages."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from bubblenet.cli import VERBS, main as bubblenet_main
from bubblenet.errors import ConfigError
from conftest import MSX, MWP8, MWP24, REPO, car_header, write_fits

ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def run_module(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, env=ENV, cwd=cwd)


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_every_verb_has_help_both_ways(verb):
    module = VERBS[verb][0].removesuffix(".__main__")
    direct = run_module(module, "--help")
    assert direct.returncode == 0, direct.stderr
    assert "--config" in direct.stdout and "--verbose" in direct.stdout
    via = run_module("bubblenet", verb, "--help")
    assert via.returncode == 0
    # Same text below the usage block (whose wrapping depends on the program name).
    assert via.stdout[via.stdout.index("\n\n"):] == direct.stdout[direct.stdout.index("\n\n"):]


def test_top_level_help_and_unknown_verb(capsys):
    assert bubblenet_main(["--help"]) == 0
    assert "synth" in capsys.readouterr().out
    assert bubblenet_main(["frobnicate"]) == 2
    assert "unknown verb 'frobnicate'" in capsys.readouterr().err
    assert bubblenet_main([]) == 2


def _one_error_line(result):
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_bad_fits_inputs_exit_2_with_one_message(tmp_path):
    plain = write_fits(tmp_path / "nowcs.fits", np.arange(100.0).reshape(10, 10))
    message = _one_error_line(run_module("bubblenet", "info", "--i8", str(plain)))
    assert "nowcs.fits" in message and "no celestial WCS" in message
    nan = write_fits(tmp_path / "nan_I4.fits", np.full((10, 10), np.nan), car_header((10, 10)))
    assert "all NaN" in _one_error_line(run_module("bubblenet.info", "--i8", str(nan)))
    truncated = tmp_path / "cut.fits"
    truncated.write_bytes(b"SIMPLE  =                    T" + b" " * 50)
    assert "cut.fits" in _one_error_line(run_module("bubblenet.info", "--i8", str(truncated)))


def test_bands_that_do_not_overlap_exit_2(tmp_path):
    rng = np.random.default_rng(0)
    a = write_fits(tmp_path / "a.fits", rng.normal(size=(20, 20)), car_header((20, 20), lon=30))
    b = write_fits(tmp_path / "b.fits", rng.normal(size=(20, 20)), car_header((20, 20), lon=50))
    message = _one_error_line(run_module("bubblenet.info", "--i8", str(a), "--m24", str(b)))
    assert "a.fits" in message and "do not overlap" in message


def test_catalogue_missing_columns_exit_2(tmp_path):
    bad = tmp_path / "cat.csv"
    bad.write_text("name,ra\nx,1\n")
    result = run_module("bubblenet.preview", "--i8", str(MWP8), "--catalogue", str(bad), "--out", str(tmp_path / "p.png"))
    message = _one_error_line(result)
    assert "cat.csv" in message and "radius" in message
    assert not (tmp_path / "p.png").exists()


def test_config_file_sets_defaults_and_flags_override(tmp_path):
    config = tmp_path / "small.yaml"
    config.write_text("synth:\n  l: [30.0, 30.2]\n  b: [-0.2, 0.2]\n  pixscale: 4.8\n  seed: 3\n  out: from_config\n")
    result = run_module("bubblenet", "synth", "--config", str(config), "--seed", "4", "-q", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    record = json.loads((tmp_path / "from_config" / "synth_run.json").read_text())
    assert record["seed"] == 4
    assert record["options"]["pixscale"] == 4.8
    assert record["options"]["region"] == {"l_min": 30.0, "l_max": 30.2, "b_min": -0.2, "b_max": 0.2}
    assert "numpy" in record["versions"] and "astropy" in record["versions"]


def test_config_errors_exit_2(tmp_path):
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("synth:\n  colour: blue\n")
    message = _one_error_line(run_module("bubblenet.synth", "--config", str(unknown)))
    assert "unknown.yaml" in message and "unknown option 'colour'" in message
    broken = tmp_path / "broken.yaml"
    broken.write_text("synth: [unclosed\n")
    assert "not valid YAML" in _one_error_line(run_module("bubblenet.synth", "--config", str(broken)))
    assert "config file not found" in _one_error_line(run_module("bubblenet.synth", "--config", "nope.yaml"))
    assert "l_max > l_min" in _one_error_line(run_module("bubblenet.synth", "--l", "16", "10", "--out",
                                                          str(tmp_path / "x")))
    assert not (tmp_path / "x").exists() or not list((tmp_path / "x").iterdir())


def test_config_file_can_give_a_required_option(tmp_path):
    from bubblenet.cli import _apply_config
    from bubblenet.evaluate import build_parser

    config = tmp_path / "c.yaml"
    config.write_text("evaluate:\n  detections: somewhere/bubbles.ecsv\n")
    parser = build_parser()
    _apply_config(parser, str(config), "evaluate")
    assert str(parser.parse_args([]).detections) == "somewhere/bubbles.ecsv"
    from bubblenet.evaluate import main

    assert main(["--config", str(config)]) == 2  # got past argparse to the missing file


def test_a_pair_of_flags_on_one_option_in_config_files_and_flags(tmp_path):
    """--label-selected-only / --label-all-bubbles share one option: each name keeps its meaning in YAML."""
    from bubblenet.cli import _apply_config
    from bubblenet.fit import build_parser

    def parsed(text: str, *flags: str) -> bool:
        config = tmp_path / "labels.yaml"
        config.write_text(f"fit:\n{text}")
        parser = build_parser()
        _apply_config(parser, str(config), "fit")
        return parser.parse_args(list(flags)).label_selected_only

    assert parsed("  seed: 1\n") is True  # the default: only the selected bubbles are boxes
    assert parsed("  label-all-bubbles: true\n") is False
    assert parsed("  label-all-bubbles: false\n") is True
    assert parsed("  label-selected-only: false\n") is False
    assert parsed("  label-all-bubbles: true\n", "--label-selected-only") is True  # a flag beats the file
    with pytest.raises(ConfigError, match="'label-selected-only' and 'label-all-bubbles' contradict"):
        parsed("  label-selected-only: true\n  label-all-bubbles: true\n")
    with pytest.raises(SystemExit):  # argparse: not allowed together
        build_parser().parse_args(["--label-selected-only", "--label-all-bubbles"])


def test_experiment_configs_parse():
    from bubblenet.cli import load_config_section

    import importlib

    import yaml

    from bubblenet.cli import VERBS, _apply_config

    for path in sorted((REPO / "experiments").glob("*.yaml")):
        if path.with_suffix(".py").exists():
            continue  # a script's config (experiments/ablation.py checks its own: tests/test_paper_switches.py)
        for section in yaml.safe_load(path.read_text()):
            assert section in VERBS, (path.name, section)
            # Every option must be one the verb knows, with a value its flag accepts.
            _apply_config(importlib.import_module(VERBS[section][0]).build_parser(), str(path), section)
    demo = load_config_section(REPO / "experiments" / "demo.yaml", "synth")
    assert demo["l"] == [10.0, 16.0] and demo["pixscale"] == 2.4


def test_preview_real_pair_and_single_compressed_band(tmp_path):
    out = tmp_path / "mwp.png"
    result = run_module("bubblenet", "preview", "--i8", str(MWP8), "--m24", str(MWP24), "--out", str(out))
    assert result.returncode == 0, result.stderr
    rgb = np.asarray(Image.open(out).convert("RGB"), float)
    assert rgb.shape[1] > 600
    assert rgb[..., 0].mean() > 10 and rgb[..., 1].mean() > 10  # both bands drawn
    single = tmp_path / "msx.png"
    result = run_module("bubblenet.preview", "--m24", str(MSX), "--catalogue", "mwp_dr1", "--select", "none",
                        "--out", str(single))
    assert result.returncode == 0, result.stderr
    rgb = np.asarray(Image.open(single).convert("RGB"), float)
    assert rgb[..., 0].mean() > 5


def test_unwritable_output_exit_2(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    message = _one_error_line(run_module("bubblenet.preview", "--i8", str(MWP8), "--catalogue", "none",
                                         "--out", str(blocker / "sub" / "p.png")))
    assert "cannot create output folder" in message


def test_info_json_describes_survey(twin_survey):
    result = run_module("bubblenet", "info", "--folder", str(twin_survey.folder), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert len(report["images_8um"]) == 1 and len(report["images_24um"]) == 4
    assert report["tiles"][0]["tile"] == "GLM_03000+0000_mosaic_I4"
    assert report["images_8um"][0]["unit"] == "MJy/sr"


# -- TensorFlow's C++ start-up lines: hidden unless --verbose ---------------------------------

#: What importing TensorFlow prints from C++ (absl, oneDNN, CPU features, I/W/E0000 log lines).
TF_NOISE = ("All log messages before absl::InitializeLog()", "oneDNN custom operations are on",
            "This TensorFlow binary is optimized", "To enable the following instructions", "I0000 ", "W0000 ",
            "E0000 ")


def _without_tf_level():
    """The child's environment without TF_CPP_MIN_LOG_LEVEL (which .ci/run sets to 2)."""
    return {key: value for key, value in ENV.items() if key != "TF_CPP_MIN_LOG_LEVEL"}


@pytest.mark.parametrize("spelling", [["bubblenet.export"], ["bubblenet", "export"]], ids=["module", "verb"])
def test_tensorflow_start_up_lines_are_hidden(tmp_path, spelling):
    result = subprocess.run([sys.executable, "-m", *spelling, "--out", str(tmp_path / "sm"), "-q"],
                            capture_output=True, text=True, env=_without_tf_level())
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "sm" / "saved_model.pb").exists()  # TensorFlow was imported and used
    shown = [line for line in result.stderr.splitlines() if any(noise in line for noise in TF_NOISE)]
    assert not shown, result.stderr


def test_tensorflow_start_up_lines_show_with_verbose(tmp_path):
    result = subprocess.run([sys.executable, "-m", "bubblenet.export", "--out", str(tmp_path / "sm"), "--verbose"],
                            capture_output=True, text=True, env=_without_tf_level())
    assert result.returncode == 0, result.stderr
    assert any(noise in result.stderr for noise in TF_NOISE), result.stderr


def test_quiet_start_keeps_the_users_tf_level_and_other_output():
    show_level = "import os, bubblenet.cli; print(os.environ.get('TF_CPP_MIN_LOG_LEVEL'))"

    def level(*argv, env):
        out = subprocess.run([sys.executable, "-c", show_level, *argv], capture_output=True, text=True, env=env)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    assert level(env=_without_tf_level()) == "2"
    assert level("--verbose", env=_without_tf_level()) == "None"
    assert level(env={**_without_tf_level(), "TF_CPP_MIN_LOG_LEVEL": "0"}) == "0"
    assert level("-q", env={**_without_tf_level(), "TF_CPP_MIN_LOG_LEVEL": "1"}) == "1"
    # Only the start-up noise is dropped from what the import writes; anything else comes through.
    code = ("import os; from bubblenet.cli import _tensorflow_noise_filtered\n"
            "with _tensorflow_noise_filtered():\n"
            "    os.write(2, b'WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\\n'"
            " b'I0000 00:00:1796109868.767605    7769 port.cc:153] oneDNN custom operations are on.\\n'"
            " b'a real problem\\n')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_without_tf_level())
    assert out.returncode == 0 and out.stderr == "a real problem\n", out.stderr
