"""The SSD's parts, each on hand-checked cases: default boxes, matcher, coder, loss, model."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

from bubblenet.ssd.anchors import AnchorSpec, cxcywh_to_xyxy, default_boxes, xyxy_to_cxcywh
from bubblenet.ssd.losses import MultiBoxLoss, multibox_loss
from bubblenet.ssd.model import PRESETS, L2Norm, anchor_spec, build_ssd
from bubblenet.ssd.targets import BoxCoder, TargetEncoder, match, pairwise_iou


def one_cell(ratios=(2,)):
    return AnchorSpec(image_size=100, feature_maps=(1,), steps=(100,), min_sizes=(20,), max_sizes=(80,),
                      aspect_ratios=(ratios,), clip=False)


def test_default_boxes_of_a_single_cell():
    boxes = default_boxes(one_cell())
    r = math.sqrt(2)
    expect = [[0.5, 0.5, 0.2, 0.2], [0.5, 0.5, 0.4, 0.4], [0.5, 0.5, 0.2 * r, 0.2 / r], [0.5, 0.5, 0.2 / r, 0.2 * r]]
    np.testing.assert_allclose(boxes, expect, rtol=1e-6)


def test_default_box_order_is_rows_then_columns_then_boxes():
    spec = AnchorSpec(image_size=40, feature_maps=(2,), steps=(20,), min_sizes=(10,), max_sizes=(20,),
                      aspect_ratios=((),))
    boxes = default_boxes(spec)
    assert boxes.shape == (8, 4)
    # cell (row 0, col 1) comes second: x = 0.75, y = 0.25
    np.testing.assert_allclose(boxes[2, :2], [0.75, 0.25])
    np.testing.assert_allclose(boxes[4, :2], [0.25, 0.75])


def test_paper_preset_has_8732_boxes():
    spec = anchor_spec("paper")
    assert spec.boxes_per_cell == (4, 6, 6, 6, 4, 4)
    assert spec.num_priors == 8732 == len(default_boxes(spec))
    assert AnchorSpec.from_dict(spec.to_dict()) == spec


def test_box_format_round_trip():
    boxes = np.array([[0.1, 0.2, 0.5, 0.9]], np.float32)
    np.testing.assert_allclose(cxcywh_to_xyxy(xyxy_to_cxcywh(boxes)), boxes, atol=1e-7)


def test_coder_round_trip_and_known_offsets():
    priors = np.array([[0.2, 0.2, 0.4, 0.6], [0.0, 0.0, 1.0, 1.0]], np.float32)
    coder = BoxCoder(priors)
    boxes = np.array([[0.25, 0.1, 0.45, 0.5], [0.1, 0.3, 0.7, 0.5]], np.float32)
    offsets = coder.encode(boxes).numpy()
    # (dy/h, dx/w, log h/ha, log w/wa) / (0.1, 0.1, 0.2, 0.2) for the first pair
    np.testing.assert_allclose(offsets[0], [-2.5, 2.5, 0.0, 0.0], atol=1e-5)
    np.testing.assert_allclose(coder.decode(offsets).numpy(), boxes, atol=1e-6)


def test_iou_goldens():
    a = tf.constant([[0.0, 0.0, 0.2, 0.2]])
    b = tf.constant([[0.1, 0.1, 0.3, 0.3], [0.0, 0.0, 0.2, 0.2], [0.5, 0.5, 0.6, 0.6]])
    np.testing.assert_allclose(pairwise_iou(a, b).numpy(), [[1 / 7, 1.0, 0.0]], rtol=1e-6)


def test_matcher_threshold_best_prior_and_padding():
    priors = tf.constant([[0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0], [0.0, 0.5, 0.5, 1.0], [0.05, 0.05, 0.45, 0.45]])
    boxes = tf.constant([[0.0, 0.0, 0.5, 0.5],      # IoU 1 with prior 0, 0.64 with prior 3
                         [0.6, 0.6, 0.7, 0.7],      # small: best prior 1 (IoU 0.04), forced
                         [0.0, 0.0, 1.0, 1.0]])     # padding
    labels = tf.constant([1, 1, -1])
    matched, classes = match(boxes, labels, priors)
    np.testing.assert_array_equal(classes.numpy(), [1, 1, 0, 1])
    np.testing.assert_array_equal(matched.numpy()[[0, 1, 3]], [0, 1, 0])
    # no boxes at all: everything is background
    _, none = match(tf.zeros((2, 4)), tf.constant([-1, -1]), priors)
    assert (none.numpy() == 0).all()


def test_target_encoder_on_lite_priors():
    spec = anchor_spec("lite")
    encoder = TargetEncoder(spec)
    boxes = tf.constant([[0.3, 0.3, 0.7, 0.7], [0, 0, 0, 0]], tf.float32)
    offsets, classes = encoder(boxes, tf.constant([1, -1]))
    assert offsets.shape == (spec.num_priors, 4) and classes.shape == (spec.num_priors,)
    positive = classes.numpy() > 0
    assert positive.sum() >= 1
    decoded = encoder.coder.decode(offsets).numpy()[positive]
    np.testing.assert_allclose(decoded, np.tile([[0.3, 0.3, 0.7, 0.7]], (positive.sum(), 1)), atol=1e-5)
    assert (offsets.numpy()[~positive] == 0).all()


def test_loss_on_hand_made_cases():
    n = 30
    classes = np.zeros((1, n), np.int32)
    classes[0, 0] = 1
    offsets_true = np.zeros((1, n, 4), np.float32)
    offsets_true[0, 0] = [1.0, 0.0, 0.0, 3.0]
    offsets_pred = np.zeros((1, n, 4), np.float32)
    logits = np.zeros((1, n, 2), np.float32)  # every prior: p = 0.5
    total, loc, conf = (float(v) for v in multibox_loss(offsets_true, classes, offsets_pred, logits))
    # smooth L1: 0.5 * 1² + (3 - 0.5) = 3; CE ln 2 for the positive and max(3*1, 20) = 20 negatives
    assert loc == pytest.approx(3.0)
    assert conf == pytest.approx(21 * math.log(2), rel=1e-5)
    assert total == pytest.approx(loc + conf)


def test_hard_negatives_are_the_hardest_and_empty_images_still_count():
    n = 50
    logits = np.zeros((1, n, 2), np.float32)
    logits[0, :25, 1] = 5.0  # 25 confident false positives: the hard ones
    classes = np.zeros((1, n), np.int32)
    _, _, conf = multibox_loss(np.zeros((1, n, 4)), classes, np.zeros((1, n, 4)), logits, min_negatives=20)
    per_hard = math.log(1 + math.exp(5.0))
    # no positive: 20 negatives, all among the 25 hard ones, normalised by max(n_pos, 1) = 1
    assert float(conf) == pytest.approx(20 * per_hard, rel=1e-5)


def test_keras_loss_wrapper_matches_function():
    rng = np.random.default_rng(0)
    y_true = np.concatenate([rng.normal(size=(2, 40, 4)), rng.integers(0, 2, (2, 40, 1))], -1).astype(np.float32)
    y_pred = rng.normal(size=(2, 40, 6)).astype(np.float32)
    wrapped = float(MultiBoxLoss()(y_true, y_pred))
    direct = float(multibox_loss(y_true[..., :4], y_true[..., 4], y_pred[..., :4], y_pred[..., 4:])[0])
    assert wrapped == pytest.approx(direct, rel=1e-5)


@pytest.mark.parametrize("preset", ["lite", "paper"])
def test_model_output_matches_its_default_boxes(preset):
    model = build_ssd(preset)
    spec = anchor_spec(preset)
    assert model.output_shape == (None, spec.num_priors, 4 + PRESETS[preset]["num_classes"])
    names = [layer.name for layer in model.layers]
    assert "conv4_3_norm" in names and "conv6" in names
    assert model.get_layer("conv6").dilation_rate == (6, 6)
    if preset == "paper":
        assert [model.get_layer(n).output.shape[1] for n in ("conv4_3_norm", "conv7", "conv8_2", "conv9_2",
                                                             "conv10_2", "conv11_2")] == [38, 19, 10, 5, 3, 1]


def test_l2norm_scales_unit_vectors_and_round_trips():
    layer = L2Norm(20.0)
    x = np.array([[[[3.0, 4.0]]]], np.float32)
    np.testing.assert_allclose(np.asarray(layer(x)), [[[[12.0, 16.0]]]], rtol=1e-5)
    again = L2Norm.from_config(layer.get_config())
    assert again.scale == 20.0


def test_lite_model_learns_a_box(tmp_path):
    """A few steps on one synthetic image lower the loss: the parts fit together."""
    import keras

    spec = anchor_spec("lite")
    model = build_ssd("lite")
    encoder = TargetEncoder(spec)
    image = np.zeros((1, 128, 128, 2), np.float32)
    yy, xx = np.mgrid[:128, :128]
    r = np.hypot(xx - 64, yy - 64)
    image[0, ..., 1] = np.exp(-((r - 20) ** 2) / 8)  # an 8 µm ring
    image[0, ..., 0] = np.exp(-(r**2) / 200)  # 24 µm inside
    offsets, classes = encoder(tf.constant([[0.3, 0.3, 0.7, 0.7]]), tf.constant([1]))
    y = tf.concat([offsets, tf.cast(classes[:, None], tf.float32)], -1)[None]
    model.compile(optimizer=keras.optimizers.AdamW(1e-3), loss=MultiBoxLoss())
    first = model.train_on_batch(image, y)
    for _ in range(15):
        last = model.train_on_batch(image, y)
    assert last < 0.7 * first
    model.save(tmp_path / "ssd.keras")
    loaded = keras.saving.load_model(tmp_path / "ssd.keras", compile=False, safe_mode=True)
    np.testing.assert_allclose(loaded.predict(image, verbose=0), model.predict(image, verbose=0), atol=1e-5)


def test_decoder_recovers_encoded_boxes_and_suppresses_duplicates():
    from bubblenet.ssd.decoder import Decoder

    spec = anchor_spec("lite")
    encoder = TargetEncoder(spec)
    truth = tf.constant([[0.3, 0.3, 0.7, 0.7], [0.05, 0.05, 0.2, 0.2]], tf.float32)
    offsets, classes = encoder(truth, tf.constant([1, 1]))
    logits = tf.where(classes[:, None] > 0, tf.constant([[-4.0, 4.0]]), tf.constant([[4.0, -4.0]]))
    outputs = tf.concat([offsets, logits], -1)[None]
    boxes, scores, counts = Decoder(spec)(outputs)
    assert int(counts[0]) == 2  # many priors matched each box; NMS leaves one per box
    found = boxes[0, :2].numpy()
    order = np.argsort(found[:, 0])
    np.testing.assert_allclose(found[order], truth.numpy()[[1, 0]], atol=1e-5)
    assert (scores[0, :2].numpy() > 0.99).all() and (scores[0, 2:].numpy() == 0).all()
    _, _, none = Decoder(spec)(outputs, confidence=0.9999999)
    assert int(none[0]) == 0


def test_savedmodel_reproduces_keras_detections(tmp_path):
    from bubblenet.detection.savedmodel import export_savedmodel, serving_function

    spec = anchor_spec("lite")
    model = build_ssd("lite")
    images = np.random.default_rng(0).uniform(size=(3, 128, 128, 2)).astype(np.float32)
    path = export_savedmodel(model, spec, tmp_path / "saved", threshold=0.0, preset="lite")
    loaded = tf.saved_model.load(str(path))
    served = loaded.serve(tf.constant(images))
    direct = serving_function(model, spec, threshold=0.0)(tf.constant(images))
    np.testing.assert_array_equal(served["counts"].numpy(), direct["counts"].numpy())
    np.testing.assert_allclose(served["boxes"].numpy(), direct["boxes"].numpy(), atol=1e-5)
    np.testing.assert_allclose(served["scores"].numpy(), direct["scores"].numpy(), atol=1e-5)
    assert served["counts"].numpy().max() > 0
    # any input size: resized to the network's
    other = loaded.serve(tf.constant(np.ones((1, 200, 300, 2), np.float32)))
    assert other["boxes"].shape == (1, 100, 4)
    assert (path / "model_info.json").exists() and not (tmp_path / ".saved.part").exists()


def test_scaled_anchors_keep_the_grid_and_round_trip():
    spec = anchor_spec("lite")
    big = spec.scaled(1.25)
    assert big.feature_maps == spec.feature_maps and big.num_priors == spec.num_priors
    np.testing.assert_allclose(big.min_sizes, np.array(spec.min_sizes) * 1.25)
    np.testing.assert_allclose(big.max_sizes, np.array(spec.max_sizes) * 1.25)
    assert AnchorSpec.from_dict(big.to_dict()) == big
    sides = lambda s: np.sort(default_boxes(s)[:, 2])  # noqa: E731
    assert np.median(sides(big)) > np.median(sides(spec))
    with pytest.raises(ValueError):
        spec.scaled(0)
