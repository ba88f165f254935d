"""Sphinx configuration of the bubblenet documentation.

Build the site with ``python -m sphinx -b html docs docs/_build/html`` and run
the examples with ``python -m sphinx -b doctest docs docs/_build/doctest``
(``tests/test_docs.py`` does both). Nothing here reaches the network.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import sys
import types
from pathlib import Path

DOCS = Path(__file__).resolve().parent
if (DOCS.parent / "bubblenet" / "__init__.py").is_file():
    sys.path.insert(0, str(DOCS.parent))  # the package of this checkout, installed or not

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")

import bubblenet  # noqa: E402

# ``bubblenet/__main__.py`` runs the command line at import (no ``__name__``
# guard), and autosummary imports every module it lists; give it an empty
# stand-in so that building the docs does not run ``bubblenet`` with
# sphinx-build's arguments. It is private, so it is not documented anyway.
sys.modules.setdefault("bubblenet.__main__", types.ModuleType("bubblenet.__main__"))

project = "bubblenet"
author = "the bubblenet developers"
copyright = "the bubblenet developers"  # noqa: A001
release = version = bubblenet.__version__

extensions = [
    "myst_parser",
    "numpydoc",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.doctest",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
# Code in backquotes is a cross-reference where it can be one, and plain code
# where it cannot (numpydoc docstrings write `name` for parameters).
default_role = "py:obj"

# -- MyST (the narrative pages are Markdown) ---------------------------------
myst_enable_extensions = ["colon_fence", "deflist", "dollarmath"]
myst_heading_anchors = 3

# -- API reference -----------------------------------------------------------
autosummary_generate = True
autosummary_imported_members = False
autodoc_member_order = "bysource"
# Methods that override Keras' (``Callback.on_epoch_end``, ...) would inherit
# its docstrings, which are not numpydoc.
autodoc_inherit_docstrings = False
autodoc_typehints = "none"  # numpydoc's Parameters sections say the types
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ImportError:  # a parent package is gone
        return False


# autosummary writes a page per module into api/generated/ and never deletes
# one; drop the pages of modules that no longer exist, or the build would
# warn about them.
for _stub in (DOCS / "api" / "generated").glob("bubblenet*.rst"):
    if not _module_exists(_stub.stem):
        _stub.unlink(missing_ok=True)

#: Module of the high-level Python API; documented as soon as it exists.
API_MODULE = "bubblenet.api"
HAVE_API = _module_exists(API_MODULE)

# -- Doctests ------------------------------------------------------------------
doctest_global_setup = """
import numpy as np
np.set_printoptions(legacy=False)
"""

# -- HTML ----------------------------------------------------------------------
html_theme = "alabaster"
html_title = f"bubblenet {release}"
html_static_path: list[str] = []
html_theme_options = {
    "description": "Infrared bubbles in Spitzer images, found by an SSD detector",
    "fixed_sidebar": True,
    "page_width": "1100px",
    "sidebar_width": "230px",
}


# -- Extensions of our own -----------------------------------------------------

def _verb_help(verb: str) -> str:
    """``bubblenet <verb> --help``, as the command prints it."""
    from bubblenet.cli import VERBS

    module = importlib.import_module(VERBS[verb][0])
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"
    try:
        return module.build_parser(f"bubblenet {verb}").format_help()
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old


def _verbs_help() -> str:
    """``bubblenet --help``."""
    import io

    from bubblenet import cli

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        cli.main(["--help"])
    return out.getvalue()


def _api_section(app, docname, source) -> None:
    """Put the table of `bubblenet.api` into the API page once the module exists."""
    if docname != "api/index":
        return
    if HAVE_API:
        text = ("The functions most users need, importable from ``bubblenet`` itself.\n\n"
                ".. autosummary::\n\n"
                + "".join(f"   {API_MODULE}.{name}\n" for name in
                          ("find_bubbles", "load_detector", "score", "crossmatch", "train")
                          if hasattr(importlib.import_module(API_MODULE), name)))
    else:
        text = ("``bubblenet.api`` (``find_bubbles``, ``load_detector``, ``score``, ``crossmatch``,\n"
                "``train``) is not in this checkout yet; it is listed here once it is.\n")
    source[0] = source[0].replace(".. bubblenet-api-summary::\n", text)


def _module_doctest_globals(app, docname, source) -> None:
    """Run the examples of an API page in its module's namespace, as ``pytest --doctest-modules`` does.

    Docstring examples use their module's names without importing them; the
    doctest builder would otherwise run them in an empty namespace.
    """
    prefix = "api/generated/"
    if docname.startswith(prefix):
        module = docname[len(prefix):]
        source[0] += ("\n\n.. testsetup:: *\n\n"
                      "   import importlib as _importlib\n"
                      f"   globals().update(vars(_importlib.import_module({module!r})))\n")


def setup(app):
    from docutils import nodes
    from docutils.parsers.rst import Directive

    class VerbHelp(Directive):
        """``.. bubblenet-help:: VERB``: the verb's ``--help`` as a literal block (no argument: the verb list)."""

        optional_arguments = 1

        def run(self):
            text = _verb_help(self.arguments[0]) if self.arguments else _verbs_help()
            block = nodes.literal_block(text, text)
            block["language"] = "text"
            return [block]

    app.add_directive("bubblenet-help", VerbHelp)
    app.connect("source-read", _api_section)
    app.connect("source-read", _module_doctest_globals)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
