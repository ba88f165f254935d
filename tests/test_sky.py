"""Survey I/O: real images, band pairing, two-band windows, NaN handling, bad files."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.wcs import WCS

from bubblenet.errors import FitsError
from bubblenet.sky.mosaics import (
    SMALL_HOLE_AREA,
    Window,
    bin_wcs,
    fill_small_holes,
    find_survey_files,
    is_usable,
    open_image,
    open_survey,
    pair_bands,
    shift_wcs,
)
from conftest import GLIMPSE_I2, MSX, MWP8, MWP24, car_header, tan_header, write_fits


# -- real images through the same path -------------------------------------------------

def test_real_glimpse_cutout_header_is_understood():
    image = open_image(GLIMPSE_I2)
    assert image.shape == (513, 1025)
    assert image.frame == "galactic"
    assert image.unit.strip() == "MJy/sr"
    assert image.pixel_scale.to_value(u.arcsec) == pytest.approx(1.2, abs=1e-6)
    # The header says the cut-out spans l = 18.05–18.39°, b = 0.13–0.30°.
    centre, _ = image.centre_and_radius()
    assert 18.05 < centre.l.deg < 18.39 and 0.13 < centre.b.deg < 0.30


def test_real_msx_map_opens_compressed_with_other_unit_and_scale():
    image = open_image(MSX)
    assert image.shape == (599, 599)
    assert image.pixel_scale.to_value(u.arcsec) == pytest.approx(6.0, abs=1e-3)
    assert "W" in image.unit
    window = image.read(Window(290, 290, 20, 20))
    assert window.shape == (20, 20) and np.isfinite(window).all()


def test_real_mwp_field_pairs_and_reads_both_bands():
    (tile,) = open_survey([MWP8], [MWP24])
    assert tile.shape == (400, 800)
    data = tile.read(Window(100, 50, 200, 100))
    assert data.shape == (100, 200, 2) and data.dtype == np.float32
    # Same grid in both files: the resampled 24 µm plane equals the file's own pixels.
    raw24 = fits.getdata(MWP24)[50:150, 100:300].astype(np.float32)
    np.testing.assert_allclose(data[..., 0], raw24, atol=1e-3)
    np.testing.assert_array_equal(data[..., 1], fits.getdata(MWP8)[50:150, 100:300].astype(np.float32))


def test_real_glimpse_and_msx_do_not_overlap():
    with pytest.raises(FitsError, match="do not overlap") as err:
        open_survey([GLIMPSE_I2], [MSX])
    assert "glimpse_I2_l018_cutout.fits" in str(err.value)


# -- synthetic survey tiles ------------------------------------------------------------

def test_survey_folder_pairs_by_sky_not_name(twin_survey, twin_tiles):
    files8, files24 = find_survey_files(twin_survey.folder)
    assert len(files8) == 1 and len(files24) == 4
    (tile,) = twin_tiles
    assert tile.name == "GLM_03000+0000_mosaic_I4"
    assert len(tile.images24) == 4
    # Different grids: 24 µm pixels are 1.25/1.2 times larger, with their own reference pixels.
    assert tile.images24[0].pixel_scale.value == pytest.approx(2.5, rel=1e-6)
    assert not np.allclose(tile.images24[0].wcs.wcs.crpix, tile.wcs.wcs.crpix)


def _subpixel_shift(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Shift (dy, dx) of b relative to a from the cross-correlation peak (parabolic refinement)."""
    a = (a - a.mean()) / a.std()
    b = (b - b.mean()) / b.std()
    xc = np.fft.irfft2(np.fft.rfft2(a).conj() * np.fft.rfft2(b), s=a.shape)
    xc = np.fft.fftshift(xc)
    peak = np.unravel_index(np.argmax(xc), xc.shape)
    shift = []
    for axis in range(2):
        idx = list(peak)
        idx[axis] -= 1
        lo = xc[tuple(idx)]
        idx[axis] += 2
        hi = xc[tuple(idx)]
        c = xc[peak]
        shift.append(peak[axis] - a.shape[axis] // 2 + 0.5 * (lo - hi) / (lo - 2 * c + hi))
    return np.array(shift)


def test_resampled_24um_aligns_with_8um(twin_tiles):
    """The 8 µm and resampled 24 µm share their diffuse emission: no offset between them."""
    (tile,) = twin_tiles
    from scipy import ndimage

    data = tile.read(Window(400, 1200, 512, 512))
    assert is_usable(data)
    smooth = [ndimage.gaussian_filter(data[..., c], 3) for c in range(2)]
    shift = _subpixel_shift(smooth[1], smooth[0])
    assert np.all(np.abs(shift) < 0.2), shift


def test_24um_from_rotated_equatorial_grid_lands_on_8um_pixels(tmp_path):
    """A 24 µm source on a rotated RA/Dec grid is found where the 8 µm WCS says it is."""
    header8 = car_header((300, 300), lon=121.17, lat=-21.57, scale_arcsec=1.2, cd=True)
    write_fits(tmp_path / "i8.fits", np.random.default_rng(0).normal(10, 1, (300, 300)), header8)
    header24 = tan_header((160, 160), ra=10.684, dec=41.269, scale_arcsec=2.5, rotation_deg=25)
    w24 = WCS(header24)
    source = SkyCoord(ra=10.690 * u.deg, dec=41.272 * u.deg)
    sx, sy = w24.world_to_pixel(source)
    yy, xx = np.mgrid[:160, :160]
    write_fits(tmp_path / "m24.fits", 5 + 100 * np.exp(-((xx - sx) ** 2 + (yy - sy) ** 2) / (2 * 2.0**2)), header24)
    (tile,) = open_survey([tmp_path / "i8.fits"], [tmp_path / "m24.fits"])
    ex, ey = tile.world_to_pixel(source)
    window = Window(int(ex) - 20, int(ey) - 20, 40, 40)
    img = tile.read(window)[..., 0] - 5
    img = np.where(img > 10, img, 0)
    gy, gx = np.mgrid[:40, :40]
    cx, cy = (img * gx).sum() / img.sum() + window.x0, (img * gy).sum() / img.sum() + window.y0
    assert abs(cx - ex) < 0.1 and abs(cy - ey) < 0.1


def test_window_outside_image_is_nan_padded(twin_tiles):
    (tile,) = twin_tiles
    ny, nx = tile.shape
    data = tile.read(Window(nx - 10, ny // 2, 30, 20), fill_holes=False)
    assert np.isfinite(data[:, :10, 1]).all()
    assert np.isnan(data[:, 10:, 1]).all()
    assert np.isnan(data[:, 12:, 0]).all()  # the 24 µm grid reaches a pixel further
    assert not is_usable(data)


def test_window_wcs_matches_tile_wcs(twin_tiles):
    (tile,) = twin_tiles
    window = Window(-7, 1234, 50, 50)  # starts left of the image: slicing could not do this
    sub = tile.window_wcs(window)
    a = tile.pixel_to_world(3.0 + window.x0, 4.0 + window.y0)
    b = sub.pixel_to_world(3.0, 4.0)
    assert a.separation(b).to_value(u.arcsec) < 1e-6
    assert shift_wcs(tile.wcs, 0, 0).pixel_to_world(5, 5).separation(tile.pixel_to_world(5, 5)).arcsec < 1e-9


def test_bin_wcs_puts_block_centres_right_with_cd_matrix():
    header = car_header((100, 100), cd=True)
    w = WCS(header)
    coarse = bin_wcs(w, 4)
    # Coarse pixel (0, 0) is the mean of fine pixels 0..3, centred on fine pixel 1.5.
    assert coarse.pixel_to_world(0, 0).separation(w.pixel_to_world(1.5, 1.5)).arcsec < 1e-6
    assert coarse.pixel_to_world(10, 7).separation(w.pixel_to_world(41.5, 29.5)).arcsec < 1e-6


def test_binned_tile_matches_block_mean(twin_tiles):
    (tile,) = twin_tiles
    data, wcs = tile.read_binned(8)
    ny, nx = tile.shape
    assert data.shape == (ny // 8, nx // 8, 2)
    full = tile.image8.read(Window(800, 1600, 16, 16))
    with np.errstate(all="ignore"):
        expect = np.nanmean(full.reshape(2, 8, 2, 8), axis=(1, 3))
    np.testing.assert_allclose(data[200:202, 100:102, 1], expect, rtol=1e-5)


# -- NaN handling ----------------------------------------------------------------------

def test_small_holes_filled_large_areas_kept():
    rng = np.random.default_rng(0)
    img = 50 + rng.normal(0, 1, (80, 80)).astype(np.float32)
    img[10:13, 10:13] = np.nan  # 9 px: a masked star core
    img[40:70, 40:70] = np.nan  # 900 px: missing coverage
    out = fill_small_holes(img)
    assert np.isfinite(out[10:13, 10:13]).all()
    assert np.allclose(out[10:13, 10:13], 50, atol=2)
    assert np.isnan(out[40:70, 40:70]).all()
    assert np.isnan(img[10:13, 10:13]).all(), "input must not be modified"
    assert not is_usable(out)


def test_hole_size_limit_is_inclusive():
    img = np.ones((40, 40), np.float32)
    img[5, 5:5 + SMALL_HOLE_AREA] = np.nan  # a 1 x 25 streak
    img[20, 0:SMALL_HOLE_AREA + 1] = np.nan  # 26 px
    out = fill_small_holes(img)
    assert np.isfinite(out[5]).all()
    assert np.isnan(out[20, : SMALL_HOLE_AREA + 1]).all()


def test_synthetic_tiles_have_nan_edges_and_filled_holes(twin_tiles):
    (tile,) = twin_tiles
    ny, nx = tile.shape
    raw = tile.image8.read(Window(0, 0, nx, 40))
    assert np.isnan(raw).all(), "rows beyond the survey's latitude coverage are NaN"
    # Some small holes exist in the data and are filled when a window is read.
    centre = tile.image8.read(Window(0, ny // 2 - 500, nx, 1000))
    assert np.isnan(centre).sum() > 0
    filled = tile.read(Window(0, ny // 2 - 500, nx, 1000))
    assert np.isnan(filled[..., 1]).sum() < 0.2 * np.isnan(centre).sum()


# -- bad input -------------------------------------------------------------------------

def test_no_celestial_wcs(tmp_path):
    header = fits.Header({"CTYPE1": "LINEAR", "CTYPE2": "LINEAR"})
    path = write_fits(tmp_path / "plain.fits", np.ones((10, 10)) + np.arange(10), header)
    with pytest.raises(FitsError, match="no celestial WCS") as err:
        open_image(path)
    assert "plain.fits" in str(err.value)


def test_all_nan_and_constant_images(tmp_path):
    header = car_header((20, 20))
    with pytest.raises(FitsError, match="all NaN"):
        open_image(write_fits(tmp_path / "nan.fits", np.full((20, 20), np.nan), header))
    with pytest.raises(FitsError, match="constant"):
        open_image(write_fits(tmp_path / "flat.fits", np.full((20, 20), 3.0), header))


def test_truncated_and_non_fits_files(tmp_path):
    good = write_fits(tmp_path / "good.fits", np.random.default_rng(1).normal(size=(200, 200)), car_header((200, 200)))
    truncated = tmp_path / "truncated.fits"
    truncated.write_bytes(good.read_bytes()[:9000])
    with pytest.raises(FitsError, match="truncated.fits"):
        open_image(truncated)
    text = tmp_path / "notes.fits"
    text.write_text("not a FITS file at all\n")
    with pytest.raises(FitsError, match="not a readable FITS"):
        open_image(text)
    with pytest.raises(FitsError, match="no such file"):
        open_image(tmp_path / "missing.fits")


def test_gzip_and_degenerate_third_axis(tmp_path):
    header = car_header((30, 40))
    data = np.random.default_rng(2).normal(size=(1, 30, 40)).astype(np.float32)
    cube_header = header.copy()
    cube_header["CTYPE3"], cube_header["CRPIX3"], cube_header["CRVAL3"], cube_header["CDELT3"] = "FREQ", 1, 1e9, 1e6
    path = tmp_path / "plane.fits.gz"
    with gzip.open(path, "wb") as handle:
        fits.PrimaryHDU(data, cube_header).writeto(handle)
    image = open_image(path)
    assert image.shape == (30, 40)
    np.testing.assert_array_equal(image.read(Window(0, 0, 40, 30)), data[0])
    with pytest.raises(FitsError, match="cube"):
        open_image(write_fits(tmp_path / "cube.fits", np.ones((3, 30, 40)) * np.arange(40), cube_header))


def test_pairing_errors_name_the_lonely_file(tmp_path):
    rng = np.random.default_rng(3)
    a = write_fits(tmp_path / "a_I4.fits", rng.normal(size=(50, 50)), car_header((50, 50), lon=30.0))
    b = write_fits(tmp_path / "b_024.fits", rng.normal(size=(50, 50)), car_header((50, 50), lon=30.01))
    far = write_fits(tmp_path / "far_024.fits", rng.normal(size=(50, 50)), car_header((50, 50), lon=200.0))
    images = [open_image(p) for p in (a, b, far)]
    with pytest.raises(FitsError, match="far_024.fits.*overlaps no 8 µm"):
        pair_bands([images[0]], [images[1], images[2]])
    with pytest.raises(FitsError, match="a_I4.fits.*no 24 µm"):
        pair_bands([images[0]], [images[2]])


def test_pairing_across_longitude_zero(tmp_path):
    rng = np.random.default_rng(4)
    a = write_fits(tmp_path / "a.fits", rng.normal(size=(60, 60)), car_header((60, 60), lon=359.99))
    b = write_fits(tmp_path / "b.fits", rng.normal(size=(60, 60)), car_header((60, 60), lon=0.02))
    (tile,) = open_survey([a], [b])
    data = tile.read(Window(0, 0, 60, 60))
    assert np.isfinite(data[..., 0]).sum() > 0
