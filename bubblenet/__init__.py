"""bubblenet: find infrared bubbles in Spitzer 8 + 24 µm survey images.

Data flow one way, one subpackage per stage::

    FITS mosaics + catalogue
      -> sky tiles                      bubblenet.sky         (+ bubblenet.catalogues)
      -> cut-outs and labels, tf.data   bubblenet.training_data
      -> SSD                            bubblenet.ssd         (trained by bubblenet.training)
      -> detections, sky catalogue      bubblenet.detection
      -> scores, cross-matches          bubblenet.evaluation

Beside the stages: `bubblenet.synth` draws a synthetic twin of the survey
with a known catalogue; `bubblenet.conventions` states the array, pixel, box
and band conventions every stage shares; `bubblenet.plotting` draws tiles;
`bubblenet.outputs` writes files atomically with a record of how they were
made; `bubblenet.errors` holds the exceptions raised for bad input.

The top-level modules named after verbs (`bubblenet.fit`, `bubblenet.detect`,
...) are the command-line front ends: each runs as ``python -m
bubblenet.<verb>`` and as ``bubblenet <verb>``, parses its options and calls
the library.

The notebook interface is at the top level (`bubblenet.api`): `find_bubbles`,
`load_detector`, `score`, `score_field`, `crossmatch`, `train`, and the configs `FitConfig`
and `SearchConfig`. They are imported on first use, so ``import bubblenet``
stays quick (no TensorFlow).
"""

__version__ = "0.1.0"

#: Public name -> module that defines it (imported on first access, PEP 562).
_LAZY = {
    "find_bubbles": "bubblenet.api",
    "load_detector": "bubblenet.api",
    "score": "bubblenet.api",
    "score_field": "bubblenet.api",
    "crossmatch": "bubblenet.api",
    "train": "bubblenet.api",
    "FitConfig": "bubblenet.training.config",
    "SearchConfig": "bubblenet.detection.search",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'bubblenet' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
