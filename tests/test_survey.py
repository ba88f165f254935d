"""Survey runs: Dask workers give the single-process catalogue; killed runs resume without loss or duplicates."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table

from bubblenet.detection.survey import CACHE_DIR, PARTIAL_DIR

#: A quick search of the 9.6″/px three-tile sky (`fit_sky`): about 1400 windows in all.
QUICK = ["--sizes", "900", "1800", "--stride", "0.5", "--no-previews"]


def _detect(sky: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "bubblenet.detect", "--survey", str(sky), "--out", str(out), "-q", *QUICK, *extra]


def _assert_same_catalogue(a: Path, b: Path) -> None:
    first, second = Table.read(a / "bubbles.ecsv"), Table.read(b / "bubbles.ecsv")
    assert len(first) == len(second) > 0
    for name in first.colnames:
        assert np.array_equal(np.asarray(first[name]), np.asarray(second[name])), name
    assert first.meta["windows"] == second.meta["windows"]


@pytest.fixture(scope="module")
def reference(fit_sky, tmp_path_factory):
    """The single-process catalogue of the three-tile sky."""
    from bubblenet.detect import main

    out = tmp_path_factory.mktemp("reference") / "out"
    assert main(["--survey", str(fit_sky), "--out", str(out), "-q", *QUICK]) == 0
    assert not (out / PARTIAL_DIR).exists() and not (out / CACHE_DIR).exists()
    return out


def test_tile_results_round_trip_and_stale_results_are_dropped(tmp_path):
    from bubblenet.detection.runs import Manifest, TileResult

    result = TileResult("GLM_03000+0000_mosaic_I4", np.array([[30.1, 0.2]]), np.array([40.0]), np.array([0.9]),
                        np.array([[1.0, 2.0, 3.0, 4.0]]), 17)
    manifest = Manifest(tmp_path / "p", "key-a")
    manifest.add(result)
    again = Manifest(tmp_path / "p", "key-a").done(result.tile)
    assert again.windows == 17 and np.array_equal(again.boxes, result.boxes)
    assert Manifest(tmp_path / "p", "key-b").done(result.tile) is None  # another model or search: start over
    (tmp_path / "p" / f"{result.tile}.npz").write_bytes(b"truncated")
    assert Manifest(tmp_path / "p", "key-b").done(result.tile) is None  # unreadable: searched again


@pytest.mark.slow
def test_three_dask_workers_give_the_single_process_catalogue(fit_sky, reference, tmp_path):
    out = tmp_path / "dask"
    run = subprocess.run(_detect(fit_sky, out, "--workers", "3"), capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    _assert_same_catalogue(reference, out)
    assert "INFO distributed" not in run.stderr and "distributed.nanny" not in run.stderr  # Dask's chatter stays quiet
    workers = json.loads((out / "detect_run.json").read_text())["workers"]
    assert workers["dashboard"].startswith("http") and len(workers["peak_rss_mb"]) == 3


def _wait_for(predicate, timeout: float, proc=None) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the run ended before the kill point: {proc.stderr.read()[-2000:]}")
        assert time.monotonic() < end, "timed out waiting for the run"
        time.sleep(0.05)


@pytest.mark.parametrize("seed,workers", [(1, None), pytest.param(2, 2, marks=pytest.mark.slow)])  # 2 workers: 76 s
def test_killed_driver_resumes_to_the_same_catalogue(fit_sky, reference, tmp_path, seed, workers):
    """Kill the whole run (driver and its local workers) at a random point, then run the same command again."""
    rng = random.Random(seed)
    out = tmp_path / "killed"
    command = _detect(fit_sky, out, *(["--workers", str(workers)] if workers else []))
    done_before_kill = rng.randint(0, 1)
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _wait_for(lambda: len(list((out / PARTIAL_DIR).glob("*.npz"))) >= done_before_kill
                  and (out / CACHE_DIR).exists() and any((out / CACHE_DIR).glob("*.npy")), 300, proc)
        time.sleep(rng.uniform(0.0, 1.5))
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not (out / "bubbles.ecsv").exists()
    finished = list((out / PARTIAL_DIR).glob("*.npz"))
    from bubblenet.detection.runs import TileResult

    for path in finished:  # only whole results under final names (temporary names may be left)
        TileResult.load(path)

    run = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    _assert_same_catalogue(reference, out)
    assert not (out / PARTIAL_DIR).exists()
    assert not list(out.rglob(".*.part*")), "temporary files left behind"
    assert len(finished) < 3  # the kill did interrupt the survey
    assert json.loads((out / "detect_run.json").read_text())["resumed_tiles"] == len(finished)


def test_worker_killed_mid_tile_loses_nothing(fit_sky, reference, tmp_path):
    """A Dask worker killed while it searches a tile: Dask runs the task again elsewhere, the catalogue is the same."""
    from dask.distributed import Client, LocalCluster

    rng = random.Random(3)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        out = tmp_path / "worker"
        proc = subprocess.Popen(_detect(fit_sky, out, "--scheduler", cluster.scheduler_address),
                                stderr=subprocess.PIPE, text=True)
        _wait_for(lambda: any(client.processing().values()), 300, proc)
        time.sleep(rng.uniform(0.5, 3.0))
        busy = [address for address, tasks in client.processing().items() if tasks]
        assert busy, "no worker was busy at the kill point"
        pids = client.run(os.getpid, workers=busy[:1])
        os.kill(next(iter(pids.values())), signal.SIGKILL)
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-2000:]
    _assert_same_catalogue(reference, out)


def test_cluster_options_are_checked(fit_sky, tmp_path, capsys):
    from bubblenet.detect import main

    assert main(["--survey", str(fit_sky), "--out", str(tmp_path / "a"), "--workers", "0"]) == 2
    assert "--workers" in capsys.readouterr().err
    assert main(["--survey", str(fit_sky), "--out", str(tmp_path / "b"), "--workers", "2",
                 "--scheduler", "tcp://127.0.0.1:1"]) == 2
    assert "not both" in capsys.readouterr().err
    assert main(["--survey", str(fit_sky), "--out", str(tmp_path / "c"), "--scheduler", "tcp://127.0.0.1:9",
                 *QUICK, "-q"]) == 2
    err = capsys.readouterr().err
    assert "Dask scheduler" in err and "tcp://127.0.0.1:9" in err
    assert not (tmp_path / "c" / "bubbles.ecsv").exists()
