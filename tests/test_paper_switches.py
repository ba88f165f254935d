"""The departures from the original code as named switches, and the `paper` preset that sets each to the original."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from bubblenet.conventions import CHANNEL_8UM
from bubblenet.training.config import PAPER_RECIPE, FitConfig

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"

#: The original code's values, written out from the reference method's "details of the original code"
#: (not read from PAPER_RECIPE, so that a wrong recipe fails here).
ORIGINAL = {
    "missing_data": "fill-max",
    "label_selected_only": True,
    "mask_selected_only": True,
    "norm_level": "paper",
    "clip_sigma": 3.0,
    "crop_rule": "paper",
    "samples_per_bubble": 7,
    "loss_norm": "paper",
    "init": "kaiming",
    "clip": "value",
    "clipnorm": 10.0,
    "val_origin": "paper",
    "val_mode": "paper",
    "threshold_step": 0.01,
    "val_per_window": 100,
    "val_per_tile": None,
    "preset": "paper",
    "positives": 8,
    "negatives": 8,
    "lr": 1e-4,
    "weight_decay": 1e-3,
    "epochs": 300,
    "patience": 15,
}


def _section(name: str, section: str) -> dict:
    values = yaml.safe_load((EXPERIMENTS / name).read_text())[section]
    return {k.replace("-", "_"): v for k, v in values.items() if k != "out"}


@pytest.mark.parametrize("name", ["paper.yaml", "paper_clustered.yaml", "tune_paper.yaml", "shells_8um.yaml"])
def test_paper_presets_set_every_switch_to_the_original(name):
    config = FitConfig.from_options(_section(name, "fit"))
    for option, value in ORIGINAL.items():
        assert getattr(config, option) == pytest.approx(value), option
    assert set(PAPER_RECIPE) >= set(ORIGINAL)
    for option, value in PAPER_RECIPE.items():
        assert getattr(config, option) == pytest.approx(value), option
    # The original's windows: 150-3000 px at 1.2"/px, stride 1/3, rows from a fifth of the side.
    search = config.search
    assert search.window_sides(1.2) == [150, 300, 600, 900, 1200, 1800, 2400, 3000]
    assert search.stride == pytest.approx(1 / 3) and search.origin == "paper" and search.missing == "fill-max"
    assert config.thresholds == tuple(np.round(np.arange(0.50, 0.951, 0.01), 2))


def _ablation_script():
    import importlib.util

    spec = importlib.util.spec_from_file_location("ablation", EXPERIMENTS / "ablation.py")
    ablation = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ablation)
    return ablation


def test_ablation_tables_give_each_seeds_mean_and_spread_and_fill_the_docs():
    ablation = _ablation_script()
    real = {"dr2_recall": 0.25, "clear_found": 2, "unmatched_per_deg2": 4.0, "dr2_found": 3}
    runs = [{"variant": "baseline", "seed": s, "test_recall": r, "test_strict_precision": 0.5, "test_f2": 0.6,
             "test_strict_f2": 0.4, "real": real} for s, r in ((1, 0.6), (0, 0.4))]
    text = ablation.table(runs + [{**runs[0], "variant": "paper", "seed": 0}], ["baseline", "paper", "unrun"])
    assert "| baseline | 0,1 | 0.50 ± 0.14 | 0.50 ± 0.00 |" in text
    assert "| paper | 0 | 0.60 | 0.50 |" in text and "unrun" not in text
    search = {"variant": "baseline", "step": 0.05, "test_recall": 0.5, "test_precision": 0.5,
              "test_strict_precision": 0.5, "test_strict_f2": 0.5}
    rescored = [{**search, "seed": s, "search": name, "cut": cut, "threshold": 0.95 if cut == "0.95" else 0.7,
                 "test_search_seconds": seconds, **({"real": real} if cut == "validation" else {})}
                for s in (0, 1) for name, seconds in (("own", 10.0 * (s + 1)), ("paper-windows", 40.0 * (s + 1)))
                for cut in ("validation", "0.95")]
    lines = ablation.rescore_table(rescored + rescored[:1]).splitlines()  # a row run twice counts once
    assert len(lines) == 2 + 4
    assert lines[2].startswith("| baseline | own | validation, steps of 0.05 | 0,1 | 0.70, 0.70 | 0.50 ± 0.00 |")
    assert lines[3].startswith("| baseline | own | 0.95 (the original's cut) | 0,1 | 0.95, 0.95 |")
    assert lines[3].endswith("|  |  |  | 1× |") and lines[4].endswith("| 4.00 ± 0.00× |")
    start, end = ablation.MARKERS["table"]
    page = f"intro\n{start}\nold table\n{end}\nreading\n"
    assert ablation.fill_between_markers(page, (start, end), text, "page") == f"intro\n{start}\n{text}{end}\nreading\n"
    with pytest.raises(SystemExit, match="page: needs one line"):
        ablation.fill_between_markers("no markers", (start, end), text, "page")
    # The config's names are the command line's.
    assert ablation.options({"label-all-bubbles": True, "val-sizes": [1, 2]}) == \
        {"label_selected_only": False, "val_sizes": [1, 2]}


def test_ablation_variants_flip_one_switch_each():
    """experiments/ablation.yaml: `baseline` is the demo's recipe as the table measured it (every catalogue
    bubble labelled), `paper` the original's on every training-side switch, and each other variant the baseline
    with one departure (or one pair) flipped to the original."""
    from bubblenet.training.config import DEMO_OPTIONS

    ablation = _ablation_script()
    settings = yaml.safe_load((EXPERIMENTS / "ablation.yaml").read_text())
    configs = ablation.variant_configs(settings)
    default = configs["baseline"]
    assert {k: getattr(default, k) for k in DEMO_OPTIONS} == DEMO_OPTIONS
    assert not default.label_selected_only and configs["labels-selected-only"] == FitConfig(**DEMO_OPTIONS)
    training_side = {k for k in ORIGINAL if not k.startswith("val_") and k not in (
        "preset", "positives", "negatives", "lr", "weight_decay", "epochs", "patience", "clip_sigma", "clipnorm")}
    for option in training_side:
        assert getattr(configs["paper"], option) == ORIGINAL[option], option
    for name, config in configs.items():
        changed = {k for k in ORIGINAL if getattr(config, k) != getattr(default, k)}
        if name not in ("baseline", "paper"):
            assert 1 <= len(changed) <= 2, (name, changed)
            assert all(getattr(config, k) == ORIGINAL[k] or k == "missing_data" for k in changed), name


def test_paper_data_section_matches_its_fit_section():
    data, fit = _section("paper.yaml", "data"), _section("paper.yaml", "fit")
    assert {k: fit[k] for k in data} == data


def test_the_defaults_depart_where_measured():
    """Every switch has a default of its own; those that differ from the original are the departures."""
    defaults = FitConfig()
    departures = {k for k in ORIGINAL if getattr(defaults, k) != ORIGINAL[k]}
    assert {"norm_level", "crop_rule", "samples_per_bubble", "loss_norm", "init", "clip",
            "val_origin", "threshold_step"} <= departures
    # The original's rules that are the defaults, the labels because the ablation measured them better.
    assert defaults.missing_data == "fill-max" and defaults.label_selected_only is True


def test_survey_search_of_the_paper():
    from bubblenet.detection.search import PAPER_SURVEY_THRESHOLD, SearchConfig, resolve_search, resolve_threshold

    paper = SearchConfig.paper()
    assert paper.window_sides(1.2) == [100, 150, 300, 600, 900, 1200, 1800, 2400, 3000]
    assert paper.origin == "paper" and paper.mode == "paper" and PAPER_SURVEY_THRESHOLD == 0.95
    assert SearchConfig.from_dict(paper.to_dict()) == paper
    # A search recorded before the missing-data rule was a choice keeps the rule it was used with.
    assert SearchConfig.from_dict({"sizes_arcsec": [200.0, 3600.0]}).missing == "interpolate"
    assert SearchConfig.from_dict(None).missing == "fill-max"
    # detect --paper: the paper's search and its catalogue's cut at 0.95, unless a threshold is given.
    assert resolve_search(SearchConfig(), paper=True) == paper
    # ... with the detector's own data rules, as it was trained.
    kept = resolve_search(SearchConfig(missing="interpolate", zeros="edge"), paper=True)
    assert (kept.missing, kept.zeros, kept.sides_arcsec) == ("interpolate", "edge", paper.sides_arcsec)
    assert resolve_threshold(0.5, paper=True) == 0.95 and resolve_threshold(0.5) == 0.5
    assert resolve_threshold(0.5, paper=True, threshold=0.7) == 0.7
    assert resolve_search(SearchConfig(), missing="interpolate").missing == "interpolate"


@pytest.mark.parametrize("changes, message", [
    ({"missing_data": "zero"}, "option --missing-data: must be one of fill-max, interpolate, interpolate+fill-max"),
    ({"samples_per_bubble": 3}, "option --samples-per-bubble: must be 1 or 7"),
    ({"threshold_step": 0.0}, "option --threshold-step: must be in (0, 0.45]"),
    ({"crop_rule": "log"}, "option --crop-rule: must be one of uniform, paper"),
    ({"init": "he"}, "option --init: must be one of glorot, kaiming"),
    ({"clip": "both"}, "option --clip: must be one of norm, value"),
    ({"val_origin": "centre"}, "option --val-origin: must be one of edge, paper"),
    ({"val_sides": (0.0, 100.0)}, "search window sides must be > 0"),
    ({"zeros": "nan"}, "option --zeros: must be one of data, edge"),
])
def test_switches_refuse_bad_values_naming_the_option(changes, message):
    from bubblenet.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        FitConfig(**changes)
    assert message in str(err.value)


# -- missing data -------------------------------------------------------------------------

def test_small_nan_islands_are_filled_with_the_maximum_and_large_ones_kept():
    from bubblenet.sky.tilecache import fill_islands

    band = np.random.default_rng(0).normal(10, 1, (200, 200)).astype(np.float32)
    band[50:53, 50:53] = np.nan  # a saturated core: 9 px
    band[:, 150:] = np.nan  # missing coverage: 10,000 px
    top = np.nanmax(band)
    assert fill_islands(band, 5000) == 9
    assert np.all(band[50:53, 50:53] == top) and np.isnan(band[:, 150:]).all()


def _tile(i8, i24, *, galactic: bool = True, pixscale: float = 2.4):
    """A `SkyTile` of two 200 x 200 arrays on one grid (Galactic at l = 30°, or equatorial near M 74)."""
    from astropy.wcs import WCS

    from bubblenet.sky.mosaics import SkyImage, SkyTile

    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["GLON-CAR", "GLAT-CAR"] if galactic else ["RA---TAN", "DEC--TAN"]
    wcs.wcs.cdelt = [-pixscale / 3600, pixscale / 3600]
    wcs.wcs.crpix = [100.5, 100.5]
    wcs.wcs.crval = [30.0, 0.0] if galactic else [24.17, 15.78]
    return SkyTile(SkyImage.from_array(i8, wcs, name="i8"), [SkyImage.from_array(i24, wcs, name="i24")])


def test_a_saturated_core_is_searched_and_trained_on_under_the_paper_rule(tmp_path):
    """A bubble whose 24 µm core is NaN: under fill-max its windows have data; under interpolate they are rejected."""
    from bubblenet.sky.tilecache import PAPER_ISLAND_AREA_ARCSEC2, BadMap, TileCache

    rng = np.random.default_rng(1)
    i8 = rng.normal(50, 2, (200, 200)).astype(np.float32)
    i24 = rng.normal(30, 2, (200, 200)).astype(np.float32)
    i24[90:110, 90:110] = np.nan  # 400 px, far below 70,000 px at 1.2"/px (17,500 at 2.4"/px)
    assert 400 < PAPER_ISLAND_AREA_ARCSEC2 / 2.4 ** 2
    tile = _tile(i8, i24)
    filled = TileCache(tile, tmp_path / "a", missing="fill-max")
    core = np.asarray(filled.data[95:105, 95:105, 0])
    assert np.isfinite(core).all() and core.min() >= np.nanmax(i24) - 1e-3
    assert not BadMap(filled).touches(60, 60, 80)
    interpolated = TileCache(tile, tmp_path / "b", missing="interpolate")
    assert BadMap(interpolated).touches(60, 60, 80)
    assert filled.path != interpolated.path  # the rule is part of the cache key
    # Both: a 3 x 3 px hole is interpolated (near the background), the saturated core filled with the maximum.
    i24[20:23, 20:23] = np.nan
    both = TileCache(_tile(i8, i24), tmp_path / "c", missing="interpolate+fill-max")
    assert abs(float(both.data[21, 21, 0]) - 30) < 8
    assert float(np.asarray(both.data[95:105, 95:105, 0]).min()) >= np.nanmax(i24) - 1e-3
    assert not BadMap(both).touches(60, 60, 80)


def test_zero_coverage_edges_of_external_galaxies(tmp_path):
    """zeros="edge": zeros become the band's 1st percentile, and only windows at least 70 % zero are refused."""
    from bubblenet.sky.tilecache import BadMap, TileCache

    rng = np.random.default_rng(6)
    bands = [rng.normal(5, 1, (200, 200)).astype(np.float32) + 3 for _ in range(2)]
    for band in bands:
        band[:, :80] = 0.0  # outside the galaxy's coverage
    tile = _tile(bands[1], bands[0], galactic=False, pixscale=2.0)
    edge = TileCache(tile, tmp_path, zeros="edge")
    assert edge.zeros[:, :70].all() and not edge.zeros[:, 90:].any()
    assert float(np.asarray(edge.data[:, :70]).min()) > 0
    bad = BadMap(edge)
    assert bad.touches(0, 0, 60)  # all zero
    assert not bad.touches(40, 40, 80)  # half zero: kept
    assert bad.touches(0, 40, 100)  # 80 % zero
    plain = TileCache(tile, tmp_path)
    assert plain.zeros is None and not BadMap(plain).touches(0, 0, 60)  # zeros are data by default


# -- normalisation ------------------------------------------------------------------------

def test_normalisation_levels():
    from bubblenet.training_data.cutouts import Normalisation, normalise

    rng = np.random.default_rng(2)
    image = (100 + rng.gamma(2.0, 5.0, (64, 64, 2))).astype(np.float32)
    band = image[..., 0]
    shifted = band - band.min()
    ours = normalise(image, fwhm8_px=2, mask_stars=False)[..., 0]
    paper = normalise(image, fwhm8_px=2, mask_stars=False, norm=Normalisation(level="paper"))[..., 0]
    level_ours = shifted.mean() + 3 * shifted.std()
    level_paper = band.mean() + 3 * band.std()  # the mean before the minimum is subtracted
    np.testing.assert_allclose(ours, np.clip(shifted, 0, level_ours) / level_ours, rtol=1e-5)
    np.testing.assert_allclose(paper, np.clip(shifted, 0, level_paper) / level_paper, rtol=1e-5)
    assert paper.max() < 1.0 <= ours.max() + 1e-6  # on a high background the paper's level never saturates


def test_point_source_statistics_have_no_cliff():
    """Weighted (the default): the 8 µm level with 89 % and 91 % of the window in point sources is the same.
    The threshold rule (detectors made before) drops the mask above 90 % and jumps to the level with the
    sources in."""
    from bubblenet.training_data.cutouts import Normalisation, normalise

    rng = np.random.default_rng(3)
    levels = {"weighted": [], "threshold": []}
    for share in (0.89, 0.91):
        image = rng.normal(10, 1, (100, 100, 2)).astype(np.float32)
        stars = np.zeros((100, 100), np.float32)
        stars.ravel()[: int(share * stars.size)] = 1.0
        image[..., CHANNEL_8UM][stars > 0] = 100.0
        for rule in levels:
            out = normalise(image, fwhm8_px=2, stars=stars, norm=Normalisation(stars=rule))[..., CHANNEL_8UM]
            levels[rule].append(float(np.median(out[stars == 0])))
    assert levels["weighted"][1] == pytest.approx(levels["weighted"][0], rel=0.05)
    assert levels["threshold"][0] == pytest.approx(levels["weighted"][0], rel=1e-4)  # the same mask below 90 %
    assert levels["threshold"][1] < 0.5 * levels["threshold"][0]  # the cliff


def test_point_source_weights_on_the_output_grid():
    """A pixel half covered by a source counts half; a detector that records no rule keeps the threshold rule."""
    from bubblenet.training_data.cutouts import Normalisation, normalise

    image = np.zeros((4, 4, 2), np.float32)
    image[..., CHANNEL_8UM] = np.array([[0, 1, 2, 3]] * 4, np.float32)
    share = np.zeros((4, 4), np.float32)
    share[:, 3] = 0.5
    weights = 1 - share.ravel()
    band = image[..., CHANNEL_8UM].ravel()
    mean = np.average(band, weights=weights)
    level = mean + 3 * np.sqrt(np.average((band - mean) ** 2, weights=weights))
    out = normalise(image, fwhm8_px=2, stars=share)[..., CHANNEL_8UM]
    np.testing.assert_allclose(out, np.clip(image[..., CHANNEL_8UM], 0, level) / level, rtol=1e-5)
    assert Normalisation.from_dict({"clip_sigma": 3.0}).stars == "threshold"
    assert Normalisation.from_dict(Normalisation().to_dict()) == Normalisation()


# -- samples ------------------------------------------------------------------------------

def test_crop_rules():
    from bubblenet.training_data.samples import DataConfig

    rng = np.random.default_rng(4)
    uniform = np.array([DataConfig().crop_scale(rng) for _ in range(20000)])
    paper = np.array([DataConfig(crop_rule="paper").crop_scale(rng) for _ in range(20000)])
    for scales in (uniform, paper):
        assert scales.min() >= 1.72 - 1e-9 and scales.max() <= 5.88 + 1e-9
    assert np.median(uniform) == pytest.approx(3.80, abs=0.05)
    assert np.median(paper) == pytest.approx(1 / ((0.17 + 0.58) / 2), abs=0.05)  # 2.67: uniform in 1 / s
    assert np.median(1 / paper) == pytest.approx((1 / 5.88 + 1 / 1.72) / 2, abs=0.005)


# -- loss, initialisation, clipping -------------------------------------------------------

def test_loss_normalisations_against_a_hand_computation():
    from bubblenet.ssd.losses import multibox_loss

    rng = np.random.default_rng(5)
    b, n = 2, 40
    classes = np.zeros((b, n), np.int32)
    classes[0, :3] = 1  # image 0: 3 matched priors; image 1: none (a negative image)
    offsets_true = rng.normal(0, 1, (b, n, 4)).astype(np.float32) * (classes[..., None] > 0)
    offsets_pred = rng.normal(0, 1, (b, n, 4)).astype(np.float32)
    logits = rng.normal(0, 1, (b, n, 2)).astype(np.float32)

    d = np.abs(offsets_true - offsets_pred)
    smooth = np.where(d < 1, 0.5 * d * d, d - 0.5).sum(-1)
    ce = np.log(np.exp(logits).sum(-1)) - np.take_along_axis(logits, classes[..., None], -1)[..., 0]
    pos = classes > 0
    hard = np.zeros_like(pos)
    for i in range(b):
        k = min(max(3 * pos[i].sum(), 20), n - pos[i].sum())
        background = np.where(pos[i], -1, ce[i])
        hard[i, np.argsort(-background)[:k]] = True
    hard &= ~pos
    n_pos = pos.sum()
    ours = (smooth[pos].sum() + ce[pos].sum() + ce[hard].sum()) / n_pos
    paper = smooth[pos].sum() / (4 * n_pos) + ce[pos].mean() + ce[hard].mean()
    got_ours = float(multibox_loss(offsets_true, classes, offsets_pred, logits)[0])
    got_paper = float(multibox_loss(offsets_true, classes, offsets_pred, logits, normalisation="paper")[0])
    assert got_ours == pytest.approx(ours, rel=1e-4)
    assert got_paper == pytest.approx(paper, rel=1e-4)


def test_kaiming_initialisation_and_clipping_by_value():
    import keras

    from bubblenet.ssd.model import build_ssd
    from bubblenet.training.validation import OptimiserConfig, compile_model

    keras.utils.set_random_seed(0)
    kaiming = build_ssd("lite", init="kaiming").get_layer("conv3_1").kernel.numpy()
    glorot = build_ssd("lite").get_layer("conv3_1").kernel.numpy()
    fan_in = np.prod(kaiming.shape[:3])
    assert kaiming.std() == pytest.approx(np.sqrt(2 / fan_in), rel=0.05)
    limit = np.sqrt(6 / (fan_in + np.prod(glorot.shape[:2]) * glorot.shape[3]))
    assert np.abs(glorot).max() <= limit and glorot.std() == pytest.approx(limit / np.sqrt(3), rel=0.05)

    by_value = compile_model(build_ssd("lite"), OptimiserConfig(clip="value", clipnorm=10.0)).optimizer
    by_norm = compile_model(build_ssd("lite"), OptimiserConfig()).optimizer
    assert by_value.clipvalue == 10.0 and by_value.global_clipnorm is None
    assert by_norm.global_clipnorm == 10.0 and by_norm.clipvalue is None


# -- windows and thresholds ---------------------------------------------------------------

def test_window_origins():
    from bubblenet.detection.windows import window_starts

    edge = window_starts(1000, 300, 100)
    assert edge[0] == 0 and edge[-1] + 300 == 1000
    paper = window_starts(1000, 300, 100, origin="paper")
    # From a fifth of the side, below stride x (length // stride - 1) = 900, windows inside the tile.
    assert paper == [60, 160, 260, 360, 460, 560, 660]


def test_threshold_steps():
    from bubblenet.evaluation.metrics import THRESHOLDS, thresholds

    assert THRESHOLDS == (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)
    fine = thresholds(0.01)
    assert len(fine) == 46 and fine[0] == 0.5 and fine[-1] == 0.95 and 0.73 in fine


# -- scoring on the sky, each bubble once -------------------------------------------------

def test_validation_counts_a_bubble_in_a_tile_overlap_once(fit_sky, tmp_path):
    """A perfect detector on two adjacent tiles: every bubble found once, no false positive, although the
    bubbles in the 0.1° overlap are in both tiles."""
    from bubblenet.training.validation import SkyScores, ValidationTile
    from bubblenet.training_data.samples import survey_inputs

    tiles, catalogue, _ = survey_inputs(folder=fit_sky)
    everything = set(np.asarray(catalogue["name"]).astype(str))
    pair = [ValidationTile.from_tile(t, catalogue, everything, tmp_path) for t in tiles[:2]]
    per_tile = sum(len(t.rows) for t in pair)
    unique = len(set(pair[0].rows) | set(pair[1].rows))
    assert per_tile > unique, "the fixture's tiles should share bubbles in their overlap"
    detections = [(t.bubbles, np.ones(len(t.bubbles))) for t in pair]
    sky = SkyScores.from_tiles(pair, detections, catalogue)
    scores = sky.at(0.5)
    assert scores["paper"]["tp"] == unique and scores["paper"]["fn"] == 0
    assert scores["strict"]["tp"] + scores["strict"]["fn"] == unique
    assert scores["strict"]["fp"] == 0  # the overlap's second copies were merged away, not counted as FP
