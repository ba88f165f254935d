"""Project plumbing: Docker lint, package data, atomic outputs, run records."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bubblenet.catalogues.tables import CATALOGUES, SELECTIONS, packaged_path
from bubblenet.outputs import atomic_path, run_record, write_json
from conftest import REPO


def test_dockerfile_passes_hadolint():
    beside = Path(sys.executable).parent / "hadolint"  # the 'test' extra installs it in the venv
    hadolint = str(beside) if beside.exists() else shutil.which("hadolint")
    assert hadolint, "hadolint is installed by the 'test' extra"
    result = subprocess.run([hadolint, str(REPO / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_build_script_is_valid_bash_and_reads_the_version(tmp_path):
    assert subprocess.run(["bash", "-n", str(REPO / "build.sh")]).returncode == 0
    from bubblenet import __version__

    # Run the real script with a stand-in `docker` that records its arguments: the tags it would build.
    fake = tmp_path / "docker"
    fake.write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$DOCKER_ARGS"\n')
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}", "DOCKER_ARGS": str(tmp_path / "args")}
    result = subprocess.run(["bash", str(REPO / "build.sh"), "--pull"], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    args = (tmp_path / "args").read_text().splitlines()
    assert args[:5] == ["build", "--tag", f"bubblenet:{__version__}", "--tag", "bubblenet:latest"], args
    assert args[5:] == ["--pull", "."], args  # extra arguments pass through; the context is the repository
    assert f"built bubblenet:{__version__} " in result.stdout


def test_shipped_files_exist_with_citations():
    for filename, _, _ in CATALOGUES.values():
        assert packaged_path(filename).is_file()
    for filename in SELECTIONS.values():
        assert packaged_path(filename).is_file()
    citation = packaged_path("CITATION.md").read_text()
    for paper in ("Jayasinghe et al. 2019", "Simpson et al. 2012", "Anderson et al. 2014", "Nishimoto et al. 2025"):
        assert paper in citation


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.json"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert not target.exists() and list(tmp_path.iterdir()) == []
    write_json(target, {"a": 1})
    assert target.read_text().strip().startswith("{") and oct(target.stat().st_mode)[-3:] != "600"


def test_run_record_has_versions_and_seed():
    record = run_record("synth", {"pixscale": 2.4, "_section": "synth"}, seed=7)
    assert record["seed"] == 7 and record["options"] == {"pixscale": 2.4}
    assert {"python", "numpy", "astropy", "bubblenet"} <= set(record["versions"])


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    test_line = next(line for line in readme.splitlines() if "pytest" in line and line.startswith("python3.11"))
    assert test_line.strip() in ci
