"""The calibration map is a gated artifact: a temperature that makes held-out ECE worse ships as the identity."""

from __future__ import annotations

import numpy as np
import pytest

from speech_assets.evaluation.calibration import correctness, expected_calibration_error
from speech_assets.evaluation.model_eval import ship_calibration
from speech_assets.evaluation.promotion import PromotionPolicy
from speech_assets.governance.policy import GATE_FIELDS, GatePolicy


def _rows(confidences, correct) -> list[dict]:
    return [{"utterance_id": f"u{i}", "speaker": f"s{i % 7}", "reference": "a b", "hypothesis": "a b" if ok else "a c",
             "confidence": float(c)} for i, (c, ok) in enumerate(zip(confidences, correct))]


@pytest.fixture
def test_set():
    rng = np.random.default_rng(0)
    raw = rng.uniform(0.05, 0.95, 400)
    correct = rng.uniform(size=400) < raw  # the raw confidences are calibrated by construction
    return raw, correct


def test_a_fit_that_worsens_held_out_ece_is_rejected_and_the_identity_ships(test_set):
    raw, correct = test_set
    sharpened = np.clip(raw ** 0.3, 0, 1)  # what a bad temperature does: overconfident on held-out data
    t, rows, report = ship_calibration(0.4, _rows(raw, correct), _rows(sharpened, correct), tolerance=0.005,
                                       dev_utterances=100)
    ece_raw = expected_calibration_error(raw, correctness(_rows(raw, correct)))
    assert t == 1.0 and report.method == "identity"
    assert [r["confidence"] for r in rows] == pytest.approx(list(raw))  # the served confidences are the raw ones
    assert report.ece_after == pytest.approx(ece_raw)
    assert report.parameters["rejected_temperature"] == 0.4 and report.parameters["rejected_ece"] > ece_raw + 0.005
    assert "fit rejected" in report.parameters["why"] and "identity" in report.parameters["why"]


def test_a_fit_that_improves_held_out_ece_ships(test_set):
    raw, correct = test_set
    overconfident = np.clip(raw ** 0.3, 0, 1)
    # the raw model is overconfident; the fitted map restores the calibrated confidences
    t, rows, report = ship_calibration(2.5, _rows(overconfident, correct), _rows(raw, correct), tolerance=0.005,
                                       dev_utterances=100)
    assert t == 2.5 and report.method == "temperature" and "why" not in report.parameters
    assert report.ece_after < report.ece_before
    assert [r["confidence"] for r in rows] == pytest.approx(list(raw))


def test_within_the_tolerance_the_fit_ships(test_set):
    raw, correct = test_set
    nudged = np.clip(raw + 0.001, 0, 1)
    t, _, report = ship_calibration(1.02, _rows(raw, correct), _rows(nudged, correct), tolerance=0.005,
                                    dev_utterances=100)
    assert report.ece_after >= report.ece_before - 0.002 and t == 1.02 and report.method == "temperature"


def test_the_tolerance_is_a_versioned_gate_field_with_the_promotion_default():
    assert "calibration_tolerance" in GATE_FIELDS
    assert GatePolicy().calibration_tolerance == PromotionPolicy().calibration_tolerance == 0.005
