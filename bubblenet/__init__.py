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
"""

__version__ = "0.1.0"
