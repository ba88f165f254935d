"""The box conventions, checked on hand-made goldens."""

import numpy as np
import pytest
from astropy.wcs import WCS

from bubblenet.conventions import box_area, box_iou, centre_halfsize_to_xyxy, clip_fraction_inside, xyxy_to_centre_halfsize


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
