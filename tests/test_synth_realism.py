"""The synthetic sky measured against the real one with the project's bubble-profile tool."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bubblenet.synth.realism import REAL_PROFILES, mwp_field_twin, profile_rms
from conftest import MWP8, MWP24, PROFILES_TOOL


def _profiles(catalogue, i8, m24):
    out = subprocess.run([sys.executable, str(PROFILES_TOOL), str(catalogue), str(i8), str(m24)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_reference_rows_are_what_the_tool_measures_on_the_real_field():
    from bubblenet.catalogues.tables import packaged_path

    measured = _profiles(packaged_path("mwp_dr2_jayasinghe2019.csv"), MWP8, MWP24)
    assert measured["n"] == 11
    for band in ("mean_24um", "mean_8um"):
        assert measured[band] == pytest.approx(REAL_PROFILES[band], abs=0.002)


def test_twin_of_the_real_field_looks_real(tmp_path):
    """Synthetic bubbles land within 0.06 RMS of the real profiles (circles on noise: ~0.25)."""
    i8, m24, catalogue = mwp_field_twin(tmp_path, seed=0)
    measured = _profiles(catalogue, i8, m24)
    assert measured["n"] == 11  # the same bubbles as on the real field
    rms = profile_rms(measured)
    assert rms["mean_24um"] < 0.06 and rms["mean_8um"] < 0.06, rms
    # The shape, not only the distance: 24 µm peaks inside, 8 µm peaks near the rim.
    assert measured["mean_24um"][0] == max(measured["mean_24um"])
    assert max(range(10), key=lambda k: measured["mean_8um"][k]) in (2, 3, 4)
