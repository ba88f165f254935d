"""Exceptions raised for bad user input.

Every error that a user can cause (a file, a value, a table) derives from
`InputError`. The command-line layer turns it into one line on stderr and
exit status 2; library users catch it like any other exception.
"""

from __future__ import annotations

import os

__all__ = ["InputError", "FitsError", "CatalogueError", "ConfigError"]


class InputError(ValueError):
    """Bad input, with the file it came from when there is one.

    Parameters
    ----------
    problem : str
        What is wrong, in words a user can act on.
    path : str or os.PathLike, optional
        The file the problem was found in.
    """

    def __init__(self, problem: str, path: str | os.PathLike | None = None):
        self.problem = problem
        self.path = None if path is None else os.fspath(path)
        super().__init__(f"{self.path}: {problem}" if self.path else problem)


class FitsError(InputError):
    """A FITS image that cannot be used (unreadable, no celestial WCS, no data)."""


class CatalogueError(InputError):
    """A catalogue table that cannot be used (missing or non-numeric columns)."""


class ConfigError(InputError):
    """A configuration file or option that cannot be used."""
