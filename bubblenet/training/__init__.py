"""Stage 4, training: the optimiser, whole-tile validation, one training run, the tuning search space.

Modules
-------
`bubblenet.training.config`
    `FitConfig`: every option of a training run, its defaults and checks.
`bubblenet.training.validation`
    Targets for the stream, the optimiser, and validation on whole tiles
    with the paper's matching rule (``val_f2``), plus TensorBoard pictures.
`bubblenet.training.run`
    One training run (`train`: what ``bubblenet tune`` does per trial) and
    the whole of ``bubblenet fit`` (`fit`), resumable.
`bubblenet.training.search_space`
    The hyper-parameter space of ``bubblenet tune``.
`bubblenet.training.tuning`
    The keras-tuner search itself, its results and the ``best.yaml`` it writes.
`bubblenet.training.distillation`
    A detector's network distilled onto the shared search's features.
"""
