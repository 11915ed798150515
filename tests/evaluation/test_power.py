"""Sample sizes against published values (G*Power's exact noncentral-t answers) and by simulation."""

from __future__ import annotations

import numpy as np
import pytest

from speech_assets.evaluation.power import achieved_power, paired_sd, plan_comparison, required_pairs, two_sample_n


@pytest.mark.parametrize("d, n", [(0.2, 199), (0.5, 34), (0.8, 15)])
def test_paired_sizes_match_the_exact_t_test_values(d, n):
    # G*Power 3.1, "means: difference from constant (one sample / matched pairs)", two-sided, alpha .05, power .8
    assert required_pairs(1.0, d) == n
    assert required_pairs(0.10, 0.10 * d) == n  # only the ratio matters: 10-point spread, effect in WER points


@pytest.mark.parametrize("d, n", [(0.2, 394), (0.5, 64), (0.8, 26)])
def test_two_sample_sizes_match_the_exact_t_test_values(d, n):
    # G*Power 3.1, "means: difference between two independent means (two groups)", per group
    assert two_sample_n(1.0, d) == n


def test_more_power_or_a_smaller_effect_needs_more_speakers_and_tiny_needs_at_least_three():
    assert required_pairs(0.1, 0.02, power=0.9) > required_pairs(0.1, 0.02, power=0.8)
    assert required_pairs(0.1, 0.01) > required_pairs(0.1, 0.02)
    assert required_pairs(0.001, 0.5) == 3  # never fewer than 3 speakers, however large the effect
    with pytest.raises(ValueError, match="effect"):
        required_pairs(0.1, 0.0)
    with pytest.raises(ValueError, match="alpha"):
        required_pairs(0.1, 0.02, alpha=1.5)


def _simulated_t_rejection_rate(n: int, effect: float, sd: float, reps: int, rng) -> float:
    """Rejection rate of the two-sided paired t test at alpha .05, its critical value itself simulated under H0."""
    def t_stats(mean: float) -> np.ndarray:
        x = rng.normal(mean, sd, size=(reps, n))
        return x.mean(axis=1) / (x.std(axis=1, ddof=1) / np.sqrt(n))
    critical = np.quantile(np.abs(t_stats(0.0)), 0.95)
    return float(np.mean(np.abs(t_stats(effect)) > critical))


def test_the_planned_sample_has_the_planned_power_by_simulation():
    rng = np.random.default_rng(7)
    sd, effect = 0.08, 0.02  # speakers' WER differences spread 8 points; detect a 2-point change
    n = required_pairs(sd, effect, power=0.8)
    assert n == 128
    rate = _simulated_t_rejection_rate(n, effect, sd, 20000, rng)
    assert 0.78 <= rate <= 0.83, rate  # 0.8 within the simulation's error (sd ~0.003) and the approximation's
    smaller = _simulated_t_rejection_rate(n // 4, effect, sd, 20000, rng)
    assert smaller < 0.4  # a quarter of the sample: well short of the planned power
    assert achieved_power(n // 4, sd, effect) == pytest.approx(smaller, abs=0.04)  # and the reported power says so


def test_achieved_power_is_alpha_at_no_effect_scale_and_one_with_no_noise():
    assert achieved_power(50, 0.1, 1e-12) == pytest.approx(0.05, abs=1e-6)
    assert achieved_power(10, 0.0, 0.02) == 1.0 and achieved_power(0, 0.1, 0.02) == 0.0
    assert achieved_power(34, 1.0, 0.5) == pytest.approx(0.83, abs=0.01)  # normal approximation at the planned n


def test_a_plan_from_the_champions_speakers_says_how_long_it_takes():
    rng = np.random.default_rng(0)
    speaker_wers = rng.normal(0.10, 0.05, 20).clip(0, 1)
    plan = plan_comparison(speaker_wers, min_effect=0.02, challenger_share=0.1, traffic_rate_per_s=2.0,
                           utterances_per_speaker=5)
    assert plan.speaker_sd == pytest.approx(paired_sd(speaker_wers))
    assert plan.probe_speakers == required_pairs(plan.speaker_sd, 0.02)
    assert plan.probe_utterances == 5 * plan.probe_speakers
    assert plan.live_requests_per_arm == two_sample_n(0.5, 0.02)
    assert plan.duration_s == pytest.approx(plan.live_requests_per_arm / 0.2)
    assert "probe speakers" in plan.summary() and "min at 2.00 requests/s" in plan.summary()
    unknown = plan_comparison(speaker_wers, min_effect=0.02)
    assert unknown.duration_s is None and "unknown traffic rate" in unknown.summary()
    with pytest.raises(ValueError, match="at least 2 speakers"):
        plan_comparison([0.1], min_effect=0.02)
