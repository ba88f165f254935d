"""The synthetic sky measured against the real one with the project's bubble-profile tool."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from bubblenet.synth.realism import REAL_PROFILES, mwp_field_twin, profile_rms
from conftest import MWP8, MWP24, PROFILES_TOOL


def _profiles(catalogue, i8, m24):
    out = subprocess.run([sys.executable, str(PROFILES_TOOL), str(catalogue), str(i8), str(m24)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_reference_rows_are_what_the_tool_measures_on_the_real_field():
    from bubblenet.catalogues.tables import packaged_path

    measured = _profiles(packaged_path("mwp_dr2_jayasinghe2019.csv"), MWP8, MWP24)
    assert measured["n"] == 11
    for band in ("mean_24um", "mean_8um"):
        assert measured[band] == pytest.approx(REAL_PROFILES[band], abs=0.002)


def test_twin_of_the_real_field_looks_real(tmp_path):
    """Synthetic bubbles land within 0.06 RMS of the real profiles (circles on noise: ~0.25)."""
    i8, m24, catalogue = mwp_field_twin(tmp_path, seed=0)
    measured = _profiles(catalogue, i8, m24)
    assert measured["n"] == 11  # the same bubbles as on the real field
    rms = profile_rms(measured)
    assert rms["mean_24um"] < 0.06 and rms["mean_8um"] < 0.06, rms
    # The shape, not only the distance: 24 µm peaks inside, 8 µm peaks near the rim.
    assert measured["mean_24um"][0] == max(measured["mean_24um"])
    assert max(range(10), key=lambda k: measured["mean_8um"][k]) in (2, 3, 4)


def test_display_stretch_takes_the_real_planes_distribution_and_keeps_the_order():
    from astropy.io import fits

    from bubblenet.synth.display import match_display

    real = fits.getdata(MWP24).astype(float)
    rng = np.random.default_rng(0)
    sky = rng.lognormal(0.0, 1.0, (200, 300))
    sky[5, 5] = np.nan  # a saturated core
    shown = match_display(sky, real)
    assert shown.shape == sky.shape and shown[5, 5] == real.max() == 255
    assert np.array_equal(shown, np.round(shown)) and shown.min() >= 0
    finite = np.isfinite(sky)
    order = np.argsort(sky[finite])
    assert (np.diff(shown[finite][order]) >= 0).all()  # monotonic
    for q in (10, 50, 90, 99):
        assert abs(np.percentile(shown, q) - np.percentile(real, q)) <= 1.0, q
    with pytest.raises(ValueError, match="no finite pixel"):
        match_display(sky, np.full((3, 3), np.nan))


def test_twin_of_the_real_field_in_its_display_stretch(tmp_path):
    from astropy.io import fits

    i8, m24, _ = mwp_field_twin(tmp_path, seed=0, display_like=(MWP8, MWP24))
    for twin, real in ((i8, MWP8), (m24, MWP24)):
        shown, header = fits.getdata(twin), fits.getheader(twin)
        assert header["BUNIT"] == "8bit" and shown.shape == (400, 800)
        real_data = fits.getdata(real).astype(float)
        for q in (5, 25, 50, 75, 95, 99):  # the real plane's distribution (a few NaN pixels sent to 255 aside)
            assert abs(np.percentile(shown, q) - np.percentile(real_data, q)) <= 1.0, (twin.name, q)
    # The sky itself is the twin's: not the real image's pixels.
    assert np.corrcoef(fits.getdata(i8).ravel(), fits.getdata(MWP8).ravel())[0, 1] < 0.5


def test_twin_fields_elsewhere_lie_in_one_tile_or_are_refused(tmp_path):
    """`mwp_field_twin(centre=...)`: a field of the real field's grid elsewhere, all of it drawn."""
    from astropy.io import fits
    from astropy.wcs import WCS

    i8, m24, _ = mwp_field_twin(tmp_path / "inside", seed=3, centre=(30.7, 0.0))
    centre = WCS(fits.getheader(i8)).pixel_to_world(399.5, 199.5)
    assert centre.l.deg == pytest.approx(30.7, abs=0.01) and centre.b.deg == pytest.approx(0.0, abs=0.01)
    assert all(np.isfinite(fits.getdata(path)).mean() > 0.95 for path in (i8, m24))
    mwp_field_twin(tmp_path / "edge", seed=3, centre=(30.8, 0.0))  # 0.8° off the tile's centre: still inside
    for centre in (28.5, 30.9):  # across two 8 µm tiles; just over the edge of one
        with pytest.raises(ValueError, match=rf"l = {centre:.2f}.*only [\d.]+% of its 8 µm plane"):
            mwp_field_twin(tmp_path / f"off_{centre}", seed=3, centre=(centre, 0.0))


def test_twin_compressed_as_the_mwp_composites_gains_their_pixel_scale_noise(tmp_path):
    """The real 24 µm plane is 5x noisier than its display twin at the pixel; the composites' JPEG is a third of it."""
    from astropy.io import fits
    from astropy.stats import mad_std

    from bubblenet.synth.display import MWP_JPEG_TABLES, through_mwp_jpeg
    from bubblenet.synth.realism import REAL_BAND_CORRELATION, REAL_COLOUR_SHARE, band_correlation, colour_share

    def pixel_noise(plane):  # neighbour differences over the plane's robust spread
        plane = np.asarray(plane, float)
        return mad_std(np.diff(plane, axis=1)) / np.sqrt(2) / mad_std(plane)

    assert [len(t) for t in MWP_JPEG_TABLES] == [64, 64]
    plain = mwp_field_twin(tmp_path / "plain", seed=0, display_like=(MWP8, MWP24))
    jpeg = mwp_field_twin(tmp_path / "jpeg", seed=0, display_like=(MWP8, MWP24), jpeg=True)
    assert fits.getheader(jpeg[1])["JPEG"] is True and fits.getheader(plain[1])["JPEG"] is False
    before, after = fits.getdata(plain[1]).astype(float), fits.getdata(jpeg[1]).astype(float)
    assert 0 < np.mean(np.abs(after - before)) < 5  # levels: fine tables after a quality-95 first pass (3.5)
    real = pixel_noise(fits.getdata(MWP24))
    assert pixel_noise(before) < 0.3 * real < pixel_noise(after) < real  # 0.047, 0.141 against 0.236
    # The composites' colour is smooth at the pixel (an earlier chroma-subsampled encoding): the bands share
    # their fine structure, on the real planes and through the round trip, not on the plain display twin.
    planes = {name: [fits.getdata(path).astype(float) for path in pair[:2]]
              for name, pair in (("real", (MWP8, MWP24)), ("plain", plain), ("jpeg", jpeg))}
    fine = {name: band_correlation(*pair, window=3) for name, pair in planes.items()}
    assert fine["real"] == pytest.approx(REAL_BAND_CORRELATION[3], abs=1e-3)
    assert fine["plain"] < 0.4 and fine["jpeg"] > 0.75, fine  # 0.25 and 0.84 against 0.89 (tables alone: 0.3)
    colour = {name: colour_share(pair[1], pair[0], axis=0) for name, pair in planes.items()}
    assert colour["real"] == pytest.approx(REAL_COLOUR_SHARE[0], abs=1e-3)
    assert colour["jpeg"] < 2 * colour["real"] < colour["plain"], colour  # colour smooth at the pixel
    # Pixels whose running median reaches a NaN hole (here: the brightest 1 % at 24 µm, as saturated cores)
    # are left out, so the holes change which pixels count and nothing else.
    from scipy import ndimage

    from bubblenet.synth.realism import _residual

    real8, real24 = planes["real"]
    holed = np.where(real24 >= np.percentile(real24, 99), np.nan, real24)
    kept = ndimage.binary_erosion(np.isfinite(holed), np.ones((21, 21)), border_value=1)
    same_pixels = np.corrcoef(_residual(real8, 0, 21)[kept], _residual(real24, 0, 21)[kept])[0, 1]
    assert band_correlation(real8, holed, window=21) == pytest.approx(same_pixels, abs=1e-9)  # 0.82 (0.72 unmasked)
    with pytest.raises(ValueError, match="odd number"):
        band_correlation(*planes["real"], window=4)
    with pytest.raises(ValueError, match="differ in shape"):
        through_mwp_jpeg(np.zeros((4, 4)), np.zeros((4, 5)))
    with pytest.raises(ValueError, match="display_like"):
        mwp_field_twin(tmp_path / "bad", jpeg=True)


def test_power_spectrum_recovers_a_fields_slope_and_measures_the_real_field():
    from astropy.io import fits

    from bubblenet.synth.realism import power_spectrum, spectral_slope
    from bubblenet.synth.render import power_law_field

    for slope in (2.0, 3.0):
        field = power_law_field((400, 800), slope, np.random.default_rng(1))
        k, power = power_spectrum(field)
        assert spectral_slope(k, power) == pytest.approx(slope, abs=0.15)
        assert np.all(np.diff(power) < 0)  # a falling spectrum, ring by ring
    # The real field at scales of 5-100 px (docs/measurements.md): 2.47 at 8 µm, 2.32 at 24 µm; flatter at 2-5 px.
    for plane, expected in ((MWP8, 2.47), (MWP24, 2.32)):
        k, power = power_spectrum(fits.getdata(plane))
        assert spectral_slope(k, power) == pytest.approx(expected, abs=0.05)
        assert spectral_slope(k, power, k_range=(0.2, 0.5)) < expected - 0.4
    with pytest.raises(ValueError, match="two rings"):
        spectral_slope(k, power, k_range=(0.3, 0.35))
