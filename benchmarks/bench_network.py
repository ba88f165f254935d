"""Benchmark: the network's own efficiency, against this machine's measured matrix-multiply peak.

For each preset (lite, paper) with random weights: its work per window
(multiply-adds of every convolution, counted from the built layers), and
windows per second in inference in float32, compiled with XLA
(``jit_compile``), and in bfloat16 (Keras' ``mixed_bfloat16`` policy: bfloat16
arithmetic, float32 weights); GFLOP/s of each against the peak of a large
float32 (and bfloat16) matrix multiply measured in the same run. For the
lite preset also the two parts of the shared search
(`bubblenet.ssd.sharing.split_ssd`): the trunk over a large block (level
pixels per second, and the windows' worth of them at stride 1/2) and the
tail per window. Prints one JSON line.

    python benchmarks/bench_network.py [--repeats 5] [--presets lite paper]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np


def best_seconds(call, repeats: int) -> float:
    """The fastest of `repeats` timed calls, after one untimed (tracing, caches)."""
    call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return min(times)


def matmul_peak(dtype: str, repeats: int, n: int = 2048) -> float:
    """GFLOP/s of an ``n x n`` by ``n x n`` matrix multiply in `dtype`."""
    import tensorflow as tf

    a = tf.random.uniform((n, n), dtype=tf.float32)
    a = tf.cast(a, dtype)
    seconds = best_seconds(lambda: tf.linalg.matmul(a, a).numpy(), repeats)
    return 2 * n ** 3 / seconds / 1e9


def conv_flops(model) -> float:
    """FLOPs (2 x multiply-adds) of one forward pass of one input through `model`'s convolutions."""
    import keras

    total = 0.0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            _, h, w, c_out = layer.output.shape
            k = layer.kernel_size
            total += 2.0 * h * w * c_out * k[0] * k[1] * layer.input.shape[-1]
    return total


def windows_per_second(call, batch: int, repeats: int) -> float:
    return batch / best_seconds(call, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--presets", nargs="+", default=["lite", "paper"])
    args = parser.parse_args()

    import keras
    import tensorflow as tf

    from bubblenet.ssd.model import build_ssd, in_precision
    from bubblenet.ssd.sharing import split_ssd

    peak = {dtype: round(matmul_peak(dtype, args.repeats), 1) for dtype in ("float32", "bfloat16")}
    presets = {}
    for preset in args.presets:
        keras.utils.set_random_seed(0)
        model = build_ssd(preset)
        size = int(model.input_shape[1])
        batch = 32 if preset == "lite" else 4
        x = np.random.default_rng(0).random((batch, size, size, 2)).astype(np.float32)
        flops = conv_flops(model)
        reference = np.asarray(model.predict_on_batch(x))
        xla = tf.function(lambda v: model(v, training=False), jit_compile=True)
        low = in_precision(model, "mixed_bfloat16")
        rates = {"float32": windows_per_second(lambda: model.predict_on_batch(x), batch, args.repeats),
                 "xla": windows_per_second(lambda: xla(x).numpy(), batch, args.repeats),
                 "bfloat16": windows_per_second(lambda: low.predict_on_batch(x), batch, args.repeats)}
        scores = {name: tf.nn.softmax(np.asarray(out, np.float32)[..., 4:], axis=-1).numpy()[..., 1]
                  for name, out in (("float32", reference), ("xla", xla(x).numpy()),
                                    ("bfloat16", low.predict_on_batch(x)))}
        entry = {
            "input_px": size, "gflop_per_window": round(flops / 1e9, 3), "batch": batch,
            "windows_per_s": {k: round(v, 1) for k, v in rates.items()},
            "gflop_per_s": {k: round(v * flops / 1e9, 1) for k, v in rates.items()},
            "share_of_float32_matmul_peak": {k: round(v * flops / 1e9 / peak["float32"], 3)
                                             for k, v in rates.items()},
            "max_score_difference_vs_float32": {k: round(float(np.abs(v - scores["float32"]).max()), 4)
                                               for k, v in scores.items() if k != "float32"},
        }
        if preset == "lite":
            first = split_ssd(model)
            block = np.random.default_rng(1).random((1184, 1184, 2)).astype(np.float32)
            cells = np.random.default_rng(2).random((128, first.cells, first.cells,
                                                     first.tail.input_shape[-1])).astype(np.float32)
            per_window_px = (size / 2) ** 2  # level pixels per window at stride 1/2
            entry["shared"] = {}
            for name, net in (("float32", model), ("bfloat16", low)):
                split = split_ssd(net)
                px_s = block.shape[0] * block.shape[1] / best_seconds(lambda: split.trunk_maps(block), args.repeats)
                tail = windows_per_second(lambda: split.tail.predict_on_batch(cells), len(cells), args.repeats)
                entry["shared"][name] = {"trunk_mpx_per_s": round(px_s / 1e6, 2),
                                         "trunk_windows_per_s_at_stride_half": round(px_s / per_window_px, 1),
                                         "tail_windows_per_s": round(tail, 1),
                                         "both_windows_per_s": round(1 / (per_window_px / px_s + 1 / tail), 1)}
        presets[preset] = entry
    lite = presets.get("lite")
    print(json.dumps({
        "benchmark": "network", "cpu_cores": os.cpu_count(), "tensorflow": tf.__version__,
        "keras": keras.__version__, "matmul_peak_gflop_per_s": peak, "presets": presets,
        "bfloat16_speedup_lite": round(lite["windows_per_s"]["bfloat16"] / lite["windows_per_s"]["float32"], 2)
        if lite else None,
        "xla_speedup_lite": round(lite["windows_per_s"]["xla"] / lite["windows_per_s"]["float32"], 2)
        if lite else None,
    }))


if __name__ == "__main__":
    main()
