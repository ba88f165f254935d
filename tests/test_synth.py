"""The synthetic survey: archive-like tiles, determinism, catalogue, and the physics of what it draws."""

from __future__ import annotations

import math

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.table import Table
from scipy import ndimage

from bubblenet.catalogues.tables import packaged_catalogue, read_catalogue, read_selection
from bubblenet.sky.mosaics import Window, open_image
from bubblenet.synth import Region, SynthConfig, make_survey, survey_layout
from bubblenet.synth.population import DR2_COLUMNS, mwp_name


def test_layout_is_glimpse_and_mipsgal_like():
    master, tiles8, tiles24 = survey_layout(Region(10, 16, -1, 1), 1.2)
    assert [t.filename for t in tiles8] == ["GLM_01500+0000_mosaic_I4.fits", "GLM_01200+0000_mosaic_I4.fits",
                                            "GLM_00900+0000_mosaic_I4.fits"]
    assert tiles8[1].shape[1] == pytest.approx(3.1 * 3000, abs=1)  # 3.1° wide at 1.2″/px
    assert len(tiles24) == 14 and tiles24[0].filename == "MG0160n005_024.fits"
    assert tiles24[0].pixscale == pytest.approx(1.25)
    h8, h24 = tiles8[1].header(), tiles24[5].header()
    assert "CD1_1" in h8 and "CDELT1" not in h8 and "CDELT1" in h24 and "CD1_1" not in h24
    for h in (h8, h24):
        assert h["BUNIT"] == "MJy/sr" and h["CTYPE1"] == "GLON-CAR" and h["CTYPE2"] == "GLAT-CAR"
    assert h8["PIXSCAL1"] == 1.2 and h24["PIXSCAL1"] == 1.25
    # 8 µm tiles are exact sub-grids of the master grid.
    w = tiles8[1].wcs()
    x0 = tiles8[1].master_offset[0]
    lon = w.pixel_to_world(100, 200).l.deg
    assert master.x_of(lon) - x0 == pytest.approx(100, abs=1e-6)


def test_region_crossing_longitude_zero():
    _, tiles8, tiles24 = survey_layout(Region(-1.0, 1.0, -0.5, 0.5), 2.4)
    assert [t.filename for t in tiles8] == ["GLM_00000+0000_mosaic_I4.fits"]
    assert {t.filename[:6] for t in tiles24} == {"MG0010", "MG0000", "MG3590"}
    assert all(0 <= t.crval1 < 360 for t in tiles8 + tiles24)


def test_bad_config_values():
    with pytest.raises(ValueError, match="l_max > l_min"):
        Region(16, 10, -1, 1)
    with pytest.raises(ValueError, match="pixscale"):
        SynthConfig(Region(10, 11, -1, 1), pixscale=0.01)


def _data(path):
    return fits.getdata(path)


def test_same_seed_same_survey_other_seed_other_survey(tmp_path):
    region = Region(30.0, 30.3, -0.3, 0.3)
    a = make_survey(tmp_path / "a", SynthConfig(region, 2.4, seed=5))
    b = make_survey(tmp_path / "b", SynthConfig(region, 2.4, seed=5))
    c = make_survey(tmp_path / "c", SynthConfig(region, 2.4, seed=6))
    for pa, pb in zip(a.tiles8 + a.tiles24, b.tiles8 + b.tiles24):
        np.testing.assert_array_equal(_data(pa), _data(pb))
    assert a.catalogue.read_text() == b.catalogue.read_text()
    assert not np.array_equal(_data(a.tiles8[0]), _data(c.tiles8[0]), equal_nan=True)
    assert (tmp_path / "a" / "synth_run.json").exists()
    assert not list((tmp_path / "a").glob(".*.part*")), "no temporary files left behind"


def test_catalogue_is_mwp_dr2_shaped_twin(twin_survey):
    raw = Table.read(twin_survey.catalogue, format="ascii.csv")
    assert tuple(raw.colnames) == DR2_COLUMNS + ("clear",)
    table = read_catalogue(twin_survey.catalogue)
    assert table.meta["kind"] == "mwp_dr2"
    dr2 = packaged_catalogue("mwp_dr2")
    expected = dr2[(np.asarray(dr2["glon"]) >= 30) & (np.asarray(dr2["glon"]) <= 31)
                   & (np.abs(np.asarray(dr2["glat"])) <= 1)]
    assert sorted(table["name"]) == sorted(expected["name"])
    clear = read_selection("clear")
    assert [str(n) in clear for n in table["name"]] == [str(c) == "True" for c in raw["clear"]]
    assert table["clear"].dtype == bool and table["clear"].sum() == 12
    assert read_selection(twin_survey.selection) == {str(n) for n in table["name"] if str(n) in clear}
    assert twin_survey.n_clear == 12


def test_random_mode_draws_dr2_like_bubbles(tmp_path):
    files = make_survey(tmp_path, SynthConfig(Region(200.0, 202.0, -1.0, 1.0), 4.8, seed=3, mode="random"))
    table = read_catalogue(files.catalogue)
    assert 15 <= len(table) <= 70  # ~10 per deg² over 4 deg², less at |b| near 1
    assert Region(200, 202, -1, 1).contains(table["glon"], table["glat"]).all()
    assert 0.3 < np.median(table["maj_axis"]) < 1.6  # DR2 median 0.77′
    assert (table["min_axis"] <= table["maj_axis"]).all()
    # Names encode positions the way MWP DR2 names do.
    assert list(table["name"]) == mwp_name(np.asarray(table["GLON"]), np.asarray(table["GLAT"]))
    assert 0 < table["clear"].sum() < len(table)


def test_mwp_name_matches_real_names():
    dr2 = packaged_catalogue("mwp_dr2")[:50]
    # DR2 names carry more digits than the rounded GLON/GLAT columns: compare positions from names.
    names = mwp_name(np.asarray(dr2["GLON"]), np.asarray(dr2["GLAT"]))
    for ours, real in zip(names, dr2["name"]):
        assert ours[:5] == real[:5] and ours[12] == real[12]
        assert abs(int(ours[5:12]) - int(real[5:12])) <= 10 and abs(int(ours[13:]) - int(real[13:])) <= 100


def _bubble_profiles(tile, table, names, *, min_pixels=8):
    """Background-subtracted mean brightness of each band in rings of elliptical radius ρ."""
    edges = np.linspace(0, 2.0, 21)
    stacks = []
    scale = tile.pixel_scale.to_value(u.arcmin)
    x, y = tile.world_to_pixel(SkyCoord(l=table["glon"], b=table["glat"], frame="galactic"))
    for i, row in enumerate(table):
        a, b = row["maj_axis"] / scale, row["min_axis"] / scale
        if str(row["name"]) not in names or a < min_pixels:
            continue
        h = int(math.ceil(2.6 * a))
        window = Window(int(round(x[i])) - h, int(round(y[i])) - h, 2 * h + 1, 2 * h + 1)
        data = tile.read(window)
        if not np.isfinite(data).all():
            continue
        dy, dx = np.mgrid[:2 * h + 1, :2 * h + 1].astype(float)
        dx += window.x0 - x[i]
        dy += window.y0 - y[i]
        angle = math.pi - math.radians(row["theta"])  # theta from +l towards +b; +x is -l
        u_ = (dx * math.cos(angle) + dy * math.sin(angle)) / a
        v_ = (-dx * math.sin(angle) + dy * math.cos(angle)) / b
        rho = np.hypot(u_, v_)
        idx = np.digitize(rho, edges) - 1
        prof = np.zeros((2, len(edges) - 1))
        for c in range(2):
            band = ndimage.median_filter(data[..., c], 3)  # quench stars
            ring = band[(rho > 1.8) & (rho < 2.4)]
            band = band - np.median(ring)
            prof[c] = [band[idx == k].mean() / max(np.std(ring), 1e-6) for k in range(len(edges) - 1)]
        stacks.append(prof)
    return (edges[:-1] + edges[1:]) / 2, np.array(stacks)


def test_clear_bubbles_have_8um_rims_at_the_catalogue_radius_around_24um(twin_survey, twin_tiles):
    (tile,) = twin_tiles
    table = read_catalogue(twin_survey.catalogue)
    centres, stacks = _bubble_profiles(tile, table, read_selection(twin_survey.selection))
    assert len(stacks) >= 6
    mean = stacks.mean(axis=0)
    rim = centres[np.argmax(mean[1])]
    assert 0.9 <= rim <= 1.3, f"8 µm ring peaks at ρ = {rim}"
    assert mean[1, np.argmax(mean[1])] > 2 * mean[1, 0], "limb brighter than the centre at 8 µm"
    # 24 µm: brightest inside, falling outwards.
    assert np.argmax(mean[0]) <= 3
    assert mean[0, 0] > mean[0, 10] > mean[0, 16]
    # Bubble by bubble, too: most individual clear bubbles show both features.
    per_bubble_rim = centres[np.argmax(stacks[:, 1], axis=1)]
    assert np.mean((per_bubble_rim > 0.8) & (per_bubble_rim < 1.4)) >= 0.7
    assert np.mean(stacks[:, 0, :5].mean(axis=1) > stacks[:, 0, 12:16].mean(axis=1)) >= 0.8


def test_shell_only_bubbles_lack_24um(twin_survey, twin_tiles):
    (tile,) = twin_tiles
    table = read_catalogue(twin_survey.catalogue)
    shell8 = read_selection("8um") - read_selection("clear")
    _, clear = _bubble_profiles(tile, table, read_selection("clear"), min_pixels=5)
    _, only8 = _bubble_profiles(tile, table, shell8, min_pixels=5)
    assert len(only8) >= 1
    assert only8[:, 0, :5].mean() < 0.5 * clear[:, 0, :5].mean()


def test_bubbles_sit_where_the_wcs_says(twin_survey, twin_tiles):
    """The 24 µm light of each clear bubble is centred on its catalogue position."""
    (tile,) = twin_tiles
    table = read_catalogue(twin_survey.catalogue)
    table = table[np.asarray(table["clear"], bool)]
    x, y = tile.world_to_pixel(SkyCoord(l=table["glon"], b=table["glat"], frame="galactic"))
    scale = tile.pixel_scale.to_value(u.arcmin)
    offsets = []
    for i, row in enumerate(table):
        a = row["maj_axis"] / scale
        if a < 6:
            continue
        h = int(math.ceil(0.7 * a))
        window = Window(int(round(x[i])) - h, int(round(y[i])) - h, 2 * h + 1, 2 * h + 1)
        band = tile.read(window)[..., 0]
        if not np.isfinite(band).all():
            continue  # at the survey's edge
        band = ndimage.median_filter(band, 5)
        excess = np.clip(band - np.percentile(band, 20), 0, None)
        gy, gx = np.mgrid[:2 * h + 1, :2 * h + 1]
        cx = (excess * gx).sum() / excess.sum() + window.x0
        cy = (excess * gy).sum() / excess.sum() + window.y0
        offsets.append(math.hypot(cx - x[i], cy - y[i]) / a)
    assert len(offsets) >= 6
    assert np.median(offsets) < 0.1 and max(offsets) < 0.3, offsets


def test_stars_many_at_8um_fewer_at_24um_and_saturated_cores(twin_survey):
    def peaks(path, size):
        data = open_image(path).read(Window(0, 0, 600, 600) if "GLM" in path.name else Window(200, 200, 580, 580))
        data = np.nan_to_num(data, nan=np.nanmedian(data))
        hp = data - ndimage.median_filter(data, size)
        noise = 1.4826 * np.median(np.abs(hp))
        return int(((hp == ndimage.maximum_filter(hp, 5)) & (hp > 8 * noise)).sum())

    n8 = peaks(twin_survey.tiles8[0], 7)
    n24 = peaks(twin_survey.tiles24[0], 9)
    assert n8 > 3 * n24 > 0, (n8, n24)
    # MIPSGAL-style masked saturated sources: small NaN holes inside the 24 µm coverage.
    holes = 0
    for path in twin_survey.tiles24:
        data = fits.getdata(path)
        inside = data[300:-300, 100:-100]
        holes += int(np.isnan(inside).sum())
    assert holes > 0
