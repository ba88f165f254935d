"""Stage 5, detection: sliding windows over tiles, the network on them, merged sky catalogues.

Modules
-------
`bubblenet.detection.detector`
    A trained detector on disk: ``model.keras`` + ``model_info.json``
    (preset, default boxes, threshold, its `SearchConfig`), and the network
    distilled for the shared search when it has one.
`bubblenet.detection.search`
    `SearchConfig`, the one description of a tile search, and `search_tile`,
    the one function that searches a tile (validation uses it too).
`bubblenet.detection.windows`
    Planning multi-scale sliding windows over a tile (geometry only).
`bubblenet.detection.pyramid`
    Windows cut from an image pyramid (the fast search mode).
`bubblenet.detection.local_norm`
    One normalisation for a whole pyramid level, each pixel as the window
    centred on it (the shared search mode's inputs).
`bubblenet.detection.shared`
    The shared search mode: the backbone run once over each level, its
    features shared by the windows.
`bubblenet.detection.inference`
    Windows in, merged tile-pixel detections out.
`bubblenet.detection.merging`
    Merging detections across windows, scales and tiles on the sky.
`bubblenet.detection.runs`
    A survey searched tile by tile: resumable, in one process or on Dask.
`bubblenet.detection.survey`
    A whole survey into one merged sky catalogue (`detect_survey`: what
    ``bubblenet detect`` and `bubblenet.find_bubbles` run).
`bubblenet.detection.results`
    The sky catalogue of detections and its files (ECSV, FITS, CSV, DS9).
`bubblenet.detection.savedmodel`
    A detector as a TensorFlow SavedModel with a detection signature.
`bubblenet.detection.vetting`
    Measures of what lies under each detection's box (how much of it is one
    point source, per band) and a classifier that re-scores detections on
    them (an experiment: ``experiments/vetting.py``).
"""
