"""The recovery decision: a served model is never silently unserved, and a restart loop ends with a person."""

from __future__ import annotations

from speech_assets.serving.recovery import Observed, RecoveryPolicy, RecoveryState, decide

UP = Observed(ready=True, process_alive=True, deployed=True, production_version="1.1.0")
DEAD = Observed(ready=False, process_alive=False, deployed=True, production_version="1.1.0")
STARTING = Observed(ready=False, process_alive=True, deployed=True, production_version="1.1.0")
POLICY = RecoveryPolicy(ready_timeout_s=60, max_attempts=2, window_s=600)


def test_a_dead_service_is_alerted_and_restarted_at_first_look_then_waited_for_then_recovered():
    d1 = decide(DEAD, RecoveryState(), POLICY, now=1000.0)
    assert d1.action == "restart" and d1.alert and "1.1.0" in d1.reason and "attempt 1 of 2" in d1.reason
    d2 = decide(STARTING, d1.state, POLICY, now=1010.0)
    assert d2.action == "wait" and not d2.alert
    d3 = decide(UP, d2.state, POLICY, now=1020.0)
    assert d3.action == "recovered" and d3.alert and "20 s down" in d3.reason
    assert decide(UP, d3.state, POLICY, now=1030.0).action == "healthy"  # "recovered" is said once


def test_a_restart_that_does_not_come_up_is_retried_then_handed_to_a_person():
    d1 = decide(DEAD, RecoveryState(), POLICY, now=0.0)
    d2 = decide(STARTING, d1.state, POLICY, now=70.0)  # past ready_timeout: that start failed
    assert d2.action == "restart" and not d2.alert and "attempt 2 of 2" in d2.reason  # alerted already at first look
    d3 = decide(DEAD, d2.state, POLICY, now=140.0)
    assert d3.action == "give_up" and d3.alert and "serving start" in d3.reason
    d4 = decide(DEAD, d3.state, POLICY, now=150.0)
    assert d4.action == "give_up" and not d4.alert  # a person was called once, not every tick
    # outside the window the attempts are forgotten: a service that dies again a day later is restarted again
    assert decide(DEAD, d3.state, POLICY, now=140.0 + 86400).action == "restart"


def test_nothing_to_bring_back_is_not_an_alert():
    never = Observed(ready=False, process_alive=False, deployed=False, production_version=None)
    assert decide(never, RecoveryState(), POLICY, now=0.0).action == "nothing_to_serve"
    unpromoted = Observed(ready=False, process_alive=False, deployed=True, production_version=None)
    d = decide(unpromoted, RecoveryState(), POLICY, now=0.0)
    assert d.action == "nothing_to_serve" and not d.alert


def test_the_state_round_trips_through_a_cursor():
    d = decide(DEAD, RecoveryState(), POLICY, now=5.0)
    assert RecoveryState.from_dict(d.state.to_dict()) == d.state
    assert RecoveryState.from_dict(None) == RecoveryState()


def test_a_live_but_unready_server_gets_a_grace_period_before_a_restart():
    policy = RecoveryPolicy(ready_timeout_s=60, max_attempts=2, window_s=600, unready_grace_s=45)
    d1 = decide(STARTING, RecoveryState(), policy, now=0.0)
    assert d1.action == "wait" and not d1.alert  # busy, perhaps: not killed at first look
    d2 = decide(STARTING, d1.state, policy, now=30.0)
    assert d2.action == "wait"
    d3 = decide(STARTING, d2.state, policy, now=50.0)
    assert d3.action == "restart" and d3.alert and "alive but not ready" in d3.reason
    assert decide(UP, d3.state, policy, now=60.0).action == "recovered"
