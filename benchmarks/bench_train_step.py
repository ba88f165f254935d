"""Benchmark: SSD train-step throughput of both presets against torchvision's SSD300, on this CPU.

Measures, in one run, images per second of a full training step (forward,
MultiBox loss, backward, AdamW update) on batches of random 2-channel images
with two random boxes each:

* bubblenet's ``paper`` preset (SSD300 / VGG16, 8732 default boxes) and
  ``lite`` preset (128 px), in Keras 3 on TensorFlow;
* the reference: torchvision's ``ssd300_vgg16`` built from scratch for two
  classes, its first convolution swapped for a 2-channel one and its input
  normalisation set to identity, so that it has the ``paper`` preset's shape.
  It runs in a child process under ``--torch-python`` (a Python with torch
  and torchvision; default: this one), so that the two frameworks never
  share a process or its threads.

Target (issue #4): the ``paper`` preset is not slower than the reference.
Prints one JSON line; the reference is reported as skipped, with the
reason, when torchvision cannot be imported.

    python benchmarks/bench_train_step.py [--batch 16] [--steps 3] [--torch-python PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402


def random_batch(batch: int, size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Images in [0, 1] ``(B, size, size, 2)`` and two relative ``xyxy`` boxes per image."""
    rng = np.random.default_rng(seed)
    images = rng.uniform(size=(batch, size, size, 2)).astype(np.float32)
    centres = rng.uniform(0.25, 0.75, size=(batch, 2, 2))
    half = rng.uniform(0.05, 0.2, size=(batch, 2, 1))
    boxes = np.concatenate([centres - half, centres + half], axis=-1).astype(np.float32)
    return images, boxes


def keras_rate(preset: str, batch: int, steps: int) -> float:
    """Images per second of `train_on_batch` for a bubblenet preset."""
    from bubblenet.ssd.model import PRESETS, build_ssd
    from bubblenet.ssd.targets import TargetEncoder
    from bubblenet.training.validation import compile_model

    spec = PRESETS[preset]["anchors"]
    images, boxes = random_batch(batch, spec.image_size)
    offsets, labels = TargetEncoder(spec).batch(boxes, np.ones(boxes.shape[:2], np.int32))
    target = np.concatenate([offsets, np.asarray(labels, np.float32)[..., None]], axis=-1)
    model = compile_model(build_ssd(preset))
    model.train_on_batch(images, target)  # trace and build
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(images, target)
    return steps * batch / (time.perf_counter() - start)


def torchvision_rate(batch: int, steps: int) -> dict:
    """Images per second of torchvision's ssd300_vgg16, adapted to 2 channels (run in the child)."""
    import torch
    import torchvision
    from torchvision.models.detection import ssd300_vgg16

    torch.manual_seed(0)
    torch.set_num_threads(os.cpu_count() or 1)
    model = ssd300_vgg16(weights=None, weights_backbone=None, num_classes=2)
    model.backbone.features[0] = torch.nn.Conv2d(2, 64, kernel_size=3, padding=1)
    model.transform.image_mean, model.transform.image_std = [0.0, 0.0], [1.0, 1.0]
    model.train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=1e-3)
    images, boxes = random_batch(batch, 300)
    inputs = [torch.from_numpy(image).permute(2, 0, 1).contiguous() for image in images]
    targets = [{"boxes": torch.from_numpy(b * 300), "labels": torch.ones(len(b), dtype=torch.int64)} for b in boxes]

    def step():
        optimiser.zero_grad()
        loss = sum(model(inputs, targets).values())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        optimiser.step()

    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    rate = steps * batch / (time.perf_counter() - start)
    return {"images_per_s": rate, "torch": torch.__version__, "torchvision": torchvision.__version__,
            "parameters": sum(p.numel() for p in model.parameters())}


def reference(python: str, batch: int, steps: int) -> dict:
    """Run `torchvision_rate` in a child process; ``{"skipped": reason}`` when it cannot."""
    child = subprocess.run([python, __file__, "--child", "--batch", str(batch), "--steps", str(steps)],
                           capture_output=True, text=True)
    if child.returncode != 0:
        reason = (child.stderr.strip().splitlines() or ["no output"])[-1]
        return {"skipped": f"{python}: {reason}"}
    return json.loads(child.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16, help="images per step (the paper: 8 + 8)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per model, after one warm-up")
    parser.add_argument("--torch-python", default=sys.executable, help="Python with torch and torchvision")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(torchvision_rate(args.batch, args.steps)))
        return

    import keras

    from bubblenet.ssd.model import build_ssd

    paper = keras_rate("paper", args.batch, args.steps)
    lite = keras_rate("lite", args.batch, max(args.steps, 10))
    ref = reference(args.torch_python, args.batch, args.steps)
    result = {
        "benchmark": "train_step", "cpu_cores": os.cpu_count(), "batch": args.batch,
        "keras": keras.__version__, "backend": keras.backend.backend(),
        "paper_images_per_s": round(paper, 2), "paper_parameters": build_ssd("paper").count_params(),
        "lite_images_per_s": round(lite, 2), "lite_parameters": build_ssd("lite").count_params(),
        "reference": "torchvision ssd300_vgg16, 2 input channels, from scratch",
    }
    if "skipped" in ref:
        result["reference_skipped"] = ref["skipped"]
    else:
        result.update({
            "reference_images_per_s": round(ref["images_per_s"], 2), "reference_parameters": ref["parameters"],
            "torch": ref["torch"], "torchvision": ref["torchvision"],
            "paper_over_reference": round(paper / ref["images_per_s"], 2),
            "meets_target": paper >= ref["images_per_s"],
        })
    print(json.dumps(result))


if __name__ == "__main__":
    main()
