"""Benchmark: training-data throughput against what training consumes, on this CPU.

Measures, in one run on a synthetic survey:

* the `tf.data` stream of `bubblenet.training_data.stream.training_stream` (positives and
  clustered negatives, 8 + 8 per step) in samples per second;
* the train-step rate of the default (``lite``) SSD on the same batches, with
  their encoded targets, AdamW and the MultiBox loss, in samples per second;
* resident memory before and after three more epochs of the stream, to
  show it stays flat.

Target (issue #3): the pipeline produces at least 3x what training consumes.
Prints one JSON line.

    python benchmarks/bench_pipeline.py [--steps 40]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402


def rss_mb() -> float:
    """Current resident memory, MB (Linux)."""
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    args = parser.parse_args()

    from bubblenet.training_data.samples import DataConfig, TrainingData, survey_inputs
    from bubblenet.ssd.model import PRESETS, build_ssd
    from bubblenet.training_data.negatives import cluster_negatives
    from bubblenet.training_data.splits import split_tiles
    from bubblenet.training_data.stream import training_stream
    from bubblenet.synth import Region, SynthConfig, make_survey
    from bubblenet.ssd.targets import TargetEncoder
    from bubblenet.training.validation import compile_model

    size = PRESETS["lite"]["anchors"].image_size

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        make_survey(tmp / "sky", SynthConfig(Region(24.0, 34.0, -1.0, 1.0), 2.4, seed=0))
        tiles, catalogue, selection = survey_inputs(folder=tmp / "sky")
        split = split_tiles(tiles, test_longitudes=[30.0], val=0, seed=0)
        data = TrainingData(tiles, catalogue, selection, split, "train",
                            DataConfig(size=size, negatives_per_tile=200), tmp / "cache")
        pool = np.stack([data.negative(i).image for i in range(len(data.negatives))])
        clusters = cluster_negatives(pool, k=10, seed=0)
        stream = iter(training_stream(data, clusters))
        next(stream)  # warm up threads
        start = time.perf_counter()
        batches = [next(stream) for _ in range(args.steps)]
        pipeline_rate = args.steps * 16 / (time.perf_counter() - start)
        # Memory: after the timed steps (every tile's cache pages touched), then after 3 more epochs.
        epoch_steps = max(len(data.positives) // 8, 1)
        before = rss_mb()
        for _ in range(3 * epoch_steps):
            next(stream)
        after = rss_mb()

        model = compile_model(build_ssd("lite"))
        encoder = TargetEncoder(PRESETS["lite"]["anchors"])
        targets = []
        for _, boxes, classes in batches:
            offsets, labels = encoder.batch(boxes, classes)
            targets.append(np.concatenate([offsets, np.asarray(labels, np.float32)[..., None]], axis=-1))
        model.train_on_batch(batches[0][0], targets[0])  # build and compile the step
        start = time.perf_counter()
        for (images, _, _), target in zip(batches, targets):
            model.train_on_batch(images, target)
        train_rate = args.steps * 16 / (time.perf_counter() - start)

    print(json.dumps({
        "benchmark": "training_pipeline", "size": size, "cpu_cores": os.cpu_count(),
        "positives": len(data.positives), "negative_pool": len(data.negatives),
        "pipeline_samples_per_s": round(pipeline_rate, 1),
        "train_step_samples_per_s": round(train_rate, 1), "consumer": "SSD lite preset, AdamW + MultiBox",
        "ratio": round(pipeline_rate / train_rate, 2), "target_ratio": 3.0,
        "meets_target": pipeline_rate >= 3 * train_rate,
        "rss_mb_before": round(before), "rss_mb_after_3_epochs": round(after), "epoch_steps": epoch_steps,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }))


if __name__ == "__main__":
    main()
