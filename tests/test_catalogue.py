"""Catalogues: shipped tables and selections, every supported layout and format, label boxes."""

from __future__ import annotations

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.table import Table
from astropy.wcs import WCS

from bubblenet.catalogue import (
    BOX_SCALE,
    CATALOGUES,
    in_image,
    label_boxes,
    packaged_catalogue,
    read_catalogue,
    read_selection,
    select,
)
from bubblenet.errors import CatalogueError
from conftest import car_header, tan_header


@pytest.mark.parametrize("name, rows", [("mwp_dr2", 2600), ("mwp_dr1", 3744), ("churchwell_dr2", 479),
                                        ("wise_hii", 8412)])
def test_shipped_catalogues(name, rows):
    table = packaged_catalogue(name)
    assert len(table) == rows
    assert table.meta["kind"] == CATALOGUES[name][1]
    for column in ("name", "glon", "glat", "ra", "dec", "maj_axis", "min_axis", "reff", "theta"):
        assert column in table.colnames
        if column != "name":
            assert np.isfinite(np.asarray(table[column], float)).all()
    assert (table["maj_axis"] >= table["min_axis"] - 1e-9 * u.arcmin).all()
    assert table["maj_axis"].unit == u.arcmin


@pytest.mark.parametrize("name, count", [("clear", 634), ("rank3", 634), ("rank2or3", 1586), ("8um", 616),
                                         ("churchwell_rank3", 260)])
def test_shipped_selections(name, count):
    assert len(read_selection(name)) == count


def test_every_clear_name_is_in_dr2():
    dr2 = packaged_catalogue("mwp_dr2")
    assert select(dr2, read_selection("clear")).sum() == 634
    assert select(dr2, read_selection("8um")).sum() == 616
    # Churchwell names match DR2's IDCW column whatever their spacing ("CN 28" vs "CN28").
    n = select(dr2, read_selection("churchwell_rank3")).sum()
    assert 200 < n <= 260


def test_dr2_values_and_units():
    dr2 = packaged_catalogue("mwp_dr2")
    row = dr2[dr2["name"] == "MWP2G0000794-0020817"][0]
    assert row["glon"] == pytest.approx(0.0794) and row["glat"] == pytest.approx(-0.2082)
    assert row["maj_axis"] == pytest.approx(0.58) and row["theta"] == pytest.approx(161)
    # ICRS columns computed from Galactic agree with the table's own RA/Dec.
    assert row["ra"] == pytest.approx(row["RA_icrs"], abs=2e-4)
    assert row["dec"] == pytest.approx(row["DE_icrs"], abs=2e-4)


def test_dr1_axes_converted_from_degrees():
    dr1 = packaged_catalogue("mwp_dr1")
    first = dr1[0]
    assert first["maj_axis"] == pytest.approx(first["semi_major_deg"] * 60)
    assert first["min_axis"] == pytest.approx(first["semi_minor_deg"] * 60)
    assert first["reff"] == pytest.approx(first["reff_arcmin"])


def test_wise_radius_in_arcsec():
    wise = packaged_catalogue("wise_hii")
    assert wise[0]["reff"] == pytest.approx(wise[0]["Radius"] / 60)


def test_generic_galactic_csv(tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text("l,b,radius\n30.1,-0.2,1.5\n359.9,0.1,0.3\n")
    table = read_catalogue(path)
    assert table.meta["kind"] == "generic"
    assert list(table["name"]) == ["bubble_1", "bubble_2"]
    np.testing.assert_allclose(table["maj_axis"], [1.5, 0.3])
    assert table["glon"][1] == pytest.approx(359.9)


def test_generic_equatorial_catalogue_gets_galactic_columns(tmp_path):
    path = tmp_path / "ngc628.ecsv"
    Table({"name": ["a", "b"], "RA": [24.174, 24.18], "Dec": [15.783, 15.79], "radius_arcsec": [6.0, 12.0]}).write(path)
    table = read_catalogue(path)
    expect = SkyCoord(ra=[24.174, 24.18] * u.deg, dec=[15.783, 15.79] * u.deg).galactic
    np.testing.assert_allclose(table["glon"], expect.l.deg, atol=1e-9)
    np.testing.assert_allclose(table["glat"], expect.b.deg, atol=1e-9)
    np.testing.assert_allclose(table["reff"], [0.1, 0.2])


def test_vizier_tsv_with_units_and_dashes(tmp_path):
    path = tmp_path / "dr2.tsv"
    path.write_text(
        "#\n# VizieR Astronomical Server\n#Table J/MNRAS/488/1141/table3\n"
        "MWP\tGLON\tGLAT\tMajAxis\tMinAxis\tReff\ttheta\n"
        "\tdeg\tdeg\tarcmin\tarcmin\tarcmin\tdeg\n"
        "--------------------\t-------\t-------\t----\t----\t----\t---\n"
        "MWP2G0000794-0020817\t0.0794\t-0.2082\t0.58\t0.49\t0.53\t161\n"
        "MWP2G0001255+0003035\t0.1255\t0.0303\t5.05\t4.26\t4.67\t87\n")
    table = read_catalogue(path)
    assert table.meta["kind"] == "mwp_dr2"
    assert len(table) == 2 and table["maj_axis"][1] == pytest.approx(5.05)


@pytest.mark.parametrize("suffix, fmt", [(".fits", "fits"), (".xml", "votable")])
def test_fits_and_votable(tmp_path, suffix, fmt):
    dr2 = packaged_catalogue("mwp_dr2")[:5]
    path = tmp_path / f"dr2{suffix}"
    Table(dr2[["MWP", "GLON", "GLAT", "MajAxis", "MinAxis", "theta"]]).write(path, format=fmt)
    table = read_catalogue(path)
    assert table.meta["kind"] == "mwp_dr2"
    np.testing.assert_allclose(table["maj_axis"], dr2["maj_axis"])


def test_missing_column_error_names_file_and_column(tmp_path):
    path = tmp_path / "broken.csv"
    path.write_text("MWP,GLON,GLAT,MajAxis\nX,1,2,3\n")
    with pytest.raises(CatalogueError) as err:
        read_catalogue(path)
    message = str(err.value)
    assert "broken.csv" in message and "MinAxis" in message and "found MWP, GLON, GLAT, MajAxis" in message
    generic = tmp_path / "nolat.csv"
    generic.write_text("l,size\n1,2\n")
    with pytest.raises(CatalogueError, match="nolat.csv.*l and b.*radius"):
        read_catalogue(generic)


def test_non_numeric_value_names_column_and_row(tmp_path):
    path = tmp_path / "text.csv"
    path.write_text("l,b,radius\n10,0.1,1\n11,abc,2\n")
    with pytest.raises(CatalogueError, match=r"text.csv: column 'b' has a non-numeric value 'abc' in row 2"):
        read_catalogue(path)


def test_unreadable_and_missing_files(tmp_path):
    with pytest.raises(CatalogueError, match="no such catalogue file"):
        read_catalogue(tmp_path / "nope.csv")
    junk = tmp_path / "junk.fits"
    junk.write_bytes(b"\x00\x01 not fits")
    with pytest.raises(CatalogueError, match="junk.fits: cannot read"):
        read_catalogue(junk)
    with pytest.raises(CatalogueError, match="not a shipped selection"):
        read_selection("no-such-list")


def test_selection_file_with_comments(tmp_path):
    path = tmp_path / "names.txt"
    path.write_text("# my picks\nCN 28\n\nN49  # famous\n")
    assert read_selection(path) == {"CN 28", "N49"}


def test_label_boxes_galactic_car():
    wcs = WCS(car_header((1000, 1000), lon=30.0, lat=0.0, scale_arcsec=1.2))
    table = packaged_catalogue("mwp_dr2")
    table = table[np.abs(np.asarray(table["glon"]) - 30.0) < 0.15]
    table = table[np.abs(np.asarray(table["glat"])) < 0.15]
    assert len(table) > 0
    boxes = label_boxes(table, wcs)
    x, y = wcs.world_to_pixel(SkyCoord(l=table["glon"], b=table["glat"], frame="galactic"))
    np.testing.assert_allclose((boxes[:, 0] + boxes[:, 2]) / 2, x, atol=1e-9)
    np.testing.assert_allclose((boxes[:, 1] + boxes[:, 3]) / 2, y, atol=1e-9)
    half = BOX_SCALE * np.asarray(table["maj_axis"]) * 60 / 1.2
    np.testing.assert_allclose((boxes[:, 2] - boxes[:, 0]) / 2, half, atol=1e-6)
    reff_boxes = label_boxes(table, wcs, size="reff", k=1.0)
    np.testing.assert_allclose((reff_boxes[:, 2] - reff_boxes[:, 0]) / 2, np.asarray(table["reff"]) * 50, atol=1e-6)
    assert in_image(table, wcs, (1000, 1000)).all()


def test_label_boxes_equatorial_tan(tmp_path):
    wcs = WCS(tan_header((400, 400), ra=24.174, dec=15.783, scale_arcsec=1.5, rotation_deg=30))
    path = tmp_path / "ngc628.csv"
    Table({"ra": [24.174, 24.18], "dec": [15.783, 15.78], "radius": [0.5, 0.25]}).write(path)
    table = read_catalogue(path)
    boxes = label_boxes(table, wcs)
    x, y = wcs.world_to_pixel(SkyCoord(ra=[24.174, 24.18] * u.deg, dec=[15.783, 15.78] * u.deg))
    np.testing.assert_allclose((boxes[:, 0] + boxes[:, 2]) / 2, x, atol=1e-6)
    np.testing.assert_allclose((boxes[:, 2] - boxes[:, 0]) / 2, BOX_SCALE * np.array([0.5, 0.25]) * 40, atol=1e-6)
    assert label_boxes(table[:0], wcs).shape == (0, 4)
