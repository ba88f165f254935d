"""Catalogues: shipped tables and selections, every supported layout and format, label boxes."""

from __future__ import annotations

import gzip
import warnings

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.table import Table
from astropy.wcs import WCS
from conftest import tan_header

from bubblenet.catalogues.tables import (
    BOX_SCALE,
    CATALOGUES,
    SELECTIONS,
    STANDARD_COLUMNS,
    in_image,
    label_boxes,
    packaged_catalogue,
    packaged_path,
    read_catalogue,
    read_selection,
    select,
    sky_coords,
)
from bubblenet.errors import CatalogueError, InputError

DR2_REQUIRED = ["MWP", "GLON", "GLAT", "MajAxis", "MinAxis", "Reff", "theta"]


@pytest.fixture(scope="module")
def dr2():
    return packaged_catalogue("mwp_dr2")


def galactic_car(shape, *, lon, lat, arcsec):
    """A Galactic CAR WCS like a GLIMPSE mosaic's: longitude increases to the left (CDELT1 < 0)."""
    ny, nx = shape
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["GLON-CAR", "GLAT-CAR"]
    wcs.wcs.crval = [lon, 0.0]
    step = arcsec / 3600
    wcs.wcs.cdelt = [-step, step]
    wcs.wcs.crpix = [(nx + 1) / 2, (ny + 1) / 2 - lat / step]
    return wcs


def equatorial_tan(shape, *, ra, dec, arcsec, rotation_deg):
    return WCS(tan_header(shape, ra=ra, dec=dec, scale_arcsec=arcsec, rotation_deg=rotation_deg))


# --- shipped data -----------------------------------------------------------------


@pytest.mark.parametrize("name, rows", [("mwp_dr2", 2600), ("mwp_dr1", 3744), ("churchwell_dr2", 479),
                                        ("wise_hii", 8412)])
def test_shipped_catalogues(name, rows):
    table = packaged_catalogue(name)
    assert len(table) == rows
    assert table.meta["kind"] == CATALOGUES[name][1]
    assert table.meta["citation"] == CATALOGUES[name][2]
    assert table.meta["source"] == str(packaged_path(CATALOGUES[name][0]))
    assert table.meta["frame"] == "galactic"
    for column, unit in STANDARD_COLUMNS.items():
        assert table[column].unit == unit
        if unit is not None:
            assert np.isfinite(np.asarray(table[column], float)).all()
    assert (table["maj_axis"] >= table["min_axis"]).all()
    assert (np.asarray(table["glon"]) >= 0).all() and (np.asarray(table["glon"]) < 360).all()
    assert len(set(table["name"])) == rows or name == "churchwell_dr2"  # two DR2 rows both carry "CN54 CN55"


def test_citation_file_lists_every_shipped_file():
    text = packaged_path("CITATION.md").read_text()
    files = [entry[0] for entry in CATALOGUES.values()] + list(SELECTIONS.values())
    assert all(f"`{name}`" in text for name in files)
    assert "GLIMPSE" in text and "MIPSGAL" in text and "PASJ 77, 403" in text


@pytest.mark.parametrize("name, count", [("clear", 634), ("rank3", 634), ("rank2or3", 1586), ("8um", 616),
                                         ("churchwell_rank3", 260)])
def test_shipped_selections(name, count):
    assert len(read_selection(name)) == count


@pytest.mark.parametrize("name", ["clear", "rank2or3", "8um"])
def test_every_selected_name_is_in_dr2(dr2, name):
    names = read_selection(name)
    assert select(dr2, names).sum() == len(names)


def test_churchwell_names_match_dr2_idcw(dr2):
    wanted = read_selection("churchwell_rank3")  # spelt "CN 28"; DR2 writes "CN28"
    rows = select(dr2, wanted)
    assert rows.sum() == 263  # 255 of the 260 names; some names sit on two rows, some rows hold two names
    found = {t for ids in dr2["IDCW"][rows] for t in str(ids).split()}
    assert len({n.replace(" ", "") for n in wanted} & found) == 255
    # A DR2 entry may carry several Churchwell names: any of them selects it.
    both = select(dr2, ["CN 102"])
    assert list(dr2["IDCW"][both]) == ["CN103 CN102"]
    churchwell = packaged_catalogue("churchwell_dr2")
    assert select(churchwell, wanted).sum() == 263


def test_select_ignores_white_space_and_case(dr2):
    assert select(dr2, ["mwp2g0000794-0020817", " MWP2G0001255+0003035 "]).sum() == 2
    assert select(dr2, []).sum() == 0
    assert select(dr2[:0], ["CN 2"]).shape == (0,)


def test_dr2_values_and_units(dr2):
    row = dr2[dr2["name"] == "MWP2G0000794-0020817"][0]
    assert row["glon"] == pytest.approx(0.0794) and row["glat"] == pytest.approx(-0.2082)
    assert row["maj_axis"] == pytest.approx(0.58) and row["min_axis"] == pytest.approx(0.49)
    assert row["reff"] == pytest.approx(0.53) and row["theta"] == pytest.approx(161)
    # ICRS columns computed from Galactic agree with the table's own RA/Dec (given to 1e-5 deg, GLON to 1e-4).
    assert row["ra"] == pytest.approx(row["RA_icrs"], abs=2e-4)
    assert row["dec"] == pytest.approx(row["DE_icrs"], abs=2e-4)
    assert "clear" not in dr2.colnames and "theta_orig" not in dr2.colnames


def test_dr1_axes_converted_from_degrees():
    dr1 = packaged_catalogue("mwp_dr1")
    row = dr1[dr1["name"] == "MWP1G312975-04354"][0]
    assert row["semi_major_deg"] == pytest.approx(0.0291579)
    assert row["maj_axis"] == pytest.approx(0.0291579 * 60, rel=1e-12)
    assert row["min_axis"] == pytest.approx(0.0285536 * 60, rel=1e-12)
    assert row["reff"] == pytest.approx(3.027921)
    assert row["theta"] == pytest.approx(23.964)


def test_wise_radius_in_arcsec():
    wise = packaged_catalogue("wise_hii")
    assert wise[0]["name"] == "G000.003+00.127"
    assert wise[0]["Radius"] == 206 and wise[0]["reff"] == pytest.approx(206 / 60)
    assert (wise["maj_axis"] == wise["reff"]).all() and (wise["theta"] == 0).all()


def test_reading_does_not_touch_the_shipped_file(dr2):
    assert "MajAxis" in dr2.colnames and "maj_axis" not in Table.read(packaged_path(CATALOGUES["mwp_dr2"][0])).colnames


# --- layouts and formats -------------------------------------------------------------


def test_generic_galactic_csv(tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text("l,b,radius\n30.1,-0.2,1.5\n359.9,0.1,0.3\n")
    table = read_catalogue(path)
    assert table.meta["kind"] == "generic" and table.meta["frame"] == "galactic"
    assert list(table["name"]) == ["bubble_1", "bubble_2"]
    np.testing.assert_allclose(table["maj_axis"], [1.5, 0.3])
    np.testing.assert_allclose(table["glon"], [30.1, 359.9])
    expect = SkyCoord(l=[30.1, 359.9] * u.deg, b=[-0.2, 0.1] * u.deg, frame="galactic").icrs
    np.testing.assert_allclose(table["ra"], expect.ra.deg, atol=1e-9)
    np.testing.assert_allclose(table["dec"], expect.dec.deg, atol=1e-9)


def test_generic_equatorial_catalogue_gets_galactic_columns(tmp_path):
    path = tmp_path / "ngc628.ecsv"
    Table({"name": ["a", "b"], "RA": [24.174, 24.18], "Dec": [15.783, 15.79], "radius_arcsec": [6.0, 12.0]}).write(path)
    table = read_catalogue(path)
    assert table.meta["frame"] == "icrs"
    expect = SkyCoord(ra=[24.174, 24.18] * u.deg, dec=[15.783, 15.79] * u.deg).galactic
    np.testing.assert_allclose(table["glon"], expect.l.deg, atol=1e-9)
    np.testing.assert_allclose(table["glat"], expect.b.deg, atol=1e-9)
    np.testing.assert_allclose(table["reff"], [0.1, 0.2])
    assert "RA" in table.colnames and "RA_orig" not in table.colnames


def test_a_column_unit_of_its_own_is_honoured(tmp_path):
    path = tmp_path / "units.ecsv"
    Table({"glon": [10.0] * u.deg, "glat": [0.1] * u.deg, "radius": [30.0] * u.arcsec}).write(path)
    assert read_catalogue(path)["reff"][0] == pytest.approx(0.5)
    Table({"glon": [10.0] * u.deg, "glat": [0.1] * u.deg, "radius": [3.0] * u.pix}).write(path, overwrite=True)
    with pytest.raises(CatalogueError, match="column 'radius' is in pix"):
        read_catalogue(path)


def test_vizier_tsv_with_units_and_dashes(tmp_path):
    path = tmp_path / "dr2.tsv"
    path.write_text(
        "#\n# VizieR Astronomical Server\n#Table J/MNRAS/488/1141/table3\n"
        "MWP\tGLON\tGLAT\tMajAxis\tMinAxis\tReff\ttheta\tIDCW\n"
        "\tdeg\tdeg\tarcmin\tarcmin\tarcmin\tdeg\t\n"
        "--------------------\t-------\t-------\t----\t----\t----\t---\t----\n"
        "MWP2G0000794-0020817\t 0.0794\t-0.2082\t0.58\t0.49\t0.53\t161\tCN2 \n"
        "MWP2G0001255+0003035\t 0.1255\t 0.0303\t5.05\t4.26\t4.67\t 87\t    \n")
    table = read_catalogue(path)
    assert table.meta["kind"] == "mwp_dr2"
    assert len(table) == 2 and table["maj_axis"][1] == pytest.approx(5.05)
    assert table["glon"][0] == pytest.approx(0.0794) and table["theta"][1] == pytest.approx(87)
    assert select(table, ["CN 2"]).tolist() == [True, False]


def test_gzipped_csv(tmp_path):
    path = tmp_path / "mine.csv.gz"
    with gzip.open(path, "wt") as handle:
        handle.write("glon,glat,r\n30.1,-0.2,1.5\n")
    assert read_catalogue(path)["reff"][0] == pytest.approx(1.5)


@pytest.mark.parametrize("suffix, fmt", [(".fits", "fits"), (".xml", "votable"), (".vot", "votable")])
def test_fits_and_votable(tmp_path, dr2, suffix, fmt):
    subset = dr2[:5]
    path = tmp_path / f"dr2{suffix}"
    Table(subset[DR2_REQUIRED]).write(path, format=fmt)
    table = read_catalogue(path)
    assert table.meta["kind"] == "mwp_dr2"
    assert list(table["name"]) == list(subset["name"])
    for column in ("glon", "glat", "maj_axis", "reff", "theta"):
        np.testing.assert_allclose(table[column], subset[column])


def test_standardised_table_reads_back_as_itself(tmp_path, dr2):
    path = tmp_path / "again.ecsv"
    dr2[:20].write(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no column differs, so none is renamed
        table = read_catalogue(path)
    assert table.colnames == dr2.colnames
    assert list(table["name"]) == list(dr2["name"][:20])
    for column in list(STANDARD_COLUMNS)[1:]:
        np.testing.assert_allclose(table[column], dr2[column][:20], atol=1e-9)
        assert table[column].unit == STANDARD_COLUMNS[column]
    generic = read_catalogue(path, kind="generic")  # the standard schema is a generic catalogue too
    np.testing.assert_allclose(generic["maj_axis"], dr2["maj_axis"][:20])
    np.testing.assert_allclose(generic["theta"], dr2["theta"][:20])


def test_a_clashing_column_is_kept_not_overwritten(tmp_path):
    path = tmp_path / "clash.csv"
    path.write_text("l,b,radius,ra\n30.1,-0.2,1.5,7\n")
    with pytest.warns(UserWarning, match="clash.csv: column 'ra' differs.*'ra_orig'"):
        table = read_catalogue(path)
    assert table["ra_orig"][0] == 7
    assert table["ra"][0] == pytest.approx(SkyCoord(l=30.1 * u.deg, b=-0.2 * u.deg, frame="galactic").icrs.ra.deg)


def test_clear_flag_becomes_boolean(tmp_path):
    path = tmp_path / "synth.csv"
    text = ",".join(DR2_REQUIRED) + ",clear\nMWP2Gx,30,0,1,1,1,0,True\nMWP2Gy,30.1,0,1,1,1,0,False\n"
    path.write_text(text)
    assert read_catalogue(path)["clear"].tolist() == [True, False]
    path.write_text(text.replace("True", "1").replace("False", "0"))
    assert read_catalogue(path)["clear"].tolist() == [1, 0]


def test_empty_table_has_the_full_schema(tmp_path):
    path = tmp_path / "none.csv"
    path.write_text(",".join(DR2_REQUIRED) + "\n")
    table = read_catalogue(path)
    assert len(table) == 0 and table.meta["kind"] == "mwp_dr2"
    assert set(STANDARD_COLUMNS) <= set(table.colnames)
    assert label_boxes(table, galactic_car((10, 10), lon=30, lat=0, arcsec=1.2)).shape == (0, 4)
    assert in_image(table, galactic_car((10, 10), lon=30, lat=0, arcsec=1.2), (10, 10)).shape == (0,)
    assert len(sky_coords(table)) == 0


# --- errors -------------------------------------------------------------------------


def test_missing_column_error_names_file_kind_and_column(tmp_path):
    path = tmp_path / "broken.csv"
    path.write_text("MWP,GLON,GLAT,MajAxis\nX,1,2,3\n")
    with pytest.raises(CatalogueError) as err:
        read_catalogue(path)
    assert isinstance(err.value, InputError)
    assert str(err.value) == (f"{path}: a mwp_dr2 catalogue needs column(s) MinAxis, Reff, theta; "
                              "found MWP, GLON, GLAT, MajAxis")
    generic = tmp_path / "nolat.csv"
    generic.write_text("l,size\n1,2\n")
    with pytest.raises(CatalogueError, match="nolat.csv: a generic catalogue needs l and b.* and a radius"):
        read_catalogue(generic)
    with pytest.raises(CatalogueError, match="churchwell catalogue needs column.s. IDCW or name, GLON or glat|"
                                             "churchwell catalogue needs column.s. IDCW or name"):
        read_catalogue(generic, kind="churchwell")


def test_churchwell_layout_accepts_lower_case_columns(tmp_path):
    path = tmp_path / "cw.csv"
    path.write_text("name,glon,glat,Reff\nCN 28,19.6,-0.2,1.2\n")
    table = read_catalogue(path, kind="churchwell")
    assert table["name"][0] == "CN 28" and table["maj_axis"][0] == pytest.approx(1.2)


def test_non_numeric_value_names_column_and_row(tmp_path):
    path = tmp_path / "text.csv"
    path.write_text("l,b,radius\n10,0.1,1\n11,abc,2\n")
    with pytest.raises(CatalogueError, match=r"text.csv: column 'b' has a non-numeric value 'abc' in row 2"):
        read_catalogue(path)


def test_missing_or_bad_size_is_an_error(tmp_path):
    path = tmp_path / "holes.csv"
    path.write_text("l,b,radius\n10,0.1,1\n11,0.2,\n")
    with pytest.raises(CatalogueError, match=r"holes.csv: column 'radius' has a missing .* in row 2"):
        read_catalogue(path)
    path.write_text("l,b,radius\n10,0.1,-1\n")
    with pytest.raises(CatalogueError, match=r"column 'radius' has a size that is not positive in row 1"):
        read_catalogue(path)


def test_unreadable_and_missing_files(tmp_path):
    with pytest.raises(CatalogueError, match="nope.csv: no such catalogue file"):
        read_catalogue(tmp_path / "nope.csv")
    junk = tmp_path / "junk.fits"
    junk.write_bytes(b"\x00\x01 not fits")
    with pytest.raises(CatalogueError, match="junk.fits: cannot read"):
        read_catalogue(junk)
    with pytest.raises(CatalogueError, match="unknown catalogue kind 'dr3'"):
        read_catalogue(packaged_path(CATALOGUES["mwp_dr2"][0]), kind="dr3")
    with pytest.raises(CatalogueError, match="no shipped catalogue 'dr3'; choose from mwp_dr2"):
        packaged_catalogue("dr3")


def test_unknown_selection_lists_the_shipped_ones():
    with pytest.raises(CatalogueError, match="no-such-list: not a shipped selection .clear, rank3, rank2or3, 8um"):
        read_selection("no-such-list")


def test_selection_file_with_comments(tmp_path):
    path = tmp_path / "names.txt"
    path.write_text("# my picks\nCN 28\n\nN49  # famous\n")
    assert read_selection(path) == {"CN 28", "N49"}


# --- label boxes ----------------------------------------------------------------------


def test_label_boxes_galactic_car(dr2):
    wcs = galactic_car((1000, 1000), lon=30.0, lat=0.0, arcsec=1.2)
    near = (np.abs(np.asarray(dr2["glon"]) - 30.0) < 0.15) & (np.abs(np.asarray(dr2["glat"])) < 0.15)
    table = dr2[near]
    assert len(table) == 9
    boxes = label_boxes(table, wcs)
    assert boxes.shape == (9, 4) and boxes.dtype == np.float64
    x, y = wcs.world_to_pixel(SkyCoord(l=table["GLON"] * u.deg, b=table["GLAT"] * u.deg, frame="galactic"))
    np.testing.assert_allclose((boxes[:, 0] + boxes[:, 2]) / 2, x, atol=1e-9)
    np.testing.assert_allclose((boxes[:, 1] + boxes[:, 3]) / 2, y, atol=1e-9)
    half = BOX_SCALE * np.asarray(table["MajAxis"]) * 60 / 1.2  # arcmin -> pixels of 1.2"
    np.testing.assert_allclose((boxes[:, 2] - boxes[:, 0]) / 2, half, atol=1e-6)
    np.testing.assert_allclose((boxes[:, 3] - boxes[:, 1]) / 2, half, atol=1e-6)
    reff_boxes = label_boxes(table, wcs, size="reff", k=1.0)
    np.testing.assert_allclose((reff_boxes[:, 2] - reff_boxes[:, 0]) / 2, np.asarray(table["Reff"]) * 50, atol=1e-6)
    assert in_image(table, wcs, (1000, 1000)).all()
    assert not in_image(dr2[~near][:50], wcs, (1000, 1000)).any()
    # CDELT1 < 0: larger longitude lies to the left.
    order = np.argsort(np.asarray(table["glon"]))
    assert np.all(np.diff(x[order]) < 0)


def test_label_boxes_equatorial_tan(tmp_path):
    wcs = equatorial_tan((400, 400), ra=24.174, dec=15.783, arcsec=1.5, rotation_deg=30)
    path = tmp_path / "ngc628.csv"
    Table({"ra": [24.174, 24.18], "dec": [15.783, 15.78], "radius": [0.5, 0.25]}).write(path)
    table = read_catalogue(path)
    boxes = label_boxes(table, wcs)
    x, y = wcs.world_to_pixel(SkyCoord(ra=[24.174, 24.18] * u.deg, dec=[15.783, 15.78] * u.deg))
    np.testing.assert_allclose((boxes[:, 0] + boxes[:, 2]) / 2, x, atol=1e-9)
    np.testing.assert_allclose((boxes[:, 1] + boxes[:, 3]) / 2, y, atol=1e-9)
    np.testing.assert_allclose((boxes[:, 2] - boxes[:, 0]) / 2, BOX_SCALE * np.array([0.5, 0.25]) * 40, atol=1e-6)
    assert label_boxes(table[:0], wcs).shape == (0, 4)
    assert in_image(table, wcs, (400, 400)).all()


def test_galactic_catalogue_on_an_equatorial_image(dr2):
    centre = dr2[dr2["name"] == "MWP2G0000794-0020817"][0]
    wcs = equatorial_tan((300, 300), ra=centre["RA_icrs"], dec=centre["DE_icrs"], arcsec=2.0, rotation_deg=0)
    boxes = label_boxes(dr2[dr2["name"] == centre["name"]], wcs, k=2.0)
    x, y = wcs.world_to_pixel(SkyCoord(l=centre["GLON"] * u.deg, b=centre["GLAT"] * u.deg, frame="galactic"))
    np.testing.assert_allclose(boxes[0], [x - 34.8, y - 34.8, x + 34.8, y + 34.8], atol=1e-6)  # 2 * 0.58' / 2"
    assert abs(x - 149.5) < 1 and abs(y - 149.5) < 1  # DR2's RA/Dec and GLON/GLAT agree to ~0.3"


def test_label_boxes_rejects_an_unknown_size(dr2):
    with pytest.raises(ValueError, match="size must be 'maj_axis' or 'reff', got 'radius'"):
        label_boxes(dr2[:1], galactic_car((10, 10), lon=0, lat=0, arcsec=1), size="radius")


def test_label_boxes_does_not_modify_the_table(dr2):
    table = dr2[:3]
    before = table.copy()
    label_boxes(table, galactic_car((10, 10), lon=0, lat=0, arcsec=1))
    assert all((table[c] == before[c]).all() for c in STANDARD_COLUMNS)
