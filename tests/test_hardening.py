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
    with pytest.raises(ValueError, match="must be a number"):
        Hardening(uncatalogued="many")
    with pytest.raises(ValueError, match="hardening must be"):
        SynthConfig(SMALL, hardening=None)


#: Per tile of the standard sky below: NaN pixels, mean and standard deviation, as the synthetic survey drew them
#: before the hardening existed (commit 04f8f7c); a change of any random stream would move them.
STANDARD_SKY = {"GLM_04200+0000_mosaic_I4.fits": (57682, 66.785, 48.767),
                "GLM_03900+0000_mosaic_I4.fits": (5569, 51.003, 36.534),
                "MG0420n001_024.fits": (7553, 31.734, 25.913), "MG0410n001_024.fits": (10225, 32.731, 20.306)}


def test_without_hardening_the_sky_is_the_one_drawn_before_it_existed(tmp_path):
    plain = make_survey(tmp_path / "plain", SynthConfig(SMALL, pixscale=12.0, seed=2))
    assert {p.name for p in plain.tiles8 + plain.tiles24} == set(STANDARD_SKY)
    for path in plain.tiles8 + plain.tiles24:
        data = fits.getdata(path).astype(float)
        nan, mean, sd = STANDARD_SKY[path.name]
        assert int(np.isnan(data).sum()) == nan
        assert np.nanmean(data) == pytest.approx(mean, abs=2e-3) and np.nanstd(data) == pytest.approx(sd, abs=2e-3)
        assert fits.getheader(path)["HARDENED"] is False
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


def test_a_random_sky_keeps_its_shells_and_moves_its_listing_by_dr2_like_errors(tmp_path):
    from bubblenet.catalogues.tables import read_catalogue

    region = Region(20.0, 40.0, -1.0, 1.0)
    files = make_survey(tmp_path, SynthConfig(region, pixscale=40.0, seed=5, mode="random",
                                              hardening=Hardening(position_scatter=0.33, size_scatter=0.55)))
    truth, catalogue = read_catalogue(files.truth), Table.read(files.catalogue)
    assert truth["catalogued"].dtype == bool and truth["catalogued"].all()  # read back as flags
    assert list(truth["MWP"]) == list(catalogue["MWP"])
    # The names say where the shells are: the truth's positions, not the moved catalogue's.
    from bubblenet.synth.population import mwp_name

    assert mwp_name(truth["GLON"], truth["GLAT"]) == list(truth["MWP"])
    disp = np.asarray(catalogue["Disp"], float) / np.asarray(catalogue["MajAxis"], float)
    assert 0.2 < np.median(disp) < 0.4  # DR2's 0.28, not the random sky's made-up errors
    offset = np.hypot((np.asarray(catalogue["GLON"]) - np.asarray(truth["GLON"])) * np.cos(np.radians(truth["GLAT"])),
                      np.asarray(catalogue["GLAT"]) - np.asarray(truth["GLAT"])) * 60
    per_axis = offset / np.asarray(catalogue["Disp"], float) / np.sqrt(2)
    assert np.sqrt(np.mean(per_axis**2)) == pytest.approx(0.33, rel=0.2)


def test_saturated_cores_leave_nan_at_clear_bubble_centres_at_24um_only(tmp_path):
    files = make_survey(tmp_path, SynthConfig(SMALL, pixscale=4.8, seed=0, hardening=Hardening(saturated_cores=1.0)))
    truth = Table.read(files.truth)
    assert (tmp_path / "clear_bubbles_truth.txt").read_text().split() == list(truth["MWP"][_bools(truth["clear"])])
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
    """The censuses of compact 24 µm sources and HII blobs with 8 µm counterparts that the standard twin lacks."""
    from bubblenet.synth.realism import (REAL_COMPACT_SOURCES, REAL_HII_BLOBS, REAL_POINT_SOURCES_8UM,
                                         compact_source_census, hii_blob_census, mwp_field_twin,
                                         point_source_census_8um)
    from bubblenet.synth.display import through_mwp_jpeg

    pixel = 6.75 / 3600
    real = {"compact": compact_source_census(fits.getdata(MWP8), fits.getdata(MWP24), pixel_deg=pixel),
            "blobs": hii_blob_census(fits.getdata(MWP8), fits.getdata(MWP24), pixel_deg=pixel),
            "points8": point_source_census_8um(fits.getdata(MWP8), pixel_deg=pixel)}
    assert real == {"compact": REAL_COMPACT_SOURCES, "blobs": REAL_HII_BLOBS, "points8": REAL_POINT_SOURCES_8UM}
    counts = {}
    starry = dataclasses.replace(HARD, stars_8um=1.0e5)
    for name, hardening in (("standard", None), ("hard", HARD), ("starry", starry)):
        i8, m24, _ = mwp_field_twin(tmp_path / name, seed=0, display_like=(MWP8, MWP24), hardening=hardening)
        a8, a24 = fits.getdata(i8), fits.getdata(m24)
        counts[name] = {"compact": compact_source_census(a8, a24, pixel_deg=pixel),
                        "blobs": hii_blob_census(a8, a24, pixel_deg=pixel),
                        # like the real planes, through the composites' JPEG (which smooths the faintest points)
                        "points8": point_source_census_8um(through_mwp_jpeg(a24, a8)[1], pixel_deg=pixel)}
    standard, hard = counts["standard"], counts["hard"]
    assert standard["compact"]["per_deg2"] < 0.5 * real["compact"]["per_deg2"]
    assert standard["compact"]["with_8um_per_deg2"] < 0.25 * real["compact"]["with_8um_per_deg2"]
    assert standard["blobs"]["with_8um_per_deg2"] < 0.7 * real["blobs"]["with_8um_per_deg2"]
    # Seeds 0-2 of the hardened twin: 748-778 compact per deg², 244-283 with 8 µm, 21-23 blobs with 8 µm
    # (docs/measurements.md).
    assert hard["compact"]["per_deg2"] == pytest.approx(real["compact"]["per_deg2"], rel=0.2)
    assert hard["compact"]["with_8um_per_deg2"] == pytest.approx(real["compact"]["with_8um_per_deg2"], rel=0.25)
    assert hard["blobs"]["with_8um_per_deg2"] == pytest.approx(real["blobs"]["with_8um_per_deg2"], rel=0.35)
    # 8 µm point sources 20 levels up: the standard and hardened twins have about half the real field's; with
    # the stars_8um probe about as many (docs/measurements.md, "Vetting detections").
    assert standard["points8"][20] < 0.6 * real["points8"][20] and hard["points8"][20] < 0.6 * real["points8"][20]
    for level in (10, 20, 40):
        assert counts["starry"]["points8"][level] == pytest.approx(real["points8"][level], rel=0.3), level
    assert counts["starry"]["compact"]["per_deg2"] == hard["compact"]["per_deg2"]  # no 24 µm source moves


def test_synth_cli_hard_writes_a_hardened_survey(tmp_path):
    import json

    from bubblenet.synth.__main__ import main

    out = tmp_path / "sky"
    assert main(["--l", "40.4", "42.2", "--b", "-0.6", "0.35", "--pixscale", "12", "--hard", "--out", str(out),
                 "-q"]) == 0
    record = json.loads((out / "synth_run.json").read_text())
    assert record["options"]["hardening"] == dataclasses.asdict(HARD)
    truth = Table.read(out / TRUTH_NAME)
    assert len(truth) > len(Table.read(out / "bubbles_mwp_dr2.csv"))  # ~9 uncatalogued expected
    confusers = Table.read(out / "confusers.ecsv")
    assert (confusers["kind"] == "red").sum() > 1000  # 1100 per deg² over 1.7 deg²: ~1880


def test_compact_bubbles_are_filled_disks_whose_24um_follows_their_8um():
    """The compact look: as bright inside as on the rim at 8 µm, one shape at both bands; a ring is neither."""
    from bubblenet.synth import render
    from bubblenet.synth.hardening import compact_share
    from bubblenet.synth.realism import bubble_band_correlations

    share = compact_share([0.5, 1.4, 3.0], 1.4)
    assert share[0] > 0.95 and share[1] == pytest.approx(0.5) and share[2] < 0.05
    assert not compact_share([0.1, 1.0], 0.0).any()
    with pytest.raises(ValueError, match="compact_bubbles"):
        Hardening(compact_bubbles=-1.0)
    ring = render.ShellParams(a=8.0, b=7.0, angle=0.3, thickness=0.4, amp8=10.0, amp24=40.0, interior8=0.1,
                              envelope8=0.4, envelope24=0.25, sigma24=0.5,
                              harmonics=np.array([[1.0, 0.2, 0.0], [2.0, 0.15, 1.0]]), gaps=np.array([[2.0, 0.3]]))
    yy, xx = np.mgrid[-30:31, -30:31].astype(float)
    rho = np.hypot(xx / 8.0, yy / 7.0)  # angle aside, near enough for ring-averaged numbers
    measured = {}
    for name, params in (("ring", ring), ("compact", dataclasses.replace(ring, compact=1.0, compact_amp24=15.0))):
        img8, img24 = render.shell_images(params, xx, yy)
        centre, rim = img8[rho < 0.5].mean(), img8[(rho > 0.9) & (rho < 1.2)].mean()
        corr = bubble_band_correlations(img8, img24, [30.0], [30.0], [8.0])[0]
        measured[name] = (centre / rim, corr)
    assert measured["ring"][0] < 0.6 and measured["compact"][0] > 0.9, measured  # ring: dark inside
    assert measured["ring"][1] < 0.3 and measured["compact"][1] > 0.95, measured  # compact: one shape
    half = dataclasses.replace(ring, compact=0.5, compact_amp24=15.0)
    assert np.allclose(render.shell_images(half, xx, yy)[0],
                       0.5 * render.shell_images(ring, xx, yy)[0]
                       + 0.5 * render.shell_images(dataclasses.replace(half, compact=1.0), xx, yy)[0], atol=1e-4)
    # A disk that leaves the image (by one pixel at the far edges), holds a NaN or has no finite centre
    # has no correlation to give; one that just fits has. A scalar radius serves every centre.
    edge = bubble_band_correlations(img8, img24, [2.0, 48.0, 49.0, 30.0, np.nan], [30.0, 30.0, 30.0, 49.0, 30.0], 8.0)
    assert np.isfinite(edge[1]) and np.isnan(edge[[0, 2, 3, 4]]).all(), edge
    holed = img24.copy()
    holed[30, 30] = np.nan
    assert np.isnan(bubble_band_correlations(img8, holed, [30.0], [30.0], [8.0])[0])


def test_hardened_twins_small_bubbles_are_compact_as_the_real_fields_are(tmp_path):
    """Real DR2 bubbles under 1.4′ are one blob at both bands; so are the hardened twin's, not a ring twin's."""
    import importlib.util

    from bubblenet.evaluation.scoring import reference_catalogue
    from bubblenet.sky.astrometry import measure_offset, write_registered
    from bubblenet.sky.mosaics import open_image
    from bubblenet.synth.hardening import compact_share
    from bubblenet.synth.realism import MWP_FIELD, REAL_SMALL_BUBBLE_CORRELATION, mwp_field_twin
    from conftest import REPO

    # The measure of experiments/small_bubble_looks.py, which the docs' table and the constants come from.
    spec = importlib.util.spec_from_file_location("small_bubble_looks", REPO / "experiments" / "small_bubble_looks.py")
    looks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(looks)

    offset = measure_offset([open_image(MWP8), open_image(MWP24)])
    (tmp_path / "registered").mkdir()
    real = [write_registered(path, tmp_path / "registered" / path.name, offset) for path in (MWP8, MWP24)]
    pixel_arcmin = MWP_FIELD["pixscale"] / 60
    limit = REAL_SMALL_BUBBLE_CORRELATION["max_maj_axis"]
    # The bubbles whose ±2.5 MajAxis cut-out lies inside the real field: 14, 9 of them small.
    bubbles = looks.with_cutouts_inside(reference_catalogue("mwp_dr2"), real[0], pixel_arcmin)
    maj_axis = np.asarray(bubbles["maj_axis"], float)

    def medians(pair):
        by_size = looks.by_size(looks.looks(pair, bubbles, pixel_arcmin), maj_axis, limit)
        return by_size["small"]["n"], by_size["small"]["median_correlation"], by_size["large"]["median_correlation"]

    n_small, real_small, real_large = medians(real)
    assert n_small == 9
    assert real_small == pytest.approx(REAL_SMALL_BUBBLE_CORRELATION["median_small"], abs=0.005)
    assert real_large == pytest.approx(REAL_SMALL_BUBBLE_CORRELATION["median_large"], abs=0.005)
    twins = {name: medians(mwp_field_twin(tmp_path / name, seed=0, hardening=hardening, jpeg=True,
                                          display_like=(MWP8, MWP24))[:2])
             for name, hardening in (("hard", HARD), ("rings", dataclasses.replace(HARD, compact_bubbles=0.0)))}
    # Seeds 0-2 (docs/measurements.md): 0.76 +/- 0.09 with the compact look, 0.34 +/- 0.23 with rings only,
    # against the real 0.86.
    assert twins["hard"][1] > 0.6 > twins["rings"][1] + 0.1, twins
    truth = Table.read(tmp_path / "hard" / "survey" / TRUTH_NAME)
    compact, maj = np.asarray(truth["compact"], float), np.asarray(truth["MajAxis"], float)
    assert np.allclose(compact, compact_share(maj, HARD.compact_bubbles).round(3))
    assert (compact[maj < 1.0] > 0.9).all() and (compact[maj > 3.0] < 0.01).all()
    assert ((np.asarray(truth["compact_amp24"], float) > 0) == (compact > 0)).all()
    assert "compact" not in Table.read(tmp_path / "hard" / "survey" / "bubbles_mwp_dr2.csv").colnames


def test_the_compact_look_leaves_every_other_draw_of_the_sky_as_it_was(tmp_path):
    """Switching the compact look on changes the sky only where its compact bubbles are drawn."""
    from astropy.wcs import WCS

    rings = dataclasses.replace(HARD, compact_bubbles=0.0)
    skies = {name: make_survey(tmp_path / name, SynthConfig(SMALL, pixscale=12.0, seed=1, hardening=hardening))
             for name, hardening in (("rings", rings), ("compact", HARD))}
    truth = Table.read(skies["compact"].truth)
    same = Table.read(skies["rings"].truth)
    assert list(same["MWP"]) == list(truth["MWP"]) and np.allclose(same["GLON"], truth["GLON"])
    compact = truth[np.asarray(truth["compact"], float) > 0]
    assert len(compact) >= 5
    for plain, looked in zip(skies["rings"].tiles8 + skies["rings"].tiles24,
                             skies["compact"].tiles8 + skies["compact"].tiles24):
        a, b = fits.getdata(plain).astype(float), fits.getdata(looked).astype(float)
        wcs = WCS(fits.getheader(looked))
        x, y = wcs.world_to_pixel_values(np.asarray(compact["GLON"], float), np.asarray(compact["GLAT"], float))
        reach = (3.2 * np.asarray(compact["MajAxis"], float) * 60 / 12.0 + 3) * 2  # render patch, beams, resampling
        yy, xx = np.mgrid[:a.shape[0], :a.shape[1]]
        near = np.zeros(a.shape, bool)
        for xk, yk, rk in zip(x, y, reach):
            near |= np.hypot(xx - xk, yy - yk) < rk
        both = np.isfinite(a) & np.isfinite(b)
        assert np.allclose(a[both & ~near], b[both & ~near], atol=1e-3), plain.name  # the rest is the same sky
        if (both & near).any():
            assert not np.allclose(a[both & near], b[both & near], atol=1e-3), plain.name


def test_more_8um_stars_change_the_8um_tiles_only_and_only_by_adding_light(tmp_path):
    """`Hardening.stars_8um` adds 8 µm point sources from a stream of its own: the 24 µm sky and the
    catalogue are the same with or without them."""
    more = dataclasses.replace(HARD, stars_8um=1.0e5)
    skies = {name: make_survey(tmp_path / name, SynthConfig(SMALL, pixscale=12.0, seed=1, hardening=hardening))
             for name, hardening in (("fewer", HARD), ("more", more))}
    assert Table.read(skies["fewer"].truth).pformat() == Table.read(skies["more"].truth).pformat()
    for plain, starry in zip(skies["fewer"].tiles24, skies["more"].tiles24):
        np.testing.assert_array_equal(fits.getdata(plain), fits.getdata(starry))
    for plain, starry in zip(skies["fewer"].tiles8, skies["more"].tiles8):
        a, b = fits.getdata(plain).astype(float), fits.getdata(starry).astype(float)
        both = np.isfinite(a) & np.isfinite(b)
        added = (b - a)[both]
        assert added.min() > -1e-3  # stars only add light
        # About one star per 12" pixel: light nearly everywhere, brightest where a star sits on its pixel.
        assert (added > 0.1).mean() > 0.5 and added.max() > 5 * np.median(added)
