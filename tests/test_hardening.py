"""The hardened synthetic sky (`bubblenet.synth.hardening`): each addition, and its calibration on the real field."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from bubblenet.synth import Region, SynthConfig, make_survey
from bubblenet.synth.hardening import HARD, Hardening, scatter_catalogue
from bubblenet.synth.survey import TRUTH_NAME, saturation_level_24um
from conftest import MWP8, MWP24

SMALL = Region(40.4, 42.2, -0.6, 0.35)  # the real MWP field's strip: 14 DR2 bubbles, 6 clear


def _bools(column) -> np.ndarray:
    """A bool column as written to CSV and read back (astropy reads 'True'/'False' as text)."""
    values = np.asarray(column)
    return values if values.dtype == bool else values.astype(str) == "True"


def test_hardening_values_are_checked():
    for bad in ({"compact_sources": -1.0}, {"uncatalogued": float("nan")}, {"saturated_cores": 1.5},
                {"position_scatter": -0.1}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            Hardening(**bad)
    assert not Hardening().active and HARD.active and HARD.scatters


def test_no_hardening_draws_the_standard_sky_and_a_truth_file_equal_to_the_catalogue(tmp_path):
    plain = make_survey(tmp_path / "plain", SynthConfig(SMALL, pixscale=9.0, seed=2))
    off = make_survey(tmp_path / "off", SynthConfig(SMALL, pixscale=9.0, seed=2, hardening=Hardening()))
    for a, b in zip(plain.tiles8 + plain.tiles24, off.tiles8 + off.tiles24):
        assert np.array_equal(fits.getdata(a), fits.getdata(b), equal_nan=True)
        assert fits.getheader(a)["HARDENED"] is False
    truth, catalogue = Table.read(plain.truth), Table.read(plain.catalogue)
    assert list(truth["MWP"]) == list(catalogue["MWP"]) and _bools(truth["catalogued"]).all()
    assert np.allclose(truth["GLON"], catalogue["GLON"]) and np.allclose(truth["Reff"], catalogue["Reff"])


def test_uncatalogued_bubbles_are_drawn_but_only_the_truth_lists_them(tmp_path):
    region = Region(20.0, 30.0, -1.0, 1.0)
    files = make_survey(tmp_path, SynthConfig(region, pixscale=30.0, seed=3,
                                              hardening=Hardening(uncatalogued=5.5)))
    truth, catalogue = Table.read(tmp_path / TRUTH_NAME), Table.read(files.catalogue)
    listed = _bools(truth["catalogued"])
    assert list(truth["MWP"][listed]) == list(catalogue["MWP"])
    n_new = int((~listed).sum())
    # 5.5 per deg² over |b| <= 1° (all of the latitude law) on 20 deg²: 110 expected, Poisson spread ~10.
    assert 80 <= n_new <= 140, n_new
    assert not set(truth["MWP"][~listed]) & set(catalogue["MWP"])
    assert files.n_bubbles == len(catalogue)


def test_catalogue_scatter_follows_each_bubbles_own_errors():
    from bubblenet.catalogues.tables import packaged_catalogue

    dr2 = packaged_catalogue("mwp_dr2")
    moved = scatter_catalogue(dr2, np.random.default_rng(0), position=0.33, size=0.55)
    dl = ((np.asarray(moved["GLON"]) - np.asarray(dr2["GLON"]) + 180) % 360 - 180) * np.cos(
        np.radians(np.asarray(dr2["GLAT"], float)))
    db = np.asarray(moved["GLAT"]) - np.asarray(dr2["GLAT"])
    per_axis = np.concatenate([dl, db]) * 60 / np.tile(np.asarray(dr2["Disp"], float), 2)
    assert np.std(per_axis) == pytest.approx(0.33, rel=0.1)
    ln = np.log(np.asarray(moved["Reff"], float) / np.asarray(dr2["Reff"], float))
    rel = np.asarray(dr2["e_Reff"], float) / np.asarray(dr2["Reff"], float)
    assert np.std(ln / rel) == pytest.approx(0.55, rel=0.15)  # sizes rounded to 0.01′ add a little
    # Shapes kept; sky coordinates follow.
    ratio = np.asarray(moved["MinAxis"], float) / np.asarray(moved["MajAxis"], float)
    assert np.median(np.abs(ratio - np.asarray(dr2["MinAxis"], float) / np.asarray(dr2["MajAxis"], float))) < 0.02
    from astropy.coordinates import SkyCoord

    back = SkyCoord(ra=moved["RA_icrs"], dec=moved["DE_icrs"], unit="deg").galactic
    assert np.max(np.abs(back.b.deg - np.asarray(moved["GLAT"]))) < 1e-3


def test_a_twin_keeps_the_real_catalogue_and_moves_its_shells(tmp_path):
    from bubblenet.catalogues.tables import packaged_catalogue

    files = make_survey(tmp_path, SynthConfig(SMALL, pixscale=9.0, seed=0,
                                              hardening=Hardening(position_scatter=0.33, size_scatter=0.55)))
    catalogue, truth = Table.read(files.catalogue), Table.read(files.truth)
    dr2 = packaged_catalogue("mwp_dr2")
    real = {str(n): (float(lo), float(r)) for n, lo, r in zip(dr2["MWP"], dr2["GLON"], dr2["Reff"])}
    assert all(real[str(n)] == (pytest.approx(lo), pytest.approx(r))
               for n, lo, r in zip(catalogue["MWP"], catalogue["GLON"], catalogue["Reff"]))
    assert np.any(np.abs(np.asarray(truth["GLON"]) - np.asarray(catalogue["GLON"])) > 1e-3)


def test_saturated_cores_leave_nan_at_clear_bubble_centres_at_24um_only(tmp_path):
    files = make_survey(tmp_path, SynthConfig(SMALL, pixscale=4.8, seed=0, hardening=Hardening(saturated_cores=1.0)))
    truth = Table.read(files.truth)
    cored = truth[np.asarray(truth["core24"], float) > 0]
    assert len(cored) == int(_bools(truth["clear"]).sum()) >= 6  # every clear bubble of the strip
    from astropy.coordinates import SkyCoord
    from astropy.wcs import WCS

    masked = 0
    for row in cored:
        centre = SkyCoord(l=row["GLON"], b=row["GLAT"], unit="deg", frame="galactic")
        for path, band in [(p, "24um") for p in files.tiles24] + [(p, "8um") for p in files.tiles8]:
            wcs, data = WCS(fits.getheader(path)), fits.getdata(path)
            x, y = (int(round(float(v))) for v in wcs.world_to_pixel(centre))
            if 2 <= x < data.shape[1] - 2 and 2 <= y < data.shape[0] - 2:
                core = data[y - 1:y + 2, x - 1:x + 2]
                if band == "24um":
                    masked += bool(np.isnan(core).any())
                else:
                    assert np.isfinite(core).all()  # 8 µm does not saturate there
    assert masked >= 0.7 * len(cored)  # most cores reach saturation after the beam (the faintest, smallest may not)
    assert saturation_level_24um() == pytest.approx(2066, rel=0.01)  # a 2 Jy source's peak at 1.25″/px


def test_hardened_display_twin_has_the_real_fields_compact_sources(tmp_path):
    """The census of compact 24 µm sources with 8 µm counterparts that the standard twin lacks."""
    from bubblenet.synth.realism import REAL_COMPACT_SOURCES, compact_source_census, mwp_field_twin

    pixel = 6.75 / 3600
    real = compact_source_census(fits.getdata(MWP8), fits.getdata(MWP24), pixel_deg=pixel)
    assert real == REAL_COMPACT_SOURCES
    counts = {}
    for name, hardening in (("standard", None), ("hard", HARD)):
        i8, m24, _ = mwp_field_twin(tmp_path / name, seed=0, display_like=(MWP8, MWP24), hardening=hardening)
        counts[name] = compact_source_census(fits.getdata(i8), fits.getdata(m24), pixel_deg=pixel)
    assert counts["standard"]["per_deg2"] < 0.5 * real["per_deg2"]
    assert counts["standard"]["with_8um_per_deg2"] < 0.25 * real["with_8um_per_deg2"]
    assert counts["hard"]["per_deg2"] == pytest.approx(real["per_deg2"], rel=0.2)
    assert counts["hard"]["with_8um_per_deg2"] == pytest.approx(real["with_8um_per_deg2"], rel=0.3)


def test_synth_cli_hard_writes_a_hardened_survey(tmp_path):
    import json

    from bubblenet.synth.__main__ import main

    out = tmp_path / "sky"
    assert main(["--l", "40.4", "42.2", "--b", "-0.6", "0.35", "--pixscale", "12", "--hard", "--out", str(out),
                 "-q"]) == 0
    record = json.loads((out / "synth_run.json").read_text())
    assert record["options"]["hardening"] == dataclasses.asdict(HARD)
    truth = Table.read(out / TRUTH_NAME)
    assert len(truth) >= len(Table.read(out / "bubbles_mwp_dr2.csv"))
    confusers = Table.read(out / "confusers.ecsv")
    assert (confusers["kind"] == "red").sum() > 500  # ~1000 per deg² over 1.7 deg², most near the mid-plane
