"""Training data: splits, cut-out processing, labels, negatives, clusters and the tf.data stream."""

from __future__ import annotations

import json

import numpy as np
from scipy import ndimage
import pytest

from bubblenet.catalogues.tables import select, sky_coords
from bubblenet.conventions import BOX_SCALE, CHANNEL_8UM, CHANNEL_24UM
from bubblenet.training_data.cutouts import Crop, Normalisation, dihedral, labels_in_crop, normalise, resample
from bubblenet.training_data.samples import DataConfig, TrainingData, survey_inputs
from bubblenet.errors import ConfigError
from bubblenet.training_data.negatives import cluster_negatives, cluster_weights
from bubblenet.training_data.splits import Split, split_tiles
from bubblenet.synth import Region, SynthConfig, make_survey
from bubblenet.synth.layout import survey_layout
from bubblenet.sky.tilecache import BadMap, TileCache


# -- splits ----------------------------------------------------------------------------

class _FakeTile:
    """Just enough of a SkyTile for splitting: a name and a WCS."""

    def __init__(self, spec):
        self.name = spec.filename.removesuffix(".fits")
        self.shape = spec.shape
        self._wcs = spec.wcs()

    def pixel_to_world(self, x, y):
        return self._wcs.pixel_to_world(x, y)


@pytest.fixture(scope="module")
def plane_tiles():
    _, specs8, _ = survey_layout(Region(7.5, 58.5, -1, 1), 20.0)
    return [_FakeTile(s) for s in specs8]


def test_paper_split(plane_tiles):
    split = split_tiles(plane_tiles, val=[33, 39, 48, 54])
    assert [n[4:7] for n in split.test] == ["021", "018", "015", "012"]
    assert sorted(n[4:7] for n in split.val) == ["033", "039", "048", "054"]
    assert len(split.train) == len(plane_tiles) - 8
    assert set(split.train).isdisjoint(split.val) and set(split.train).isdisjoint(split.test)


def test_seeded_split_is_reproducible(plane_tiles, tmp_path):
    a, b, c = (split_tiles(plane_tiles, val=4, seed=s) for s in (0, 0, 1))
    assert a == b and a.val != c.val and len(a.val) == 4
    a.to_json(tmp_path / "split.json")
    assert Split.from_json(tmp_path / "split.json") == a
    with pytest.raises(ConfigError, match="validation longitudes"):
        split_tiles(plane_tiles, val=[100.0])
    with pytest.raises(ConfigError, match="no tile left for training"):
        split_tiles(plane_tiles[:2], test_longitudes=[57, 54], val=0)


# -- a small survey with three tiles ---------------------------------------------------

@pytest.fixture(scope="module")
def survey(tmp_path_factory):
    folder = tmp_path_factory.mktemp("train_sky")
    make_survey(folder, SynthConfig(Region(26.0, 34.0, -1.0, 1.0), 4.8, seed=2))
    return folder


@pytest.fixture(scope="module")
def inputs(survey):
    return survey_inputs(folder=survey)


@pytest.fixture(scope="module")
def split(inputs):
    return split_tiles(inputs[0], test_longitudes=[30.0], val=0)


@pytest.fixture(scope="module")
def train(inputs, split, tmp_path_factory):
    tiles, catalogue, selection = inputs
    return TrainingData(tiles, catalogue, selection, split, "train", DataConfig(size=64, negatives_per_tile=60),
                        tmp_path_factory.mktemp("cache"))


def _crop_sky_corners(data, crop):
    tile = data.tiles[crop.tile]
    xs = np.array([crop.x0, crop.x0 + crop.side, crop.x0, crop.x0 + crop.side]) - 0.5
    ys = np.array([crop.y0, crop.y0, crop.y0 + crop.side, crop.y0 + crop.side]) - 0.5
    return tile.pixel_to_world(xs, ys)


def test_no_test_sky_reaches_training(train, inputs, split):
    tiles = {t.name: t for t in inputs[0]}
    (test_tile,) = [tiles[n] for n in split.test]
    ny, nx = test_tile.shape
    crops = [train.positive_crop(k)[0] for k in range(3 * len(train.positives))] + list(train.negatives)
    for crop in crops:
        x, y = test_tile.world_to_pixel(_crop_sky_corners(train, crop))
        inside = (x > -0.5) & (x < nx - 0.5) & (y > -0.5) & (y < ny - 0.5)
        assert not inside.any(), crop
    # and the test tile's own bubbles are never positives
    test_names = set(inputs[1]["name"][_centres_inside(test_tile, inputs[1])])
    train_names = {_nearest_name(train, inputs[1], i) for i in range(len(train.positives))}
    assert test_names and not (test_names & train_names)


def _centres_inside(tile, catalogue, margin=0.0):
    x, y = tile.world_to_pixel(sky_coords(catalogue))
    ny, nx = tile.shape
    return (x > -0.5 + margin) & (x < nx - 0.5 - margin) & (y > -0.5 + margin) & (y < ny - 0.5 - margin)


def _nearest_name(data, catalogue, i):
    tile_index, x, y, _ = data.positives[i]
    cx, cy = data.tiles[tile_index].world_to_pixel(sky_coords(catalogue))
    return catalogue["name"][int(np.argmin(np.hypot(cx - x, cy - y)))]


def test_negatives_hold_no_catalogue_bubble(train, inputs):
    catalogue = inputs[1]
    for crop in train.negatives:
        x, y = train.tiles[crop.tile].world_to_pixel(sky_coords(catalogue))
        inside = (x >= crop.x0 - 0.5) & (x < crop.x0 + crop.side - 0.5) & (y >= crop.y0 - 0.5) & (
            y < crop.y0 + crop.side - 0.5)
        assert not inside.any(), f"bubble {catalogue['name'][inside][0]} in negative {crop}"
        assert len(labels_in_crop(crop, train._tile_data[crop.tile].boxes)) == 0


def test_paper_masking_only_keeps_selected_bubbles_out(inputs, split, tmp_path):
    tiles, catalogue, selection = inputs
    data = TrainingData(tiles, catalogue, selection, split, "train",
                        DataConfig(size=64, negatives_per_tile=60, mask_all_bubbles=False, seed=1), tmp_path)
    chosen = select(catalogue, selection)
    leaked = 0
    for crop in data.negatives:
        x, y = data.tiles[crop.tile].world_to_pixel(sky_coords(catalogue))
        inside = (x >= crop.x0) & (x < crop.x0 + crop.side) & (y >= crop.y0) & (y < crop.y0 + crop.side)
        assert not (inside & chosen).any()
        leaked += int((inside & ~chosen).sum())
    assert leaked > 0, "the paper's masking lets other bubbles into negatives (why we mask all by default)"


def test_centred_crop_geometry(train):
    tile, x, y, maj = train.positives[0]
    crop = train._centred(tile, x, y, maj)
    rel = crop.relative(np.array([[x, y, x, y]]))[0]
    assert rel[0] == pytest.approx(0.5, abs=1 / crop.side) and rel[1] == pytest.approx(0.5, abs=1 / crop.side)
    boxes = labels_in_crop(crop, train._tile_data[tile].boxes)
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    own = boxes[np.argmin(np.hypot(*(centres - 0.5).T))]
    assert (own[2] - own[0]) / 2 == pytest.approx(BOX_SCALE / (2 * 1.7), rel=0.05)


def test_boxes_follow_the_image_through_symmetries(train):
    """The 24 µm light of each target bubble sits at its transformed box centre, for all 8 symmetries."""
    seen = set()
    for k in range(4 * len(train.positives)):
        crop, sym = train.positive_crop(k)
        sample = train.positive(k)
        seen.add(sym)
        tile, x, y, maj = train.positives[_target(train, k)]
        (centre,) = dihedral(np.zeros((2, 2, 1)), crop.relative(np.array([[x, y, x, y]])), sym)[1]
        expect = centre[:2]
        boxes = sample.boxes[sample.labels > 0]
        centres = (boxes[:, :2] + boxes[:, 2:]) / 2
        assert np.min(np.hypot(*(centres - expect).T)) < 2 / crop.side * 2 + 0.01
        # image: 24 µm centroid near the box centre
        size = sample.image.shape[0]
        half = 0.6 * maj / crop.side * size
        yy, xx = np.mgrid[:size, :size]
        px, py = expect * size - 0.5
        disk = np.hypot(xx - px, yy - py) < max(half, 2)
        band = sample.image[..., CHANNEL_24UM] * disk
        band = np.clip(band - np.median(sample.image[..., CHANNEL_24UM]), 0, None)
        assert band.sum() > 0, (k, sym)  # every target bubble is brighter than the crop's median at 24 µm
        cx, cy = (band * xx).sum() / band.sum(), (band * yy).sum() / band.sum()
        assert np.hypot(cx - px, cy - py) < max(0.35 * half, 1.5), (k, sym)
    assert seen == set(range(8))


def _target(data, k):
    n = len(data.positives)
    return np.random.default_rng([data.config.seed, 2, k // n]).permutation(n)[k % n]


def test_samples_are_normalised_and_padded(train):
    sample = train.positive(3)
    assert sample.image.shape == (64, 64, 2) and sample.image.dtype == np.float32
    assert sample.image.min() >= 0 and sample.image.max() <= 1 and sample.image.max() == 1
    assert sample.boxes.shape == (32, 4) and (sample.labels[sample.labels != 1] == -1).all()
    assert (sample.boxes[sample.labels > 0] >= 0).all() and (sample.boxes[sample.labels > 0] <= 1).all()
    negative = train.negative(5, 2)
    assert (negative.labels == -1).all()


def test_label_rules():
    crop = Crop(0, 0, 0, 100)  # relative = (pixel + 0.5) / 100
    boxes = np.array([
        [-40.5, 9.5, 59.5, 59.5],   # 60 % inside: kept (clipped)
        [-41.5, 9.5, 58.5, 59.5],   # 58 % inside: dropped
        [9.5, 9.5, 89.5, 19.5],     # aspect 8: dropped
        [9.5, 9.5, 24.5, 24.5],     # area 15²/100² < 1/36: dropped
        [9.5, 9.5, 29.5, 29.5],     # 20²/100² > 1/36: kept
    ])
    kept = labels_in_crop(crop, boxes)
    np.testing.assert_allclose(kept, [[0.0, 0.1, 0.6, 0.6], [0.1, 0.1, 0.3, 0.3]], atol=1e-9)


def test_dihedral_inverse_and_goldens():
    rng = np.random.default_rng(0)
    image = rng.normal(size=(8, 8, 2))
    boxes = np.array([[0.1, 0.2, 0.4, 0.7]])
    out, b = dihedral(image, boxes, 1)
    np.testing.assert_allclose(b, [[0.3, 0.1, 0.8, 0.4]])
    back, bb = dihedral(*dihedral(image, boxes, 1), 3)
    np.testing.assert_allclose(back, image)
    np.testing.assert_allclose(bb, boxes)
    flipped, fb = dihedral(*dihedral(image, boxes, 4), 4)
    np.testing.assert_allclose(flipped, image)
    np.testing.assert_allclose(fb, boxes)


def test_resample_antialiases_and_keeps_positions():
    n = 512
    yy, xx = np.mgrid[:n, :n]
    checker = ((xx + yy) % 2).astype(np.float32)[..., None]
    small = resample(checker, 64)
    assert small.std() < 0.01 and small.mean() == pytest.approx(0.5, abs=0.01)
    blob = np.exp(-((xx - 300.5) ** 2 + (yy - 100.5) ** 2) / (2 * 20.0**2)).astype(np.float32)[..., None]
    out = resample(blob, 64)[..., 0]
    gy, gx = np.mgrid[:64, :64]
    cx, cy = (out * gx).sum() / out.sum(), (out * gy).sum() / out.sum()
    # relative position (x + 0.5) / n is preserved
    assert (cx + 0.5) / 64 == pytest.approx((300.5 + 0.5) / n, abs=0.3 / 64)
    assert (cy + 0.5) / 64 == pytest.approx((100.5 + 0.5) / n, abs=0.3 / 64)


def test_normalise_masks_stars_in_8um():
    rng = np.random.default_rng(1)
    image = rng.normal(100, 2, (96, 96, 2)).astype(np.float32)
    yy, xx = np.mgrid[:96, :96]
    for sx, sy in rng.uniform(10, 86, (25, 2)):
        image[..., CHANNEL_8UM] += 400 * np.exp(-((xx - sx) ** 2 + (yy - sy) ** 2) / (2 * 1.0**2))
    masked = normalise(image, fwhm8_px=2.4)
    plain = normalise(image, fwhm8_px=2.4, mask_stars=False)
    assert masked.min() >= 0 and masked.max() <= 1
    # masking the stars lowers mean + 3σ, so the sky fills more of [0, 1]
    assert np.median(masked[..., CHANNEL_8UM]) > 1.5 * np.median(plain[..., CHANNEL_8UM])
    flat = normalise(np.ones((16, 16, 2), np.float32), fwhm8_px=2)
    assert (flat == 0).all()


def test_normalise_clip_sets_where_the_scale_saturates():
    image = np.random.default_rng(2).normal(100, 5, (64, 64, 2)).astype(np.float32)
    shifted = image[..., CHANNEL_24UM] - image[..., CHANNEL_24UM].min()
    for k in (2.0, 3.0, 5.0):
        out = normalise(image, fwhm8_px=2.4, mask_stars=False, norm=Normalisation(clip_sigma=k))[..., CHANNEL_24UM]
        top = shifted.mean() + k * shifted.std()
        assert out.max() <= 1 and np.mean(out == 1) == pytest.approx(np.mean(shifted >= top), abs=1e-3)
    with pytest.raises(ConfigError, match="clip_sigma"):
        DataConfig(clip_sigma=0)


# -- caches ----------------------------------------------------------------------------

def test_tile_cache_matches_tile_and_bad_map(inputs, tmp_path):
    from bubblenet.sky.mosaics import Window

    tile = inputs[0][0]
    cache = TileCache(tile, tmp_path)
    np.testing.assert_allclose(cache.window(100, 300, 50), tile.read(Window(100, 300, 50, 50)), rtol=1e-6)
    assert cache.window(-1, 0, 10) is None
    again = TileCache(tile, tmp_path)
    assert again.path == cache.path and len(list(tmp_path.glob("*.npy"))) == 2  # bands + point-source mask
    bad = BadMap(cache)
    assert bad.touches(0, 0, 16), "tile corners are outside the survey's latitude coverage"
    ny, nx = cache.shape
    assert not bad.touches(nx // 2, ny // 2, 8)
    bad.paint_disks([nx // 2 + 4], [ny // 2 + 4], [2])
    assert bad.touches(nx // 2, ny // 2, 8)


# -- clusters and the stream -----------------------------------------------------------

def test_clusters_write_montages_and_weights(train, tmp_path):
    pool = np.stack([train.negative(i).image for i in range(len(train.negatives))])
    clusters = cluster_negatives(pool, k=4, seed=0, drop=[1], out_dir=tmp_path)
    assert len(clusters.montages) == 4 and all(p.exists() for p in clusters.montages)
    info = json.loads((tmp_path / "negatives_clusters.json").read_text())
    assert sum(info["counts"]) == len(pool) and info["weights"][1] == 0
    assert clusters.weights.sum() == pytest.approx(1)
    assert sorted(np.concatenate([clusters.members(c) for c in range(4)])) == list(range(len(pool)))
    with pytest.raises(ValueError, match="nothing left"):
        cluster_weights(2, drop=[0, 1])


def test_stream_shapes_mix_and_determinism(train):
    from bubblenet.training_data.stream import training_stream

    def first(data, n=2):
        it = iter(training_stream(data, positives=4, negatives=2))
        return [tuple(t.numpy() for t in next(it)) for _ in range(n)]

    a, b = first(train), first(train)
    images, boxes, classes = a[0]
    assert images.shape == (6, 64, 64, 2) and boxes.shape == (6, 32, 4) and classes.shape == (6, 32)
    assert images.dtype == np.float32 and classes.dtype == np.int32
    assert ((classes[:4] == 1).sum(axis=1) >= 1).all() and (classes[4:] == -1).all()
    assert 0 <= images.min() and images.max() <= 1
    for (x, y), (p, q) in zip([(s[0], s[1]) for s in a], [(s[0], s[1]) for s in b]):
        np.testing.assert_array_equal(x, p)
        np.testing.assert_array_equal(y, q)
    other = TrainingData.__new__(TrainingData)
    other.__dict__.update(train.__dict__)
    other.config = DataConfig(size=64, negatives_per_tile=60, seed=9)
    assert not np.array_equal(first(other, 1)[0][0], a[0][0])


def test_data_cli_preview(survey, tmp_path, capsys):
    from bubblenet.data import main

    out = tmp_path / "preview"
    status = main(["preview", "--survey", str(survey), "--test-l", "30", "--n-val", "0", "--size", "64",
                   "--negatives-per-tile", "40", "--clusters", "3", "--drop-clusters", "0", "--out", str(out), "-q"])
    assert status == 0
    assert (out / "batch_montage.png").exists() and (out / "split.json").exists()
    assert len(list(out.glob("negatives_cluster_*.png"))) == 3
    assert json.loads((out / "split.json").read_text())["test"] == ["GLM_03000+0000_mosaic_I4"]
    capsys.readouterr()  # only what the failing run writes below
    assert main(["preview", "--survey", str(survey), "--test-l", "27", "30", "33", "--out", str(out), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error: no tile left for training among" in err, err
    assert "(test longitudes [27.0, 30.0, 33.0])" in err, err


def test_each_bubble_once_even_where_tiles_overlap(inputs, tmp_path):
    tiles, catalogue, selection = inputs
    split = split_tiles(tiles, test_longitudes=[], val=0)  # all three overlapping tiles train together
    data = TrainingData(tiles, catalogue, selection, split, "train", DataConfig(size=64, negatives_per_tile=5),
                        tmp_path)
    names = [_nearest_name(data, catalogue, i) for i in range(len(data.positives))]
    assert len(names) == len(set(names))
    chosen = catalogue[select(catalogue, selection)]
    in_any = np.zeros(len(chosen), bool)
    for tile in tiles:
        in_any |= _centres_inside(tile, chosen)
    assert len(names) <= in_any.sum()


def test_keras_embedder_pools_a_layer():
    import keras

    from bubblenet.training_data.negatives import KerasEmbedder

    inputs = keras.Input((32, 32, 2))
    x = keras.layers.Conv2D(5, 3, padding="same", name="features")(inputs)
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))
    images = np.random.default_rng(0).uniform(size=(3, 32, 32, 2)).astype(np.float32)
    features = KerasEmbedder(model, "features")(images)
    assert features.shape == (3, 5)
    direct = keras.Model(inputs, x).predict(images, verbose=0).mean(axis=(1, 2))
    np.testing.assert_allclose(features, direct, rtol=1e-5)


def test_tile_point_source_mask_finds_stars_block_by_block_and_skips_missing_data():
    from bubblenet.sky.stars import point_source_mask, tile_point_source_mask

    rng = np.random.default_rng(5)
    band = rng.normal(10.0, 0.5, (700, 1100)).astype(np.float32)
    band[:, :300] += np.linspace(0, 8, 700)[:, None]  # a background gradient, as across the plane
    yy, xx = np.mgrid[:700, :1100]
    stars = [(100, 150), (600, 200), (350, 520), (50, 1000), (650, 1050)]  # (y, x), some across block edges
    for y, x in stars:
        band += 40 * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / (2 * 1.0**2))
    band[:, 1060:] = np.nan  # a survey edge
    band[640:, 1000:1060] = np.nan
    out = np.zeros(band.shape, bool)
    tile_point_source_mask(band, 2.4, out)
    for y, x in stars[:4]:
        assert out[y, x], (y, x)
    assert out.mean() < 0.05 and not out[:, 1060:].any()  # 3-sigma noise peaks count too, as in the paper
    # The same sources as a search of the whole image at once, away from block seams.
    whole = point_source_mask(np.nan_to_num(band), 2.4, invalid=~np.isfinite(band))
    assert all(whole[y, x] for y, x in stars[:4])


def test_8um_only_samples_have_no_24um(train):
    import dataclasses

    from bubblenet.training_data.cutouts import keep_bands

    shells = TrainingData.__new__(TrainingData)
    shells.__dict__.update(train.__dict__)
    shells.config = dataclasses.replace(train.config, bands="8")
    both, alone = train.positive(0), shells.positive(0)
    assert both.image[..., CHANNEL_24UM].any() and not alone.image[..., CHANNEL_24UM].any()
    np.testing.assert_array_equal(both.image[..., CHANNEL_8UM], alone.image[..., CHANNEL_8UM])
    np.testing.assert_array_equal(both.boxes, alone.boxes)
    with pytest.raises(ValueError):
        keep_bands(both.image, "24")
    with pytest.raises(ConfigError):
        DataConfig(bands="24")


def test_paper_samples_are_seven_views_of_each_bubble_per_epoch(inputs, split, tmp_path_factory):
    """samples_per_bubble=7: per epoch each bubble is the centred crop once and one translated crop six
    times (as cut, three quarter-turns, two flips), shuffled together."""
    from collections import Counter

    from bubblenet.training_data.samples import PAPER_SYMMETRIES

    tiles, catalogue, selection = inputs
    data = TrainingData(tiles, catalogue, selection, split, "train",
                        DataConfig(size=64, negatives_per_tile=20, samples_per_bubble=7),
                        tmp_path_factory.mktemp("cache7"))
    n = len(data.positives)
    assert data.positives_per_epoch == 7 * n
    samples = [data.positive_crop(k) for k in range(7 * n)]
    centred = {data._centred(*p) for p in data.positives}
    views = Counter(crop for crop, _ in samples)
    symmetries: dict = {}
    for crop, symmetry in samples:
        symmetries.setdefault(crop, []).append(symmetry)
    translated = [c for c in views if c not in centred]
    assert len(translated) >= 0.8 * n  # a bubble keeps its centred crop only where no translation fits
    for crop in translated:
        assert sorted(symmetries[crop]) == sorted(PAPER_SYMMETRIES)
    assert sum(symmetries[c].count(0) >= 1 for c in centred if c in symmetries) == n
    # The next epoch draws other translations and another order.
    later = [data.positive_crop(k) for k in range(7 * n, 14 * n)]
    assert {c for c, _ in later} != set(views)


def test_labels_of_the_selected_bubbles_only(inputs, split, tmp_path_factory):
    tiles, catalogue, selection = inputs
    cache = tmp_path_factory.mktemp("cache_labels")
    every = TrainingData(tiles, catalogue, selection, split, "train",
                         DataConfig(size=64, negatives_per_tile=20, label_all_bubbles=True), cache)
    chosen = TrainingData(tiles, catalogue, selection, split, "train", DataConfig(size=64, negatives_per_tile=20),
                          cache)
    assert len(every._tile_data[0].boxes) == len(catalogue)
    assert len(chosen._tile_data[0].boxes) == int(select(catalogue, selection).sum()) < len(catalogue)
    n_every = sum(int((every.positive(k).labels > 0).sum()) for k in range(len(every.positives)))
    n_chosen = sum(int((chosen.positive(k).labels > 0).sum()) for k in range(len(chosen.positives)))
    assert len(chosen.positives) <= n_chosen < n_every


def test_random_display_stretch_is_monotonic_8_bit_and_seeded():
    from bubblenet.training_data.stretches import random_stretch

    rng = np.random.default_rng(0)
    window = np.stack([rng.lognormal(0, 1, (64, 64)), rng.normal(50, 5, (64, 64))], axis=-1)
    shown = [random_stretch(window, np.random.default_rng(s)) for s in range(12)]
    for image in shown:
        assert image.shape == window.shape and image.dtype == np.float32
        assert image.min() >= 0 and image.max() <= 255 and np.array_equal(image, np.round(image))
        for c in range(2):
            order = np.argsort(window[..., c], axis=None)
            assert (np.diff(image[..., c].ravel()[order]) >= 0).all()  # monotonic in each band
    assert np.array_equal(shown[3], random_stretch(window, np.random.default_rng(3)))
    assert len({float(np.median(image[..., 0])) for image in shown}) > 6  # the curves differ


def test_display_stretch_share_of_samples(inputs, split, tmp_path_factory):
    tiles, catalogue, selection = inputs
    cache = tmp_path_factory.mktemp("cache_stretch")
    plain = TrainingData(tiles, catalogue, selection, split, "train", DataConfig(size=64, negatives_per_tile=20), cache)
    every = TrainingData(tiles, catalogue, selection, split, "train",
                         DataConfig(size=64, negatives_per_tile=20, display_stretch=1.0), cache)
    half = TrainingData(tiles, catalogue, selection, split, "train",
                        DataConfig(size=64, negatives_per_tile=20, display_stretch=0.5), cache)
    n = 16
    changed = []
    for k in range(n):
        a, b, c = plain.positive(k), every.positive(k), half.positive(k)
        # The same crop, symmetry and boxes: only the pixels change.
        assert a.crop == b.crop and np.array_equal(a.boxes, b.boxes) and np.array_equal(a.labels, b.labels)
        assert not np.allclose(a.image, b.image)
        assert np.array_equal(b.image, every.positive(k).image)  # deterministic
        changed.append(not np.array_equal(a.image, c.image))
    assert 3 <= sum(changed) <= n - 3
    assert not np.allclose(plain.negative(0).image, every.negative(0).image)
    assert np.array_equal(plain.negative(0).image, every.negative(0, randomised=False).image)  # clustering's view
    for bad in (1.5, "half", True):
        with pytest.raises(ConfigError, match="display_stretch must be a share"):
            DataConfig(display_stretch=bad)


def _sky_image(seed=0, n=96):
    """A smooth sky with a ring in both bands: something for the instrument transforms to act on."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:n, :n] - n / 2
    ring = np.exp(-0.5 * ((np.hypot(x, y) - 20) / 3) ** 2)
    smooth = ndimage.gaussian_filter(rng.normal(0, 1, (n, n)), 6)
    return np.stack([5 + 10 * ring + smooth, 20 + 30 * ring + 3 * smooth], axis=-1).astype(np.float32)


def test_instrument_transforms_do_what_they_say():
    from astropy.stats import mad_std

    from bubblenet.training_data.sensors import NOISE_LEVELS, randomise

    image = _sky_image()
    for transforms in (("blur",), ("noise",), ("gradient",), ("jpeg",), ("blur", "noise", "gradient", "jpeg")):
        out = randomise(image, transforms, np.random.default_rng(1))
        assert out.shape == image.shape and out.dtype == np.float32 and np.isfinite(out).all()
        assert not np.allclose(out, image)
        assert np.array_equal(out, randomise(image, transforms, np.random.default_rng(1)))  # seeded
    assert np.array_equal(randomise(image, (), np.random.default_rng(1)), image)

    def roughness(a):
        return float(np.mean(np.abs(np.diff(a, axis=1))))

    for seed in range(5):
        rng = np.random.default_rng(seed)
        blurred = randomise(image, ("blur",), rng)
        for c in range(2):  # blur smooths: no new structure, flux kept
            assert roughness(blurred[..., c]) <= roughness(image[..., c]) + 1e-6
            assert abs(blurred[..., c].mean() - image[..., c].mean()) < 0.01 * image[..., c].mean()
        added = randomise(image, ("noise",), np.random.default_rng(seed)) - image
        for c in range(2):  # white: neighbours uncorrelated; at most the largest level of the band's spread
            assert abs(np.corrcoef(added[:, :-1, c].ravel(), added[:, 1:, c].ravel())[0, 1]) < 0.05
            assert added[..., c].std() <= 1.1 * NOISE_LEVELS[1] * mad_std(image[..., c])
        plane = randomise(image, ("gradient",), np.random.default_rng(seed)) - image
        for c in range(2):  # exactly a plane through zero at the centre
            yy, xx = np.mgrid[:96, :96]
            design = np.stack([np.ones(96 * 96), xx.ravel(), yy.ravel()], axis=1)
            coef, *_ = np.linalg.lstsq(design, plane[..., c].ravel(), rcond=None)
            assert np.allclose(design @ coef, plane[..., c].ravel(), atol=1e-4)
            assert abs(plane[..., c].mean()) < 1e-4
    # JPEG: each band comes back as itself (24 µm as red, 8 µm as green; swapped, both would be far off) ...
    from bubblenet.training_data.sensors import _through_jpeg

    rng = np.random.default_rng(0)
    pair = np.zeros((128, 128, 2), np.float32)
    pair[..., CHANNEL_24UM] = _sky_image(n=128)[..., CHANNEL_24UM] * 10
    pair[..., CHANNEL_8UM] = rng.normal(300, 5, (128, 128))
    for c in range(2):
        assert np.abs(_through_jpeg(pair, 90, 0)[..., c] - pair[..., c]).mean() < 0.1 * pair[..., c].std()
    for subsampling in (1, 2):  # subsampled chroma mixes the bands' fine texture, but each stays itself
        back = _through_jpeg(pair, 90, subsampling)
        for c in range(2):
            same, other = (np.corrcoef(back[..., c].ravel(), pair[..., k].ravel())[0, 1] for k in (c, 1 - c))
            assert same > 0.9 and abs(other) < same
    # ... and one band's bright core does not leave the rest of it open to the other band's texture.
    pair = np.stack([rng.normal(10, 1, (128, 128)), rng.normal(20, 1, (128, 128))], axis=-1).astype(np.float32)
    pair[60, 60, CHANNEL_24UM] = 3000.0
    rest = np.ones((128, 128), bool)
    rest[60, 60] = False
    for subsampling in (0, 1, 2):
        back = _through_jpeg(pair, 75, subsampling)
        assert back[60, 60, CHANNEL_24UM] == 3000.0  # beyond the mapped range: kept
        assert 0.5 < back[..., CHANNEL_24UM][rest].std() < 1.5
    leak = np.corrcoef(_through_jpeg(pair, 75, 0)[..., CHANNEL_24UM][rest], pair[..., CHANNEL_8UM][rest])[0, 1]
    assert abs(leak) < 0.1  # no chroma subsampling, no mixing


def test_normalised_inputs_ignore_a_gain_and_zero_level_per_band():
    # Why there is no gain transform: the normalisation takes each band between its own minimum and mean + k σ.
    from bubblenet.training_data.cutouts import process

    image = _sky_image(n=256)
    stars = np.zeros(image.shape[:2], bool)
    stars[100:104, 30:34] = True
    scaled = image * np.array([3.7, 0.21], np.float32) + np.array([-40.0, 900.0], np.float32)
    for norm in (Normalisation(), Normalisation(level="shifted", stars="threshold")):
        a = process(image, 64, pixscale_arcsec=2.4, stars=stars, norm=norm)
        b = process(scaled, 64, pixscale_arcsec=2.4, stars=stars, norm=norm)
        assert np.allclose(a, b, atol=1e-4)


def test_randomise_share_of_samples(inputs, split, tmp_path_factory):
    tiles, catalogue, selection = inputs
    cache = tmp_path_factory.mktemp("cache_randomise")
    plain = TrainingData(tiles, catalogue, selection, split, "train", DataConfig(size=64, negatives_per_tile=20), cache)
    every = TrainingData(tiles, catalogue, selection, split, "train",
                         DataConfig(size=64, negatives_per_tile=20, randomise=("noise", "jpeg"), randomise_share=1.0),
                         cache)
    half = TrainingData(tiles, catalogue, selection, split, "train",
                        DataConfig(size=64, negatives_per_tile=20, randomise=("gradient",), randomise_share=0.5), cache)
    changed = []
    for k in range(16):
        a, b, c = plain.positive(k), every.positive(k), half.positive(k)
        assert a.crop == b.crop and np.array_equal(a.boxes, b.boxes) and np.array_equal(a.labels, b.labels)
        assert not np.allclose(a.image, b.image)
        assert np.array_equal(b.image, every.positive(k).image)  # deterministic
        changed.append(not np.array_equal(a.image, c.image))
    assert 3 <= sum(changed) <= 13
    assert not np.allclose(plain.negative(0).image, every.negative(0).image)
    assert np.array_equal(plain.negative(0).image, every.negative(0, randomised=False).image)  # clustering's view
    with pytest.raises(ConfigError, match="unknown transform.*'sharpen'"):
        DataConfig(randomise=("sharpen",))
    for bad in (-0.1, "all", True):
        with pytest.raises(ConfigError, match="randomise_share must be a share"):
            DataConfig(randomise=("noise",), randomise_share=bad)


def test_compact_sources_are_peaks_bright_at_both_bands():
    from bubblenet.conventions import CHANNEL_8UM, CHANNEL_24UM
    from bubblenet.training_data.hard_negatives import compact_sources

    rng = np.random.default_rng(0)
    bands = rng.normal(10.0, 1.0, (600, 600, 2)).astype(np.float32)
    yy, xx = np.mgrid[:600, :600]
    both, only24 = (150, 200), (420, 380)
    for (x, y), with8 in ((both, True), (only24, False)):
        spot = np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 6.0**2))
        bands[..., CHANNEL_24UM] += 40 * spot
        bands[..., CHANNEL_8UM] += 20 * spot * with8
    bands[50:60, 500:510] = np.nan  # missing data is no source
    found = compact_sources(bands, 1.2)
    assert len(found) == 1
    gappy = bands.copy()
    gappy[300:] = np.nan  # half the tile missing: the noise is still the sky's, its edge no source
    assert len(compact_sources(gappy, 1.2)) == 1
    assert np.hypot(found[0, 0] - both[0], found[0, 1] - both[1]) < 4 and found[0, 2] > 5
    swapped = compact_sources(np.ascontiguousarray(bands[..., ::-1]), 1.2)  # now the other one is 8 µm alone
    assert len(swapped) == 1 and np.hypot(swapped[0, 0] - both[0], swapped[0, 1] - both[1]) < 4


def test_hard_negatives_centre_a_share_of_the_pool_on_compact_sources(inputs, split, tmp_path_factory):
    from bubblenet.training_data.hard_negatives import compact_sources

    tiles, catalogue, selection = inputs
    cache = tmp_path_factory.mktemp("cache_hard")
    plain = TrainingData(tiles, catalogue, selection, split, "train", DataConfig(size=64, negatives_per_tile=40),
                         cache)
    hard = TrainingData(tiles, catalogue, selection, split, "train",
                        DataConfig(size=64, negatives_per_tile=40, hard_negatives=0.5), cache)
    assert len(hard.negatives) == len(plain.negatives)

    found = {i: compact_sources(data.cache.data, data.pixscale) for i, data in enumerate(hard._tile_data)}

    def near_a_source(crop):
        sources = found[crop.tile]
        middle = (np.abs(sources[:, 0] - (crop.x0 + crop.side / 2)) <= crop.side / 4 + 1) & (
            np.abs(sources[:, 1] - (crop.y0 + crop.side / 2)) <= crop.side / 4 + 1)
        return bool(middle.any())

    share_hard = np.mean([near_a_source(c) for c in hard.negatives])
    share_plain = np.mean([near_a_source(c) for c in plain.negatives])
    assert share_hard >= 0.5 and share_hard > share_plain + 0.2, (share_hard, share_plain)
    for crop in hard.negatives:  # still bubble-free
        assert len(labels_in_crop(crop, hard._tile_data[crop.tile].boxes)) == 0
    with pytest.raises(ConfigError, match="hard_negatives must be a share"):
        DataConfig(hard_negatives=2.0)
