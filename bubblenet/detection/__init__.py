"""Stage 5, detection: sliding windows over tiles, the network on them, merged sky catalogues.

Modules
-------
`bubblenet.detection.windows`
    Planning multi-scale sliding windows over a tile (geometry only).
`bubblenet.detection.pyramid`
    Windows cut from an image pyramid (the fast search mode).
`bubblenet.detection.inference`
    Windows in, merged tile-pixel detections out.
`bubblenet.detection.merging`
    Merging detections across windows, scales and tiles on the sky.
`bubblenet.detection.runs`
    A survey searched tile by tile: resumable, in one process or on Dask.
`bubblenet.detection.results`
    The sky catalogue of detections and its files (ECSV, FITS, CSV, DS9).
"""
