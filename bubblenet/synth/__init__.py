"""A synthetic GLIMPSE 8 µm + MIPSGAL 24 µm survey with known bubbles.

No calibrated 8 + 24 µm survey is available offline, so tests, the demo and
benchmarks run on this generator. It writes survey-like FITS tiles on two
different grids and the catalogue of the bubbles it drew, in MWP DR2 format.

Examples
--------
>>> from bubblenet.synth import SynthConfig, Region, make_survey
>>> files = make_survey("sky", SynthConfig(Region(30, 31, -1, 1), pixscale=2.4, seed=1))  # doctest: +SKIP
"""

from bubblenet.synth.layout import Region, survey_layout
from bubblenet.synth.population import draw_population
from bubblenet.synth.survey import CATALOGUE_NAME, SELECTION_NAME, SurveyFiles, SynthConfig, make_survey

__all__ = ["Region", "SynthConfig", "SurveyFiles", "make_survey", "survey_layout", "draw_population",
           "CATALOGUE_NAME", "SELECTION_NAME"]
