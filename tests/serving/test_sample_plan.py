"""`serving.sample_plan`: the canary's sample, sized before it starts, and the controller holding a promotion
until the challenger has served the planned live requests."""

from __future__ import annotations

import math

import pytest

from speech_assets.evaluation.power import achieved_power, required_pairs
from speech_assets.serving.canary import CanaryPolicy
from speech_assets.serving.controller import CanaryController
from speech_assets.serving.routing import ModelRef, RoutingState
from speech_assets.serving.sample_plan import (
    CanarySamplePlan,
    canary_sample_plan,
    speaker_wers,
    zero_failure_requests,
)
from tests.serving.test_controller import _run, world  # noqa: F401  (the fixture)


def test_zero_failure_requests_is_the_exact_binomial_bound():
    n = zero_failure_requests(0.02, 0.05)
    assert n == 149  # the "rule of three" says ~150
    assert 0.98 ** n <= 0.05 < 0.98 ** (n - 1)
    assert zero_failure_requests(0.01, 0.05) == 299
    with pytest.raises(ValueError):
        zero_failure_requests(0.0, 0.05)


def _rows(speaker_wer: dict[str, float], words: int = 10) -> list[dict]:
    """One utterance per speaker with `round(wer * words)` substituted words."""
    rows = []
    for spk, wer in speaker_wer.items():
        ref = " ".join(f"w{i}" for i in range(words))
        hyp = " ".join("x" if i < round(wer * words) else f"w{i}" for i in range(words))
        rows.append({"utterance_id": spk, "speaker": spk, "reference": ref, "hypothesis": hyp})
    return rows


def test_the_plan_is_sized_from_the_champions_per_speaker_spread():
    wers = {f"s{i}": w for i, w in enumerate((0.0, 0.1, 0.2, 0.1, 0.0, 0.3, 0.1, 0.2))}
    assert speaker_wers(_rows(wers)) == pytest.approx([wers[k] for k in sorted(wers)])
    plan = canary_sample_plan(_rows(wers), min_effect=0.05, alpha=0.05, power=0.8, max_error_rate=0.02)
    sd = math.sqrt(sum((w - 0.125) ** 2 for w in wers.values()) / 7)
    assert plan.speaker_sd == pytest.approx(sd, abs=1e-5) and plan.champion_speakers == 8
    assert plan.probe_speakers_needed == required_pairs(sd, 0.05) and plan.live_requests_needed == 149
    small = plan.with_probe(6)
    assert small.probe_power == pytest.approx(achieved_power(6, sd, 0.05), abs=1e-4) and small.underpowered
    assert "underpowered" in small.summary() and "149 live requests" in small.summary()
    big = plan.with_probe(plan.probe_speakers_needed)
    assert big.probe_power >= 0.8 - 0.02 and not big.underpowered
    assert CanarySamplePlan.from_dict({"version": "1.1.0", **big.to_dict()}) == big
    unknown = canary_sample_plan(None, min_effect=0.02, alpha=0.05, power=0.8, max_error_rate=0.02)
    assert unknown.probe_speakers_needed is None and "not sized" in unknown.with_probe(5).summary()


def test_the_canary_does_not_promote_before_its_planned_live_sample(world):  # noqa: F811
    registry, target, service, _ = world
    plan = {"version": "1.1.0", "live_requests_needed": 60, "max_error_rate": 0.02, "alpha": 0.05,
            "probe_power": 0.55, "power": 0.8}
    clock = {"t": 1000.0}
    ctl = CanaryController(target, registry, CanaryPolicy(min_requests=20, steps=(100.0,)),
                           probes=lambda: [(b"wav", "hello")] * 8, scrape_fn=service.scrape, probe_fn=service.probe,
                           clock=lambda: clock["t"], sample_plan=lambda: plan)
    target.state = target.state.with_weight(100.0)
    out = _run(ctl, None)
    clock["t"] += 50  # 25 requests in 50 s: 0.5 a second, so the 35 left take 70 s
    out = _run(ctl, out.cursor, service, {"1.1.0": 25})
    assert out.action == "hold" and "25 of the 60 live requests its sample plan needs" in out.message
    assert "about 1.2 min more at 0.50 requests/s" in out.message and out.evidence["sample"]["eta_s"] == 70.0
    assert out.evidence["sample"]["live_requests"] == 25 and out.evidence["sample"]["probe_power"] == 0.55
    out = _run(ctl, out.cursor, service, {"1.1.0": 40})
    assert out.action == "promote" and registry.production("asr").version == "1.1.0"
    promoted = [e for e in registry.audit_log("asr") if e.to_stage == "production"][-1]
    assert promoted.evidence["sample"]["live_requests"] == 65  # the power it had is recorded with the decision
    # a plan made for another challenger does not hold this one
    other = RoutingState().with_champion(ModelRef("1.1.0", "asr:1.1.0")).with_challenger(ModelRef("2.0.0", "asr:2"), 10)
    assert ctl._sample(other, {}, {}) is None


def test_a_sized_probe_set_grows_to_the_speakers_there_are_and_no_further():
    """The plan may ask for more speakers than exist (1,125 for a spread champion in one demo run): the probe set
    takes one utterance a speaker up to the test split's speakers and the cap — not the whole test split, which
    every canary tick would send through both models — and the plan then records the power it has."""
    from speech_assets.serving.probe_set import MAX_PROBE_UTTERANCES, sized_probe_size

    assert sized_probe_size(30, 1125, 27) == 30  # 27 speakers exist: the usual 30 utterances span them
    assert sized_probe_size(30, 60, 200) == 60  # the plan's need, one a speaker
    assert sized_probe_size(30, 1125, 500) == MAX_PROBE_UTTERANCES == 120
    assert sized_probe_size(30, None, 27) == 30 and sized_probe_size(6, 4, 27) == 6
