"""Cross-matching detections with the shipped catalogues: which are known, which are new.

A detection matches an object when either centre lies inside the other's
radius (the detection's ``radius_arcmin``, the object's ``maj_axis``).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from astropy import units as u

__all__ = ["CROSSMATCH", "crossmatch", "crossmatch_table"]

#: Catalogues cross-matched by default (shipped names, `bubblenet.catalogues.CATALOGUES`).
CROSSMATCH = ("mwp_dr2", "mwp_dr1", "churchwell_dr2", "wise_hii")


def crossmatch(coords, radius_arcmin, name: str) -> np.ndarray:
    """Whether each detection matches an object of the shipped catalogue `name`.

    Parameters
    ----------
    coords : astropy.coordinates.SkyCoord
        Detection centres.
    radius_arcmin : array_like
        Detection radii, arcmin.
    name : str
        A shipped catalogue.
    """
    from astropy.coordinates import SkyCoord

    from bubblenet.catalogues.tables import packaged_catalogue

    table = packaged_catalogue(name)
    radius = np.nan_to_num(np.asarray(table["maj_axis"], float), nan=0.0)
    objects = SkyCoord(np.asarray(table["glon"], float), np.asarray(table["glat"], float), unit="deg",
                       frame="galactic")
    found = np.zeros(len(coords), bool)
    if len(coords) == 0 or len(objects) == 0:
        return found
    reach = (np.max(radius_arcmin) + radius.max()) * u.arcmin
    i_obj, i_det, sep, _ = coords.search_around_sky(objects, reach)
    close = sep.to_value(u.arcmin) <= np.maximum(np.asarray(radius_arcmin)[i_det], radius[i_obj])
    found[i_det[close]] = True
    return found


def crossmatch_table(detections, catalogues: Sequence[str] = CROSSMATCH):
    """A copy of a detection table with one bool column ``in_<name>`` per catalogue and ``new`` (matches none).

    Parameters
    ----------
    detections : astropy.table.Table
        With ``glon``, ``glat`` (deg) and ``radius_arcmin``.
    catalogues : sequence of str
        Shipped catalogue names.
    """
    from astropy.coordinates import SkyCoord

    out = detections.copy()
    coords = SkyCoord(np.asarray(out["glon"], float), np.asarray(out["glat"], float), unit="deg", frame="galactic")
    radius = np.asarray(out["radius_arcmin"], float)
    for name in catalogues:
        out[f"in_{name}"] = crossmatch(coords, radius, name)
    out["new"] = ~np.any([out[f"in_{name}"] for name in catalogues], axis=0) if catalogues else \
        np.ones(len(out), bool)
    return out
