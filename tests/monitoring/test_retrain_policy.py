"""The retrain controller's decisions: hysteresis, cooldown, budget, schedule, new data, in-flight runs."""

from __future__ import annotations

import pytest

from speech_assets.monitoring.retrain import DriftEvent, RetrainPolicy, RetrainState, decide, landed

P = RetrainPolicy(fire_score=1.0, rearm_score=0.7, cooldown_s=600, max_per_day=2, min_new_utterances=1000,
                  max_model_age_s=7 * 86400)


def ev(batch, score, commit="c" * 40):
    return DriftEvent(batch, score, score >= 1.0, commit, ("unseen_accent_share",) if score >= 1.0 else ())


def run(state, now, drift=(), head="h" * 40, new=0, age=3600.0, busy=False):
    return decide(P, state, now, drift=list(drift), head_commit=head, new_utterances=new, model_age_s=age, busy=busy)


def test_drift_fires_once_then_waits_for_the_rearm():
    d, s = run(RetrainState(), 0, [ev("day-04", 2.3)], head="a" * 40)
    assert d.fire and d.trigger == "drift" and d.run_key == "retrain-" + "a" * 16 and "day-04" in d.reason
    assert d.drift_batch == "day-04"  # the sensor tags the run with it: the gate judges its drift test set
    d, s = run(s, 5000, [ev("day-05", 2.1)], head="b" * 40)  # still drifting: no second retrain
    assert not d.fire and "trigger already used" in d.reason
    d, s = run(s, 6000, [ev("day-06", 0.5)])
    assert not d.fire and s.armed and "re-armed" in d.reason
    d, s = run(s, 7000, [ev("day-07", 1.4)], head="c" * 40)
    assert d.fire and d.trigger == "drift"


def test_a_score_between_the_thresholds_neither_fires_nor_rearms():
    d, s = run(RetrainState(armed=False), 0, [ev("day-04", 0.85)])
    assert not d.fire and not s.armed


def test_cooldown_and_daily_budget_hold_a_trigger_and_it_fires_later():
    d, s = run(RetrainState(), 0, new=5000, head="a" * 40)
    assert d.fire and d.trigger == "new_data" and d.drift_batch is None
    d, s = run(s, 100, [ev("day-05", 3.0)])
    assert not d.fire and d.trigger == "drift" and "cooldown" in d.reason
    d, s = run(s, 700, [], head="b" * 40)  # the held drift trigger survives the cooldown and fires
    assert d.fire and d.trigger == "drift" and d.run_key == "retrain-" + "b" * 16
    s = landed(s)
    d, s = run(s, 1400, [ev("day-06", 3.0)])
    assert not d.fire and "budget: 2 retrains" in d.reason
    d, s = run(s, 86400 + 10, [])  # a day later the budget has room again
    assert d.fire


def test_nothing_fires_while_a_retrain_is_in_flight():
    d, s = run(RetrainState(), 0, [ev("day-04", 2.0)], busy=True)
    assert not d.fire and "in flight" in d.reason
    d, s = run(s, 60, [])
    assert d.fire and d.trigger == "drift"


def test_schedule_fires_for_an_old_model_and_quiet_streams_hold():
    d, _ = run(RetrainState(), 0, age=8 * 86400)
    assert d.fire and d.trigger == "schedule"
    d, _ = run(RetrainState(), 0, [ev("day-04", 0.3)], new=10)
    assert not d.fire and d.trigger is None and "no trigger" in d.reason


def test_policy_needs_real_hysteresis():
    with pytest.raises(ValueError):
        RetrainPolicy(fire_score=1.0, rearm_score=1.2)


def test_state_survives_the_cursor():
    _, s = run(RetrainState(), 0, [ev("day-04", 2.0)], busy=True)
    assert RetrainState.from_dict(s.to_dict()) == s


def test_an_erasure_marking_production_fires_once_from_scratch():
    d, s = decide(P, RetrainState(), 0, drift=[], head_commit="e" * 40, new_utterances=0, model_age_s=3600.0,
                  busy=False, erasures=["abc123"])
    assert d.fire and d.trigger == "erasure" and d.from_scratch and d.erasures == ("abc123",)
    assert d.run_key == "retrain-erasure-abc123" and "abc123" in d.reason
    # remembered in the cursor: the same mark never fires again, even after the cooldown
    s = RetrainState.from_dict(s.to_dict())
    d, s = decide(P, s, 7200, drift=[], head_commit="f" * 40, new_utterances=0, model_age_s=3600.0, busy=False,
                  erasures=["abc123"])
    assert not d.fire and d.trigger is None
    assert "abc123" in landed(s).handled_erasures  # a landed retrain does not forget it


def test_an_erasure_respects_the_guardrails_and_fires_when_they_lift():
    _, s = run(RetrainState(), 0, new=5000)  # a retrain just started
    d, s = decide(P, s, 60, drift=[], head_commit="e" * 40, new_utterances=0, model_age_s=3600.0, busy=True,
                  erasures=["e1"])
    assert not d.fire and d.trigger == "erasure" and "in flight" in d.reason
    d, s = decide(P, s, 120, drift=[], head_commit="e" * 40, new_utterances=0, model_age_s=3600.0, busy=False,
                  erasures=["e1"])
    assert not d.fire and "cooldown" in d.reason
    d, s = decide(P, s, 700, drift=[], head_commit="e" * 40, new_utterances=0, model_age_s=3600.0, busy=False,
                  erasures=["e1", "e2"])
    assert d.fire and d.trigger == "erasure" and set(d.erasures) == {"e1", "e2"} and s.handled_erasures == ["e1", "e2"]


def test_an_erasure_goes_before_drift_and_covers_it():
    d, s = decide(P, RetrainState(), 0, drift=[ev("day-04", 2.5)], head_commit="e" * 40, new_utterances=0,
                  model_age_s=3600.0, busy=False, erasures=["e1"])
    assert d.fire and d.trigger == "erasure" and "day-04" in d.reason and s.pending_drift is None


def test_the_policy_can_leave_erasure_retrains_to_an_operator():
    off = RetrainPolicy(fire_score=1.0, rearm_score=0.7, retrain_on_erasure=False)
    d, s = decide(off, RetrainState(), 0, drift=[], head_commit="e" * 40, new_utterances=0, model_age_s=3600.0,
                  busy=False, erasures=["e1"])
    assert not d.fire and "operator" in d.reason and s.handled_erasures == []


def test_an_old_cursor_without_erasures_still_loads():
    s = RetrainState.from_dict({"armed": True, "retrains": [1.0], "pending_drift": None})
    assert s.handled_erasures == []
