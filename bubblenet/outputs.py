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

__all__ = ["atomic_path", "write_json", "ensure_dir", "claim_output_dir", "run_record", "OWNER_FILE"]

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


#: Written in every output folder a verb claims: which verbs' outputs the folder holds.
OWNER_FILE = ".bubblenet-output.json"

#: Record files that mark a folder as a verb's output (folders written before `OWNER_FILE` existed).
_RECORDS = {"detect_run.json": "detect", "synth_run.json": "synth", "evaluation.json": "evaluate",
            "saved_model.pb": "export", "batch_montage.png": "data"}


def folder_owners(path: str | os.PathLike) -> set[str]:
    """The verbs whose outputs a folder holds, from its `OWNER_FILE` or the run records in it."""
    path = Path(path)
    owners: set[str] = set()
    with contextlib.suppress(OSError, ValueError, TypeError, AttributeError):
        owners.update(json.loads((path / OWNER_FILE).read_text())["verbs"])
    with contextlib.suppress(OSError, ValueError, TypeError, AttributeError):
        owners.add(json.loads((path / "run.json").read_text())["command"])  # fit, tune
    owners.update(verb for name, verb in _RECORDS.items() if (path / name).exists())
    return owners


def claim_output_dir(path: str | os.PathLike, verb: str, *, overwrite: bool = False,
                     accept: tuple[str, ...] = ()) -> Path:
    """Create `path`, or reuse it when it is empty or already holds `verb`'s outputs (to resume or redo).

    A folder that holds anything else is refused unless `overwrite`: nothing
    of the user's is written over without asking. The folder is then marked
    as `verb`'s (`OWNER_FILE`).

    Parameters
    ----------
    path : path-like
        The output folder.
    verb : str
        The verb writing there (``"detect"``, ...).
    overwrite : bool
        Write into a folder that holds other things (``--overwrite``).
    accept : tuple of str
        Other verbs whose folders this verb may also write into (``evaluate``
        writes beside ``detect``'s catalogue).

    Raises
    ------
    InputError
        If `path` is a file, or a non-empty folder of something else without `overwrite`.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError("the output folder's name is taken by a file", path)
    owners = folder_owners(path) if path.is_dir() else set()
    if path.is_dir() and any(path.iterdir()) and not owners & {verb, *accept} and not overwrite:
        raise InputError(f"the output folder is not empty and holds no earlier '{verb}' output; give an empty or "
                         "new folder, or --overwrite to write into it anyway", path)
    ensure_dir(path)
    if verb not in owners:
        write_json(path / OWNER_FILE, {"verbs": sorted(owners | {verb})})
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
