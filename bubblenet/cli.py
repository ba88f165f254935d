"""The ``bubblenet`` command and what every verb shares.

Each verb lives in its own module with a ``main(argv=None, prog=None)``
function, so that ``python -m bubblenet.<verb>`` and ``bubblenet <verb>``
run the same code. This module is the only place that knows about `argv`,
config files, logging set-up and exit codes; the library below it takes
explicit arguments.

Exit status: 0 on success, 2 on bad input (one message on stderr, naming the
file and the problem), 130 when interrupted.

Importing this module quiets TensorFlow's C++ start-up lines (absl's
"All log messages before absl::InitializeLog()", the oneDNN and CPU-feature
notices, ``I0000``/``W0000``/``E0000`` lines) unless ``-v``/``--verbose`` is on
the command line: see `quiet_tensorflow`. It must therefore be imported
before TensorFlow is.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.abc
import importlib.util
import logging
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import yaml

from bubblenet.errors import ConfigError, InputError

__all__ = ["main", "make_parser", "run_verb", "load_config_section", "quiet_tensorflow", "VERBS"]

#: Verb name -> (module, one-line help). Modules are imported only when used,
#: so ``bubblenet --help`` stays fast.
VERBS: dict[str, tuple[str, str]] = {
    "synth": ("bubblenet.synth.__main__", "write a synthetic GLIMPSE/MIPSGAL-like survey"),
    "preview": ("bubblenet.preview", "draw a PNG of a tile: 24 µm red, 8 µm green, catalogue circles"),
    "info": ("bubblenet.info", "list FITS images, their WCS and how the two bands pair up"),
    "register": ("bubblenet.register", "measure an image's WCS offset on compact HII regions; write fixed copies"),
    "data": ("bubblenet.data", "show the training data: a batch montage, the split, negative clusters"),
    "fit": ("bubblenet.fit", "train the SSD detector on a survey, validate on whole tiles, export"),
    "tune": ("bubblenet.tune", "search fit's hyper-parameters by Bayesian optimisation of validation F2"),
    "detect": ("bubblenet.detect", "find bubbles in survey images: a sky catalogue, DS9 regions and previews"),
    "evaluate": ("bubblenet.evaluate", "score detections against MWP and cross-match with other catalogues"),
    "export": ("bubblenet.export", "write a trained detector as a TensorFlow SavedModel"),
}

log = logging.getLogger("bubblenet")

# -- TensorFlow's start-up noise ---------------------------------------------------------
#
# Importing TensorFlow prints, straight to file descriptor 2 from C++:
#
#   WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
#   I0000 00:00:1796109868.767605 7769 port.cc:153] oneDNN custom operations are on. ...
#   I0000 00:00:1796109868.797376 7769 cpu_feature_guard.cc:227] This TensorFlow binary is optimized ...
#   To enable the following instructions: AVX2 AVX512F ..., rebuild TensorFlow with the appropriate compiler flags.
#
# (TF 2.21: the first pair twice, from two libraries.) TF_CPP_MIN_LOG_LEVEL=2 hides
# the CPU-feature notice and later INFO/WARNING lines, but not the oneDNN notice nor
# absl's warning, which bypass it; only TF_ENABLE_ONEDNN_OPTS=0 would stop the
# notice, and that changes the numbers. So, besides the variable, the import of
# `tensorflow` itself runs with descriptor 2 sent to a temporary file, and what it
# wrote comes back without those lines (everything, if the import fails).

_TF_LEVEL = "TF_CPP_MIN_LOG_LEVEL"
#: Lines dropped from what ``import tensorflow`` writes to stderr.
_TF_NOISE = re.compile(
    rb"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    # absl/glog prefix: "I0000 00:00:1796109868.767605    7769 port.cc:153] " (seconds since 1970 before
    # absl::InitializeLog, else "I0131 12:34:56.789012 ...").
    rb"|[IWE]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [^ \]]+:\d+\] "
    rb"|To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags\."
)
_quiet = {"set_level": False}


def _asks_verbose(argv: Sequence[str]) -> bool:
    """Whether `argv` has ``-v`` or ``--verbose`` (or an abbreviation argparse accepts) before any ``--``."""
    for arg in argv:
        if arg == "--":
            return False
        if arg == "-v" or (len(arg) > 3 and "--verbose".startswith(arg)):
            return True
    return False


@contextlib.contextmanager
def _tensorflow_noise_filtered() -> Iterator[None]:
    """Send descriptor 2 to a temporary file meanwhile; write it back without `_TF_NOISE` lines."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield  # no usable descriptor 2: nothing to filter
        return
    failed = False
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        except BaseException:
            failed = True
            raise
        finally:
            with contextlib.suppress(Exception):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            lines = capture.read().splitlines(keepends=True)
            kept = b"".join(line for line in lines if failed or not _TF_NOISE.match(line))
            if kept:
                os.write(2, kept)


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` once, with a loader that runs the import under `_tensorflow_noise_filtered`."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "tensorflow":
            return None
        _uninstall_import_hook()  # one-shot, and no recursion in the look-up below
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _FilteringLoader(spec.loader)
        return spec


class _FilteringLoader(importlib.abc.Loader):
    def __init__(self, loader):
        self._loader = loader

    def __getattr__(self, name):
        return getattr(self._loader, name)

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        # The module keeps the real loader (TensorFlow and importlib.resources look at it).
        module.__loader__ = self._loader
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        with _tensorflow_noise_filtered():
            self._loader.exec_module(module)


def _uninstall_import_hook() -> None:
    sys.meta_path[:] = [finder for finder in sys.meta_path if not isinstance(finder, _QuietTensorFlowImport)]


def quiet_tensorflow(verbose: bool = False) -> None:
    """Quiet TensorFlow's C++ start-up lines, or (``verbose``) let them through.

    Quiet: set ``TF_CPP_MIN_LOG_LEVEL=2`` unless the environment already sets it
    (a user's value is never overridden), and, unless that value is ``0``, filter
    what the first ``import tensorflow`` writes to stderr. Verbose: undo both
    (only what this function did). Takes effect only before TensorFlow is
    imported; called when this module is imported (reading ``sys.argv``) and
    again by `run_verb` once the options are known.
    """
    if "tensorflow" in sys.modules:
        return
    if verbose:
        if _quiet["set_level"]:
            os.environ.pop(_TF_LEVEL, None)
            _quiet["set_level"] = False
        _uninstall_import_hook()
        return
    if _TF_LEVEL not in os.environ:
        os.environ[_TF_LEVEL] = "2"
        _quiet["set_level"] = True
    if os.environ[_TF_LEVEL].strip() != "0" and not any(isinstance(f, _QuietTensorFlowImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowImport())


quiet_tensorflow(_asks_verbose(sys.argv[1:]))


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``bubblenet <verb> [options]``; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        _print_verbs(sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    if argv[0] == "--version":
        from bubblenet import __version__

        print(f"bubblenet {__version__}")
        return 0
    verb, rest = argv[0], argv[1:]
    if verb not in VERBS:
        print(f"bubblenet: error: unknown verb {verb!r}; choose from {', '.join(VERBS)}", file=sys.stderr)
        return 2
    module = importlib.import_module(VERBS[verb][0])
    return module.main(rest, prog=f"bubblenet {verb}")


def _print_verbs(stream) -> None:
    print("usage: bubblenet <verb> [options]   (or: python -m bubblenet.<verb>)\n", file=stream)
    print("verbs:", file=stream)
    for name, (_, text) in VERBS.items():
        print(f"  {name:<10} {text}", file=stream)
    print("\n'bubblenet <verb> --help' describes each verb's options.", file=stream)


def make_parser(prog: str | None, description: str, *, section: str) -> argparse.ArgumentParser:
    """An argument parser with the options every verb has.

    Parameters
    ----------
    prog : str or None
        Program name shown in messages (``bubblenet synth``).
    description : str
        First paragraph of ``--help``.
    section : str
        Name of this verb's section in a config file.
    """
    parser = argparse.ArgumentParser(
        prog=prog or f"python -m bubblenet.{section}",
        description=description,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.set_defaults(_section=section)
    group = parser.add_argument_group("common options")
    group.add_argument(
        "--config",
        metavar="YAML",
        help=f"config file (e.g. experiments/demo.yaml); its '{section}:' section "
        "sets defaults that command-line flags override",
    )
    noise = group.add_mutually_exclusive_group()
    noise.add_argument("-v", "--verbose", action="store_true", help="log debugging detail")
    noise.add_argument("-q", "--quiet", action="store_true", help="log warnings and errors only; no progress bars")
    return parser


def add_output_options(parser: argparse.ArgumentParser, default: Path | None, *, help: str = "output folder",
                       overwrite: str = "write into an output folder that holds other things (never needed to "
                                        "resume or redo this verb's own output)") -> None:
    """``--out`` and ``--overwrite``: the output folder and the permission to write into someone else's
    (`bubblenet.outputs.claim_output_dir`)."""
    parser.add_argument("--out", type=Path, default=default, help=help)
    parser.add_argument("--overwrite", action="store_true", help=overwrite)


def load_config_section(path: str | os.PathLike, section: str) -> dict[str, Any]:
    """Read one verb's section of a YAML config file.

    A bare name such as ``demo`` is looked up as ``experiments/demo.yaml``.

    Raises
    ------
    ConfigError
        If the file is missing, is not YAML, or the section is not a mapping.
    """
    path = Path(path)
    if not path.exists() and path.suffix == "" and Path("experiments", f"{path}.yaml").exists():
        path = Path("experiments", f"{path}.yaml")
    if not path.is_file():
        raise ConfigError("config file not found", path)
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"not valid YAML: {getattr(err, 'problem', None) or err}{where}", path) from None
    if not isinstance(doc, dict):
        raise ConfigError("expected a mapping of verb sections at the top level", path)
    values = doc.get(section) or {}
    if not isinstance(values, dict):
        raise ConfigError(f"section '{section}' must be a mapping of option: value", path)
    return values


def _apply_config(parser: argparse.ArgumentParser, path: str, section: str, ignore: Sequence[str] = ()) -> None:
    """Turn a config section into parser defaults, converted like flags are; keys in `ignore` are skipped."""
    # A key may be the option's name ("max-pixels", "l") or its dest ("max_pixels", "l_range").
    # Option names first: two flags may share a dest (--label-selected-only / --label-all-bubbles), and
    # each name must keep its own meaning.
    usable = [a for a in parser._actions if a.dest not in ("help", "config", "_section")]
    actions = {option.lstrip("-").replace("-", "_"): action for action in usable for option in action.option_strings}
    for action in usable:
        actions.setdefault(action.dest, action)
    defaults, given_by = {}, {}
    for key, value in load_config_section(path, section).items():
        dest = str(key).replace("-", "_")
        if dest in ignore:
            continue
        if dest not in actions:
            raise ConfigError(
                f"unknown option '{key}' in section '{section}' "
                f"(known: {', '.join(sorted({a.option_strings[0].lstrip('-') for a in actions.values() if a.option_strings}))})",
                path,
            )
        action = actions[dest]
        dest = action.dest
        convert = action.type or (lambda v: v)
        try:
            if action.nargs == 0:  # a flag (store_true or store_false): YAML says whether it is given
                if not isinstance(value, bool):
                    raise ValueError(f"expected true or false, got {value!r}")
                defaults[dest] = action.const if value else not action.const
            elif value is None:
                defaults[dest] = None
            elif action.nargs not in (None, "?"):
                values = value if isinstance(value, list) else [value]
                defaults[dest] = [convert(v) if isinstance(v, str) else v for v in values]
            else:
                defaults[dest] = convert(value) if isinstance(value, str) else value
            if action.choices and defaults[dest] not in action.choices and str(defaults[dest]) in action.choices:
                defaults[dest] = str(defaults[dest])  # "bands: 8" in YAML is the number 8
        except (TypeError, ValueError, argparse.ArgumentTypeError) as err:
            raise ConfigError(f"option '{key}': {err}", path) from None
        earlier = given_by.setdefault(dest, (key, defaults[dest]))
        if earlier[1] != defaults[dest]:
            raise ConfigError(f"options '{earlier[0]}' and '{key}' contradict each other", path)
    parser.set_defaults(**defaults)
    for action in parser._actions:
        if action.dest in defaults:
            action.required = False  # the config file gives it


def setup_logging(verbose: bool = False, quiet: bool = False) -> None:
    """Log to stderr: INFO by default, DEBUG with ``--verbose``, WARNING with ``--quiet``."""
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", force=True)
    # Third-party libraries are noisy at INFO (matplotlib fonts).
    # (astropy keeps its own logger class: configuring it before import breaks astropy.)
    for name in ("matplotlib", "PIL", "reproject"):
        logging.getLogger(name).setLevel(max(level, logging.WARNING))


def run_verb(
    parser: argparse.ArgumentParser,
    run: Callable[[argparse.Namespace], int | None],
    argv: Sequence[str] | None,
) -> int:
    """Parse `argv` (with any config file) and call `run`, mapping errors to exit codes.

    Returns
    -------
    int
        0 on success, 2 on bad input, 130 on Ctrl-C.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    section = parser.get_default("_section")
    # Find --config alone first: the verb's own parser would stop at a required
    # option that the config file is about to give.
    early = argparse.ArgumentParser(add_help=False)
    early.add_argument("--config")
    first, _ = early.parse_known_args(argv)
    try:
        if first.config:
            # A verb may read other verbs' sections first (tune: fit's, then its own).
            for other, ignore in parser.get_default("_base_sections") or ():
                _apply_config(parser, first.config, other, ignore)
            _apply_config(parser, first.config, section)
        args = parser.parse_args(argv)
        quiet_tensorflow(args.verbose)  # a config file may have set it; verbs import TensorFlow in `run`
        setup_logging(args.verbose, args.quiet)
        status = run(args)
    except InputError as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted", file=sys.stderr)
        return 130
    return int(status or 0)


def progress_enabled(args: argparse.Namespace) -> bool:
    """Whether to draw tqdm progress bars (not with ``--quiet``)."""
    return not getattr(args, "quiet", False)
