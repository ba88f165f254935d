"""The package's conventions (`bubblenet.conventions`), each checked on what the code does with it."""

import numpy as np
import pytest
from astropy import units as u
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS

from bubblenet.conventions import (BOX_SCALE, CHANNEL_8UM, CHANNEL_24UM, CHANNELS, box_area, box_iou,
                                   centre_halfsize_to_xyxy, clip_fraction_inside, from_relative, image_box,
                                   inside_pixels, inside_sky, to_relative, xyxy_to_centre_halfsize)
from bubblenet.training_data.cutouts import Crop
from conftest import MWP8, MWP24


def test_box_around_pixels_zero_to_nine():
    # Pixels 0..9 have centres 0..9 and edges -0.5..9.5: centre 4.5, half-size 5.
    box = centre_halfsize_to_xyxy(4.5, 4.5, 5.0)
    np.testing.assert_array_equal(box, [[-0.5, -0.5, 9.5, 9.5]])
    assert box.dtype == np.float64
    assert box_area(box)[0] == 100
    assert clip_fraction_inside(box, (10, 10))[0] == 1.0
    # The same box in a 10-row, 20-column image: shape is (ny, nx), so half of x is outside a (10, 5) one.
    assert clip_fraction_inside(box, (10, 20))[0] == 1.0
    assert clip_fraction_inside(box, (10, 5))[0] == 0.5


def test_array_index_is_y_x_and_x_is_naxis1():
    # A WCS puts x along NAXIS1 (the last numpy axis): data[y, x] is the pixel at world_to_pixel's (x, y).
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["GLON-CAR", "GLAT-CAR"]
    wcs.wcs.crpix, wcs.wcs.cdelt, wcs.wcs.crval = [1, 1], [-1 / 3600, 1 / 3600], [30, 0]
    data = np.zeros((10, 20))  # (ny, nx)
    data[3, 17] = 1.0
    sky = wcs.pixel_to_world(17, 3)
    x, y = wcs.world_to_pixel(sky)
    assert data[int(round(float(y))), int(round(float(x)))] == 1.0
    assert float(x) == pytest.approx(17) and float(y) == pytest.approx(3)
    # Pixel (0, 0) is FITS pixel (1, 1): the reference pixel here.
    assert wcs.pixel_to_world(0, 0).l.deg == pytest.approx(30)


def test_round_trip_and_broadcast():
    x, y, half = np.array([1.0, 7.5]), np.array([2.0, -3.0]), 4.0
    boxes = centre_halfsize_to_xyxy(x, y, half)
    assert boxes.shape == (2, 4)
    rx, ry, rh = xyxy_to_centre_halfsize(boxes)
    np.testing.assert_allclose(rx, x)
    np.testing.assert_allclose(ry, y)
    np.testing.assert_allclose(rh, [4.0, 4.0])


def test_half_size_of_a_rectangle_is_the_mean():
    x, y, half = xyxy_to_centre_halfsize([0, 0, 4, 2])  # half width 2, half height 1
    assert (x[0], y[0], half[0]) == (2.0, 1.0, 1.5)


def test_inputs_are_not_modified():
    boxes = np.array([[0.0, 0.0, 2.0, 2.0]])
    before = boxes.copy()
    box_iou(boxes, boxes)
    clip_fraction_inside(boxes, (1, 1))
    xyxy_to_centre_halfsize(boxes)
    np.testing.assert_array_equal(boxes, before)


def test_iou_goldens():
    a = np.array([[0, 0, 2, 2], [0, 0, 1, 1]], float)
    b = np.array([[1, 1, 3, 3], [0, 0, 2, 2], [5, 5, 5, 9]], float)
    iou = box_iou(a, b)
    assert iou.shape == (2, 3)
    assert iou[0, 0] == pytest.approx(1 / 7)  # overlap 1, union 4 + 4 - 1
    assert iou[0, 1] == 1.0
    assert iou[1, 1] == pytest.approx(0.25)
    assert iou[1, 0] == 0.0  # touching at a corner only
    assert iou[0, 2] == 0.0  # degenerate box: no area, no overlap
    np.testing.assert_allclose(box_iou(b, a), iou.T)


def test_iou_of_degenerate_boxes_is_zero_not_nan():
    point = [[1, 1, 1, 1]]
    assert box_iou(point, point)[0, 0] == 0.0


def test_fraction_inside_partial_and_empty():
    boxes = np.array([[-10.5, -0.5, 9.5, 9.5], [20, 20, 30, 30], [3, 3, 3, 3], [-1.5, -1.5, 0.5, 0.5]], float)
    frac = clip_fraction_inside(boxes, (10, 10))
    np.testing.assert_allclose(frac, [0.5, 0.0, 0.0, 0.25])


def test_empty_inputs():
    assert centre_halfsize_to_xyxy([], [], []).shape == (0, 4)
    assert centre_halfsize_to_xyxy([], [], 3.0).shape == (0, 4)
    assert box_iou(np.zeros((0, 4)), np.zeros((3, 4))).shape == (0, 3)
    assert box_iou([], []).shape == (0, 0)
    assert box_area([]).shape == (0,)
    assert clip_fraction_inside([], (5, 5)).shape == (0,)
    assert all(v.shape == (0,) for v in xyxy_to_centre_halfsize(np.zeros((0, 4))))


# -- arrays and pixels: (y, x), 0-based centres, FITS row 0 at the bottom -----------------

def _car_wcs(shape, *, scale_arcsec=2.0, lon=30.0):
    """A Galactic CAR WCS of an image of `shape` (ny, nx), reference pixel at FITS (1, 1)."""
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["GLON-CAR", "GLAT-CAR"]
    wcs.wcs.crpix, wcs.wcs.cdelt, wcs.wcs.crval = [1, 1], [-scale_arcsec / 3600, scale_arcsec / 3600], [lon, 0]
    wcs.pixel_shape = shape[::-1]
    return wcs


def test_pixel_zero_is_fits_pixel_one_and_row_zero_is_the_first_fits_row(tmp_path):
    from bubblenet.sky.mosaics import Window, open_image

    ny, nx = 6, 9
    data = np.zeros((ny, nx), np.float32)
    data[0, 5] = 7.0  # first row of the file, sixth column
    wcs = _car_wcs((ny, nx))
    fits.PrimaryHDU(data, header=wcs.to_header()).writeto(tmp_path / "img.fits")
    image = open_image(tmp_path / "img.fits")
    read = image.read(Window(0, 0, nx, ny))
    assert read.shape == (ny, nx) and read[0, 5] == 7.0
    # astropy's 0-based pixel (5, 0) is FITS's 1-based (6, 1): the same sky position.
    here = image.wcs.pixel_to_world(5, 0)
    lon, lat = image.wcs.all_pix2world(6, 1, 1)
    assert here.l.deg == pytest.approx(float(lon)) and here.b.deg == pytest.approx(float(lat))


def test_real_mosaic_rows_run_up_in_latitude_and_columns_down_in_longitude():
    from bubblenet.sky.mosaics import Window, open_image

    image = open_image(MWP8)
    ny, nx = image.shape
    assert (ny, nx) == fits.getdata(MWP8).shape  # shape is (ny, nx) = (NAXIS2, NAXIS1)
    np.testing.assert_array_equal(image.read(Window(0, 0, nx, 1))[0], fits.getdata(MWP8)[0])
    # CDELT2 > 0: row 0 is the lowest latitude, the bottom row as FITS viewers draw it.
    bottom, top = image.wcs.pixel_to_world([nx / 2, nx / 2], [0, ny - 1]).b.deg
    assert bottom < top
    left, right = image.wcs.pixel_to_world([0, nx - 1], [ny / 2, ny / 2]).l.deg
    assert left > right


# -- channels -----------------------------------------------------------------------------

def test_channel_constants():
    assert CHANNELS == ("24um", "8um")
    assert (CHANNEL_24UM, CHANNEL_8UM) == (0, 1)


def test_tiles_put_24um_in_channel_24um_and_process_keeps_it_there():
    """The real MWP pair: a tile window is (ny, nx, 2) with the 24 µm file's data in CHANNEL_24UM, and
    `process` normalises that channel as the 24 µm band (no star mask), the 8 µm one as the 8 µm band."""
    from bubblenet.sky.mosaics import Window, open_survey
    from bubblenet.training_data.cutouts import CLIP_SIGMA, keep_bands, process, resample

    (tile,) = open_survey([MWP8], [MWP24])
    window = tile.read(Window(200, 100, 256, 128))
    assert window.shape == (128, 256, 2)  # (ny, nx, 2)
    raw8 = fits.getdata(MWP8)[100:228, 200:456].astype(np.float32)
    raw24 = fits.getdata(MWP24)[100:228, 200:456].astype(np.float32)
    np.testing.assert_array_equal(window[..., CHANNEL_8UM], raw8)
    np.testing.assert_allclose(window[..., CHANNEL_24UM], raw24, atol=1e-4)  # same grid: resampling is exact
    assert np.corrcoef(raw8.ravel(), raw24.ravel())[0, 1] < 0.9  # the bands are told apart

    square = tile.read(Window(200, 100, 256, 256))
    out = process(square, 64, pixscale_arcsec=float(tile.pixel_scale.to_value(u.arcsec)))

    def unmasked(band):  # `normalise` without a star mask
        shifted = band - band.min()
        top = shifted.mean() + CLIP_SIGMA * shifted.std()
        return np.clip(shifted, 0, top) / top

    small = resample(square, 64)
    np.testing.assert_allclose(out[..., CHANNEL_24UM], unmasked(small[..., CHANNEL_24UM]), atol=1e-5)
    assert np.abs(out[..., CHANNEL_24UM] - unmasked(small[..., CHANNEL_8UM])).max() > 0.1
    # The 24 µm output does not depend on the 8 µm input (stars are found and masked in 8 µm only).
    swapped = square.copy()
    swapped[..., CHANNEL_8UM] = swapped[::-1, :, CHANNEL_8UM]
    swapped_out = process(swapped, 64, pixscale_arcsec=float(tile.pixel_scale.to_value(u.arcsec)))
    np.testing.assert_array_equal(swapped_out[..., CHANNEL_24UM], out[..., CHANNEL_24UM])
    # An 8 µm-only detector sees CHANNEL_24UM as zeros.
    only8 = keep_bands(out, "8")
    assert not only8[..., CHANNEL_24UM].any()
    np.testing.assert_array_equal(only8[..., CHANNEL_8UM], out[..., CHANNEL_8UM])


# -- relative boxes -----------------------------------------------------------------------

def test_relative_frame_of_a_window_golden():
    # The window of pixels 10..19 x 20..29: its edges 9.5 and 19.5 (29.5 in y) are 0 and 1.
    np.testing.assert_allclose(to_relative([[9.5, 19.5, 19.5, 29.5]], 10, 20, 10), [[0, 0, 1, 1]])
    np.testing.assert_allclose(to_relative([[14.5, 24.5, 14.5, 24.5]], 10, 20, 10), [[0.5, 0.5, 0.5, 0.5]])
    np.testing.assert_allclose(from_relative([[0, 0, 1, 1]], 10, 20, 10), [[9.5, 19.5, 19.5, 29.5]])
    assert to_relative([], 0, 0, 5).shape == (0, 4)


def test_relative_round_trip_and_crop_agree():
    rng = np.random.default_rng(0)
    boxes = np.sort(rng.uniform(-50, 500, (20, 4)).reshape(20, 2, 2), axis=1).reshape(20, 4)[:, [0, 2, 1, 3]]
    before = boxes.copy()
    rel = to_relative(boxes, 123, 45, 96)
    np.testing.assert_allclose(from_relative(rel, 123, 45, 96), boxes, atol=1e-9)
    np.testing.assert_array_equal(boxes, before)
    # Crop.relative is this conversion, bit for bit.
    np.testing.assert_array_equal(Crop(0, 123, 45, 96).relative(boxes), rel)


def test_relative_boxes_follow_the_resampled_image():
    """A blob at tile pixel (x, y) sits at the relative position of its box in the resampled window."""
    from bubblenet.training_data.cutouts import resample

    x0, y0, side, size = 100, 200, 96, 24
    x, y = 161.0, 213.0  # tile pixels
    yy, xx = np.mgrid[y0:y0 + side, x0:x0 + side]
    blob = np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 3.0**2)).astype(np.float32)[..., None]
    out = resample(blob, size)[..., 0]
    gy, gx = np.mgrid[:size, :size]
    cx, cy = (out * gx).sum() / out.sum(), (out * gy).sum() / out.sum()  # output pixel centres
    rel = to_relative(centre_halfsize_to_xyxy(x, y, 0.5), x0, y0, side)[0]
    assert (cx + 0.5) / size == pytest.approx((rel[0] + rel[2]) / 2, abs=0.2 / size)
    assert (cy + 0.5) / size == pytest.approx((rel[1] + rel[3]) / 2, abs=0.2 / size)


# -- inside an image ----------------------------------------------------------------------

def test_inside_pixels_edges():
    shape = (4, 10)  # ny, nx
    x = np.array([-0.5 - 1e-9, -0.5, 0.0, 9.49, 9.5 - 1e-9, 9.5, np.nan])
    np.testing.assert_array_equal(inside_pixels(x, 1.0, shape), [False, True, True, True, True, False, False])
    y = np.array([-0.5, 3.5 - 1e-9, 3.5])
    np.testing.assert_array_equal(inside_pixels(0.0, y, shape), [True, True, False])
    # margins widen (or narrow) every side by the same amount
    np.testing.assert_array_equal(inside_pixels([-1.5, 10.49, 10.5], 1.0, shape, margin=1.0), [True, True, False])
    np.testing.assert_array_equal(inside_pixels([-0.5, 0.5, 8.49, 8.5], 1.0, shape, margin=-1.0),
                                  [False, True, True, False])
    np.testing.assert_array_equal(image_box(shape), [-0.5, -0.5, 9.5, 3.5])


def test_inside_means_a_valid_pixel_index():
    rng = np.random.default_rng(1)
    x, y = rng.uniform(-3, 13, 2000), rng.uniform(-3, 7, 2000)
    x[:30] = np.arange(-2.5, 12.5, 0.5)  # every pixel edge and centre, exactly
    ix, iy = np.floor(x + 0.5), np.floor(y + 0.5)
    expect = (ix >= 0) & (ix < 10) & (iy >= 0) & (iy < 4)
    np.testing.assert_array_equal(inside_pixels(x, y, (4, 10)), expect)


def test_adjacent_images_share_no_position():
    # Image B starts where image A (nx = 10) ends: every position on the seam belongs to exactly one.
    x = np.linspace(8.0, 11.0, 61)  # A's pixel coordinates, through A's last edge 9.5
    in_a = inside_pixels(x, 1.0, (4, 10))
    in_b = inside_pixels(x - 10, 1.0, (4, 10))
    assert np.all(in_a ^ in_b)


def test_inside_sky_on_the_real_mosaic_edges_and_in_image_agrees(tmp_path):
    from bubblenet.catalogues.tables import in_image, read_catalogue
    from bubblenet.sky.mosaics import open_image

    image = open_image(MWP8)
    ny, nx = image.shape
    eps = 1e-4  # pixels: far above the WCS round trip's error, far below anything else
    x = np.array([-0.5 - eps, -0.5 + eps, nx - 0.5 - eps, nx - 0.5 + eps, nx / 2, nx / 2, nx / 2, nx / 2])
    y = np.array([ny / 2, ny / 2, ny / 2, ny / 2, -0.5 - eps, -0.5 + eps, ny - 0.5 - eps, ny - 0.5 + eps])
    expect = [False, True, True, False, False, True, True, False]
    coords = image.wcs.pixel_to_world(x, y)
    np.testing.assert_array_equal(inside_sky(coords, image.wcs, image.shape), expect)
    np.testing.assert_array_equal(inside_sky(coords, image.wcs, image.shape, margin=1.0), True)
    np.testing.assert_array_equal(inside_sky(coords, image.wcs, image.shape, margin=-1.0), False)
    # The catalogue's test is the same rule.
    Table({"glon": coords.l.deg, "glat": coords.b.deg, "radius": np.full(len(x), 0.5)}).write(tmp_path / "edge.csv")
    table = read_catalogue(tmp_path / "edge.csv")
    np.testing.assert_array_equal(in_image(table, image.wcs, image.shape), expect)
    np.testing.assert_array_equal(in_image(table, image.wcs, image.shape, margin=1.0), True)


# -- label boxes --------------------------------------------------------------------------

def test_box_scale_is_one_constant_and_label_boxes_use_it(tmp_path):
    import bubblenet.catalogues as catalogues
    from bubblenet.catalogues.tables import BOX_SCALE as tables_box_scale
    from bubblenet.catalogues.tables import label_boxes, read_catalogue
    from bubblenet.training_data.samples import DataConfig

    assert BOX_SCALE == 1.3
    assert tables_box_scale is BOX_SCALE and catalogues.BOX_SCALE is BOX_SCALE
    assert DataConfig().box_scale == BOX_SCALE
    wcs = _car_wcs((200, 200), scale_arcsec=1.2)
    centre = wcs.pixel_to_world(100, 80)
    Table({"glon": [centre.l.deg], "glat": [centre.b.deg], "radius": [0.5]}).write(tmp_path / "one.csv")
    table = read_catalogue(tmp_path / "one.csv")  # MajAxis 0.5' = 25 pixels of 1.2"
    (box,) = label_boxes(table, wcs)
    np.testing.assert_allclose(box, centre_halfsize_to_xyxy(100, 80, BOX_SCALE * 25)[0], atol=1e-6)
    np.testing.assert_array_equal(label_boxes(table, wcs, k=BOX_SCALE), [box])


# -- units --------------------------------------------------------------------------------

def test_sizes_convert_by_their_units(tmp_path):
    """A catalogue size given in arcsec gives the same label box as the same size in arcmin."""
    from bubblenet.catalogues.tables import label_boxes, read_catalogue

    wcs = _car_wcs((200, 200), scale_arcsec=1.2)
    centre = wcs.pixel_to_world(50, 60)
    for name, column, value in (("arcmin.csv", "radius", 0.5), ("arcsec.csv", "radius_arcsec", 30.0)):
        Table({"glon": [centre.l.deg], "glat": [centre.b.deg], column: [value]}).write(tmp_path / name)
    boxes = [label_boxes(read_catalogue(tmp_path / name), wcs) for name in ("arcmin.csv", "arcsec.csv")]
    np.testing.assert_allclose(boxes[0], boxes[1], atol=1e-9)
    assert (boxes[0][0, 2] - boxes[0][0, 0]) / 2 == pytest.approx(BOX_SCALE * (0.5 * u.arcmin).to_value(u.arcsec) / 1.2)
