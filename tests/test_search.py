"""Whole-tile search pieces: window planning, window-to-tile boxes, merging, and the scoring rules."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from bubblenet.training_data.cutouts import Crop
from bubblenet.detection.inference import detect_inputs, merge, prepared_windows, window_to_tile
from bubblenet.evaluation.metrics import f_beta, found_by_size, score_paper, score_strict, sweep_thresholds
from bubblenet.detection.windows import MIN_WINDOW_PX, plan_windows, sky_window_sizes, window_sizes


def test_sky_window_sizes_keep_a_floor_in_pixels():
    # 200"-3600" at 2.4"/px: 83-1500 px, above the floor
    assert sky_window_sizes((200, 3600), 2.4)[0] == 83
    # at the MWP field's 6.75"/px, 200" would be 30 px: the search starts at the floor instead
    coarse = sky_window_sizes((200, 3600), 6.75)
    assert coarse[0] == MIN_WINDOW_PX and coarse[-1] == 533
    assert sky_window_sizes((120, 3600), 6.75, min_px=0)[0] == 18  # the paper's windows, unfloored
    assert sky_window_sizes((200, 300), 60.0) == [5]  # the whole range under the floor: its largest window


def test_window_sizes_geometric():
    assert window_sizes(100, 400, per_octave=1) == [100, 200, 400]
    assert window_sizes(128, 128) == [128]
    with pytest.raises(ValueError):
        window_sizes(0, 10)


def test_windows_cover_the_tile_with_full_squares():
    shape = (250, 410)
    windows = list(plan_windows(shape, [90, 300]))
    assert all(w.side in (90,) for w in windows)  # 300 is larger than the short side: skipped
    covered = np.zeros(shape, bool)
    for w in windows:
        assert 0 <= w.x0 and w.x0 + w.side <= 410 and 0 <= w.y0 and w.y0 + w.side <= 250
        covered[w.y0:w.y0 + w.side, w.x0:w.x0 + w.side] = True
    assert covered.all()
    starts = sorted({w.x0 for w in windows})
    assert starts[:3] == [0, 30, 60] and starts[-1] == 410 - 90


def test_window_boxes_back_to_tile_pixels():
    crop = Crop(0, 100, 50, 40)
    boxes = np.array([[10.0, 60.0, 30.0, 80.0]]) - 0.5  # tile pixel edges
    np.testing.assert_allclose(window_to_tile(crop.relative(boxes), crop), boxes)


def test_merge_keeps_the_best_of_overlaps():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], float)
    kept, scores = merge(boxes, np.array([0.6, 0.9, 0.7]))
    np.testing.assert_array_equal(scores, [0.9, 0.7])
    assert merge(np.zeros((0, 4)), np.zeros(0))[0].shape == (0, 4)


def test_paper_rule_counts():
    bubbles = np.array([[0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50]], float)
    selected = np.array([True, True, False])
    detections = np.array([
        [0, 0, 10, 4],      # covers 40 % of bubble 0: hit
        [0, 0, 10, 10],     # duplicate hit: free under the paper's rule
        [40, 40, 50, 50],   # hits an unselected bubble: FP under the paper's rule
        [80, 80, 90, 90],   # nothing: FP
    ], float)
    result = score_paper(detections, bubbles, selected)
    assert (result["tp"], result["fp"], result["fn"]) == (1, 2, 1)
    assert result["precision"] == pytest.approx(1 / 3) and result["recall"] == pytest.approx(0.5)
    assert result["f2"] == pytest.approx(f_beta(1 / 3, 0.5, 2))


def test_strict_rule_counts_duplicates_and_ignores_real_unselected():
    bubbles = np.array([[0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50]], float)
    selected = np.array([True, True, False])
    detections = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [40, 40, 50, 50], [0, 0, 40, 40]], float)
    result = score_strict(detections, np.array([0.9, 0.8, 0.7, 0.6]), bubbles, selected)
    # one TP, duplicate and the oversized box are FP, the unselected bubble's match is ignored
    assert (result["tp"], result["fp"], result["fn"]) == (1, 2, 1)


def test_threshold_sweep_is_monotone_in_recall():
    bubbles = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], float)
    detections = np.array([[0, 0, 10, 10], [20, 20, 30, 30], [60, 60, 70, 70]], float)
    rows = sweep_thresholds(detections, np.array([0.97, 0.6, 0.55]), bubbles, np.array([True, True]))
    recalls = [r["recall"] for r in rows]
    assert recalls[0] == 1.0 and recalls[-1] == 0.5 and recalls == sorted(recalls, reverse=True)
    assert rows[0]["fp"] == 1 and rows[2]["fp"] == 0


class _OneBoxModel:
    """A stand-in detector that finds one box at a fixed place in every window."""

    def __init__(self, spec, box):
        from bubblenet.ssd.targets import TargetEncoder

        offsets, classes = TargetEncoder(spec)(tf.constant([box], tf.float32), tf.constant([1]))
        logits = tf.where(classes[:, None] > 0, tf.constant([[-5.0, 5.0]]), tf.constant([[5.0, -5.0]]))
        self.output = tf.concat([offsets, logits], -1).numpy()
        self.input_shape = (None, spec.image_size, spec.image_size, 2)
        self.calls = 0

    def predict_on_batch(self, images):
        self.calls += len(images)
        return np.repeat(self.output[None], len(images), axis=0)


def test_detect_inputs_maps_and_merges(tmp_path):
    from bubblenet.ssd.model import anchor_spec
    from bubblenet.ssd.decoder import Decoder

    class _Cache:
        shape = (300, 300)

        def window(self, x0, y0, side):
            data = np.ones((side, side, 2), np.float32)
            data[::7, ::5] = 3.0  # some structure to normalise
            return data if x0 + side <= 300 and y0 + side <= 300 else None

        def stars_window(self, x0, y0, side):
            return np.zeros((side, side), bool)

    spec = anchor_spec("lite")
    model = _OneBoxModel(spec, [0.4, 0.4, 0.6, 0.6])
    windows = list(plan_windows((300, 300), [150], stride_fraction=1.0))
    inputs = prepared_windows(_Cache(), windows, spec.image_size, pixscale_arcsec=2.4)
    boxes, scores = detect_inputs(model, inputs, decoder=Decoder(spec))
    assert model.calls == 4 and len(boxes) == 4  # one box per window, far apart: none merged
    expected = sorted(tuple(np.round(window_to_tile(np.array([[0.4, 0.4, 0.6, 0.6]]), w)[0], 3)) for w in windows)
    np.testing.assert_allclose(sorted(map(tuple, np.round(boxes, 3))), expected, atol=1e-2)


def test_found_by_size_bins_selected_bubbles_by_box_side_on_the_sky():
    bubbles = np.array([[0, 0, 10, 10], [100, 100, 130, 130], [200, 200, 300, 300], [400, 400, 410, 410]], float)
    selected = np.array([True, True, True, False])
    detections = np.array([[98, 98, 132, 132], [400, 400, 410, 410]], float)  # finds the 30-px one and the unselected
    rows = found_by_size(detections, bubbles, selected, pixscale=2.0)  # sides 20", 60", 200", 20"
    assert [(r["bubbles"], r["found"]) for r in rows] == [(1, 0), (1, 1), (1, 0), (0, 0)]
    assert rows[0]["box_arcsec"] == [0.0, 60.0] and rows[-1]["box_arcsec"][1] == np.inf
