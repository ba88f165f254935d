"""The shared search mode: the SSD cut in two, one normalisation per level, windows on the trunk's grid."""

from __future__ import annotations

import numpy as np
import pytest

from bubblenet.detection.local_norm import local_normalise, stats_grid
from bubblenet.detection.pyramid import aligned_starts
from bubblenet.training_data.cutouts import Normalisation, normalise


@pytest.fixture(scope="module")
def lite():
    import keras

    from bubblenet.ssd.model import build_ssd

    keras.utils.set_random_seed(3)
    return build_ssd("lite")


def test_the_cut_gives_the_models_outputs_and_its_receptive_field(lite):
    import keras

    from bubblenet.ssd.sharing import CUT_LAYER, split_of

    split = split_of(lite)
    # The lite preset: conv5 cells of 16 px seeing 134 px, first-source cells of 8 px.
    assert (split.step, split.head_step, split.receptive_field, split.margin) == (16, 8, 134, 80)
    rng = np.random.default_rng(0)
    windows = rng.random((3, 128, 128, 2)).astype(np.float32)
    parts = keras.Model(lite.input, [lite.get_layer(CUT_LAYER).input, lite.get_layer("loc_0").output,
                                     lite.get_layer("conf_0").output]).predict_on_batch(windows)
    # A window's own trunk maps, put through the tail, are the model's outputs.
    np.testing.assert_allclose(split.window_outputs(*parts), lite.predict_on_batch(windows), atol=1e-4)
    # The fully convolutional trunk over a larger block: a window's first-source cells whose
    # receptive field (78 px) lies inside the window are the window's own; cells at its edge are not.
    block = rng.random((512, 512, 2)).astype(np.float32)
    conv5, loc0, conf0 = split.trunk_maps(block)
    assert conv5.shape == (32, 32, 128) and loc0.shape[:2] == (64, 64)
    y, x = 192, 256
    _, own_loc, _ = (np.asarray(a)[0] for a in parts_of(lite, block[y:y + 128, x:x + 128]))
    shared = loc0[y // 8:y // 8 + 16, x // 8:x // 8 + 16]
    np.testing.assert_allclose(shared[5:11, 5:11], own_loc[5:11, 5:11], atol=1e-4)
    assert np.abs(shared[0] - own_loc[0]).max() > 1e-2


def parts_of(model, window):
    import keras

    from bubblenet.ssd.sharing import CUT_LAYER

    return keras.Model(model.input, [model.get_layer(CUT_LAYER).input, model.get_layer("loc_0").output,
                                     model.get_layer("conf_0").output]).predict_on_batch(window[None])


def test_a_model_that_is_not_an_ssd_cannot_be_cut():
    import keras

    from bubblenet.ssd.sharing import split_ssd

    inputs = keras.Input((32, 32, 2))
    with pytest.raises(ValueError, match="pool5"):
        split_ssd(keras.Model(inputs, keras.layers.Conv2D(4, 3)(inputs)))


@pytest.mark.parametrize("norm", [Normalisation(), Normalisation(stars="threshold"), Normalisation(level="paper")])
def test_on_a_sky_of_the_same_statistics_everywhere_every_window_is_scaled_as_on_its_own(norm):
    # A pattern of period 16 in both axes: every 128-px window holds 8 x 8 whole periods, so every
    # window's minimum, mean and sigma are the same, and the level's scaling must be each window's.
    rng = np.random.default_rng(1)
    cell = rng.gamma(2.0, 5.0, (16, 16, 2)).astype(np.float32) + np.float32(30.0)
    stars_cell = (rng.random((16, 16)) < 0.2).astype(np.float32) * rng.random((16, 16)).astype(np.float32)
    image, stars = np.tile(cell, (20, 24, 1)), np.tile(stars_cell, (20, 24))
    scaled = local_normalise(image, stars, 128, offset=(0, 0), level_shape=image.shape[:2], norm=norm)
    for y, x in ((0, 0), (37, 101), (192, 256)):
        own = normalise(image[y:y + 128, x:x + 128], fwhm8_px=2.0, stars=stars[y:y + 128, x:x + 128], norm=norm)
        np.testing.assert_allclose(scaled[y:y + 128, x:x + 128], own, atol=2e-4)


def test_pixels_near_the_levels_corner_are_scaled_as_the_corner_window():
    # The window centred on a pixel within half a window of the level's corner is the corner window.
    rng = np.random.default_rng(2)
    yy, xx = np.mgrid[0:320, 0:288].astype(np.float32)
    image = np.stack([yy * 0.3 + xx * 0.1, np.sin(xx / 17.0) * 20 + yy * 0.05], axis=-1) + 100
    image += rng.normal(0, 2, image.shape).astype(np.float32)
    stars = np.zeros(image.shape[:2], np.float32)
    scaled = local_normalise(image, stars, 128, offset=(0, 0), level_shape=image.shape[:2])
    own = normalise(image[:128, :128], fwhm8_px=2.0, stars=stars[:128, :128])
    np.testing.assert_allclose(scaled[:64, :64], own[:64, :64], atol=2e-4)
    # Elsewhere the scaling follows the sky: the last window's corner is the last window's.
    last = normalise(image[-128:, -128:], fwhm8_px=2.0, stars=stars[-128:, -128:])
    np.testing.assert_allclose(scaled[-64:, -64:], last[-64:, -64:], atol=2e-3)


def test_missing_pixels_take_no_part_and_become_zero():
    rng = np.random.default_rng(3)
    image = rng.gamma(2.0, 5.0, (256, 256, 2)).astype(np.float32)
    holed = image.copy()
    holed[100:140, 30:90] = np.nan
    stars = np.zeros(image.shape[:2], np.float32)
    scaled = local_normalise(holed, stars, 128, offset=(0, 0), level_shape=image.shape[:2])
    assert np.isfinite(scaled).all() and (scaled[100:140, 30:90] == 0).all()
    assert 0 <= scaled.min() and scaled.max() <= 1 and scaled[:50].std() > 0.05
    with pytest.raises(ValueError, match="grid"):
        local_normalise(image, stars, 128, offset=(8, 0), level_shape=image.shape[:2])
    assert stats_grid(128) == 16 and stats_grid(300) == 15


@pytest.fixture(scope="module")
def cache(twin_tiles, tmp_path_factory):
    from bubblenet.sky.tilecache import TileCache

    return TileCache(twin_tiles[0], tmp_path_factory.mktemp("cache"))


def test_strips_and_blocks_do_not_change_the_shared_outputs(lite, cache):
    # Pieces read with the trunk's margin and half a window for the statistics give the whole level's
    # normalisation and maps exactly, however the level is cut into strips and column blocks.
    from bubblenet.detection.pyramid import plan_levels
    from bubblenet.detection.shared import shared_outputs
    from bubblenet.sky.tilecache import BadMap
    from bubblenet.ssd.sharing import split_of

    split = split_of(lite)
    levels = plan_levels(cache.shape, [450], 128, stride_fraction=0.5, bad=BadMap(cache), step=split.step)
    assert levels and len(levels[0]) > 20

    def run(**sizes):
        batches = list(shared_outputs(cache, levels, split, norm=Normalisation(), **sizes))
        return [c for crops, _ in batches for c in crops], np.concatenate([o for _, o in batches])

    crops, whole = run(strip_rows=100_000, block_columns=100_000)
    pieces, cut = run(strip_rows=48, block_columns=112, batch=7)
    assert crops == pieces
    np.testing.assert_allclose(cut, whole, atol=2e-3, rtol=1e-4)
    with pytest.raises(ValueError, match="off the trunk's 16-px grid"):
        next(shared_outputs(cache, plan_levels(cache.shape, [450], 128, stride_fraction=0.3), split,
                            norm=Normalisation()))


def test_aligned_starts_stay_on_the_grid_and_inside():
    for length in (300, 511, 1000):
        starts = aligned_starts(length, 128, 64, step=16)
        assert all(s % 16 == 0 and 0 <= s <= length - 128 for s in starts)
        assert starts[0] == 0 and length - 128 - starts[-1] < 16 and len(set(starts)) == len(starts)
    assert aligned_starts(1000, 128, 64) == list(range(0, 1000 - 128 + 1, 64)) + [1000 - 128]


def test_shared_search_finds_the_bubbles_the_fast_search_finds(test_tile_sky, tmp_path):
    import dataclasses

    from bubblenet.detection.detector import load_detector
    from bubblenet.detection.search import search_tile
    from bubblenet.sky.tilecache import TileCache
    from bubblenet.ssd.targets import pairwise_iou
    from bubblenet.training_data.samples import survey_inputs

    detector = load_detector()
    tiles, _, _ = survey_inputs(folder=test_tile_sky)
    tile = next(t for t in tiles if t.name.startswith("GLM_01200"))
    cache = TileCache(tile, tmp_path, missing=detector.search.missing)
    pixscale = float(tile.pixel_scale.value)
    found = {}
    for mode in ("fast", "shared"):
        search = dataclasses.replace(detector.search, mode=mode, sizes_arcsec=(600.0, 1800.0))
        found[mode] = search_tile(detector.model_for(mode), detector.spec, cache, search, pixscale_arcsec=pixscale,
                                  norm=detector.normalisation, bands=detector.bands, confidence=detector.threshold)
    fast, shared = found["fast"], found["shared"]
    assert abs(shared.windows - fast.windows) <= 0.05 * fast.windows and len(fast.scores) >= 3
    iou = pairwise_iou(fast.boxes.astype(np.float32), shared.boxes.astype(np.float32)).numpy()
    matched = (iou.max(axis=1) >= 0.5).mean()
    assert matched >= 0.6 and 0.5 <= len(shared.scores) / len(fast.scores) <= 1.5, (matched, len(shared.scores))


def test_a_detector_keeps_its_shared_search_network_and_refuses_a_wrong_one(lite, tmp_path):
    import keras

    from bubblenet.detection.detector import SHARED_MODEL_FILE, Detector, load_detector, model_info, save_detector
    from bubblenet.errors import InputError
    from bubblenet.ssd.model import build_ssd

    other = build_ssd("lite")
    info = model_info("lite", lite.anchor_spec, 0.5, shared_model={"made_by": "a test"})
    folder = save_detector(Detector(lite, lite.anchor_spec, 0.5, info, shared_model=other), tmp_path / "det")
    loaded = load_detector(folder)
    assert loaded.info["shared_model"]["made_by"] == "a test" and loaded.model_for("fast") is loaded.model
    x = np.random.default_rng(0).random((1, 128, 128, 2)).astype(np.float32)
    np.testing.assert_allclose(loaded.model_for("shared").predict_on_batch(x), other.predict_on_batch(x), atol=1e-5)
    # Without a shared network, the shared mode runs the model itself, and a save describes none.
    plain = load_detector(save_detector(Detector(lite, lite.anchor_spec, 0.5, info), tmp_path / "plain"))
    with pytest.warns(UserWarning, match="no network distilled"):
        assert "shared_model" not in plain.info and plain.model_for("shared") is plain.model
    # Another model file of the folder (best.keras) was not the teacher: it gets no shared network.
    lite.save(folder / "best.keras")
    assert load_detector(folder / "best.keras").shared_model is None
    keras.utils.set_random_seed(9)
    build_ssd("lite").save(folder / SHARED_MODEL_FILE)
    with pytest.raises(InputError, match="shared_model.keras is not the network"):
        load_detector(folder)
    (folder / SHARED_MODEL_FILE).unlink()
    with pytest.raises(InputError, match="there is no shared_model.keras"):
        load_detector(folder)


@pytest.mark.slow
def test_distillation_brings_the_student_closer_to_the_teacher(fit_sky, tmp_path):
    from bubblenet.detection.detector import load_detector
    from bubblenet.errors import ConfigError
    from bubblenet.sky.tilecache import TileCache
    from bubblenet.training.distillation import DistilConfig, distil_shared
    from bubblenet.training_data.samples import survey_inputs

    detector = load_detector()
    tiles, _, _ = survey_inputs(folder=fit_sky)
    caches = [TileCache(tiles[0], tmp_path)]
    student, record = distil_shared(detector, caches, float(tiles[0].pixel_scale.value),
                                    DistilConfig(windows_per_tile=60, epochs=3, batch=8, lr=3e-4), progress=False)
    assert record["windows"] >= 40 and len(record["epochs"]) == 3
    losses = [e["loss"] for e in record["epochs"]]
    assert losses[-1] < losses[0], losses
    assert student is not detector.model and len(student.get_weights()) == len(detector.model.get_weights())
    with pytest.raises(ConfigError, match="epochs"):
        DistilConfig(epochs=0)


@pytest.mark.slow
def test_bfloat16_searches_find_what_float32_finds(test_tile_sky, tmp_path):
    import dataclasses

    from bubblenet.detection.detector import load_detector
    from bubblenet.detection.search import SearchConfig, search_tile
    from bubblenet.errors import ConfigError
    from bubblenet.sky.tilecache import TileCache
    from bubblenet.ssd.model import in_precision
    from bubblenet.ssd.targets import pairwise_iou
    from bubblenet.training_data.samples import survey_inputs

    detector = load_detector()
    low = in_precision(detector.model)
    assert low.layers[1].compute_dtype == "bfloat16" and low.count_params() == detector.model.count_params()
    tiles, _, _ = survey_inputs(folder=test_tile_sky)
    tile = next(t for t in tiles if t.name.startswith("GLM_01200"))
    cache = TileCache(tile, tmp_path, missing=detector.search.missing)
    found = {}
    for precision in ("float32", "bfloat16"):
        search = dataclasses.replace(detector.search, sizes_arcsec=(600.0, 1800.0), precision=precision)
        found[precision] = search_tile(detector.model, detector.spec, cache, search,
                                       pixscale_arcsec=float(tile.pixel_scale.value), norm=detector.normalisation,
                                       bands=detector.bands, confidence=detector.threshold)
    full, half = found["float32"], found["bfloat16"]
    iou = pairwise_iou(full.boxes.astype(np.float32), half.boxes.astype(np.float32)).numpy()
    assert len(full.scores) >= 3 and (iou.max(axis=1) >= 0.8).mean() >= 0.8, (len(full.scores), len(half.scores))
    with pytest.raises(ConfigError, match="search precision must be one of float32, bfloat16"):
        SearchConfig(precision="float16")


def test_the_shared_mode_refuses_a_network_it_cannot_cut():
    from bubblenet.errors import ConfigError
    from bubblenet.training.config import FitConfig

    assert FitConfig(val_mode="shared").val_mode == "shared"
    with pytest.raises(ConfigError, match="option --val-mode: 'shared' needs the lite preset"):
        FitConfig(val_mode="shared", preset="paper")
