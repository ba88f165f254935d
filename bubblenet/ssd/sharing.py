"""An SSD cut in two, so that overlapping windows can share the first part's work.

A sliding-window search at stride 1/2 passes every pixel of a pyramid level
through the backbone in four windows. `split_ssd` cuts a model built by
`bubblenet.ssd.model.build_ssd` at the input of its last pooling layer
(``pool5``, the stride-1 pool before the dilated ``conv6``):

* the **trunk** (the VGG blocks, with the first source's L2Norm and its two
  heads) is fully convolutional: it takes a level block of any size and
  gives the ``conv5`` feature map (one cell per `SplitSSD.step` level pixels)
  and the first source's location and class maps (one cell per
  `SplitSSD.head_step`), which every window over that block shares;
* the **tail** (``pool5`` to the last extra block, with the other sources'
  heads) runs on each window's own ``conv5`` cells, as the whole model does.

The cut is where it is because everything after it sees the whole window:
the dilated ``conv6`` reaches six cells each way on an 8-cell map, and the
extra blocks shrink the window to one cell, so their features depend on
where the window ends (its zero padding), and sharing them would show the
network what it was never trained on. Before it, a cell of a window's map
equals the cell of the whole block's map wherever the cell's receptive field
(`SplitSSD.receptive_field`) lies inside the window; near the window's edges
the shared map sees the real neighbours instead of the zero padding.

The two parts call the model's own layers, so they hold no weights of their
own and follow the model through training.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import weakref
from typing import Callable

import keras
import numpy as np
import tensorflow as tf

__all__ = ["SplitSSD", "split_ssd", "split_of", "CUT_LAYER"]

#: The layer whose input is the cut: the trunk ends there and the tail starts there.
CUT_LAYER = "pool5"


@dataclasses.dataclass(frozen=True)
class SplitSSD:
    """A model's trunk and tail (`split_ssd`).

    Attributes
    ----------
    trunk : keras.Model
        ``(B, H, W, 2)`` for any H, W that are multiples of `step` ->
        ``[conv5 (B, H/step, W/step, F), loc0 (B, H/h, W/h, 4 A0), conf0 (B, H/h, W/h, C A0)]``
        with h = `head_step`.
    run_trunk : callable
        `trunk` in inference, traced once for inputs of any size (`trunk_maps`).
    tail : keras.Model
        ``(B, s, s, F)``, s = input size / `step` -> the other sources' ``(B, n_k, 4 + C)`` outputs.
    size : int
        The model's input side, pixels.
    step : int
        Input pixels per ``conv5`` cell.
    head_step : int
        Input pixels per cell of the first source.
    receptive_field : int
        Input pixels that one cell of the trunk's outputs sees (the larger of
        its two maps'), along each axis.
    num_classes : int
    """

    trunk: keras.Model
    tail: keras.Model
    size: int
    step: int
    head_step: int
    receptive_field: int
    num_classes: int
    run_trunk: Callable
    run_windows: Callable

    def trunk_maps(self, block: np.ndarray) -> list[np.ndarray]:
        """The trunk's three maps of one ``(H, W, 2)`` block, without the batch axis."""
        return [np.asarray(a)[0] for a in self.run_trunk(block[None])]

    @property
    def margin(self) -> int:
        """Level pixels of context around a block for its trunk outputs to be those of the whole level:
        at least half the receptive field, a whole number of cells of `step` pixels (so that blocks stay
        on the cell grid)."""
        return int(math.ceil(self.receptive_field / 2 / self.step)) * self.step

    @property
    def cells(self) -> int:
        """``conv5`` cells along a window's side."""
        return self.size // self.step

    @property
    def head_cells(self) -> int:
        """First-source cells along a window's side."""
        return self.size // self.head_step

    def window_outputs(self, conv5: np.ndarray, loc0: np.ndarray, conf0: np.ndarray) -> np.ndarray:
        """The ``(B, N, 4 + C)`` outputs of windows, as the whole model gives them, from their trunk slices.

        Parameters
        ----------
        conv5 : numpy.ndarray
            ``(B, cells, cells, F)``: each window's ``conv5`` cells.
        loc0, conf0 : numpy.ndarray
            ``(B, head_cells, head_cells, ·)``: each window's first-source head cells.
        """
        return np.asarray(self.run_windows(conv5, loc0, conf0))

    def assemble(self, loc0, conf0, rest):
        """The whole model's ``(B, N, 4 + C)`` output from the first source's head cells of each window
        and the tail's outputs `rest` (arrays or tensors: the same code serves inference and training)."""
        per_window = self.head_cells ** 2 * (int(loc0.shape[-1]) // 4)
        # The first source's boxes in the head's order: rows, columns, boxes in the cell
        # (as `bubblenet.ssd.model.build_ssd` reshapes them).
        first = keras.ops.concatenate([keras.ops.reshape(loc0, (-1, per_window, 4)),
                                       keras.ops.reshape(conf0, (-1, per_window, self.num_classes))], axis=-1)
        rest = rest if isinstance(rest, (list, tuple)) else [rest]
        return keras.ops.concatenate([first, *rest], axis=1)


def _receptive_fields(model: keras.Model) -> dict[int, tuple[int, int]]:
    """``id(tensor) -> (receptive field, jump)`` in input pixels for every tensor of the model's graph.

    Convolutions and pools grow the field by ``(kernel - 1) x dilation x jump``
    and the jump by their stride; other layers keep both (and take the
    largest of their inputs').
    """
    fields = {id(t): (1, 1) for t in model.inputs}
    for layer in model.layers:
        inputs = layer.input if isinstance(layer.input, (list, tuple)) else [layer.input]
        if not inputs or not all(id(t) in fields for t in inputs):
            continue  # the input layer
        rf, jump = max(fields[id(t)] for t in inputs)
        kernel = getattr(layer, "kernel_size", None) or getattr(layer, "pool_size", None)
        if kernel is not None:
            strides = layer.strides if isinstance(layer.strides, (list, tuple)) else (layer.strides,)
            dilation = getattr(layer, "dilation_rate", (1,))
            rf += (int(kernel[0]) - 1) * int(dilation[0]) * jump
            jump *= int(strides[0])
        fields[id(layer.output)] = (rf, jump)
    return fields


def split_ssd(model: keras.Model) -> SplitSSD:
    """Cut an SSD of `bubblenet.ssd.model.build_ssd` into a fully convolutional trunk and a per-window tail.

    Raises
    ------
    ValueError
        If the model lacks the layers the cut needs (``pool5``, ``loc_0``,
        ``conf_0``, ``head_1`` ...), or its input side is not a whole number of ``conv5`` cells.
    """
    names = {layer.name for layer in model.layers}
    heads = sorted((n for n in names if n.startswith("head_")), key=lambda n: int(n.split("_")[1]))
    missing = [n for n in (CUT_LAYER, "loc_0", "conf_0", "head_1") if n not in names]
    if missing:
        raise ValueError(f"model {model.name!r} has no layer {', '.join(missing)}: not an SSD of build_ssd")
    cut = model.get_layer(CUT_LAYER).input
    loc0, conf0 = model.get_layer("loc_0").output, model.get_layer("conf_0").output
    size = int(model.input_shape[1])
    fields = _receptive_fields(model)
    (rf5, step), (rf0, head_step) = fields[id(cut)], fields[id(loc0)]
    if size % step:
        raise ValueError(f"input side {size} is not a whole number of conv5 cells ({step} px)")
    # The trunk as the model built it, then replayed on an input of any size: the same layers (weights),
    # so it is the model's own graph and needs no description of its own.
    fixed = keras.Model(model.input, [cut, loc0, conf0])
    trunk = keras.models.clone_model(fixed, input_tensors=keras.Input((None, None, model.input_shape[-1])),
                                     clone_function=lambda layer: layer)
    tail = keras.Model(cut, [model.get_layer(n).output for n in heads if n != "head_0"])
    num_classes = int(conf0.shape[-1]) // (int(loc0.shape[-1]) // 4)

    # One trace for blocks of every size: called eagerly, the convolutions, batch normalisations and
    # ReLUs run one by one and the trunk is half as fast; traced per shape, each new block size would
    # cost a trace.
    @tf.function(input_signature=[tf.TensorSpec((None, None, None, model.input_shape[-1]), tf.float32)])
    @tf.autograph.experimental.do_not_convert
    def run_trunk(block):
        return trunk(block, training=False)

    cells = (None, None, None)
    # The tail and the assembly of the windows' outputs in one traced call (any batch size): through
    # `predict_on_batch` and eager concatenations each batch cost some 50 small operations.
    @tf.function(input_signature=[tf.TensorSpec((None, *cut.shape[1:]), tf.float32),
                                  tf.TensorSpec(cells + (loc0.shape[-1],), tf.float32),
                                  tf.TensorSpec(cells + (conf0.shape[-1],), tf.float32)])
    @tf.autograph.experimental.do_not_convert
    def run_windows(conv5, loc0_cells, conf0_cells):
        return split.assemble(loc0_cells, conf0_cells, tail(conv5, training=False))

    split = SplitSSD(trunk, tail, size, int(step), int(head_step), int(max(rf5, rf0)), num_classes, run_trunk,
                     run_windows)
    return split


#: Each model's cut, made once: every cut adds nodes to the model's layers and traces its own trunk.
_SPLITS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_SPLITS_LOCK = threading.Lock()


def split_of(model: keras.Model) -> SplitSSD:
    """`split_ssd` of `model`, made once per model and kept while the model lives (thread-safe). The parts
    call the model's own layers, so the cut follows the model through training."""
    with _SPLITS_LOCK:
        split = _SPLITS.get(model)
        if split is None:
            split = _SPLITS[model] = split_ssd(model)
        return split
