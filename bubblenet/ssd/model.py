"""The SSD detector in Keras 3: presets, backbone, heads.

``build_ssd("paper")`` is the network of Nishimoto et al. 2025 (PASJ 77,
403): SSD300 (Liu et al. 2016) with a VGG16 backbone trained from scratch
without batch normalisation, 2 input channels (24 µm, 8 µm:
`bubblenet.conventions.CHANNELS`), L2Norm (scale 20) on conv4_3, dilated
conv6 (3 x 3, dilation 6, 1024) and conv7 (1 x 1, 1024), four extra blocks,
sources of 38/19/10/5/3/1 cells and 8732 default boxes. ``build_ssd("lite")``
keeps that design at 128 px with a narrower backbone and batch normalisation,
small enough to train on a laptop CPU.

The model outputs one tensor ``(B, N, 4 + C)``: per default box, the four
encoded offsets (`bubblenet.ssd.targets.BoxCoder`) then C class logits
(C = 2: background, bubble). The `AnchorSpec` of the preset is the single
source of truth for the number of boxes per cell. `build_ssd` hangs it on the
model as the attribute ``model.anchor_spec``, which is not part of the Keras
config and does not survive saving: a saved detector records it in its
``model_info.json`` (``"anchors"``, `bubblenet.detection.detector.model_info`),
and `bubblenet.detection.detector.load_detector` rebuilds it from there.
"""

from __future__ import annotations

import copy

import keras
from keras import layers, ops

from bubblenet.conventions import CHANNELS
from bubblenet.ssd.anchors import AnchorSpec

__all__ = ["PRESETS", "L2Norm", "build_ssd", "anchor_spec", "in_precision", "INITS"]

#: Initialisation of the convolution kernels: Keras' Glorot uniform (ours), or the original code's Kaiming
#: normal (PyTorch ``kaiming_normal_``: an untruncated normal of variance 2 / fan-in). Biases start at zero.
INITS = ("glorot", "kaiming")


def _initializer(init: str):
    if init == "glorot":
        return "glorot_uniform"
    if init == "kaiming":
        return keras.initializers.VarianceScaling(scale=2.0, mode="fan_in", distribution="untruncated_normal")
    raise ValueError(f"initialisation must be one of {', '.join(INITS)}, got {init!r}")

#: Presets: anchors plus backbone widths. ``vgg`` lists the conv blocks of
#: the backbone (filters, convs), ``fc`` the conv6/conv7 width, ``extras``
#: the (1 x 1 filters, 3 x 3 filters, stride, padding) of the extra blocks.
PRESETS = {
    "paper": {
        "anchors": AnchorSpec(
            image_size=300, feature_maps=(38, 19, 10, 5, 3, 1), steps=(8, 16, 32, 64, 100, 300),
            min_sizes=(30, 60, 111, 162, 213, 264), max_sizes=(60, 111, 162, 213, 264, 315),
            aspect_ratios=((2,), (2, 3), (2, 3), (2, 3), (2,), (2,))),
        "vgg": ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3)),
        "fc": 1024,
        "extras": ((256, 512, 2, "same"), (128, 256, 2, "same"), (128, 256, 1, "valid"), (128, 256, 1, "valid")),
        "num_classes": 2,
    },
    "lite": {
        "anchors": AnchorSpec(
            image_size=128, feature_maps=(16, 8, 4, 2, 1), steps=(8, 16, 32, 64, 128),
            min_sizes=(13, 28, 50, 75, 100), max_sizes=(28, 50, 75, 100, 134),
            aspect_ratios=((2,), (2, 3), (2, 3), (2,), (2,))),
        "vgg": ((16, 1), (32, 1), (64, 2), (128, 2), (128, 2)),
        "fc": 256,
        "extras": ((64, 128, 2, "same"), (64, 128, 2, "same"), (64, 128, 2, "same")),
        "num_classes": 2,
        # From scratch on a CPU budget, the network without normalisation stayed
        # below 0.5 on every window after 250 steps; with it, a fifth of the
        # positives pass 0.5 after 300 (the paper preset keeps the original design).
        "batch_norm": True,
    },
}


def anchor_spec(preset: str) -> AnchorSpec:
    """The default boxes of a preset."""
    return PRESETS[preset]["anchors"]


@keras.saving.register_keras_serializable(package="bubblenet")
class L2Norm(layers.Layer):
    """Channel-wise L2 normalisation with a learned per-channel scale (SSD's conv4_3 norm).

    Parameters
    ----------
    scale : float
        Initial value of the scale (20 in SSD300).
    """

    def __init__(self, scale: float = 20.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = scale

    def build(self, input_shape):
        self.gamma = self.add_weight(shape=(input_shape[-1],), initializer=keras.initializers.Constant(self.scale),
                                     name="gamma")

    def call(self, x):
        return x * ops.rsqrt(ops.sum(x * x, axis=-1, keepdims=True) + 1e-10) * self.gamma

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


def _conv(x, filters, kernel, name, *, batch_norm: bool = False, **kwargs):
    """Conv + ReLU, or Conv + BatchNorm + ReLU."""
    padding = kwargs.pop("padding", "same")
    if not batch_norm:
        return layers.Conv2D(filters, kernel, padding=padding, activation="relu", name=name, **kwargs)(x)
    x = layers.Conv2D(filters, kernel, padding=padding, use_bias=False, name=name, **kwargs)(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def build_ssd(preset: str = "lite", *, init: str = "glorot", **overrides) -> keras.Model:
    """Build an SSD.

    Parameters
    ----------
    preset : {"paper", "lite"}
    init : {"glorot", "kaiming"}
        Initialisation of every convolution kernel (`INITS`).
    **overrides
        Replace preset entries (``anchors``, ``vgg``, ``fc``, ``extras``, ``num_classes``,
        ``batch_norm``: batch normalisation after every convolution, which the
        paper's network does not have).

    Returns
    -------
    keras.Model
        Input ``(S, S, 2)`` (channels `bubblenet.conventions.CHANNELS`), output
        ``(N, 4 + C)``; ``model.anchor_spec`` holds the default boxes (a plain
        attribute: saved models keep them in ``model_info.json`` instead).
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
    cfg = {**copy.deepcopy(PRESETS[preset]), **overrides}
    spec: AnchorSpec = cfg["anchors"]
    num_classes = cfg["num_classes"]
    inputs = keras.Input((spec.image_size, spec.image_size, len(CHANNELS)), name="image")

    # VGG backbone; the fourth block's last conv is the first source (after L2Norm).
    bn = cfg.get("batch_norm", False)
    kernel = {"kernel_initializer": _initializer(init)}
    x = inputs
    sources = []
    for b, (filters, convs) in enumerate(cfg["vgg"], start=1):
        for c in range(1, convs + 1):
            x = _conv(x, filters, 3, f"conv{b}_{c}", batch_norm=bn, **kernel)
        if b == 4:
            sources.append(L2Norm(20.0, name="conv4_3_norm")(x))
        pool = layers.MaxPooling2D(3, strides=1, padding="same", name="pool5") if b == len(cfg["vgg"]) else \
            layers.MaxPooling2D(2, padding="same", name=f"pool{b}")
        x = pool(x)
    x = _conv(x, cfg["fc"], 3, "conv6", dilation_rate=6, batch_norm=bn, **kernel)
    x = _conv(x, cfg["fc"], 1, "conv7", batch_norm=bn, **kernel)
    sources.append(x)
    for e, (squeeze, filters, stride, padding) in enumerate(cfg["extras"], start=8):
        x = _conv(x, squeeze, 1, f"conv{e}_1", batch_norm=bn, **kernel)
        x = _conv(x, filters, 3, f"conv{e}_2", strides=stride, padding=padding, batch_norm=bn, **kernel)
        sources.append(x)
    if len(sources) != len(spec.feature_maps):
        raise ValueError(f"the backbone gives {len(sources)} sources but the anchors expect {len(spec.feature_maps)}")

    outputs = []
    for k, (source, per_cell) in enumerate(zip(sources, spec.boxes_per_cell)):
        if source.shape[1] != spec.feature_maps[k]:
            raise ValueError(f"source {k} is {source.shape[1]} cells wide, anchors say {spec.feature_maps[k]}")
        loc = layers.Conv2D(per_cell * 4, 3, padding="same", name=f"loc_{k}", **kernel)(source)
        conf = layers.Conv2D(per_cell * num_classes, 3, padding="same", name=f"conf_{k}", **kernel)(source)
        # (B, f, f, A*4) -> (B, f*f*A, 4): rows, columns, boxes — the order of `default_boxes`.
        loc = layers.Reshape((-1, 4), name=f"loc_{k}_flat")(loc)
        conf = layers.Reshape((-1, num_classes), name=f"conf_{k}_flat")(conf)
        outputs.append(layers.Concatenate(axis=-1, name=f"head_{k}")([loc, conf]))
    packed = layers.Concatenate(axis=1, name="detections")(outputs)
    model = keras.Model(inputs, packed, name=f"ssd_{preset}")
    model.anchor_spec = spec
    return model


def in_precision(model: keras.Model, policy: str = "mixed_bfloat16") -> keras.Model:
    """A copy of `model` that computes under the Keras dtype `policy` (weights copied; inputs stay float32).

    ``"mixed_bfloat16"`` computes in bfloat16 with float32 weights: on CPUs
    with AVX512-BF16 or AMX the convolutions run faster, and the outputs
    differ from float32 by bfloat16's 8-bit mantissa (``benchmarks/bench_network.py``
    measures both).
    """
    def relayer(layer):
        config = layer.get_config()
        if not isinstance(layer, keras.layers.InputLayer):
            config["dtype"] = policy
        return layer.__class__.from_config(config)

    copy_ = keras.models.clone_model(model, clone_function=relayer)
    copy_.set_weights(model.get_weights())
    if hasattr(model, "anchor_spec"):
        copy_.anchor_spec = model.anchor_spec
    return copy_
