"""The fast search mode: windows cut from an image pyramid agree with windows processed one by one."""

from __future__ import annotations

import numpy as np
import pytest

from bubblenet.training_data.cutouts import process
from bubblenet.detection.pyramid import plan_levels, pyramid_windows
from bubblenet.sky.tilecache import BadMap, TileCache
from bubblenet.detection.windows import window_sizes


@pytest.fixture(scope="module")
def cache(twin_tiles, tmp_path_factory):
    return TileCache(twin_tiles[0], tmp_path_factory.mktemp("cache"))


def test_levels_cover_the_tile_and_skip_missing_data(cache):
    sides = window_sizes(150, 900, per_octave=2)
    levels = plan_levels(cache.shape, sides, 128, stride_fraction=0.5)
    ny, nx = cache.shape
    for level in levels:
        last_y, xs = level.rows[-1]
        # Full windows, the last flush with the level's end; the level spans the tile.
        assert last_y + level.size == level.shape[0] and xs[-1] + level.size == level.shape[1]
        assert level.shape[1] * level.scale == pytest.approx(nx, abs=level.scale)
        crop = level.crop(last_y, xs[-1])
        assert crop.x0 + crop.side <= nx + 1e-6 and crop.y0 + crop.side <= ny + 1e-6
    # Missing data: paint a hole and the windows over it go.
    bad = BadMap(cache)
    before = sum(map(len, plan_levels(cache.shape, sides, 128, stride_fraction=0.5, bad=bad)))
    bad.paint_boxes([[0, 0, nx / 2, ny / 2]])
    after = plan_levels(cache.shape, sides, 128, stride_fraction=0.5, bad=bad)
    assert 0 < sum(map(len, after)) < before
    for level in after:
        for ly, xs in level.rows:
            for lx in xs:
                c = level.crop(ly, lx)
                assert not (c.x0 < nx / 2 and c.y0 < ny / 2)


def test_pyramid_inputs_match_windows_processed_one_by_one(cache, twin_tiles):
    pixscale = float(twin_tiles[0].pixel_scale.value)
    levels = plan_levels(cache.shape, [96, 300, 700], 128, stride_fraction=0.5, bad=BadMap(cache))
    made = list(pyramid_windows(cache, levels, pixscale_arcsec=pixscale, strip_rows=200))
    planned = sum(map(len, levels))
    # A few windows next to missing data pick up a NaN from the smoothing and are skipped.
    assert 0.98 * planned <= len(made) <= planned and planned > 20
    rng = np.random.default_rng(0)
    diffs = []
    for i in rng.choice(len(made), 30, replace=False):
        crop, image = made[i]
        assert image.shape == (128, 128, 2) and image.min() >= 0 and image.max() <= 1
        # Level pixels start on multiples of side / 128: for sides that are multiples
        # of 128 / gcd the origin is a whole pixel; compare at the nearest one.
        x0, y0 = int(round(crop.x0)), int(round(crop.y0))
        window = cache.window(x0, y0, crop.side)
        if window is None:
            continue
        alone = process(window, 128, pixscale_arcsec=pixscale, stars=cache.stars_window(x0, y0, crop.side))
        diffs.append(np.median(np.abs(alone - image)))
    assert len(diffs) > 20 and np.median(diffs) < 0.01, np.median(diffs)


def test_strips_do_not_change_the_inputs(cache, twin_tiles):
    pixscale = float(twin_tiles[0].pixel_scale.value)
    levels = plan_levels(cache.shape, [200], 128, stride_fraction=0.5)
    whole = list(pyramid_windows(cache, levels, pixscale_arcsec=pixscale, strip_rows=10_000))
    strips = list(pyramid_windows(cache, levels, pixscale_arcsec=pixscale, strip_rows=64))
    assert [c for c, _ in whole] == [c for c, _ in strips]
    np.testing.assert_allclose(np.stack([i for _, i in whole]), np.stack([i for _, i in strips]), atol=1e-5)


@pytest.mark.slow
def test_fast_and_paper_modes_find_the_same_bubbles(test_tile_sky, tmp_path):
    from bubblenet.training_data.samples import survey_inputs
    from bubblenet.detection.detector import load_detector
    from bubblenet.detection.inference import detect_inputs, search_inputs
    from bubblenet.ssd.decoder import Decoder
    from bubblenet.ssd.targets import pairwise_iou

    detector = load_detector()
    tiles, _, _ = survey_inputs(folder=test_tile_sky)
    tile = next(t for t in tiles if t.name.startswith("GLM_01200"))
    cache = TileCache(tile, tmp_path)
    pixscale = float(tile.pixel_scale.value)
    sides = window_sizes(600 / pixscale, 1800 / pixscale, per_octave=2)
    found = {}
    for mode in ("fast", "paper"):
        count, inputs = search_inputs(cache, sides, 128, stride_fraction=0.5, pixscale_arcsec=pixscale, mode=mode)
        boxes, scores = detect_inputs(detector.model, inputs, decoder=Decoder(detector.spec),
                                      confidence=detector.threshold)
        found[mode] = boxes
    fast, paper = found["fast"], found["paper"]
    assert len(paper) >= 3
    iou = pairwise_iou(paper.astype(np.float32), fast.astype(np.float32)).numpy()
    matched = (iou.max(axis=1) >= 0.5).mean()
    assert matched >= 0.7 and 0.7 <= len(fast) / len(paper) <= 1.4, (matched, len(fast), len(paper))
