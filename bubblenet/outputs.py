"""Writing outputs safely and recording how they were made.

Every file bubblenet writes goes through `atomic_path`: it is written under a
temporary name in the same folder and renamed into place only when complete,
so an interrupted run never leaves a half-written file behind.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import importlib.metadata
import json
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator

from bubblenet.errors import InputError

__all__ = ["atomic_path", "write_json", "ensure_dir", "run_record"]

#: Packages whose versions are recorded with every output.
RECORDED_PACKAGES = (
    "bubblenet", "numpy", "scipy", "astropy", "reproject", "regions", "photutils",
    "tensorflow", "tensorflow-cpu", "keras", "keras-tuner", "scikit-learn", "matplotlib",
)


def ensure_dir(path: str | os.PathLike) -> Path:
    """Create a writable output folder or raise `InputError` naming it."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"cannot create output folder ({err.strerror})", path) from None
    if not os.access(path, os.W_OK):
        raise InputError("output folder is not writable", path)
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to `path`; move it onto `path` on success.

    On an exception the temporary file is removed and `path` is untouched.
    The temporary name ends with `path`'s suffix, for writers that check it
    (Keras wants ``.keras``).
    """
    path = Path(path)
    ensure_dir(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".part{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual mode
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write `obj` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
    return Path(path)


def package_versions() -> dict[str, str]:
    """Installed versions of the packages that shape results."""
    versions = {"python": platform.python_version()}
    for name in RECORDED_PACKAGES:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[name] = importlib.metadata.version(name)
    return versions


def run_record(command: str, options: dict[str, Any], *, seed: int | None = None) -> dict[str, Any]:
    """What to store beside a run's outputs so it can be repeated.

    Parameters
    ----------
    command : str
        The verb, e.g. ``"synth"``.
    options : dict
        The fully resolved options (config file merged with flags).
    seed : int, optional
        The random seed used.
    """
    return {
        "command": command,
        "argv": sys.argv,
        "options": {k: v for k, v in options.items() if not k.startswith("_")},
        "seed": seed,
        "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(),
        "versions": package_versions(),
    }
