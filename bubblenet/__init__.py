"""bubblenet: find infrared bubbles in Spitzer 8 + 24 µm survey images.

The data flow is one-way, one module per stage::

    FITS mosaics + catalogue -> sky tiles (`bubblenet.sky`)
    catalogues and label boxes (`bubblenet.catalogue`, `bubblenet.boxes`)
    synthetic GLIMPSE/MIPSGAL-like survey (`bubblenet.synth`)
    pictures of tiles (`bubblenet.plotting`)

Every command-line verb runs as ``python -m bubblenet.<verb>`` and as
``bubblenet <verb>``.
"""

__version__ = "0.1.0"
