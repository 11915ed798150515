"""`evaluation.sequential`: the A/B mode's group-sequential test, against published constants and by simulation."""

from __future__ import annotations

import numpy as np
import pytest

from speech_assets.evaluation.sequential import (
    ArmStats,
    SequentialDesign,
    inflation_factor,
    obrien_fleming_constant,
)


@pytest.mark.parametrize("looks, constant, inflation", [
    # Jennison & Turnbull (2000), Tables 2.3 and 2.4: O'Brien-Fleming, two-sided alpha 0.05, power 0.8
    (2, 1.977, 1.008), (3, 2.004, 1.017), (4, 2.024, 1.024), (5, 2.040, 1.028),
])
def test_boundaries_and_sample_inflation_match_the_tables(looks, constant, inflation):
    assert obrien_fleming_constant(looks, 0.05) == pytest.approx(constant, abs=0.006)
    assert inflation_factor(looks, 0.05, 0.8) == pytest.approx(inflation, abs=0.006)
    assert obrien_fleming_constant(1, 0.05) == pytest.approx(1.95996, abs=1e-4)


def _simulate(design: SequentialDesign, true_diff: float, trials: int, seed: int) -> dict[str, float]:
    """Run the design's stopping rule on normal per-request outcomes; the share of trials ending each way."""
    rng = np.random.default_rng(seed)
    ends = {"promote": 0, "rollback_worse": 0, "rollback_no_difference": 0, "early": 0}
    n = design.n_per_arm
    for _ in range(trials):
        a = rng.normal(0.7 + true_diff, design.sd, n)
        b = rng.normal(0.7, design.sd, n)
        for k in range(1, design.looks + 1):
            m = design.look_size(k)
            look = design.analyse(k, ArmStats(m, a[:m].mean(), a[:m].std(ddof=1)),
                                  ArmStats(m, b[:m].mean(), b[:m].std(ddof=1)))
            if look.action != "continue":
                ends["early"] += k < design.looks
                key = "promote" if look.action == "promote" else (
                    "rollback_worse" if look.z <= -look.boundary else "rollback_no_difference")
                ends[key] += 1
                break
    return {k: v / trials for k, v in ends.items()}


def test_peeking_at_the_planned_looks_keeps_alpha_and_the_planned_power():
    design = SequentialDesign.plan(looks=4, alpha=0.05, power=0.8, min_effect=0.05, sd=0.3)
    null = _simulate(design, 0.0, 2000, seed=1)
    # two-sided: a false "better" plus a false "worse" is alpha (binomial sd over 2,000 trials ~0.005)
    assert null["promote"] + null["rollback_worse"] == pytest.approx(0.05, abs=0.015)
    alt = _simulate(design, 0.05, 1000, seed=2)
    assert alt["promote"] == pytest.approx(0.80, abs=0.04)  # the planned power, at the planned maximum sample
    assert alt["early"] > 0.3  # and it often stops before the last look


def test_a_look_reports_the_repeated_interval_and_refuses_unplanned_looks():
    design = SequentialDesign.plan(looks=3, alpha=0.05, power=0.8, min_effect=0.02, sd=0.5)
    assert design.n_per_arm >= 2 * ((1.96 + 0.8416) * 0.5 / 0.02) ** 2  # >= the fixed-sample size
    look = design.analyse(1, ArmStats(1000, 0.80, 0.3), ArmStats(1000, 0.79, 0.3))
    assert look.action == "continue" and look.boundary == pytest.approx(design.constant * 3 ** 0.5)
    lo, hi = look.interval
    assert lo < 0.01 < hi and hi - lo == pytest.approx(2 * look.boundary * (0.09 / 1000 * 2) ** 0.5)
    worse = design.analyse(2, ArmStats(5000, 0.70, 0.3), ArmStats(5000, 0.80, 0.3))
    assert worse.action == "rollback" and "worse" in worse.reason
    last = design.analyse(3, ArmStats(9000, 0.80, 0.3), ArmStats(9000, 0.80, 0.3))
    assert last.action == "rollback" and "no difference shown" in last.reason
    with pytest.raises(ValueError, match="no peeking"):
        design.analyse(4, ArmStats(1, 0.0, 1.0), ArmStats(1, 0.0, 1.0))
