"""Bubble catalogues: MWP DR2/DR1, Churchwell, WISE HII or any table of positions and sizes.

Modules
-------
`bubblenet.catalogues.tables`
    Reading and checking catalogues into one standard layout, the shipped
    tables and selections (`CATALOGUES`, `SELECTIONS`), selecting bubbles by
    name, their sky coordinates and their label boxes on a tile.

The names most code needs are importable from here.
"""

from bubblenet.catalogues.tables import (CATALOGUES, SELECTIONS, in_image, label_boxes, packaged_catalogue,
                                         read_catalogue, read_selection, select, sky_coords)

__all__ = ["CATALOGUES", "SELECTIONS", "in_image", "label_boxes", "packaged_catalogue", "read_catalogue",
           "read_selection", "select", "sky_coords"]
