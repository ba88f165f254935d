"""Stage 2, training data: cut-outs and labels from sky tiles, streamed through `tf.data`.

Modules
-------
`bubblenet.training_data.inputs`
    What a training run reads: the survey, its catalogue and positives, the
    split (`load_training_survey`), and its samples (`training_data`).
`bubblenet.training_data.splits`
    Train / validation / test split of tiles by Galactic longitude.
`bubblenet.training_data.cutouts`
    From a tile window to a network input: resampling, normalisation,
    labels inside a crop, the eight symmetries.
`bubblenet.training_data.samples`
    Bubble cut-outs (positives) and bubble-free sky (negatives) of a split.
`bubblenet.training_data.stretches`, `bubblenet.training_data.sensors`
    Domain randomisation: random display stretches; instrument blur, noise,
    background gradients and JPEG compression.
`bubblenet.training_data.hard_negatives`
    Negatives centred on compact sources bright at both bands.
`bubblenet.training_data.negatives`
    Clustering the negatives so bubble-like clusters can be dropped.
`bubblenet.training_data.stream`
    Positives and clustered negatives mixed per step in a `tf.data.Dataset`.
"""
