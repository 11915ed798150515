"""Routing by stable hash, routing-state transitions, canary decisions and Prometheus windows (no server)."""

from __future__ import annotations

import math

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from speech_assets.serving.canary import CanaryPolicy, ProbeResult, VersionMetrics, decide
from speech_assets.serving.metrics import parse, quantile, window
from speech_assets.serving.routing import CHALLENGER, CHAMPION, ModelRef, RoutingState, bucket, read_state, write_state

A, B = ModelRef("1.0.0", "asr:1.0.0", 1.1), ModelRef("1.1.0", "asr:1.1.0", 0.9)


def test_routing_is_stable_and_matches_the_weight():
    state = RoutingState().with_champion(A).with_challenger(B, 10)
    keys = [f"client-{i}" for i in range(20000)]
    sides = [state.route(k) for k in keys]
    assert sides == [state.route(k) for k in keys]  # the same key always lands on the same side
    share = sides.count(CHALLENGER) / len(keys)
    assert 0.09 < share < 0.11
    # stepping the weight up only moves clients champion -> challenger, never back
    wider = state.with_weight(50)
    assert all(wider.route(k) == CHALLENGER for k, s in zip(keys, sides) if s == CHALLENGER)
    assert 0.48 < [wider.route(k) for k in keys].count(CHALLENGER) / len(keys) < 0.52
    assert all(state.with_weight(100).route(k) == CHALLENGER for k in keys[:100])
    assert all(RoutingState().with_champion(A).route(k) == CHAMPION for k in keys[:100])
    assert 0 <= bucket("x", "1.1.0") < 100


def test_routing_state_transitions_and_atomic_file(tmp_path):
    s = RoutingState().with_champion(A)
    with pytest.raises(ValueError):
        s.promoted()  # nothing to promote
    s = s.with_challenger(B, 10).with_weight(50)
    promoted = s.promoted()
    assert promoted.champion == B and promoted.challenger is None and promoted.weight == 0
    rolled = s.rolled_back()
    assert rolled.champion == A and rolled.challenger is None
    assert [h["change"] for h in promoted.history] == [
        "champion 1.0.0", "canary 1.1.0 at 10%", "canary 1.1.0 at 50%", "promote 1.1.0"
    ]
    assert promoted.revision == 4
    path = tmp_path / "routing.json"
    write_state(path, promoted)
    assert read_state(path) == promoted
    assert [p.name for p in tmp_path.iterdir()] == ["routing.json"]  # no temp file left behind
    with pytest.raises(ValueError):
        RoutingState(challenger=B)  # a challenger without a champion
    with pytest.raises(ValueError):
        RoutingState(champion=A, weight=120)


HEALTHY = VersionMetrics(requests=100, errors=0, p95_latency_s=0.20, mean_confidence=0.90)
CHAMP = VersionMetrics(requests=900, errors=1, p95_latency_s=0.18, mean_confidence=0.91)
GOOD_PROBE, CHAMP_PROBE = ProbeResult(0.04, 30), ProbeResult(0.05, 30)


def test_canary_steps_then_promotes():
    policy = CanaryPolicy()
    d = decide(10, CHAMP, HEALTHY, GOOD_PROBE, CHAMP_PROBE, policy)
    assert (d.action, d.weight) == ("step", 50) and not d.failed
    d = decide(50, CHAMP, HEALTHY, GOOD_PROBE, CHAMP_PROBE, policy)
    assert (d.action, d.weight) == ("step", 100)
    d = decide(100, CHAMP, HEALTHY, GOOD_PROBE, CHAMP_PROBE, policy)
    assert d.action == "promote"
    assert "| probe_wer | pass |" in d.markdown()


def test_canary_holds_without_evidence():
    few = VersionMetrics(requests=3, errors=0, p95_latency_s=0.2, mean_confidence=0.9)
    d = decide(10, CHAMP, few, GOOD_PROBE, CHAMP_PROBE)
    assert (d.action, d.weight) == ("hold", 10) and "not enough evidence" in d.reason


@pytest.mark.parametrize(
    "challenger, probe, failed",
    [
        (VersionMetrics(100, 5, 0.2, 0.9), GOOD_PROBE, "error_rate"),
        (VersionMetrics(100, 0, 3.0, 0.9), GOOD_PROBE, "p95_latency"),
        (VersionMetrics(100, 0, 0.2, 0.5), GOOD_PROBE, "mean_confidence"),
        (HEALTHY, ProbeResult(0.30, 30), "probe_wer"),
        (HEALTHY, ProbeResult(0.04, 30, failed_requests=2), "probe_wer"),
        (HEALTHY, None, "probe_wer"),
    ],
)
def test_canary_rolls_back_on_any_breach(challenger, probe, failed):
    d = decide(50, CHAMP, challenger, probe, CHAMP_PROBE)
    assert d.action == "rollback" and d.weight == 0 and failed in d.failed
    assert failed in d.reason


def test_policy_steps_must_end_at_100():
    with pytest.raises(ValueError):
        CanaryPolicy(steps=(10, 50))
    with pytest.raises(ValueError):
        CanaryPolicy(steps=(50, 10, 100))


def _scrape(requests: dict, latencies: dict, confidences: dict, pinned: dict | None = None) -> str:
    reg = CollectorRegistry()
    c = Counter("asr_requests", "", ["model_version", "outcome", "traffic"], registry=reg)
    h = Histogram("asr_request_duration_seconds", "", ["model_version", "traffic"], buckets=(0.1, 0.25, 0.5, 1.0),
                  registry=reg)
    conf = Histogram("asr_confidence", "", ["model_version", "traffic"], buckets=(0.5, 0.8, 0.9, 1.0), registry=reg)
    for (v, outcome), n in requests.items():
        c.labels(v, outcome, "live").inc(n)
    for (v, outcome), n in (pinned or {}).items():
        c.labels(v, outcome, "pinned").inc(n)
        for _ in range(n):
            h.labels(v, "pinned").observe(9.0)
            conf.labels(v, "pinned").observe(0.01)
    for v, values in latencies.items():
        for x in values:
            h.labels(v, "live").observe(x)
    for v, values in confidences.items():
        for x in values:
            conf.labels(v, "live").observe(x)
    return generate_latest(reg).decode()


def test_metrics_window_between_two_scrapes():
    first = parse(_scrape({("1.0.0", "ok"): 10}, {"1.0.0": [0.05] * 10}, {"1.0.0": [0.9] * 10}))
    second = parse(_scrape(
        {("1.0.0", "ok"): 30, ("1.1.0", "ok"): 18, ("1.1.0", "server_error"): 2, ("1.1.0", "client_error"): 4},
        {"1.0.0": [0.05] * 30, "1.1.0": [0.2] * 19 + [0.7]},
        {"1.0.0": [0.9] * 30, "1.1.0": [0.6] * 18},
        pinned={("1.1.0", "ok"): 50},  # the controller's own probes: not live evidence
    ))
    w = window(second, first)
    assert w["1.0.0"].requests == 20 and w["1.0.0"].errors == 0
    assert w["1.0.0"].mean_confidence == pytest.approx(0.9)
    assert w["1.1.0"].requests == 24 and w["1.1.0"].errors == 2  # 4xx are the caller's, not the model's
    assert 0.1 < w["1.1.0"].p95_latency_s <= 0.25
    assert w["1.1.0"].mean_confidence == pytest.approx(0.6)
    assert parse(_scrape({}, {}, {}, pinned={("1.1.0", "ok"): 5}), traffic="pinned")["1.1.0"].requests == 5
    # a restarted server (counters went down): the new scrape alone is the window
    assert window(first, second)["1.0.0"].requests == 10


def test_quantile_from_buckets():
    assert math.isnan(quantile({}, 0.95))
    assert quantile({0.1: 50, 0.2: 100, math.inf: 100}, 0.5) == pytest.approx(0.1)
    assert quantile({0.1: 0, 0.2: 100, math.inf: 100}, 0.5) == pytest.approx(0.15)
    assert quantile({0.1: 0, 1.0: 10, math.inf: 100}, 0.95) == pytest.approx(1.0)


def test_probe_wer_is_judged_against_the_champion_on_the_same_audio():
    weak_champion = ProbeResult(0.60, 30)
    assert decide(50, CHAMP, HEALTHY, ProbeResult(0.45, 30), weak_champion).action == "step"  # better than it
    assert "probe_wer" in decide(50, CHAMP, HEALTHY, ProbeResult(0.63, 30), weak_champion).failed
    # no champion measurement: the absolute ceiling decides
    assert "probe_wer" in decide(50, CHAMP, HEALTHY, ProbeResult(0.30, 30), None).failed
    assert decide(50, CHAMP, HEALTHY, ProbeResult(0.20, 30), None).action == "step"
