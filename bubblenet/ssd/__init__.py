"""Stage 3, the SSD network: default boxes, network, loss, target coding, decoding.

Modules
-------
`bubblenet.ssd.anchors`
    Default boxes (priors) generated from a preset (`AnchorSpec`).
`bubblenet.ssd.model`
    The Keras 3 network: presets ``paper`` and ``lite``, backbone and heads.
`bubblenet.ssd.targets`
    Matching label boxes to default boxes, and the box coder.
`bubblenet.ssd.losses`
    The MultiBox loss with hard-negative mining.
`bubblenet.ssd.decoder`
    From network outputs to scored, non-maximum-suppressed boxes.
`bubblenet.ssd.sharing`
    The network cut into a fully convolutional trunk and a per-window tail
    (the shared search mode).
`bubblenet.detection.detector`
    A trained detector on disk: ``model.keras`` + ``model_info.json``.

Importing a module here imports Keras; this package itself imports nothing.
"""
