"""WCS offsets measured on compact catalogued sources, and registered copies."""

from __future__ import annotations

import re

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS

from bubblenet.catalogues.tables import packaged_catalogue
from bubblenet.errors import InputError
from bubblenet.sky.astrometry import (COMPACT_RADIUS_ARCMIN, centroid_near, measure_offset, register_images,
                                      registered_wcs, write_registered)
from bubblenet.sky.mosaics import SkyImage, open_image
from conftest import MWP8, MWP24, car_header, tan_header, write_fits


def _gaussian(shape, x, y, sigma, peak=100.0):
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    return peak * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma ** 2))


def test_centroid_near_finds_a_source_off_its_start_on_a_sloped_sky():
    shape = (61, 61)
    yy, xx = np.mgrid[0:61, 0:61]
    sky = 50 + 0.2 * xx + _gaussian(shape, 31.3, 28.6, 2.0)
    # A flat background under a slope leaves a bias of a few hundredths of a pixel.
    assert centroid_near(sky, 30.0, 30.0, radius=5) == pytest.approx((31.3, 28.6), abs=0.1)


@pytest.mark.parametrize("case", ["nan core", "off the image", "no flux"])
def test_centroid_near_refuses_what_it_cannot_measure(case):
    sky = 10 + _gaussian((61, 61), 30.0, 30.0, 2.0)
    x = 30.0
    if case == "nan core":  # a saturated core: the centroid of what is left is biased
        sky[29:32, 29:32] = np.nan
    elif case == "off the image":
        x = 2.0
    else:
        sky = np.full((61, 61), 10.0)
    assert centroid_near(sky, x, 30.0, radius=5) is None


def _catalogue_sky(positions, shift, *, jitter=0.0, seed=0, shape=(400, 400), reff=0.5):
    """A sky of Gaussian sources where `shift` would put a catalogue's entries, and the catalogue.

    `jitter` (pixels) scatters each source from its catalogued position, as
    catalogues scatter from the truth; positions are (x, y) pixels.
    """
    rng = np.random.default_rng(seed)
    header = car_header(shape, lon=41.3, lat=0.0, scale_arcsec=6.75)
    wcs = WCS(header)
    sky = 20 + rng.normal(0, 0.5, shape)
    for x, y in positions:
        dx, dy = rng.normal(0, jitter, 2) if jitter else (0.0, 0.0)
        sky += _gaussian(shape, x + shift[0] + dx, y + shift[1] + dy, 2.0, peak=rng.uniform(50, 200))
    world = wcs.pixel_to_world(*np.transpose(positions))
    table = Table({"name": [f"S{i:02d}" for i in range(len(positions))], "glon": world.l.deg,
                   "glat": world.b.deg, "reff": np.full(len(positions), reff)})
    return SkyImage.from_array(sky, header, name=f"sky{seed}"), table


def test_catalogued_neighbours_on_one_blob_are_left_out_not_counted_twice():
    grid = [(x, y) for x in (60, 140, 220, 300) for y in (80, 200)]
    pair = [(340.0, 320.0), (344.0, 320.0)]  # 4 px apart, sigma 2 px: one blob on the sky
    image, table = _catalogue_sky(grid + pair, (1.0, -2.0))
    offset = measure_offset([image], table)
    status = dict(zip(offset.sources["name"], offset.sources["status"]))
    assert status["S08"] == "blended with S09" and status["S09"] == "blended with S08"
    assert offset.n_sources == len(grid) and set(offset.sources["source"][offset.sources["used"]]) == set(range(8))
    assert offset.dx == pytest.approx(1.0, abs=0.05) and offset.dy == pytest.approx(-2.0, abs=0.05)


def test_the_offsets_error_is_the_spread_of_the_median_over_repeated_skies():
    # Sources scattered 0.5 px from their catalogued positions: the median of 25 such
    # offsets scatters by about sqrt(pi/2) * 0.5 / 5 = 0.125 px from sky to sky, and
    # the error each measurement reports must say so (1.4826 MAD / sqrt(n) alone is 0.8 of it).
    grid = [(x, y) for x in np.linspace(40, 360, 5) for y in np.linspace(40, 360, 5)]
    found = [measure_offset([image], table) for image, table in
             (_catalogue_sky(grid, (0.0, 0.0), jitter=0.5, seed=seed) for seed in range(40))]
    spread = np.std([[o.dx, o.dy] for o in found])
    reported = np.mean([[o.dx_err, o.dy_err] for o in found])
    assert spread == pytest.approx(0.125, rel=0.2)
    assert 0.85 < reported / spread < 1.2, (reported, spread)


def test_one_source_is_not_a_measurement():
    image, table = _catalogue_sky([(100, 100), (300, 300)], (0.0, 0.0))
    with pytest.raises(InputError, match="min_sources must be at least 2"):
        measure_offset([image], table, min_sources=1)


def test_longitudes_either_side_of_zero_are_one_grid(tmp_path):
    shape = (100, 100)
    a, b = car_header(shape, lon=0.0, scale_arcsec=6.75, crpix=[1.0, 50.5]), car_header(
        shape, lon=0.0, scale_arcsec=6.75, crpix=[1.0, 50.5])
    a["CRVAL1"], b["CRVAL1"] = -1e-9, 1e-9  # pixel 0 at 359.999999999 and 0.000000001
    images = [SkyImage.from_array(np.ones(shape) + np.eye(100), h, name=n) for h, n in ((a, "a"), (b, "b"))]
    with pytest.raises(InputError, match="only 0 compact"):  # past the grid check, to the (empty) sky
        measure_offset(images, Table({"name": ["X"], "glon": [5.0], "glat": [5.0], "reff": [0.5]}))


@pytest.fixture(scope="module")
def real_offset():
    return measure_offset([open_image(MWP8), open_image(MWP24)])


def test_the_real_mwp_fields_wcs_is_off_by_two_pixels_in_latitude(real_offset):
    # Both planes put the emission of compact WISE HII regions ~2.2 px (15") below
    # where the approximate WCS of the MWP composite says (docs/measurements.md).
    assert real_offset.n_sources >= 8
    assert -2.8 < real_offset.dy < -1.6 and abs(real_offset.dx) < 0.6
    assert real_offset.significance > 5 and 10 < real_offset.offset_arcsec < 19
    for path in (MWP8, MWP24):  # each band alone tells the same story
        alone = measure_offset([open_image(path)])
        assert abs(alone.dy - real_offset.dy) < 0.6 and abs(alone.dx - real_offset.dx) < 0.6


def test_a_registered_copy_has_no_offset_left_and_the_same_data(real_offset, tmp_path):
    copies = [write_registered(path, tmp_path / path.name, real_offset) for path in (MWP8, MWP24)]
    again = measure_offset([open_image(p) for p in copies])
    assert abs(again.dx) < 0.25 and abs(again.dy) < 0.25
    for path, copy in zip((MWP8, MWP24), copies):
        assert np.array_equal(fits.getdata(path), fits.getdata(copy))
        header = fits.getheader(copy)
        assert header["CRPIX2"] == pytest.approx(fits.getheader(path)["CRPIX2"] + real_offset.dy)
        assert "CRPIX shifted" in str(header["HISTORY"])
    shifted = registered_wcs(WCS(fits.getheader(MWP8)), real_offset)
    assert np.allclose(shifted.wcs.crpix, WCS(fits.getheader(copies[0])).wcs.crpix)


def test_a_registered_copy_never_replaces_a_file(real_offset, tmp_path):
    kept = write_fits(tmp_path / "kept.fits", np.ones((4, 4)))
    with pytest.raises(InputError, match="kept.fits: the file exists"):
        write_registered(MWP8, kept, real_offset)
    assert fits.getdata(kept).shape == (4, 4)
    own = write_fits(tmp_path / "own.fits", fits.getdata(MWP8), fits.getheader(MWP8))
    with pytest.raises(InputError, match="cannot replace the image it is made from"):
        write_registered(own, own, real_offset, overwrite=True)


def _sky_with_compact_sources(header: fits.Header, shape, shift, seed=0) -> np.ndarray:
    """Gaussian blobs where a WCS `shift` pixels off would put the WISE HII regions, on a noisy sloped sky."""
    rng = np.random.default_rng(seed)
    ny, nx = shape
    wcs = WCS(header)
    table = packaged_catalogue("wise_hii")
    table = table[np.asarray(table["reff"]) <= COMPACT_RADIUS_ARCMIN]
    x, y = wcs.world_to_pixel(SkyCoord(table["glon"], table["glat"], unit="deg", frame="galactic"))
    yy, xx = np.mgrid[0:ny, 0:nx]
    sky = 20 + 0.01 * xx + 0.02 * yy + rng.normal(0, 1.0, shape)
    scale = abs(wcs.proj_plane_pixel_scales()[0].to_value("arcsec"))
    for xi, yi, reff in zip(x + shift[0], y + shift[1], np.asarray(table["reff"])):
        if 0 < xi < nx and 0 < yi < ny:
            sigma = max(1.2, 0.5 * reff * 60 / scale)
            sky += rng.uniform(30, 300) * np.exp(-((xx - xi) ** 2 + (yy - yi) ** 2) / (2 * sigma ** 2))
    for xi, yi in rng.uniform([0, 0], [nx, ny], size=(40, 2)):  # uncatalogued point sources
        sky += rng.uniform(10, 100) * np.exp(-((xx - xi) ** 2 + (yy - yi) ** 2) / (2 * 1.2 ** 2))
    return sky


@pytest.mark.parametrize("frame", ["galactic", "icrs"])
def test_a_known_shift_is_recovered_in_either_frame(frame, tmp_path):
    shape, shift = (540, 800), (0.8, -1.7)
    if frame == "galactic":
        header = car_header(shape, lon=41.3, lat=-0.13, scale_arcsec=6.75)
    else:  # the same field on an equatorial TAN grid, rotated: the shift is along the image's axes
        centre = SkyCoord(41.3, -0.13, unit="deg", frame="galactic").icrs
        header = tan_header(shape, ra=centre.ra.deg, dec=centre.dec.deg, scale_arcsec=6.75, rotation_deg=30)
    path = write_fits(tmp_path / "sky.fits", _sky_with_compact_sources(header, shape, shift), header)
    offset = measure_offset([open_image(path)])
    assert offset.n_sources >= 8
    assert offset.dx == pytest.approx(shift[0], abs=0.15) and offset.dy == pytest.approx(shift[1], abs=0.15)
    assert offset.dx_err < 0.15 and offset.dy_err < 0.15


def test_too_few_compact_sources_is_a_clear_error(tmp_path):
    # High latitude: no WISE HII region there.
    header = car_header((200, 200), lon=41.3, lat=30.0, scale_arcsec=6.75)
    path = write_fits(tmp_path / "empty.fits", np.random.default_rng(1).normal(0, 1, (200, 200)), header)
    with pytest.raises(InputError, match=r"empty.fits: only 0 compact catalogued source\(s\).*at least 3"):
        measure_offset([open_image(path)])


def test_bands_on_different_grids_are_refused(tmp_path):
    a = write_fits(tmp_path / "a.fits", np.ones((100, 100)), car_header((100, 100), lon=41.3, scale_arcsec=6.75))
    b = write_fits(tmp_path / "b.fits", np.ones((100, 100)), car_header((100, 100), lon=41.31, scale_arcsec=6.75))
    with pytest.raises(InputError, match="b.fits: images to measure together must share one pixel grid"):
        measure_offset([open_image(a, check_data=False), open_image(b, check_data=False)])


def test_register_verb_writes_copies_and_a_record(tmp_path, capsys):
    import json

    from bubblenet.register import main

    out = tmp_path / "registered"
    assert main(["--i8", str(MWP8), "--m24", str(MWP24), "--out", str(out), "-q"]) == 0
    printed = capsys.readouterr().out
    assert re.search(r"WCS offset .* px = 1\d\.\d″ .* over \d+ sources", printed)
    record = json.loads((out / "astrometry.json").read_text())
    assert record["command"] == "register" and -2.8 < record["offset"]["dy_px"] < -1.6
    assert sorted(p.name for p in out.glob("*.fits")) == [MWP8.stem + "_registered.fits",
                                                         MWP24.stem + "_registered.fits"]
    assert (out / "astrometry.png").stat().st_size > 10_000 and (out / "astrometry_sources.ecsv").exists()
    # Redoing into its own folder is allowed, and copies it no longer makes do not linger there;
    # a folder of something else is refused, untouched.
    assert main(["--i8", str(MWP8), "--out", str(out), "--measure-only", "-q"]) == 0
    assert not list(out.glob("*.fits")) and json.loads((out / "astrometry.json").read_text())["registered"] == []
    other = tmp_path / "thesis"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    assert main(["--i8", str(MWP8), "--out", str(other), "-q"]) == 2
    assert "holds no earlier 'register' output" in capsys.readouterr().err
    assert sorted(p.name for p in other.iterdir()) == ["notes.txt"]


@pytest.mark.parametrize("args, message", [
    (["--max-radius", "-1"], "--max-radius must be positive"),
    (["--min-sources", "1"], "--min-sources must be at least 2"),
    (["--min-sources", "40"], "at least 40 are needed"),
    (["--catalogue", "no_such.csv"], "no_such.csv"),
])
def test_register_verb_errors_exit_2_with_one_message(args, message, tmp_path, capsys):
    from bubblenet.register import main

    assert main(["--i8", str(MWP8), "--out", str(tmp_path / "o"), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not (tmp_path / "o").exists()


def test_register_refuses_copies_that_would_collide_or_land_on_an_input(tmp_path):
    import shutil

    twin = tmp_path / "b" / MWP8.name
    twin.parent.mkdir()
    shutil.copy(MWP8, twin)
    with pytest.raises(InputError, match=f"share the name .*{MWP8.name}.* and .*{twin}"):
        register_images([MWP8, twin], tmp_path / "out")
    # The 8 µm plane's copy would be named like the second input, in its folder.
    second = shutil.copy(MWP24, tmp_path / f"{MWP8.stem}_registered.fits")
    first = shutil.copy(MWP8, tmp_path / MWP8.name)
    with pytest.raises(InputError, match="would replace the input"):
        register_images([first, second], tmp_path, overwrite=True)
    assert fits.getdata(second).shape == fits.getdata(MWP24).shape
    with pytest.raises(InputError, match="one label per image"):
        register_images([MWP8, MWP24], tmp_path / "out", labels=["8 µm"])
    assert not (tmp_path / "out").exists()


def test_registering_the_real_field_lets_the_shipped_detector_match_more_of_its_bubbles(real_offset, tmp_path):
    # The same pixels are searched either way: what changes is where the detections are put on the sky.
    import bubblenet

    copies = [write_registered(path, tmp_path / path.name, real_offset) for path in (MWP8, MWP24)]
    detector = bubblenet.load_detector()
    approx = bubblenet.score_field(bubblenet.find_bubbles(MWP8, MWP24, detector=detector), MWP8)
    registered = bubblenet.score_field(bubblenet.find_bubbles(*copies, detector=detector), copies[0])
    assert registered["detections"] == approx["detections"]
    assert registered["dr2_found"] >= approx["dr2_found"] + 2, (approx, registered)
    assert registered["clear_found"] >= approx["clear_found"] + 1, (approx, registered)
    assert registered["unmatched_per_deg2"] < approx["unmatched_per_deg2"]
