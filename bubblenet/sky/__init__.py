"""Stage 1, the sky: survey mosaics read lazily, the two bands paired into tiles.

Modules
-------
`bubblenet.sky.astrometry`
    An image's WCS offset measured on compact catalogued sources (WISE HII
    regions), and registered copies (`measure_offset`, `write_registered`).
`bubblenet.sky.mosaics`
    FITS images with a celestial WCS (`SkyImage`), band pairing by sky
    overlap, two-band tiles (`SkyTile`) and windows on them (`Window`).
`bubblenet.sky.resampling`
    Bilinear resampling of one image onto another's pixel grid, the pixel
    mapping computed exactly on a coarse grid (reproject's interpolation, a
    tenth of its cost).
`bubblenet.sky.stars`
    Point sources of the 8 µm band, kept out of normalisation statistics.
`bubblenet.sky.tilecache`
    A tile's two bands resampled onto one grid and hole-filled once,
    memory-mapped for fast cut-outs (`TileCache`).

The names most code needs are importable from here.
"""

from bubblenet.sky.mosaics import (SkyImage, SkyTile, Window, find_survey_files, gather_survey_files, open_image,
                                   open_survey, pair_bands)

__all__ = ["SkyImage", "SkyTile", "Window", "find_survey_files", "gather_survey_files", "open_image", "open_survey",
           "pair_bands"]
