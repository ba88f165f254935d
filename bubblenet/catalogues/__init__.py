"""Bubble catalogues: MWP DR2/DR1, Churchwell, WISE HII or any table of positions and sizes.

Modules
-------
`bubblenet.catalogues.tables`
    Reading and checking catalogues into one standard layout, the shipped
    tables and selections (`CATALOGUES`, `SELECTIONS`), selecting bubbles by
    name, their sky coordinates and their label boxes on a tile.

The names most code needs are importable from here. `BOX_SCALE` (the label
box half-side over MajAxis) is defined in `bubblenet.conventions` and
re-exported here, where earlier code imported it from.
"""

from bubblenet.catalogues.tables import (BOX_SCALE, CATALOGUES, SELECTIONS, in_image, label_boxes, packaged_catalogue,
                                         read_catalogue, read_selection, select, sky_coords)

__all__ = ["BOX_SCALE", "CATALOGUES", "SELECTIONS", "in_image", "label_boxes", "packaged_catalogue",
           "read_catalogue", "read_selection", "select", "sky_coords"]
