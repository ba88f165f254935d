"""The box conventions, checked on hand-made goldens."""

import numpy as np
import pytest

from bubblenet.boxes import box_area, box_iou, centre_halfsize_to_xyxy, clip_fraction_inside, xyxy_to_centre_halfsize


def test_box_around_pixels_zero_to_nine():
    # Pixels 0..9 have centres 0..9 and edges -0.5..9.5: centre 4.5, half-size 5.
    box = centre_halfsize_to_xyxy(4.5, 4.5, 5.0)
    np.testing.assert_array_equal(box, [[-0.5, -0.5, 9.5, 9.5]])
    assert box_area(box)[0] == 100
    assert clip_fraction_inside(box, (10, 10))[0] == 1.0


def test_round_trip_and_broadcast():
    x, y, half = np.array([1.0, 7.5]), np.array([2.0, -3.0]), 4.0
    boxes = centre_halfsize_to_xyxy(x, y, half)
    assert boxes.shape == (2, 4)
    rx, ry, rh = xyxy_to_centre_halfsize(boxes)
    np.testing.assert_allclose(rx, x)
    np.testing.assert_allclose(ry, y)
    np.testing.assert_allclose(rh, [4.0, 4.0])


def test_iou_goldens():
    a = np.array([[0, 0, 2, 2], [0, 0, 1, 1]], float)
    b = np.array([[1, 1, 3, 3], [0, 0, 2, 2], [5, 5, 5, 9]], float)
    iou = box_iou(a, b)
    assert iou.shape == (2, 3)
    assert iou[0, 0] == pytest.approx(1 / 7)
    assert iou[0, 1] == 1.0
    assert iou[1, 1] == pytest.approx(0.25)
    assert iou[0, 2] == 0.0  # degenerate box: no area, no overlap


def test_fraction_inside_partial_and_empty():
    boxes = np.array([[-10.5, -0.5, 9.5, 9.5], [20, 20, 30, 30], [3, 3, 3, 3]], float)
    frac = clip_fraction_inside(boxes, (10, 10))
    np.testing.assert_allclose(frac, [0.5, 0.0, 0.0])


def test_empty_inputs():
    assert centre_halfsize_to_xyxy([], [], []).shape == (0, 4)
    assert box_iou(np.zeros((0, 4)), np.zeros((3, 4))).shape == (0, 3)
    assert box_area([]).shape == (0,)
