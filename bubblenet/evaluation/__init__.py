"""Stage 6, evaluation: scoring detections against a catalogue.

Modules
-------
`bubblenet.evaluation.metrics`
    The paper's matching rule and a strict one, threshold sweeps, F-scores.
"""
