"""The 24 µm band's resampling onto the 8 µm grid (`bubblenet.sky.resampling`) and the parallel tile cache."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.wcs import WCS
from astropy.wcs.utils import pixel_to_pixel
from reproject import reproject_interp

from bubblenet.sky.mosaics import Window, open_survey
from bubblenet.sky.resampling import STEP, TOLERANCE_PX, interpolate_mapping, pixel_mapping, resample_bilinear
from bubblenet.sky.resampling import _axis as axis_weights
from bubblenet.sky.tilecache import TileCache
from conftest import car_header, tan_header, write_fits


def _rotated_pair(shape_out=(300, 420), shape_in=(260, 240)):
    """A Galactic CAR output grid at 1.2"/px and a rotated equatorial TAN image at 2.5"/px under it."""
    out = WCS(car_header(shape_out, lon=121.17, lat=-21.57, scale_arcsec=1.2, cd=True))
    inp = WCS(tan_header(shape_in, ra=10.684, dec=41.269, scale_arcsec=2.5, rotation_deg=25))
    return out, inp


def test_interpolated_mapping_meets_the_exact_one_at_every_pixel():
    wcs_out, wcs_in = _rotated_pair()
    shape = (300, 420)
    mapping = pixel_mapping(wcs_out, wcs_in, shape)
    (ys, xs), y_nodes, x_nodes = mapping
    assert y_nodes.shape == (len(ys), len(xs)) and len(ys) < shape[0] // 8  # the coarse grid was kept
    assert ys[-1] == shape[0] - 1 and xs[-1] == shape[1] - 1
    rows, cols = axis_weights(ys, shape[0]), axis_weights(xs, shape[1])
    gx, gy = np.meshgrid(np.arange(shape[1]), np.arange(shape[0]))
    ex, ey = pixel_to_pixel(wcs_out, wcs_in, gx, gy)
    assert np.abs(interpolate_mapping(x_nodes, rows, cols) - ex).max() < TOLERANCE_PX
    assert np.abs(interpolate_mapping(y_nodes, rows, cols) - ey).max() < TOLERANCE_PX


def test_resampling_gives_reprojects_values_and_footprint():
    """Same NaN outside the image (including the outer half of the border pixels), same values."""
    wcs_out, wcs_in = _rotated_pair()
    rng = np.random.default_rng(3)
    image = rng.normal(100.0, 10.0, (260, 240)).astype(np.float32)
    image[100:104, 50:60] = np.nan  # a hole: its neighbours are NaN in both
    ours = resample_bilinear(image, pixel_mapping(wcs_out, wcs_in, (300, 420)))
    theirs, footprint = reproject_interp((image, wcs_in), wcs_out, shape_out=(300, 420), order="bilinear")
    assert np.isfinite(ours).sum() > 0.3 * ours.size and not np.isfinite(ours).all()
    np.testing.assert_array_equal(np.isfinite(ours), np.isfinite(theirs) & (footprint > 0))
    both = np.isfinite(ours)
    np.testing.assert_allclose(ours[both], theirs[both], rtol=2e-5)


def test_grid_without_a_mapping_everywhere_falls_back_to_exact():
    """Part of a wide Galactic grid lies more than 90 degrees from a TAN image's centre (no mapping
    there): the mapping is then computed pixel by pixel, and the values still agree with reproject's."""
    out = WCS(naxis=2)
    out.wcs.ctype = ["GLON-CAR", "GLAT-CAR"]
    out.wcs.crval, out.wcs.crpix, out.wcs.cdelt = [0.0, 0.0], [60.5, 30.5], [-3.0, 3.0]
    inp = WCS(tan_header((200, 200), ra=266.4, dec=-28.9, scale_arcsec=3600.0))  # 1 deg/px, near l = 0
    mapping = pixel_mapping(out, inp, (60, 120))
    assert mapping[1].shape == (60, 120)  # every pixel's own
    image = np.random.default_rng(1).normal(5.0, 1.0, (200, 200)).astype(np.float32)
    ours = resample_bilinear(image, mapping)
    theirs, footprint = reproject_interp((image, inp), out, shape_out=(60, 120), order="bilinear")
    np.testing.assert_array_equal(np.isfinite(ours), np.isfinite(theirs) & (footprint > 0))
    np.testing.assert_allclose(ours[np.isfinite(ours)], theirs[np.isfinite(ours)], rtol=1e-5)


def test_image_beside_the_grid_gives_nan():
    wcs_out, _ = _rotated_pair()
    far = WCS(car_header((50, 50), lon=200.0, lat=10.0, scale_arcsec=1.2))
    assert not np.isfinite(resample_bilinear(np.ones((50, 50), np.float32),
                                             pixel_mapping(wcs_out, far, (300, 420)))).any()


def test_coarse_grid_on_a_small_window():
    """Windows smaller than one cell still map (the nodes are the corners)."""
    wcs_out, wcs_in = _rotated_pair()
    small = pixel_mapping(wcs_out, wcs_in, (5, STEP // 2))
    assert small[1].shape == (2, 2)
    exact = pixel_mapping(wcs_out, wcs_in, (5, STEP // 2), step=1)
    image = np.random.default_rng(2).normal(size=(260, 240)).astype(np.float32)
    np.testing.assert_allclose(resample_bilinear(image, small), resample_bilinear(image, exact), atol=1e-4)


@pytest.fixture
def two_band_tile(tmp_path):
    header8 = car_header((700, 900), lon=121.17, lat=-21.57, scale_arcsec=1.2, cd=True)
    rng = np.random.default_rng(0)
    write_fits(tmp_path / "i8.fits", rng.normal(10, 1, (700, 900)), header8)
    data24 = rng.normal(50, 5, (420, 460))
    data24[200:203, 200:203] = np.nan
    write_fits(tmp_path / "m24.fits", data24, tan_header((420, 460), ra=10.684, dec=41.269, scale_arcsec=2.5,
                                                          rotation_deg=25))
    (tile,) = open_survey([tmp_path / "i8.fits"], [tmp_path / "m24.fits"])
    return tile


def test_cache_built_in_threads_equals_one_thread(two_band_tile, tmp_path, monkeypatch):
    """Strips and point-source blocks run in parallel threads give the same cache as one thread."""
    import bubblenet.sky.stars as stars
    import bubblenet.sky.tilecache as tilecache

    monkeypatch.setattr(tilecache, "_STRIP_ROWS", 128)  # several strips
    monkeypatch.setattr(stars, "_BLOCK", 256)  # several blocks
    one = TileCache(two_band_tile, tmp_path / "one", workers=1)
    many = TileCache(two_band_tile, tmp_path / "many", workers=3)
    np.testing.assert_array_equal(np.asarray(one.data), np.asarray(many.data))
    np.testing.assert_array_equal(np.asarray(one.stars), np.asarray(many.stars))
    assert np.isfinite(np.asarray(one.data)[..., 0]).mean() > 0.3
    # A window read on its own (its own nodes) agrees with the cache's strips.
    window = two_band_tile.read(Window(100, 300, 80, 40), fill_holes=False)
    cached = np.asarray(one.data[300:340, 100:180])
    both = np.isfinite(window) & np.isfinite(cached)
    assert both[..., 0].mean() > 0.5
    np.testing.assert_allclose(cached[both], window[both], rtol=1e-4)  # nodes elsewhere: < 1e-3 px apart
    with pytest.raises(ValueError, match="workers"):
        TileCache(two_band_tile, tmp_path / "bad", workers=0)


@pytest.mark.parametrize("rotation", [0, 20, 35, 45, 50, 55, 80])
def test_rotated_small_image_inside_the_grid_keeps_reprojects_footprint(rotation):
    """An image whose edges lie inside the output grid, at any rotation: no pixel of it is lost between the
    nodes (every pixel reproject fills is filled)."""
    wcs_out = WCS(car_header((300, 420), lon=121.17, lat=-21.57, scale_arcsec=1.2, cd=True))
    wcs_in = WCS(tan_header((70, 90), ra=10.684, dec=41.269, scale_arcsec=1.2, rotation_deg=rotation))
    image = np.random.default_rng(rotation).normal(10.0, 1.0, (70, 90)).astype(np.float32)
    ours = resample_bilinear(image, pixel_mapping(wcs_out, wcs_in, (300, 420)))
    theirs, footprint = reproject_interp((image, wcs_in), wcs_out, shape_out=(300, 420), order="bilinear")
    assert 0 < np.isfinite(ours).sum() < ours.size
    np.testing.assert_array_equal(np.isfinite(ours), np.isfinite(theirs) & (footprint > 0))
