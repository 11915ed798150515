"""ECE, reliability bins, temperature fitting and the isotonic CalibrationMap."""

from __future__ import annotations

import json

import numpy as np
import pytest

from speech_assets.evaluation.calibration import (
    CalibrationMap,
    binary_nll,
    calibration_report,
    confidences,
    correctness,
    expected_calibration_error,
    fit_isotonic,
    fit_temperature,
    reliability_diagram,
)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


@pytest.fixture(scope="module")
def overconfident():
    """A model whose confidence logit is 3x the true one: T = 3 calibrates it."""
    rng = np.random.default_rng(0)
    z = rng.normal(0.0, 1.5, size=20000)
    y = (rng.random(z.size) < sigmoid(z)).astype(float)

    def confidence_at(t: float) -> np.ndarray:
        return sigmoid(3.0 * z / t)

    return confidence_at, y


def test_correctness_exact_and_soft():
    rows = [
        {"reference": "turn on the lights", "hypothesis": "turn on the lights"},
        {"reference": "turn on the lights", "hypothesis": "turn  on the  lights "},  # whitespace only
        {"reference": "turn on the lights", "hypothesis": "turn on a lights"},
        {"reference": "stop", "hypothesis": "please stop it now"},  # WER 3 -> soft 0
        {"reference": "", "hypothesis": ""},
    ]
    assert list(correctness(rows)) == [1.0, 1.0, 0.0, 0.0, 1.0]
    assert list(correctness(rows, soft=True)) == pytest.approx([1.0, 1.0, 0.75, 0.0, 1.0])


def test_confidences_are_validated():
    assert list(confidences([{"confidence": 0.2}, {"confidence": 1.0}])) == [0.2, 1.0]
    with pytest.raises(ValueError):
        confidences([{"confidence": 1.5}])


def test_perfectly_calibrated_set_has_near_zero_ece():
    # exact construction: in every bin the accuracy equals the mean confidence
    conf = np.repeat([0.05, 0.25, 0.55, 0.95], 20)
    y = np.concatenate([np.r_[np.ones(1), np.zeros(19)], np.r_[np.ones(5), np.zeros(15)],
                        np.r_[np.ones(11), np.zeros(9)], np.r_[np.ones(19), np.zeros(1)]])
    assert expected_calibration_error(conf, y) == pytest.approx(0.0, abs=1e-12)
    # sampled: correct with probability equal to the confidence
    rng = np.random.default_rng(1)
    conf = rng.random(50000)
    y = (rng.random(conf.size) < conf).astype(float)
    assert expected_calibration_error(conf, y) < 0.015


def test_reliability_bins():
    conf = np.array([0.0, 0.05, 0.1, 0.55, 0.99, 1.0])
    y = np.array([0, 0, 1, 1, 1, 1.0])
    d = reliability_diagram(conf, y, n_bins=10)
    assert d.counts == (2, 1, 0, 0, 0, 1, 0, 0, 0, 2)  # 0.1 opens bin 1, 1.0 closes the last bin
    assert d.n == 6 and len(d.edges) == 11
    assert d.accuracy[0] == 0.0 and d.accuracy[9] == 1.0 and np.isnan(d.accuracy[2])
    assert d.confidence[9] == pytest.approx(0.995)
    expected = (2 * 0.025 + 1 * 0.9 + 1 * 0.45 + 2 * 0.005) / 6
    assert d.ece == pytest.approx(expected)
    with pytest.raises(ValueError):
        reliability_diagram([0.5], [1, 0])


def test_overconfident_set_has_large_ece_and_temperature_reduces_it(overconfident):
    confidence_at, y = overconfident
    before = expected_calibration_error(confidence_at(1.0), y)
    assert before > 0.08
    fit = fit_temperature(confidence_at, y)
    assert fit.objective == "nll"
    assert 2.5 < fit.temperature < 3.5
    assert fit.ece_before == pytest.approx(before)
    assert fit.ece_after < 0.2 * before
    assert fit.objective_value <= binary_nll(confidence_at(3.0), y) + 1e-3
    assert fit.evaluations < 60  # confidence_at may be expensive: bounded calls
    by_ece = fit_temperature(confidence_at, y, objective="ece")
    assert by_ece.ece_after < 0.2 * before


def test_temperature_search_respects_bounds(overconfident):
    confidence_at, y = overconfident
    fit = fit_temperature(confidence_at, y, bounds=(0.25, 2.0))
    assert fit.temperature == pytest.approx(2.0, rel=1e-2)  # best reachable
    with pytest.raises(ValueError):
        fit_temperature(confidence_at, y, bounds=(2.0, 1.0))


def test_isotonic_map_is_monotone_and_reduces_ece(overconfident):
    confidence_at, y = overconfident
    raw = confidence_at(1.0)
    cmap = fit_isotonic(raw, y)
    assert cmap.kind == "isotonic"
    grid = np.linspace(0, 1, 1001)
    assert np.all(np.diff(cmap.apply(grid)) >= 0)
    out = cmap.apply(raw)
    assert out.min() >= 0 and out.max() <= 1
    before = expected_calibration_error(raw, y)
    after = expected_calibration_error(out, y)
    assert after < 0.2 * before and after < 0.02
    report = calibration_report(raw, out, y, method="isotonic", parameters=cmap.to_dict()["parameters"])
    assert report.ece_before == pytest.approx(before) and report.ece_after == pytest.approx(after)


def test_isotonic_pools_violators_and_ties():
    # the pair (0.3 -> 1, 0.4 -> 0) violates monotonicity and is pooled to 0.5;
    # the tie at 0.6 is averaged before fitting
    cmap = fit_isotonic([0.1, 0.3, 0.4, 0.6, 0.6, 0.9], [0, 1, 0, 1, 0, 1])
    assert cmap.apply([0.1, 0.3, 0.35, 0.4, 0.6, 0.9]) == pytest.approx([0.0, 0.5, 0.5, 0.5, 0.5, 1.0])
    assert cmap.apply([0.0, 1.0]) == pytest.approx([0.0, 1.0])  # constant beyond the end knots


def test_calibration_map_json_round_trip(overconfident):
    confidence_at, y = overconfident
    cmap = fit_isotonic(confidence_at(1.0), y)
    text = cmap.to_json()
    assert json.loads(text)["kind"] == "isotonic" and set(json.loads(text)["parameters"]) == {"x", "y"}
    again = CalibrationMap.from_json(text)
    assert again == cmap
    probe = np.random.default_rng(2).random(100)
    assert np.array_equal(again.apply(probe), cmap.apply(probe))
    ident = CalibrationMap.from_json(CalibrationMap().to_json())
    assert ident.kind == "identity" and list(ident.apply([0.3])) == [0.3]


def test_calibration_map_rejects_invalid_knots():
    with pytest.raises(ValueError):
        CalibrationMap("isotonic", (0.1, 0.5), (0.8, 0.2))  # decreasing
    with pytest.raises(ValueError):
        CalibrationMap.from_json('{"kind": "platt", "parameters": {}}')
