"""Stage 6, evaluation: scoring detections against a catalogue, cross-matching, pictures to check.

Modules
-------
`bubblenet.evaluation.metrics`
    The paper's matching rule and a strict one, threshold sweeps, F-scores.
`bubblenet.evaluation.scoring`
    A detection catalogue scored on the sky inside the region searched.
`bubblenet.evaluation.crossmatch`
    Which detections are in MWP DR2, DR1, Churchwell or WISE HII, and which are new.
`bubblenet.evaluation.montages`
    Cut-outs of true and false positives and misses.
"""
