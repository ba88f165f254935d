"""The documentation builds without warnings, and its examples run.

Both builds run Sphinx in a subprocess, as a user would
(``python -m sphinx -b html docs docs/_build/html``), on a copy of ``docs/``
in a temporary folder, so that the pages autosummary generates never touch
the checkout and two builds (``pytest -n 2``) cannot race. The doctest build runs the examples of the narrative pages (the
tutorial draws the demo sky, about 15 s) and of every docstring the API
reference pulls in.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"


def _sphinx(builder: str, out: Path, *flags: str) -> subprocess.CompletedProcess:
    source = out / "docs"
    shutil.copytree(DOCS, source, ignore=shutil.ignore_patterns("_build", "generated", "__pycache__"))
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    env = dict(os.environ, MPLBACKEND="Agg", TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=path)
    return subprocess.run(
        [sys.executable, "-m", "sphinx", *flags, "-b", builder, str(source), str(out / builder),
         "-d", str(out / "doctrees")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )


def _tail(run: subprocess.CompletedProcess, n: int = 6000) -> str:
    return (run.stdout + "\n" + run.stderr)[-n:]


def test_html_builds_without_warnings(tmp_path):
    run = _sphinx("html", tmp_path, "-W", "--keep-going")
    assert run.returncode == 0, _tail(run)
    html = tmp_path / "html"
    for page in ("index", "quickstart", "tutorial", "method", "measurements", "cli", "api/index"):
        assert (html / f"{page}.html").is_file(), page
    api = html / "api" / "generated"
    for module in ("sky", "catalogues", "training_data", "ssd", "training", "detection", "evaluation", "synth",
                   "conventions", "outputs", "plotting", "errors"):
        assert (api / f"bubblenet.{module}.html").is_file(), module
    if (REPO / "bubblenet" / "api.py").is_file():
        assert (api / "bubblenet.api.html").is_file()
    # The command-line page carries every verb's --help.
    assert (html / "cli.html").read_text(encoding="utf-8").count("usage: bubblenet") >= 10


def test_doctests_pass(tmp_path):
    run = _sphinx("doctest", tmp_path)
    summary = run.stdout[run.stdout.rfind("Doctest summary"):]
    assert run.returncode == 0, _tail(run)
    counts = {what: int(n) for n, what in re.findall(r"^\s*(\d+) (tests?|failures? in \w+(?: code)?)\s*$",
                                                      summary, flags=re.M)}
    tests = counts.get("tests", counts.get("test", 0))
    failures = sum(n for what, n in counts.items() if what.startswith("failure"))
    assert tests >= 20, summary  # the narrative pages alone hold more
    assert failures == 0, summary
