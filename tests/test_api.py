"""The notebook interface (`bubblenet.api`): images in memory or on disk in, an astropy QTable out."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.table import QTable
from astropy.wcs import WCS

import bubblenet
from bubblenet.errors import ConfigError, InputError
from conftest import MWP8, MWP24


def _ring_pair(l0: float = 30.0, pixscale: float = 6.0, n: int = 600, ring_px: float = 25.0):
    """An 8 µm ring around 24 µm emission at the centre of an n x n Galactic CAR image."""
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["GLON-CAR", "GLAT-CAR"]
    wcs.wcs.crval, wcs.wcs.crpix = [l0, 0.0], [n / 2 + 0.5, n / 2 + 0.5]
    wcs.wcs.cdelt = [-pixscale / 3600, pixscale / 3600]
    y, x = np.mgrid[:n, :n]
    r = np.hypot(x - (n - 1) / 2, y - (n - 1) / 2)
    rng = np.random.default_rng(0)
    i8 = 20 + 60 * np.exp(-0.5 * ((r - ring_px) / 4) ** 2) + rng.normal(0, 1, r.shape)
    m24 = 10 + 80 * np.exp(-0.5 * (r / 10) ** 2) + rng.normal(0, 1, r.shape)
    return i8.astype(np.float32), m24.astype(np.float32), wcs


@pytest.fixture(scope="module")
def ring():
    return _ring_pair()


@pytest.fixture(scope="module")
def detector():
    return bubblenet.load_detector()


def test_import_is_light_until_the_api_is_used():
    code = "import sys, bubblenet; print('tensorflow' in sys.modules, callable(bubblenet.find_bubbles))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "True"]


def test_find_bubbles_in_memory_arrays_hdus_and_files_agree(ring, detector, tmp_path):
    i8, m24, wcs = ring
    table = bubblenet.find_bubbles((i8, wcs), (m24, wcs), detector=detector)
    assert isinstance(table, QTable) and len(table) == 1
    assert isinstance(table["coord"], SkyCoord) and table["radius"].unit == u.arcmin
    centre = SkyCoord(30, 0, unit="deg", frame="galactic")
    assert table["coord"][0].separation(centre) < 30 * u.arcsec
    assert 2 * u.arcmin < table["radius"][0] < 3.5 * u.arcmin  # 25 px x 6"/px = 2.5'
    assert table.meta["threshold"] == detector.threshold and table.meta["search"] == detector.search.to_dict()
    assert not list(tmp_path.iterdir())  # nothing written anywhere

    header = wcs.to_header()
    hdus = bubblenet.find_bubbles(fits.PrimaryHDU(i8, header), fits.HDUList([fits.PrimaryHDU(m24, header)]),
                                  detector=detector)
    fits.PrimaryHDU(i8, header).writeto(tmp_path / "i8.fits")
    fits.PrimaryHDU(m24, header).writeto(tmp_path / "m24.fits")
    files = bubblenet.find_bubbles(tmp_path / "i8.fits", str(tmp_path / "m24.fits"), detector=detector)
    for other in (hdus, files):
        assert len(other) == 1
        assert other["coord"][0].separation(table["coord"][0]) < 0.01 * u.arcsec
        assert other["score"][0] == pytest.approx(table["score"][0], abs=1e-5)


def test_find_bubbles_region_threshold_and_search(ring, detector):
    i8, m24, wcs = ring
    assert len(bubblenet.find_bubbles((i8, wcs), (m24, wcs), detector=detector, threshold=0.999)) == 0
    # A region holding the image but not the ring's centre drops the detection; one away from it has no tile.
    off = bubblenet.find_bubbles((i8, wcs), (m24, wcs), detector=detector, region={"l": (30.2, 30.4)})
    assert len(off) == 0
    with pytest.raises(ConfigError, match="no 8 µm image overlaps"):
        bubblenet.find_bubbles((i8, wcs), (m24, wcs), detector=detector, region={"l": (40, 41)})
    small = bubblenet.SearchConfig(sizes_arcsec=(600.0, 1200.0), stride=0.5)
    table = bubblenet.find_bubbles((i8, wcs), (m24, wcs), detector=detector, search=small)
    assert table.meta["search"]["sizes_arcsec"] == [600.0, 1200.0]


def test_find_bubbles_bad_input_is_a_clear_error(ring, detector):
    i8, m24, wcs = ring
    with pytest.raises(InputError, match="expected a FITS path, an HDU or an"):
        bubblenet.find_bubbles(i8, (m24, wcs), detector=detector)
    with pytest.raises(InputError, match="2-D image"):
        bubblenet.find_bubbles((i8[None], wcs), (m24, wcs), detector=detector)
    with pytest.raises(InputError, match="all NaN"):
        bubblenet.find_bubbles((np.full_like(i8, np.nan), wcs), (m24, wcs), detector=detector)
    with pytest.raises(ConfigError, match="region takes 'l' and 'b'"):
        bubblenet.find_bubbles((i8, wcs), (m24, wcs), detector=detector, region={"glon": (1, 2)})
    with pytest.raises(ConfigError, match=r"region\['l'\] 31 30: give MIN MAX"):
        bubblenet.find_bubbles((i8, wcs), (m24, wcs), detector=detector, region={"l": (31, 30)})
    with pytest.raises(ConfigError, match=r"threshold must be in \[0, 1\]"):
        bubblenet.find_bubbles((i8, wcs), (m24, wcs), detector=detector, threshold=1.5)
    far = _ring_pair(l0=60.0)
    with pytest.raises(InputError, match="bands do not overlap"):
        bubblenet.find_bubbles((i8, wcs), (far[1], far[2]), detector=detector)


def test_score_and_crossmatch_of_the_real_field(detector):
    table = bubblenet.find_bubbles(MWP8, MWP24, detector=detector)
    assert len(table) > 0 and table["coord"].frame.name == "galactic"
    scores = bubblenet.score(table)
    assert scores["bubbles"] >= 14 and scores["selected"] >= 6  # DR2 bubbles of the field: 14, 6 clear
    paper = scores["paper"]
    assert paper["tp"] + paper["fn"] == scores["selected"] and paper["fp"] <= len(table)
    matched = bubblenet.crossmatch(table)
    assert len(matched) == len(table) and {"in_mwp_dr2", "in_wise_hii", "new"} <= set(matched.colnames)
    assert (matched["new"] == ~(matched["in_mwp_dr2"] | matched["in_mwp_dr1"] | matched["in_churchwell_dr2"]
                                | matched["in_wise_hii"])).all()
    assert matched["in_mwp_dr2"].sum() >= paper["tp"] > 0
    # One-to-one against every DR2 bubble of the field (benchmarks/bench_transfer.py's measure).
    field = bubblenet.score_field(table, MWP8)
    assert (field["dr2"], field["clear"], field["detections"]) == (14, 6, len(table))
    assert field["dr2_found"] + field["unmatched"] <= len(table) and field["clear_found"] <= field["dr2_found"]
    assert field["unmatched_per_deg2"] == pytest.approx(field["unmatched"] / 1.125, rel=1e-3)


def test_find_bubbles_on_several_tiles_in_memory_and_resuming_in_a_work_dir(ring, detector, tmp_path):
    i8, m24, wcs = ring
    other = _ring_pair(l0=31.2)
    tiles8, tiles24 = [(i8, wcs), (other[0], other[2])], [(m24, wcs), (other[1], other[2])]
    table = bubblenet.find_bubbles(tiles8, tiles24, detector=detector)
    assert len(table) == 2 and sorted(table["tile"]) == ["memory_8um_1", "memory_8um_2"]
    assert sorted(round(c.l.deg, 1) for c in table["coord"]) == [30.0, 31.2]
    work = tmp_path / "work"
    first = bubblenet.find_bubbles(tiles8, tiles24, detector=detector, work_dir=work)
    again = bubblenet.find_bubbles(tiles8, tiles24, detector=detector, work_dir=work)  # from the stored tiles
    assert list(first["score"]) == list(again["score"]) == list(table["score"])
    # A detector loaded from a folder is recorded as such, not as the shipped one.
    from bubblenet.detection.detector import default_model_path

    folder = bubblenet.find_bubbles((i8, wcs), (m24, wcs), detector=bubblenet.load_detector(default_model_path()))
    assert folder.meta["model"] == str(default_model_path())


def test_score_takes_find_bubbles_tables_in_any_form(detector, tmp_path):
    from astropy.table import Table

    table = bubblenet.find_bubbles(MWP8, MWP24, detector=detector)
    reference = bubblenet.score(table)
    plain = Table(table)
    assert bubblenet.score(plain) == reference
    table["radius"] = table["radius"].to(u.arcsec)  # units are read, not assumed
    assert bubblenet.score(table) == reference
    with pytest.raises(InputError, match="missing column"):
        bubblenet.score(Table({"glon": [1.0]}))
