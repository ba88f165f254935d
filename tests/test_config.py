"""Typed configs (FitConfig, SearchConfig), option checks, and the output-folder rule."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest
import yaml

from bubblenet.detection.search import SearchConfig, resolve_search
from bubblenet.errors import ConfigError, InputError
from bubblenet.outputs import OWNER_FILE, claim_output_dir
from bubblenet.training.config import DEMO_OPTIONS, FitConfig
from conftest import MWP8, REPO


def test_demo_yaml_states_the_demo_defaults():
    section = yaml.safe_load((REPO / "experiments" / "demo.yaml").read_text())["fit"]
    options = {k.replace("-", "_"): v for k, v in section.items() if k not in ("demo-sky", "out")}
    expected = {k: list(v) if isinstance(v, tuple) else v for k, v in DEMO_OPTIONS.items()}
    assert options == expected
    # The shipped detector's recipe is the demo's, with the label rule it was trained with.
    shipped = yaml.safe_load((REPO / "experiments" / "default_model.yaml").read_text())["fit"]
    assert {k: v for k, v in shipped.items() if k not in ("out", "seed", "label-all-bubbles")} == \
        {k: v for k, v in section.items() if k != "out"}
    assert shipped["label-all-bubbles"] is True


def test_fit_config_owns_the_command_line_defaults():
    from bubblenet.fit import build_parser

    args = build_parser().parse_args([])
    config = FitConfig()
    for field in dataclasses.fields(FitConfig):
        value = getattr(args, field.name)
        assert (tuple(value) if isinstance(value, list) else value) == getattr(config, field.name), field.name
    # ... and hands the samples' options to the training data.
    data = FitConfig(display_stretch=0.5, label_selected_only=False, hard_negatives=0.3).data_config(64)
    assert data.display_stretch == 0.5 and data.label_all_bubbles is True and data.hard_negatives == 0.3
    data = FitConfig(randomise=["noise", "jpeg"], randomise_share=0.25).data_config(64)
    assert data.randomise == ("noise", "jpeg") and data.randomise_share == 0.25
    args = build_parser().parse_args(["--randomise", "blur", "gradient", "--randomise-share", "0.7"])
    names = {f.name for f in dataclasses.fields(FitConfig)}
    parsed = FitConfig.from_options({k: v for k, v in vars(args).items() if k in names})
    assert parsed.randomise == ("blur", "gradient") and parsed.randomise_share == 0.7
    assert FitConfig(randomise=["jpeg", "noise", "jpeg"]).randomise == ("noise", "jpeg")  # once each, one order
    assert build_parser().parse_args(["--randomise"]).randomise == []  # none, over a config file's list


@pytest.mark.parametrize("changes, message", [
    ({"lr": 0.0}, "option --lr: must be > 0"),
    ({"epochs": 0}, "option --epochs: must be a whole number >= 1"),
    ({"preset": "big"}, "option --preset: must be one of lite, paper"),
    ({"val_sizes": (0.0, 100.0)}, "validation search (the --val-* options): search sizes must be"),
    ({"val_sizes": (900.0, 100.0)}, "validation search (the --val-* options): search sizes must be"),
    ({"val_stride": 1.5}, "search stride must be in (0, 1]"),
    ({"clusters": 3, "cluster_weights": (1.0, 1.0)}, "option --cluster-weights: must be 3 weights"),
    ({"drop_clusters": (4,), "clusters": 3}, "option --drop-clusters: must be cluster numbers 0-2"),
    ({"max_crop_scale": 1.0}, "option --max-crop-scale: must exceed"),
    ({"display_stretch": 1.5}, "option --display-stretch: must be a share in [0, 1]"),
    ({"hard_negatives": -0.1}, "option --hard-negatives: must be a share in [0, 1]"),
    ({"randomise": ("noise", "sharpen")}, "option --randomise: must be names from blur, noise, gradient, jpeg"),
    ({"randomise_share": 1.5}, "option --randomise-share: must be a share in [0, 1]"),
    ({"i8": ("a.fits",), "m24": ("a.fits",)}, "the same file is given as both bands"),
    ({"test_l": (400.0,)}, "option --test-l: must be longitudes in degrees"),
])
def test_fit_config_refuses_bad_values_naming_the_option(changes, message):
    with pytest.raises(ConfigError) as err:
        FitConfig(**changes)
    assert message in str(err.value)


def test_search_config_round_trips_and_checks():
    search = SearchConfig(sizes_arcsec=[200, 3600], stride=0.5)
    assert SearchConfig.from_dict(json.loads(json.dumps(search.to_dict()))) == search
    # model_info.json files written before the caps were recorded get the defaults.
    old = SearchConfig.from_dict({"mode": "fast", "per_octave": 2, "sizes_arcsec": [420.0, 3600.0], "stride": 0.5})
    assert (old.per_window, old.per_tile, old.min_window_px) == (20, 2000, 64)
    with pytest.raises(ConfigError, match="unknown search entry windows"):
        SearchConfig.from_dict({"windows": 3})
    for bad in ({"sizes_arcsec": (-1, 10)}, {"stride": 0}, {"per_octave": 0}, {"mode": "slow"}, {"per_window": 0},
                {"per_tile": 0}):
        with pytest.raises(ConfigError):
            SearchConfig(**bad)
    paper = resolve_search(search, paper=True)
    assert (paper.sizes_arcsec, paper.stride, paper.mode, paper.min_window_px) == ((120.0, 3600.0), 1 / 3, "paper", 0)
    assert resolve_search(search, stride=0.25, mode="paper") == dataclasses.replace(search, stride=0.25, mode="paper")


def test_fit_records_the_search_its_validation_ran():
    config = FitConfig(val_sizes=(300.0, 2400.0), val_stride=0.25, val_mode="paper")
    assert config.search == SearchConfig(sizes_arcsec=(300.0, 2400.0), stride=0.25, mode="paper")


def test_output_folders_are_never_taken_over_without_asking(tmp_path):
    mine = tmp_path / "user"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(InputError, match="not empty and holds no earlier 'detect' output"):
        claim_output_dir(mine, "detect")
    claim_output_dir(mine, "detect", overwrite=True)
    assert (mine / "notes.txt").read_text() == "keep me"
    # Now it is detect's: detect reuses it, evaluate may write beside the catalogue, fit may not.
    claim_output_dir(mine, "detect")
    claim_output_dir(mine, "evaluate", accept=("detect",))
    assert json.loads((mine / OWNER_FILE).read_text())["verbs"] == ["detect", "evaluate"]
    with pytest.raises(InputError, match="holds no earlier 'fit' output"):
        claim_output_dir(mine, "fit")
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="taken by a file"):
        claim_output_dir(tmp_path / "file", "fit")
    # An empty folder, and a new one, are free.
    (tmp_path / "empty").mkdir()
    claim_output_dir(tmp_path / "empty", "synth")
    claim_output_dir(tmp_path / "new" / "deep", "synth")
    assert (tmp_path / "new" / "deep" / OWNER_FILE).exists()


def _verb(*args, **kw):
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, **kw)


def test_export_and_detect_refuse_a_users_folder(tmp_path):
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "thesis.tex").write_text("precious")
    result = _verb("bubblenet.export", "--out", str(kept), "-q")
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"python -m bubblenet.export: error: {kept}: the output folder is not empty and holds no earlier 'export' "
        "output; give an empty or new folder, or --overwrite to write into it anyway"]
    assert (kept / "thesis.tex").read_text() == "precious"
    result = _verb("bubblenet.detect", "--i8", str(MWP8), "--m24", str(MWP8).replace("I4_8um", "M1_24um"),
                   "--out", str(kept), "-q")
    assert result.returncode == 2 and "holds no earlier 'detect' output" in result.stderr
    assert sorted(p.name for p in kept.iterdir()) == ["thesis.tex"]
    # Exporting twice to the same folder is the verb's own output: replaced, no flag needed.
    out = tmp_path / "sm"
    assert _verb("bubblenet.export", "--out", str(out), "-q").returncode == 0
    assert _verb("bubblenet.export", "--out", str(out), "-q").returncode == 0
    assert (out / "saved_model.pb").exists()


@pytest.mark.parametrize("args, message", [
    (["--l", "20", "10"], "--l 20 10: give MIN MAX with MIN <= MAX"),
    (["--l", "0", "400"], "--l 0 400: wider than 360 degrees"),
    (["--b", "-95", "0"], "--b -95 0: give MIN MAX with -90 <= MIN <= MAX <= 90"),
    (["--threshold", "1.5"], "--threshold must be in [0, 1], got 1.5"),
    (["--m24", str(MWP8)], "the same file is given as both bands (--i8 and --m24)"),
])
def test_detect_option_errors_name_the_option(tmp_path, args, message, capsys):
    from bubblenet.detect import main

    base = ["--i8", str(MWP8), "--out", str(tmp_path / "out"), "-q"]
    if "--m24" not in args:
        base += ["--m24", str(MWP8).replace("I4_8um", "M1_24um")]
    assert main([*base, *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_a_torn_detector_save_is_refused(tmp_path):
    from bubblenet.detection.detector import Detector, load_detector, save_detector
    from bubblenet.ssd.model import PRESETS, build_ssd

    shipped = load_detector()
    folder = tmp_path / "det"
    (folder / "mine.txt").parent.mkdir()
    (folder / "mine.txt").write_text("kept")
    save_detector(Detector(shipped.model, shipped.spec, 0.7, dict(shipped.info, threshold=0.7)), folder)
    assert load_detector(folder).threshold == 0.7 and (folder / "mine.txt").read_text() == "kept"
    # A model.keras from another save beside this model_info.json: refused, not silently used.
    build_ssd("lite", anchors=PRESETS["lite"]["anchors"]).save(folder / "model.keras")
    with pytest.raises(InputError, match="model.keras is not the model model_info.json describes"):
        load_detector(folder)


def test_config_flags_take_true_or_false(tmp_path, capsys):
    from bubblenet.data import build_parser
    from bubblenet.cli import _apply_config

    path = tmp_path / "c.yaml"
    path.write_text("data:\n  mask-selected-only: false\n  paper-exact: true\n")
    parser = build_parser()
    _apply_config(parser, str(path), "data")
    args = parser.parse_args(["preview"])
    assert args.mask_selected_only is False and args.paper_exact is True
    path.write_text("data:\n  mask-selected-only: 'no'\n")
    with pytest.raises(ConfigError, match="option 'mask-selected-only': expected true or false"):
        _apply_config(build_parser(), str(path), "data")
    with pytest.raises(ConfigError, match="option --paper-exact: must be true or false"):
        FitConfig(paper_exact=[False])
    with pytest.raises(ConfigError, match="option --drop-clusters: needs --clusters K"):
        FitConfig(drop_clusters=(1,))
