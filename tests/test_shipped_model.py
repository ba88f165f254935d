"""The detector shipped with the package: it loads, exports, and finds bubbles on held-out synthetic sky."""

from __future__ import annotations

import numpy as np
import pytest

from bubblenet.detection.detector import default_model_path, load_detector


@pytest.fixture(scope="module")
def detector():
    return load_detector()


def test_shipped_detector_is_complete_and_documented(detector):
    assert (default_model_path() / "model.keras").exists()
    assert detector.preset == "lite" and 0.5 <= detector.threshold <= 0.95
    assert "synthetic" in detector.info["trained_on"]
    # The recorded test score (4 held-out tiles, paper rule): recall 0.910 = 81 of 89 clear bubbles. The
    # bound leaves room for a retraining with another seed; measured on fresh skies in the test below.
    test = detector.info["test"]
    assert test["recall"] >= 0.8 and test["recall"] == pytest.approx(test["tp"] / (test["tp"] + test["fn"]))
    assert "keras" in detector.info["versions"]
    assert detector.model.count_params() < 2_000_000
    # Its network distilled for the shared search, with the record of how (bubblenet.training.distillation).
    shared = detector.info["shared_model"]
    assert detector.shared_model is not None and detector.model_for("shared") is detector.shared_model
    assert shared["windows"] > 1000 and shared["sky"]["tiles"] and not set(shared["sky"]["tiles"]) & set(
        detector.info["split"]["test"])
    assert shared["after"]["mean_abs_best_score_difference"] < shared["before"]["mean_abs_best_score_difference"]


def test_shipped_detector_finds_large_clear_bubbles_of_a_test_tile(detector, test_tile_sky, tmp_path):
    """On a fresh draw of test tile l = 12° (a different seed from its training sky), with windows of
    15'-30', the shipped detector finds most clear bubbles big enough for those windows."""
    from bubblenet.training_data.samples import survey_inputs
    from bubblenet.evaluation.metrics import found_by_size
    from bubblenet.detection.search import SearchConfig
    from bubblenet.training.validation import SurveyValidation, ValidationTile

    tiles, catalogue, selection = survey_inputs(folder=test_tile_sky)
    tile = next(t for t in tiles if t.name.startswith("GLM_01200"))
    search = SearchConfig(sizes_arcsec=(900.0, 1800.0), stride=0.5, missing=detector.search.missing)
    validation = SurveyValidation([ValidationTile.from_tile(tile, catalogue, selection, tmp_path / "cache",
                                                            missing=search.missing)],
                                  catalogue, detector.spec, search, norm=detector.normalisation)
    validation.set_model(detector.model)
    validation.evaluate()
    (boxes, scores), tile_ = validation.detections[0], validation.tiles[0]
    rows = found_by_size(boxes[scores >= detector.threshold], tile_.bubbles, tile_.selected,
                         pixscale=tile_.pixscale, edges_arcsec=(0.0, 200.0, np.inf))
    large = rows[1]
    assert large["bubbles"] >= 3, rows
    assert large["found"] >= 0.6 * large["bubbles"], rows


def test_shipped_detector_keeps_its_recorded_recall_on_a_fresh_test_tile(detector, test_tile_sky, tmp_path):
    """The whole of test tile l = 12° (fresh draw, seed 7) with the shipped search (200″-3600″ windows): the
    recall the detector records is the recall it gets, not an artefact of its training sky."""
    from bubblenet.evaluation.metrics import found_by_size
    from bubblenet.training.validation import SurveyValidation, ValidationTile
    from bubblenet.training_data.samples import survey_inputs

    tiles, catalogue, selection = survey_inputs(folder=test_tile_sky)
    tile = next(t for t in tiles if t.name.startswith("GLM_01200"))
    validation = SurveyValidation([ValidationTile.from_tile(tile, catalogue, selection, tmp_path / "cache",
                                                            missing=detector.search.missing)],
                                  catalogue, detector.spec, detector.search, norm=detector.normalisation)
    validation.set_model(detector.model)
    validation.evaluate()
    (boxes, scores), tile_ = validation.detections[0], validation.tiles[0]
    (everything,) = found_by_size(boxes[scores >= detector.threshold], tile_.bubbles, tile_.selected,
                                  pixscale=tile_.pixscale, edges_arcsec=(0.0, np.inf))
    # Measured (paper rule, threshold 0.50): 29 of the 31 clear bubbles (0.935) with seed 7; seeds 8, 9, 10
    # of the same tile: 29, 30, 30 of 31. The recorded test recall is 0.910. Bound: 25 of 31.
    assert everything["bubbles"] >= 25, everything
    assert everything["found"] >= 0.8 * everything["bubbles"], everything


def test_shipped_detector_still_finds_clear_bubbles_whose_24um_core_saturates(detector, tmp_path):
    """The twin of the real MWP field drawn twice, as the standard sky and with every clear bubble's 24 µm
    core saturated (NaN in the tile, as MIPSGAL leaves bright cores; all else equal): under the detector's NaN
    rule (the paper's fill with the tile's maximum) it still finds, one-to-one under the strict rule, most of the
    clear bubbles it finds on the first (measured: 6 on the standard twin, 5 or 4 of them with saturated cores,
    the 1.6' bubble at l = 41.93° scoring near the threshold there, so that runs under other thread counts differ)."""
    import bubblenet
    import bubblenet.api
    from astropy.io import fits

    from bubblenet.catalogues.tables import read_catalogue
    from bubblenet.evaluation.scoring import reference_catalogue, score_catalogue
    from bubblenet.synth.hardening import Hardening
    from bubblenet.synth.realism import mwp_field_twin

    found = {}
    for kind, hardening in (("standard", None), ("cored", Hardening(saturated_cores=1.0))):
        i8, m24, catalogue = mwp_field_twin(tmp_path / kind, seed=0, hardening=hardening)
        truth = read_catalogue(catalogue.parent / "bubbles_truth.csv")
        clear = [str(n) for n in truth["name"][truth["clear"]]]
        table = bubblenet.api._detection_table(bubblenet.find_bubbles(i8, m24, detector=detector))
        reference = reference_catalogue(catalogue)
        found[kind] = {n for n in clear if score_catalogue(table, reference, {n}).scores["strict"]["tp"]}
        nan24 = int(np.isnan(fits.getdata(m24)).sum())
        assert (nan24 > 0) == (hardening is not None), nan24  # only the cored twin has saturated pixels
    assert len(found["standard"]) >= 3, found
    assert len(found["standard"] & found["cored"]) >= max(3, len(found["standard"]) - 2), found
