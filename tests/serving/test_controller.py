"""The canary controller's tick against a real registry on the local store, with the service faked: the
metrics and probe results are scripted, so each path (window, hold, step, promote, rollback, reconcile) is
checked exactly; the same controller runs against a real BentoML server in tests/serving/test_serving_assets.py.
"""

from __future__ import annotations

import json
import math

import pytest

from speech_assets.registry.registry import ModelRegistry, Stage
from speech_assets.serving.canary import CanaryPolicy, ProbeResult
from speech_assets.serving.controller import CanaryController
from speech_assets.serving.metrics import VersionCounters
from speech_assets.serving.routing import ModelRef, RoutingState
from speech_assets.serving.targets import DeploymentStatus
from speech_assets.storage.local import LocalVersionStore

REPO, NAME = "ctl", "asr"


class FakeTarget:
    def __init__(self, routing: RoutingState):
        self.state = routing
        self.applied: list[RoutingState] = []

    def routing(self):
        return self.state

    def apply_routing(self, routing):
        self.state = routing
        self.applied.append(routing)

    def status(self):
        return DeploymentStatus("fake", "asr:x", "http://fake", 1, 1, True, 0.0, self.state.revision)


class FakeService:
    """Cumulative counters per version, advanced by `serve`; probe WER per version."""

    def __init__(self):
        self.counters: dict[str, VersionCounters] = {}
        self.wer = {"1.0.0": 0.10, "1.1.0": 0.10}
        self.probe_failures = {"1.1.0": 0}

    def serve(self, version: str, n: int, errors: int = 0, latency: float = 0.08, confidence: float = 0.9):
        c = self.counters.setdefault(version, VersionCounters())
        c.requests += n
        c.errors += errors
        for le in (0.05, 0.1, 0.2, 1.0, math.inf):
            c.latency_buckets[le] = c.latency_buckets.get(le, 0.0) + (n if latency <= le else 0)
        c.confidence_sum += confidence * n
        c.confidence_count += n
        for le in (0.2, 0.4, 0.6, 0.8, 1.0, math.inf):
            c.confidence_buckets[le] = c.confidence_buckets.get(le, 0.0) + (n if confidence <= le else 0)

    def scrape(self, url):
        return {v: VersionCounters(c.requests, c.errors, 0.0, dict(c.latency_buckets), c.confidence_sum,
                                   c.confidence_count, dict(c.confidence_buckets)) for v, c in self.counters.items()}

    def probe(self, url, side, utterances, api_key=None, expect_version=None):
        failed = self.probe_failures.get(expect_version, 0)
        return ProbeResult(self.wer[expect_version], len(utterances) - failed, failed), expect_version


@pytest.fixture
def world(tmp_path):
    store = LocalVersionStore(tmp_path / "store")
    store.create_repository(REPO)
    registry = ModelRegistry(store, REPO)
    for i, weights in enumerate((b"w1", b"w2")):
        registry.register(NAME, weights, data_commits=["a" * 64], feature_config_hash="f", vocabulary_hash="v",
                          code_version="1", training_config={}, seed=i, eval_report_json=b"{}",
                          calibration_json={"temperature": 1.0}, actor="t")
    registry.set_stage(NAME, "1.0.0", "production", actor="t", reason="first")
    registry.set_stage(NAME, "1.1.0", "canary", actor="t", reason="retrained")
    routing = RoutingState().with_champion(ModelRef("1.0.0", "asr:1.0.0")).with_challenger(ModelRef("1.1.0", "asr:1.1.0"), 10)
    target, service = FakeTarget(routing), FakeService()
    controller = CanaryController(
        target, registry, CanaryPolicy(min_requests=20), probes=lambda: [(b"wav", "hello")] * 8,
        scrape_fn=service.scrape, probe_fn=service.probe, clock=lambda: 1000.0,
    )
    yield registry, target, service, controller
    store.close()


def _run(controller, cursor, service=None, traffic=None):
    if service and traffic:
        for version, n in traffic.items():
            service.serve(version, n)
    out = controller.tick(cursor)
    json.dumps(out.cursor)  # the cursor must survive Dagster's string cursor
    return out


def test_a_healthy_canary_steps_up_and_is_promoted(world):
    registry, target, service, ctl = world
    service.serve("1.0.0", 500)  # history before the window: not evidence
    out = _run(ctl, None)
    assert out.action == "window_opened"
    out = _run(ctl, out.cursor, service, {"1.0.0": 90, "1.1.0": 5})
    assert out.action == "hold" and "5 live requests of 20" in out.message
    out = _run(ctl, out.cursor, service, {"1.0.0": 90, "1.1.0": 20})
    assert out.action == "step" and target.state.weight == 50
    assert out.cursor["window"] == f"1.1.0@{target.state.revision}"  # a new window for the new step
    out = _run(ctl, out.cursor, service, {"1.0.0": 50, "1.1.0": 50})
    assert out.action == "step" and target.state.weight == 100
    out = _run(ctl, out.cursor, service, {"1.1.0": 60})
    assert out.action == "promote" and target.state.champion.version == "1.1.0" and target.state.challenger is None
    assert registry.production(NAME).version == "1.1.0" and registry.get(NAME, "1.0.0").stage is Stage.ARCHIVED
    events = [e for e in registry.audit_log(NAME) if e.actor == "canary_controller"]
    assert [e.action for e in events] == ["canary", "canary", "stage", "stage"]  # 2 steps, promote + archive
    assert events[0].evidence["decision"]["action"] == "step"
    assert events[0].evidence["window"]["challenger"]["requests"] == 25  # the held tick's requests count too
    assert events[2].evidence["probe"]["challenger"]["wer"] == pytest.approx(0.10)
    assert _run(ctl, out.cursor).action == "idle"
    assert registry.verify_audit_chain(NAME).ok


def test_a_worse_challenger_is_rolled_back_with_the_breach_recorded(world):
    registry, target, service, ctl = world
    service.wer["1.1.0"] = 0.40
    out = _run(ctl, None)
    out = _run(ctl, out.cursor, service, {"1.0.0": 100, "1.1.0": 25})
    assert out.action == "rollback" and "probe_wer" in out.message
    assert target.state.challenger is None and target.state.champion.version == "1.0.0"
    assert registry.get(NAME, "1.1.0").stage is Stage.ARCHIVED and registry.production(NAME).version == "1.0.0"
    last = registry.audit_log(NAME)[-1]
    assert last.to_stage == "archived" and last.evidence["decision"]["action"] == "rollback"
    assert {r["name"]: r["passed"] for r in last.evidence["decision"]["rules"]}["probe_wer"] is False


def test_errors_trigger_probing_before_min_requests(world):
    registry, target, service, ctl = world
    service.probe_failures["1.1.0"] = 8  # nothing answers on the challenger side
    out = _run(ctl, None)
    service.serve("1.1.0", 3, errors=3)
    out = _run(ctl, out.cursor)
    assert out.action == "rollback" and {"error_rate", "probe_wer"} <= set(out.decision.failed)


def test_routing_follows_the_registry_after_a_crash_between_the_writes(world):
    registry, target, service, ctl = world
    # the registry write of a rollback happened, the routing write did not (the process died in between)
    registry.set_stage(NAME, "1.1.0", "archived", actor="canary_controller", reason="canary rolled back: x")
    out = _run(ctl, {"window": "stale"})
    assert out.action == "reconciled" and target.state.challenger is None and out.cursor == {}


def test_an_operator_promotion_in_the_registry_is_followed(world):
    registry, target, service, ctl = world
    registry.set_stage(NAME, "1.1.0", "production", actor="alice", reason="promoted by hand")
    out = _run(ctl, None)
    assert out.action == "reconciled" and target.state.champion.version == "1.1.0"


def test_a_registry_rollback_by_hand_asks_for_a_deployment(world):
    registry, target, service, ctl = world
    registry.set_stage(NAME, "1.1.0", "production", actor="alice", reason="promoted by hand")
    assert _run(ctl, None).action == "reconciled"  # routing: 1.1.0 champion
    registry.rollback(NAME, "1.0.0", actor="alice", reason="1.1.0 misbehaves on telephone audio")
    out = _run(ctl, None)
    # 1.0.0 must be (re)imported and routed: the sensor runs the deployment assets for that
    assert out.action == "out_of_sync" and "registry production is 1.0.0" in out.message


# -- the release policy's named approval gates full traffic and the promotion --------------------------------
@pytest.fixture
def major(tmp_path):
    """1.0.0 in production; 2.0.0 (new features: a major version) as the canary. The default release policy
    gates production of a major version on one named approval."""
    from speech_assets.governance.approvals import check_stage_change
    from speech_assets.governance.policy import load_policy

    store = LocalVersionStore(tmp_path / "store")
    store.create_repository(REPO)
    registry = ModelRegistry(store, REPO)
    for i, (weights, features) in enumerate(((b"w1", "f"), (b"w2", "f2"))):
        registry.register(NAME, weights, data_commits=["a" * 64], feature_config_hash=features, vocabulary_hash="v",
                          code_version="1", training_config={}, seed=i, eval_report_json=b"{}",
                          calibration_json={"temperature": 1.0}, actor="t")
    registry.set_stage(NAME, "1.0.0", "production", actor="t", reason="first")
    registry.set_stage(NAME, "2.0.0", "canary", actor="t", reason="new features")
    service = FakeService()
    service.wer["2.0.0"] = 0.10
    checks = []

    def approval(version, to_stage):
        checks.append((version, to_stage))
        return check_stage_change(store, REPO, load_policy(store, REPO), registry, NAME, version, to_stage)

    def controller(weight):
        routing = (RoutingState().with_champion(ModelRef("1.0.0", "asr:1.0.0"))
                   .with_challenger(ModelRef("2.0.0", "asr:2.0.0"), weight))
        target = FakeTarget(routing)
        ctl = CanaryController(target, registry, CanaryPolicy(min_requests=20), probes=lambda: [(b"wav", "hi")] * 8,
                               scrape_fn=service.scrape, probe_fn=service.probe, clock=lambda: 1000.0,
                               approval=approval)
        return target, ctl

    yield store, registry, service, controller, checks
    store.close()


def test_a_promotion_without_its_approval_holds_and_goes_ahead_after_approve(major):
    from speech_assets.governance.approvals import approve

    store, registry, service, controller, checks = major
    target, ctl = controller(100.0)
    out = _run(ctl, None)
    out = _run(ctl, out.cursor, service, {"2.0.0": 30})
    assert out.action == "awaiting_approval" and out.decision.action == "promote"
    assert "hold 2.0.0 at 100%: awaiting approval before promotion" in out.message
    assert "python -m speech_assets approve asr 2.0.0 --to production --who NAME --why TEXT" in out.message
    assert target.applied == [] and registry.production(NAME).version == "1.0.0"
    assert registry.get(NAME, "2.0.0").stage is Stage.CANARY
    assert out.cursor["window"] == "2.0.0@" + str(target.state.revision)  # the window stays open
    out = _run(ctl, out.cursor, service, {"2.0.0": 10})
    assert out.action == "awaiting_approval" and checks == [("2.0.0", "production")] * 2

    approve(store, REPO, NAME, "2.0.0", "production", "alice", "eval report and canary read")
    out = _run(ctl, out.cursor, service, {"2.0.0": 10})  # the first tick after the approval promotes
    assert out.action == "promote" and target.state.champion.version == "2.0.0"
    assert registry.production(NAME).version == "2.0.0"
    promoted = [e for e in registry.audit_log(NAME) if e.to_stage == "production"][-1]
    assert promoted.evidence["approval"]["approvers"] == ["alice"] and promoted.evidence["approval"]["satisfied"]


def test_an_unapproved_major_does_not_take_full_traffic_but_is_still_rolled_back_on_a_breach(major):
    store, registry, service, controller, checks = major
    target, ctl = controller(50.0)
    out = _run(ctl, None)
    out = _run(ctl, out.cursor, service, {"1.0.0": 30, "2.0.0": 30})
    assert out.action == "awaiting_approval" and out.decision.action == "step" and out.decision.weight == 100
    assert "hold 2.0.0 at 50%: awaiting approval before full traffic" in out.message
    assert target.state.weight == 50 and target.applied == []
    service.wer["2.0.0"] = 0.40  # it degrades while it waits (the probe is redone every probe_refresh_s)
    ctl.clock = lambda: 1000.0 + ctl.probe_refresh_s + 1
    out = _run(ctl, out.cursor, service, {"1.0.0": 10, "2.0.0": 10})
    assert out.action == "rollback" and registry.get(NAME, "2.0.0").stage is Stage.ARCHIVED  # never gated


def test_steps_below_full_traffic_do_not_ask_for_approval(major):
    store, registry, service, controller, checks = major
    target, ctl = controller(10.0)
    out = _run(ctl, None)
    out = _run(ctl, out.cursor, service, {"1.0.0": 30, "2.0.0": 30})
    assert out.action == "step" and target.state.weight == 50 and checks == []


def test_a_minor_version_is_checked_and_let_through(world):
    from speech_assets.governance.approvals import check_stage_change
    from speech_assets.governance.policy import DEFAULT_POLICY

    registry, target, service, _ = world
    calls = []

    def approval(version, to_stage):
        calls.append(version)
        return check_stage_change(registry.store, registry.repo, DEFAULT_POLICY, registry, NAME, version, to_stage)

    target.state = target.state.with_weight(100.0)
    ctl = CanaryController(target, registry, CanaryPolicy(min_requests=20), probes=lambda: [(b"wav", "hello")] * 8,
                           scrape_fn=service.scrape, probe_fn=service.probe, clock=lambda: 1000.0, approval=approval)
    out = _run(ctl, None)
    out = _run(ctl, out.cursor, service, {"1.1.0": 30})
    assert out.action == "promote" and calls == ["1.1.0"] and out.evidence["approval"]["required"] is False
    assert registry.production(NAME).version == "1.1.0"


# -- the bake guard after a promotion ----------------------------------------------------------------------
def _promoted_with_bake(world, window_s=600.0):
    from speech_assets.serving.bake import BakePolicy

    registry, target, service, _ = world
    clock = {"t": 1000.0}
    ctl = CanaryController(
        target, registry, CanaryPolicy(min_requests=20, steps=(100.0,)), probes=lambda: [(b"wav", "hello")] * 8,
        scrape_fn=service.scrape, probe_fn=service.probe, clock=lambda: clock["t"],
        bake_policy=BakePolicy(window_s=window_s, min_requests=20))
    target.state = target.state.with_weight(100.0)
    service.wer["1.0.0"] = 0.12
    out = _run(ctl, None)
    out = _run(ctl, out.cursor, service, {"1.1.0": 30, "1.0.0": 5})
    assert out.action == "promote" and registry.production(NAME).version == "1.1.0"
    bake = out.cursor["bake"]
    assert bake["version"] == "1.1.0" and bake["previous"]["version"] == "1.0.0"
    assert bake["previous_probe_wer"] == pytest.approx(0.12)  # the replaced model's WER on the same probe audio
    return registry, target, service, ctl, clock, out


def test_a_promoted_model_that_stays_healthy_is_baked_after_the_window(world):
    registry, target, service, ctl, clock, out = _promoted_with_bake(world)
    clock["t"] += 60
    out = _run(ctl, out.cursor, service, {"1.1.0": 5})
    assert out.action == "baking" and "5 of 20 live requests" in out.message and target.state.champion.version == "1.1.0"
    clock["t"] += 120
    out = _run(ctl, out.cursor, service, {"1.1.0": 40})
    assert out.action == "baking" and "min of the window left" in out.message
    clock["t"] += 600
    out = _run(ctl, out.cursor, service, {"1.1.0": 40})
    assert out.action == "baked" and out.cursor == {} and registry.production(NAME).version == "1.1.0"
    last = registry.audit_log(NAME)[-1]
    assert last.reason.startswith("bake passed") and last.evidence["bake"]["action"] == "baked"
    assert _run(ctl, out.cursor).action == "idle"


def test_a_promoted_model_that_degrades_is_rolled_back_to_the_previous_version(world):
    registry, target, service, ctl, clock, out = _promoted_with_bake(world)
    clock["t"] += 60
    service.wer["1.1.0"] = 0.30  # it passed the canary, then went bad
    out = _run(ctl, out.cursor, service, {"1.1.0": 25})
    assert out.action == "bake_rollback" and out.changed_routing and "probe_wer" in out.message
    assert target.state.champion.version == "1.0.0" and target.state.challenger is None
    assert registry.production(NAME).version == "1.0.0" and registry.get(NAME, "1.1.0").stage is Stage.ARCHIVED
    event = next(e for e in reversed(registry.audit_log(NAME)) if e.action == "rollback" and e.version == "1.0.0")
    assert event.to_stage == "production" and event.reason.startswith("bake guard rolled 1.1.0 back") and event.evidence["bake"]["action"] == "rollback"
    rules = {r["name"]: r["passed"] for r in event.evidence["bake"]["rules"]}
    assert rules == {"error_rate": True, "p95_latency": True, "probe_wer": False}
    assert event.evidence["previous_probe_wer"] == pytest.approx(0.12)
    assert registry.verify_audit_chain(NAME).ok
    assert _run(ctl, out.cursor).action == "idle"


def test_errors_after_a_promotion_roll_back_without_waiting_for_the_sample(world):
    registry, target, service, ctl, clock, out = _promoted_with_bake(world)
    service.serve("1.1.0", 4, errors=3)
    out = _run(ctl, out.cursor)
    assert out.action == "bake_rollback" and "error_rate" in out.message
    assert registry.production(NAME).version == "1.0.0"


# -- A/B mode: a fixed split and a pre-registered sequential test ------------------------------------------
def test_ab_mode_keeps_its_split_and_decides_at_the_planned_looks(world):
    from speech_assets.evaluation.sequential import SequentialDesign

    registry, target, service, _ = world
    design = SequentialDesign.plan(looks=3, alpha=0.05, power=0.8, min_effect=0.05, sd=0.3)
    ctl = CanaryController(target, registry, CanaryPolicy(min_requests=20), probes=lambda: [(b"wav", "hi")] * 8,
                           scrape_fn=service.scrape, probe_fn=service.probe, clock=lambda: 1000.0, ab_design=design)
    target.state = target.state.with_weight(50.0)
    out = _run(ctl, None)
    need = design.look_size(1)
    for version in ("1.0.0", "1.1.0"):  # a spread of confidences, the challenger's clearly higher
        for conf in (0.3, 0.5, 0.7, 0.9):
            service.serve(version, need // 8 + 1, confidence=conf)
    service.serve("1.1.0", need // 4, confidence=0.9)
    out = _run(ctl, out.cursor)
    assert out.action == "hold" and "for look 1/3" in out.message and target.state.weight == 50.0
    for version, confs in (("1.0.0", (0.3, 0.5, 0.7, 0.9)), ("1.1.0", (0.9, 0.9, 0.7, 0.9))):
        for conf in confs:
            service.serve(version, need // 4 + 1, confidence=conf)
    out = _run(ctl, out.cursor)
    look = out.evidence["ab"]["look"]
    assert look["k"] == 1 and look["z"] > look["boundary"] and out.action == "promote"
    assert "A/B look 1/3: challenger - champion +" in out.message and "repeated 95% CI" in out.message
    assert registry.production(NAME).version == "1.1.0"
    assert [e for e in registry.audit_log(NAME) if e.to_stage == "production"][-1].evidence["ab"]["look"]["k"] == 1


def test_a_server_restart_mid_window_reopens_the_window_instead_of_judging_its_cold_start(world):
    """After a crash and restart the counters start from zero and the first answers are cold (slow): the window
    that spanned the restart is dropped and a new one opened, so a healthy challenger is not rolled back for its
    warm-up, and the planned sample counts again from the restart."""
    registry, target, service, ctl = world
    out = _run(ctl, None)
    assert out.action == "window_opened" and out.cursor["server"] == "1@0.0"
    _run(ctl, out.cursor, service, {"1.0.0": 90, "1.1.0": 10})  # some evidence, then the server dies
    service.counters.clear()
    service.serve("1.1.0", 20, latency=0.9)  # the restarted server's first, cold answers
    service.serve("1.0.0", 20, latency=0.9)
    target.status = lambda: DeploymentStatus("fake", "asr:x", "http://fake", 2, 1, True, 50.0, target.state.revision)
    reopened = _run(ctl, out.cursor)
    assert reopened.action == "window_opened" and "the service restarted (pid 2)" in reopened.message
    assert reopened.cursor["server"] == "2@50.0" and reopened.cursor["canary"]["restarts"] == 1
    out = _run(ctl, reopened.cursor, service, {"1.0.0": 90, "1.1.0": 20})  # warm again: judged on these only
    assert out.action == "step" and target.state.weight == 50
    assert registry.get(NAME, "1.1.0").stage is Stage.CANARY


def test_probe_results_are_kept_per_version_and_a_slow_probe_splits_across_ticks(world):
    """A version's answers on a fixed probe set do not change, so each model is probed once per canary; with a
    probe budget spent by the challenger's pass, the champion's waits for the next tick (a Dagster tick that runs
    past its time limit is abandoned while its work goes on)."""
    registry, target, service, _ = world
    calls = []

    def probe(url, side, utterances, api_key=None, expect_version=None):
        calls.append(expect_version)
        return service.probe(url, side, utterances, api_key, expect_version)

    ctl = CanaryController(target, registry, CanaryPolicy(min_requests=20), probes=lambda: [(b"wav", "hello")] * 8,
                           scrape_fn=service.scrape, probe_fn=probe, clock=lambda: 1000.0, probe_budget_s=0.0)
    out = _run(ctl, None)
    out = _run(ctl, out.cursor, service, {"1.0.0": 90, "1.1.0": 20})
    assert out.action == "hold" and "1.0.0 on the same audio next tick" in out.message and calls == ["1.1.0"]
    out = _run(ctl, out.cursor)
    assert out.action == "step" and calls == ["1.1.0", "1.0.0"]
    out = _run(ctl, out.cursor)  # the next step's window
    out = _run(ctl, out.cursor, service, {"1.0.0": 50, "1.1.0": 50})
    assert out.action == "step" and target.state.weight == 100 and calls == ["1.1.0", "1.0.0"]  # kept
    assert out.evidence["probe"]["champion"]["wer"] == 0.10


def test_a_probe_with_failed_requests_is_not_kept(world):
    """A failed probe request is evidence of this tick only (a rollback, by the guardrail): it is not kept."""
    registry, target, service, ctl = world
    service.probe_failures["1.1.0"] = 1
    chal, champ, cursor = ctl._probe(target.state, "http://fake", [(b"wav", "hello")] * 8, {})
    assert chal.failed_requests == 1 and champ.failed_requests == 0
    assert "1.1.0" not in cursor["probes"] and cursor["probes"]["1.0.0"]["wer"] == 0.10
    _, _, again = ctl._probe(target.state, "http://fake", [(b"other", "audio")] * 8, cursor)
    assert again["probes"]["key"] != cursor["probes"]["key"]  # another probe set: nothing kept carries over


def test_a_tick_whose_routing_moved_under_it_does_nothing(world):
    """Two overlapping ticks (one abandoned by the daemon, still running) read the same routing: the one that
    acts second sees another revision and acts on nothing, so a step is never applied twice."""
    registry, target, service, ctl = world
    out = _run(ctl, None)
    service.serve("1.0.0", 90)
    service.serve("1.1.0", 20)
    stale_routing = target.state
    real_routing = target.routing
    calls = {"n": 0}

    def routing():  # the first read is the tick's own; by the second (in _act) someone else stepped it
        calls["n"] += 1
        return stale_routing if calls["n"] == 1 else stale_routing.with_weight(50.0)

    target.routing = routing
    stale = ctl.tick(out.cursor)
    target.routing = real_routing
    assert stale.action == "stale" and "no action" in stale.message and stale.cursor == {}
    assert target.applied == [] and not [e for e in registry.audit_log(NAME) if e.actor == "canary_sensor"]
