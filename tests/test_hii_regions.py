"""HII regions of the WISE catalogue on a hardened synthetic sky (`bubblenet.synth.hii_regions`)."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from bubblenet.synth import Region, SynthConfig, make_survey
from bubblenet.synth.hardening import HARD, Hardening
from bubblenet.synth.hii_regions import HII_REGION_LOOK, apart_from_bubbles, draw_hii_regions, hii_region_shapes
from bubblenet.synth.survey import HII_REGIONS_NAME

FIELD = Region(40.4, 42.2, -0.6, 0.35)  # the real MWP field's strip
COMPLEX = "G041.074-00.162"  # its bright HII complex: 440″, 222.83 Jy at 8 µm, 618.88 Jy at 24 µm


def test_a_twin_draws_its_fields_catalogued_regions_with_their_fluxes():
    regions = draw_hii_regions(FIELD, np.random.default_rng(0), mode="twin")
    assert FIELD.contains(regions["glon"], regions["glat"]).all() and len(regions) == 53
    row = regions[list(regions["name"]).index(COMPLEX)]
    assert (row["radius_arcsec"], row["flux8_jy"], row["flux24_jy"], row["measured"]) == (440.0, 222.83, 618.88,
                                                                                          True)
    # Every region gets fluxes; the unmeasured take a measured region's of about their radius.
    assert (regions["flux8_jy"] > 0).all() and (regions["flux24_jy"] > 0).all()
    assert 0 < regions["measured"].sum() < len(regions)
    assert list(regions["resampled_from"]) == list(regions["name"])
    # A region with one catalogued flux keeps it.
    from bubblenet.synth.hii_regions import _catalogue

    wise = _catalogue()
    one = wise[(wise["flux8_jy"] > 0) != (wise["flux24_jy"] > 0)]
    drawn = draw_hii_regions(Region(0, 360, -90, 90), np.random.default_rng(2), mode="twin")
    drawn = drawn[np.isin(drawn["name"], one["name"])]
    assert len(drawn) == len(one) > 20 and not drawn["measured"].any()
    for band in ("flux8_jy", "flux24_jy"):
        catalogued = np.asarray(one[band])
        assert np.array_equal(np.asarray(drawn[band])[catalogued > 0], catalogued[catalogued > 0])
    assert draw_hii_regions(FIELD, np.random.default_rng(0), mode="twin", share=0.0).colnames == regions.colnames
    assert len(draw_hii_regions(FIELD, np.random.default_rng(0), mode="twin", share=0.0)) == 0


def test_unmeasured_regions_take_fluxes_of_measured_ones_of_their_size():
    from bubblenet.synth.hii_regions import _catalogue, _similar_measured

    wise = _catalogue()
    known = (wise["flux8_jy"] > 0) & (wise["flux24_jy"] > 0)
    for radius in (20.0, 100.0, 500.0):
        pick = _similar_measured(wise, np.full(200, radius), np.random.default_rng(1))
        assert known[pick].all()
        ratio = np.asarray(wise["radius_arcsec"], float)[pick] / radius
        assert np.median(ratio) == pytest.approx(1.0, abs=0.15) and len(set(pick)) > 10


def test_a_random_sky_has_the_catalogues_density_of_regions_that_are_no_dr2_bubble():
    from bubblenet.catalogues.tables import packaged_catalogue
    from bubblenet.synth.hii_regions import INNER_PLANE, RANDOM_DENSITY, _random_pool

    # Its bubbles are drawn on their own, so the pool leaves out the regions that are DR2 bubbles (a third).
    pool = _random_pool(-1.0, 1.0)
    area = 2 * INNER_PLANE["l_max"] * 2 * INNER_PLANE["b_max"]
    assert len(pool) / area == pytest.approx(RANDOM_DENSITY, abs=0.05)
    assert len(apart_from_bubbles(pool, packaged_catalogue("mwp_dr2"))) == len(pool) < 0.8 * 6147
    region = Region(20.0, 40.0, -1.0, 1.0)
    regions = draw_hii_regions(region, np.random.default_rng(3), mode="random")
    assert len(regions) == pytest.approx(RANDOM_DENSITY * region.area_deg2, rel=0.1)
    assert region.contains(regions["glon"], regions["glat"]).all()
    # Each copies a catalogued region (named in resampled_from) and is named for where it is drawn.
    assert set(regions["resampled_from"]) <= set(pool["name"])
    row = regions[0]
    assert row["name"] == f"G{row['glon']:07.3f}{row['glat']:+07.3f}" != row["resampled_from"]
    assert len(_random_pool(-1.0, 1.0)) == len(pool)  # the cached pool is not changed by a draw
    # Their latitudes are the catalogue's: concentrated to the plane.
    assert np.mean(np.abs(regions["glat"]) < 0.5) > 0.6
    half = draw_hii_regions(region, np.random.default_rng(3), mode="random", share=0.5)
    assert len(half) == pytest.approx(0.5 * len(regions), rel=0.15)
    with pytest.raises(ValueError, match="mode"):
        draw_hii_regions(region, np.random.default_rng(3), mode="real")


def test_shapes_keep_the_catalogued_flux_inside_the_radius_24um_central_8um_around():
    radius = 40.0
    dy, dx = np.mgrid[-82:83, -82:83].astype(np.float32)
    shape8, shape24 = hii_region_shapes(dx + 0.3, dy - 0.2, radius, np.random.default_rng(5))
    rho = np.hypot(dx + 0.3, dy - 0.2) / radius
    assert shape8[rho <= 1].sum() == pytest.approx(1.0, rel=1e-4)
    assert shape24[rho <= 1].sum() == pytest.approx(1.0, rel=1e-4)
    assert (shape8 >= 0).all() and (shape24 >= 0).all()
    assert shape24[rho <= 0.3].sum() > 2 * shape8[rho <= 0.3].sum()  # warm dust in, PAHs around
    assert shape8[(rho > 0.6) & (rho < 1.0)].sum() > shape24[(rho > 0.6) & (rho < 1.0)].sum()
    again = hii_region_shapes(dx + 0.3, dy - 0.2, radius, np.random.default_rng(5))
    assert np.array_equal(again[0], shape8)  # the look is the seed's


def test_a_region_that_is_one_of_the_bubbles_is_left_to_the_bubble():
    regions = Table({"name": ["same", "complex", "compact", "alone"], "glon": [10.0, 10.0, 10.01, 11.0],
                     "glat": [0.0, 0.0, 0.0, 0.0], "radius_arcsec": [90.0, 600.0, 20.0, 90.0]})
    bubbles = Table({"GLON": [10.005], "GLAT": [0.0], "MajAxis": [1.0]})  # 18″ off, a 60″ semi-axis
    # Much larger than the bubble (a complex around it) or much smaller (a compact region on its shell): apart.
    assert list(apart_from_bubbles(regions, bubbles)["name"]) == ["complex", "compact", "alone"]
    assert len(apart_from_bubbles(regions, bubbles[:0])) == 4


def test_a_twins_regions_do_not_depend_on_its_seed():
    from bubblenet.synth.population import draw_population

    def names(seed):
        population = draw_population(FIELD, np.random.default_rng(seed), mode="twin", hardening=HARD,
                                     hard_rng=np.random.default_rng(seed + 100))
        return sorted(population.hii_regions["name"])

    # The strip's 53 catalogued regions less those that are its DR2 bubbles, whatever the catalogue's scatter.
    kept = names(0)
    assert names(1) == kept and 20 < len(kept) < 53 and COMPLEX in kept


def test_a_region_is_clipped_at_the_image_edge_with_the_flux_of_the_part_inside():
    from bubblenet.synth.survey import _hii_region_patches

    # A region of radius 25 is drawn over REACH R + 2 = 77 pixels each way of its centre.
    (y1, y2, x1, x2), whole8, whole24 = _hii_region_patches(80.0, 80.0, 25.0, 7, (161, 161))
    assert (y1, y2, x1, x2) == (3, 158, 3, 158)
    # Its edges are dark: the wings are tapered to zero before the patch ends.
    assert whole8[0].max() == whole8[:, 0].max() == 0 and whole8.max() > 0
    # The same region with its centre 10 pixels inside the left edge of a narrower image.
    (cy1, cy2, cx1, cx2), cut8, cut24 = _hii_region_patches(10.0, 80.0, 25.0, 7, (161, 40))
    assert (cy1, cy2, cx1, cx2) == (3, 158, 0, 40)
    assert np.array_equal(cut8, whole8[:, 67:107]) and np.array_equal(cut24, whole24[:, 67:107])
    assert _hii_region_patches(-100.0, 60.0, 25.0, 7, (121, 40)) is None


def test_a_region_wider_than_the_patch_limit_is_drawn_on_a_coarser_grid(monkeypatch):
    from bubblenet.synth import survey

    def drawn(seed):
        return survey._hii_region_patches(130.0, 130.0, 40.0, seed, (261, 261))

    fine = [drawn(seed) for seed in range(6)]
    monkeypatch.setattr(survey, "HII_PATCH_MAX", 80)  # a 245-pixel patch: four pixels per sample
    coarse = [drawn(seed) for seed in range(6)]
    y1, y2, x1, x2 = fine[0][0]
    yy, xx = np.mgrid[y1:y2, x1:x2]
    inside = np.hypot(xx - 130, yy - 130) <= 40
    for f, c in zip(fine, coarse):
        assert c[0] == f[0] and c[1].shape == f[1].shape
        for shape in c[1:]:
            assert shape[inside].sum() == pytest.approx(1.0, rel=0.05)  # the flux within R, as on the fine grid
    # The wings beyond R vary with the clumps; on average they carry as much on either grid.
    for band in (1, 2):
        assert np.mean([c[band].sum() for c in coarse]) == pytest.approx(np.mean([f[band].sum() for f in fine]),
                                                                          rel=0.15)
    # Without clumps the 24 µm shape is round: centred where the region is, on the coarse grid too (its
    # samples sit at the centres of their pixel blocks).
    monkeypatch.setitem(HII_REGION_LOOK, "clumps", (0.0, 0.0))
    for shape in (drawn(0)[2], drawn(1)[2]):
        assert (shape * xx).sum() / shape.sum() == pytest.approx(130.0, abs=0.05)
        assert (shape * yy).sum() / shape.sum() == pytest.approx(130.0, abs=0.05)


def test_a_hardened_twin_holds_the_real_fields_hii_complex(tmp_path):
    hardening = Hardening(hii_regions=1.0)
    assert HARD.hii_regions == 1.0
    with pytest.raises(ValueError, match="hii_regions is a share"):
        Hardening(hii_regions=2.0)
    region = Region(40.85, 41.3, -0.4, 0.1)
    plain = make_survey(tmp_path / "plain", SynthConfig(region, pixscale=9.0, seed=1))
    hard = make_survey(tmp_path / "hard", SynthConfig(region, pixscale=9.0, seed=1, hardening=hardening))
    written = Table.read(tmp_path / "hard" / HII_REGIONS_NAME)
    assert COMPLEX in list(written["name"])
    assert not (tmp_path / "plain" / HII_REGIONS_NAME).exists()
    # The standard sky underneath is the same; the difference is the regions' emission, most of it the complex's.
    from astropy.coordinates import SkyCoord
    from astropy.wcs import WCS
    from astropy.wcs.utils import proj_plane_pixel_scales

    centre = SkyCoord(l=41.075, b=-0.161, unit="deg", frame="galactic")
    for band, (a, b) in (("8um", (plain.tiles8, hard.tiles8)), ("24um", (plain.tiles24, hard.tiles24))):
        path = next(p for p in b if WCS(fits.getheader(p)).footprint_contains(centre))
        before = fits.getdata(a[b.index(path)]).astype(float)
        after = fits.getdata(path).astype(float)
        wcs = WCS(fits.getheader(path))
        x, y = (float(v) for v in wcs.world_to_pixel(centre))
        yy, xx = np.mgrid[:after.shape[0], :after.shape[1]]
        pixscale = float(proj_plane_pixel_scales(wcs)[1]) * 3600  # arcsec
        inside = (np.hypot(xx - x, yy - y) * pixscale <= 440) & np.isfinite(before) & np.isfinite(after)
        excess = (after - before)[inside].sum() * 1e6 * (pixscale / 206264.806) ** 2  # Jy
        drawn = {"8um": 222.83, "24um": 618.88}[band] * HII_REGION_LOOK["flux_scale"][band]
        # The complex's own flux (no other region lies inside its radius here; the beam moves a little across it).
        assert excess == pytest.approx(drawn, rel=0.05)
    # The same folder drawn again without the regions keeps no stale regions file.
    make_survey(tmp_path / "hard", SynthConfig(region, pixscale=9.0, seed=1))
    assert not (tmp_path / "hard" / HII_REGIONS_NAME).exists()
