"""Stage 4, training: the optimiser, whole-tile validation, one training run, the tuning search space.

Modules
-------
`bubblenet.training.validation`
    Targets for the stream, the optimiser, and validation on whole tiles
    with the paper's matching rule (``val_f2``), plus TensorBoard pictures.
`bubblenet.training.run`
    One training run: what ``bubblenet fit`` does once and ``bubblenet
    tune`` once per trial, resumable.
`bubblenet.training.search_space`
    The hyper-parameter space of ``bubblenet tune``.
"""
