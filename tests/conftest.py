"""Shared fixtures: the real images in tests/data and small synthetic skies."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"
#: Small real images, committed with the tests (origins and citations: tests/data/README.md).
IMAGES = TESTS / "data" / "images"
MWP8 = IMAGES / "mwp_GLM_04130-0013_I4_8um_approxwcs.fits"
MWP24 = IMAGES / "mwp_GLM_04130-0013_M1_24um_approxwcs.fits"
GLIMPSE_I2 = IMAGES / "glimpse_I2_l018_cutout.fits"
MSX = IMAGES / "msx_e_21um_galactic_centre.fits.gz"
PROFILES_TOOL = TESTS / "tools" / "bubble_profiles.py"


@pytest.fixture(scope="session")
def twin_survey(tmp_path_factory):
    """A synthetic twin of l = 30°–31°, |b| <= 1° at 2.4″/px (12 clear DR2 bubbles), seed 1."""
    from bubblenet.synth import Region, SynthConfig, make_survey

    return make_survey(tmp_path_factory.mktemp("twin"), SynthConfig(Region(30.0, 31.0, -1.0, 1.0), 2.4, seed=1))


@pytest.fixture(scope="session")
def test_tile_sky(tmp_path_factory):
    """A fresh twin of the paper's test tile l = 12° (10.56°-13.44°) at 4.8″/px, the shipped detector's
    pixel scale, with a seed (7) its training sky did not use; the folder path."""
    from bubblenet.synth import Region, SynthConfig, make_survey

    folder = tmp_path_factory.mktemp("test_tile")
    make_survey(folder, SynthConfig(Region(10.56, 13.44, -1.0, 1.0), 4.8, seed=7))
    return folder


@pytest.fixture(scope="session")
def fit_sky(tmp_path_factory):
    """A tiny sky to train on in seconds: l = 26°-34° (three tiles) at 9.6″/px, seed 4; the folder path."""
    from bubblenet.synth import Region, SynthConfig, make_survey

    folder = tmp_path_factory.mktemp("fit_sky")
    make_survey(folder, SynthConfig(Region(26.0, 34.0, -1.0, 1.0), 9.6, seed=4))
    return folder


#: `fit` options for a seconds-long run on `fit_sky`: test tile l = 30°, one validation tile.
TINY_FIT = ["--test-l", "30", "--n-val", "1", "--steps-per-epoch", "2", "--positives", "4", "--negatives", "2",
            "--negatives-per-tile", "20", "--val-sizes", "900", "1800", "--val-stride", "1.0"]


@pytest.fixture(scope="session")
def twin_tiles(twin_survey):
    from bubblenet.sky.mosaics import open_survey

    return open_survey(twin_survey.tiles8, twin_survey.tiles24)


def car_header(shape, *, lon=30.0, lat=0.0, scale_arcsec=2.0, crpix=None, cd=False) -> fits.Header:
    """A Galactic CAR header of an image of `shape` (ny, nx) centred on (lon, lat)."""
    ny, nx = shape
    w = WCS(naxis=2)
    w.wcs.ctype = ["GLON-CAR", "GLAT-CAR"]
    w.wcs.crval = [lon, 0.0]
    step = scale_arcsec / 3600
    w.wcs.crpix = crpix or [(nx + 1) / 2, (ny + 1) / 2 - lat / step]
    w.wcs.cdelt = [-step, step]
    header = w.to_header()
    if cd:
        for key in ("CDELT1", "CDELT2"):
            header.remove(key)
        header["CD1_1"], header["CD1_2"], header["CD2_1"], header["CD2_2"] = -step, 0.0, 0.0, step
    header["BUNIT"] = "MJy/sr"
    return header


def tan_header(shape, *, ra=10.0, dec=41.0, scale_arcsec=2.0, rotation_deg=0.0) -> fits.Header:
    """An ICRS TAN header (external-galaxy style), optionally rotated."""
    ny, nx = shape
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [ra, dec]
    w.wcs.crpix = [(nx + 1) / 2, (ny + 1) / 2]
    step = scale_arcsec / 3600
    c, s = np.cos(np.radians(rotation_deg)), np.sin(np.radians(rotation_deg))
    w.wcs.cd = np.array([[-step * c, step * s], [step * s, step * c]])
    header = w.to_header()
    header["BUNIT"] = "MJy/sr"
    return header


def write_fits(path: Path, data: np.ndarray, header: fits.Header | None = None) -> Path:
    fits.PrimaryHDU(np.asarray(data, dtype=np.float32), header).writeto(path, overwrite=True)
    return path
