"""The deployment assets and the canary sensor through Dagster, against a real `bentoml serve` on loopback.

One story, one server (start-up costs seconds): the first registered model is deployed and serves; a second
enters as a 10 % canary without a restart, and the sensor — ticked the way the daemon ticks it — steps it to
50 and 100 % and promotes it while three client loops run, none of their requests failing; then a deliberately
broken challenger (its checkpoint does not load) goes out and the sensor rolls it back on its live errors and
failed probes, again with no failed user request; an operator's rollback in the registry is deployed; and a
challenger that passes its canary and degrades after its promotion (an injected fault slows its answers) is rolled
back by the bake guard to the version it replaced, again with no failed user request, with the evidence in the
audit trail and an alert in the alert log.  Every decision is in the registry's audit trail.
"""

from __future__ import annotations

import io
import json
import os
import time
from collections import Counter

import dagster as dg
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import soundfile as sf
import torch

from speech_assets.defs.operations.resources import AlertSinkResource
from speech_assets.defs.serving.assets import asr_bento, asr_deployment
from speech_assets.defs.serving.resources import ServingResource
from speech_assets.defs.serving.sensors import canary_sensor
from speech_assets.defs.storage.resources import VersionStoreResource
from speech_assets.features.logmel import FeatureConfig
from speech_assets.intake.manifest import MANIFEST_PATH
from speech_assets.model.architecture import CTCModel, ModelConfig
from speech_assets.model.train import checkpoint_bytes
from speech_assets.registry.registry import ModelRegistry, Stage
from speech_assets.serving.routing import read_state
from speech_assets.serving.traffic import Traffic
from speech_assets.storage.layout import BENTO_RECORD, DEPLOYMENT_RECORD, PROBE_SET_PATH
from speech_assets.storage.local import LocalVersionStore
from tests.serving.test_service import post

REPO = "serve-test"


def _wav(seed: int, seconds: float = 0.6) -> bytes:
    x = 0.1 * np.random.default_rng(seed).normal(size=int(seconds * 16000))
    buf = io.BytesIO()
    sf.write(buf, x, 16000, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def _tiny_checkpoint(seed: int) -> bytes:
    torch.manual_seed(seed)
    cfg = ModelConfig(conv_channels=4, hidden=16, layers=1)
    return checkpoint_bytes(CTCModel(cfg).state_dict(), cfg, {"feature_config": FeatureConfig().to_dict()})


def _register(registry: ModelRegistry, blob: bytes, temperature: float, stage: str) -> str:
    mv = registry.register(
        "asr", blob, data_commits=["a" * 64], feature_config_hash="f", vocabulary_hash="v", code_version="1",
        training_config={}, seed=0, eval_report_json=b"{}", calibration_json={"temperature": temperature},
        actor="test",
    )
    registry.set_stage("asr", mv.version, stage, actor="test", reason=f"test {stage}")
    return mv.version


def _seed_store(root) -> None:
    """A manifest whose test split (with audio) the probe set is chosen from."""
    store = LocalVersionStore(root)
    store.create_repository(REPO)
    store.create_branch(REPO, "seed", "main")
    rows = []
    for i in range(12):
        path = f"audio/b0/u{i}.wav"
        store.put_object(REPO, "seed", path, _wav(100 + i), content_type="audio/wav")
        rows.append({"utt_id": f"u{i}", "split": "test" if i < 8 else "train", "audio_path": path,
                     "text": "hello world", "accent": ("us", "gb")[i % 2], "channel": "clean", "redactions": 0})
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), sink)
    store.put_object(REPO, "seed", MANIFEST_PATH, sink.getvalue())
    store.commit(REPO, "seed", "seed manifest")
    store.merge(REPO, "seed", "main")
    store.close()


def _tick_until(ctx_factory, wanted: set[str], max_ticks: int = 40, pause_s: float = 1.0, results=None) -> list[str]:
    """Tick the sensor like the daemon would, carrying its cursor, until one of `wanted` happens."""
    seen = []
    results = results if results is not None else []
    cursor = None
    for _ in range(max_ticks):
        ctx = ctx_factory(cursor)
        result = canary_sensor(ctx)
        cursor = ctx.cursor if isinstance(result, dg.SkipReason) else result.cursor
        action = (result.skip_message if isinstance(result, dg.SkipReason)
                  else result.asset_events[0].metadata["action"].value).split(":")[0]
        seen.append(action)
        results.append(result)
        if action in wanted:
            return seen
        time.sleep(pause_s)
    pytest.fail(f"none of {wanted} after {max_ticks} ticks: {seen}")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serving_assets")
    _seed_store(tmp / "store")
    # the served process reads its injected faults from here (none until the bake test writes one)
    old_fault = os.environ.get("ASR_FAULT_FILE")
    os.environ["ASR_FAULT_FILE"] = str(tmp / "faults.json")
    resources = {
        "alerts": AlertSinkResource(log_path=str(tmp / "alerts.jsonl")),
        "store": VersionStoreResource(repository=REPO, local_root=str(tmp / "store")),
        # random tiny models transcribe noise as noise: the probe WER ceiling is lifted, the delta rule stays
        "serving": ServingResource(home=str(tmp / "serving"), bentoml_home=str(tmp / "bentoml"), port=0, min_requests=8,
                                   max_probe_wer=10.0, probe_utterances=6, max_p95_latency_s=10.0,
                                   max_p95_latency_ratio=20.0),
    }
    instance = dg.DagsterInstance.ephemeral()
    yield {"tmp": tmp, "resources": resources, "instance": instance}
    resources["serving"].target().stop()
    if old_fault is None:
        os.environ.pop("ASR_FAULT_FILE", None)
    else:
        os.environ["ASR_FAULT_FILE"] = old_fault


def _registry(world) -> tuple[LocalVersionStore, ModelRegistry]:
    vs = LocalVersionStore(world["tmp"] / "store")
    return vs, ModelRegistry(vs, REPO)


def _materialize(world) -> dict:
    result = dg.materialize([asr_bento, asr_deployment], resources=world["resources"], instance=world["instance"])
    assert result.success
    return {e.asset_key.to_user_string(): e.materialization.metadata
            for e in result.get_asset_materialization_events()}


def _users(url: str) -> Traffic:
    """Three client loops of live traffic (a fresh client id per request), as the canary sees users."""
    return Traffic(url, [_wav(7, 0.5)], clients=3)


def test_first_model_is_deployed_and_serves(world):
    vs, registry = _registry(world)
    _register(registry, _tiny_checkpoint(0), 1.0, "production")
    meta = _materialize(world)
    assert meta["asr_bento"]["rebuilt"].value is True and meta["asr_bento"]["model_version"].value == "1.0.0"
    dep = meta["asr_deployment"]
    assert dep["action"].value == "initial" and dep["champion"].value == "1.0.0" and dep["challenger"].value == "none"
    url = dep["url"].value
    code, body = post(url + "/transcribe", [("audio", "a.wav", _wav(1))], api_key=None)
    assert code == 200 and body["model_version"] == "1.0.0"
    # the deployment's state and the probe set are in the store
    for path in (BENTO_RECORD, DEPLOYMENT_RECORD, PROBE_SET_PATH):
        assert vs.stat_object(REPO, "main", path).size_bytes > 0
    world["url"], world["pid"] = url, dep["pid"].value
    vs.close()


def _ctx_factory(world):
    return lambda cursor: dg.build_sensor_context(instance=world["instance"], cursor=cursor,
                                                  resources=world["resources"])


def test_canary_is_stepped_up_and_promoted_with_no_failed_request(world):
    vs, registry = _registry(world)
    # same weights, recalibrated: a patch version that answers exactly like the champion
    version = _register(registry, _tiny_checkpoint(0), 1.02, "canary")
    assert version == "1.0.1"
    meta = _materialize(world)
    assert meta["asr_bento"]["rebuilt"].value is False  # same service code: the bento is reused
    dep = meta["asr_deployment"]
    assert dep["action"].value == "canary" and dep["challenger_weight_pct"].value == 10
    assert dep["pid"].value == world["pid"] and dep["url"].value == world["url"]  # no restart, same address

    results = []
    with _users(world["url"]) as users:
        seen = _tick_until(_ctx_factory(world), {"promote", "rollback"}, results=results)
        time.sleep(1.5)
        before = Counter(users.by_version)
        time.sleep(1.5)
        after = +(users.by_version - before)  # who answered in the last 1.5 s
    # the figures of this load-during-promotion run (quoted by tests/faults, which adds a hand rollback)
    print(f"FIGURES canary_promotion_via_controller requests_sent={users.sent} failed={len(users.failed)} "
          f"by_version={dict(users.by_version)} ticks={seen}")
    assert seen[-1] == "promote", seen
    assert seen.count("step") == 2  # 10 -> 50 -> 100, then promoted
    assert users.failed == [], users.failed[:3]
    assert {"1.0.0", "1.0.1"} <= set(users.by_version) and after and set(after) == {"1.0.1"}
    assert registry.production("asr").version == "1.0.1" and registry.get("asr", "1.0.0").stage is Stage.ARCHIVED
    routing = read_state(world["tmp"] / "serving" / "routing.json")
    assert routing.champion.version == "1.0.1" and routing.challenger is None
    decisions = [e for e in registry.audit_log("asr") if e.actor == "canary_sensor"]
    assert [e.evidence["decision"]["action"] for e in decisions if e.evidence] == ["step", "step", "promote"]
    assert all(r["passed"] for r in decisions[-2].evidence["decision"]["rules"])
    # what the daemon records as an observation of asr_deployment (the decision, visible in the UI)
    (observation,) = results[-1].asset_events
    assert observation.asset_key == dg.AssetKey("asr_deployment")
    assert "| probe_wer | pass |" in observation.metadata["decision"].value
    assert observation.metadata["champion"].value == "1.0.1"
    vs.close()


def test_a_broken_challenger_is_rolled_back_with_no_failed_request(world):
    vs, registry = _registry(world)
    version = _register(registry, b"these bytes are not a checkpoint", 1.0, "canary")
    dep = _materialize(world)["asr_deployment"]
    assert dep["action"].value == "canary" and dep["challenger"].value == version

    with _users(world["url"]) as users:
        seen = _tick_until(_ctx_factory(world), {"promote", "rollback"})
    assert seen[-1] == "rollback", seen
    assert users.failed == [], users.failed[:3]  # the champion answered whatever the broken canary could not
    assert registry.get("asr", version).stage is Stage.ARCHIVED and registry.production("asr").version == "1.0.1"
    last = [e for e in registry.audit_log("asr") if e.version == version][-1]
    verdicts = {r["name"]: r["passed"] for r in last.evidence["decision"]["rules"]}
    assert verdicts["error_rate"] is False and verdicts["probe_wer"] is False
    assert read_state(world["tmp"] / "serving" / "routing.json").challenger is None
    assert registry.verify_audit_chain("asr").ok
    vs.close()


def test_a_rollback_by_hand_in_the_registry_is_deployed(world):
    """`models rollback` changes the registry; the sensor notices and asks for the deployment job to run."""
    vs, registry = _registry(world)
    registry.rollback("asr", "1.0.0", actor="alice", reason="1.0.1 misbehaves on telephone audio")
    ctx = _ctx_factory(world)(None)
    result = canary_sensor(ctx)
    (request,) = result.run_requests
    assert request.run_key.startswith("sync-1.0.0-none-")
    assert "registry production is 1.0.0" in request.tags["speech_assets/reason"]
    dep = _materialize(world)["asr_deployment"]  # what the requested deploy_models run does
    assert dep["action"].value == "champion" and dep["champion"].value == "1.0.0"
    # the service keeps answering with the model it has until 1.0.0 is loaded beside it, then switches
    deadline, answered = time.time() + 30, []
    while time.time() < deadline and (not answered or answered[-1] != "1.0.0"):
        code, body = post(world["url"] + "/transcribe", [("audio", "a.wav", _wav(3))], api_key=None)
        assert code == 200
        answered.append(body["model_version"])
        time.sleep(0.2)
    assert answered[-1] == "1.0.0" and set(answered) <= {"1.0.0", "1.0.1"}
    assert canary_sensor(_ctx_factory(world)(None)).skip_message.startswith("idle")
    vs.close()


def test_a_promoted_model_that_degrades_is_rolled_back_by_the_bake_guard_with_no_failed_request(world):
    """The same weights recalibrated (a patch) pass the canary; right after the promotion an injected fault makes
    the new production model answer 1.5 s late; the bake guard (p95 ceiling 1 s for this deployment) rolls back to
    the version it replaced while three client loops run; none of their requests fails."""
    vs, registry = _registry(world)
    assert registry.production("asr").version == "1.0.0"
    version = _register(registry, _tiny_checkpoint(0), 1.03, "canary")
    dep = _materialize(world)["asr_deployment"]
    assert dep["action"].value == "canary" and dep["challenger"].value == version
    serving = world["resources"]["serving"]
    fields = {k: getattr(serving, k) for k in type(serving).model_fields}
    resources = {**world["resources"], "serving": ServingResource(
        **{**fields, "max_p95_latency_s": 1.0, "bake_window_s": 120.0})}
    assert resources["serving"].bake_policy().window_s == 120.0 and resources["serving"].home == serving.home
    faults = world["tmp"] / "faults.json"
    seen, cursor, results = [], None, []
    with _users(world["url"]) as users:
        for _ in range(80):
            ctx = dg.build_sensor_context(instance=world["instance"], cursor=cursor, resources=resources)
            result = canary_sensor(ctx)
            cursor = ctx.cursor if isinstance(result, dg.SkipReason) else result.cursor
            action = (result.skip_message if isinstance(result, dg.SkipReason)
                      else result.asset_events[0].metadata["action"].value).split(":")[0]
            seen.append(action)
            results.append(result)
            if action == "promote":
                faults.write_text(json.dumps({version: {"delay_s": 1.5}}))  # it degrades after its canary
            if action in ("bake_rollback", "rollback", "baked"):
                break
            time.sleep(1.0)
        time.sleep(2.0)
        before = Counter(users.by_version)
        time.sleep(2.0)
        after = +(users.by_version - before)
    faults.unlink(missing_ok=True)
    print(f"FIGURES bake_rollback requests_sent={users.sent} failed={len(users.failed)} "
          f"by_version={dict(users.by_version)} ticks={seen}")
    assert "promote" in seen and seen[-1] == "bake_rollback", seen
    assert seen[seen.index("promote") + 1:-1] and set(seen[seen.index("promote") + 1:-1]) <= {"baking"}
    assert users.failed == [], users.failed[:3]
    assert after and set(after) == {"1.0.0"}  # the replaced version answers everyone again
    assert registry.production("asr").version == "1.0.0" and registry.get("asr", version).stage is Stage.ARCHIVED
    assert read_state(world["tmp"] / "serving" / "routing.json").champion.version == "1.0.0"
    restored = next(e for e in reversed(registry.audit_log("asr")) if e.action == "rollback" and e.version == "1.0.0")
    assert restored.actor == "canary_sensor" and restored.reason.startswith(f"bake guard rolled {version} back")
    rules = {r["name"]: r["passed"] for r in restored.evidence["bake"]["rules"]}
    assert restored.evidence["policy"]["window_s"] == 120.0 and restored.evidence["policy"]["max_p95_latency_s"] == 1.0
    assert rules["p95_latency"] is False and restored.evidence["since_promotion"]["p95_latency_s"] > 1.0
    alerts = [json.loads(x) for x in (world["tmp"] / "alerts.jsonl").read_text().splitlines()]
    rollback_alerts = [a for a in alerts if a["kind"] == "rollback" and a["details"]["rolled_back"] == version]
    assert rollback_alerts and rollback_alerts[-1]["details"]["action"] == "bake_rollback"
    assert "after its promotion (bake guard)" in rollback_alerts[-1]["title"]
    assert registry.verify_audit_chain("asr").ok
    vs.close()


def test_a_server_killed_mid_canary_comes_back_by_itself_and_the_canary_ends_by_its_rules(world):
    """SIGKILL the served process while a canary is at 10 %: the recovery sensor alerts and restarts it with the
    routing it had (canary included), says it is back; the canary sensor waits while it is down, then carries on
    and promotes by its rules. The alert, the restart and the recovery are in the alert log and the platform audit
    trail; the canary's decisions in the registry's."""
    import signal

    from speech_assets.defs.operations.sensors import service_recovery_sensor
    from speech_assets.serving.targets import _alive
    from speech_assets.storage.audit_log import SERVICE_RECOVERY, read_events

    vs, registry = _registry(world)
    version = _register(registry, _tiny_checkpoint(0), 1.04, "canary")
    dep = _materialize(world)["asr_deployment"]
    assert dep["action"].value == "canary" and dep["challenger"].value == version
    target = world["resources"]["serving"].target()
    before = target.status()
    cursor, recovery_cursor, seen, recovered = None, None, [], []
    with _users(world["url"]) as users:
        for i in range(90):
            ctx = dg.build_sensor_context(instance=world["instance"], cursor=cursor, resources=world["resources"])
            result = canary_sensor(ctx)
            cursor = ctx.cursor if isinstance(result, dg.SkipReason) else result.cursor
            action = (result.skip_message if isinstance(result, dg.SkipReason)
                      else result.asset_events[0].metadata["action"].value).split(":")[0]
            seen.append(action)
            last = result
            if i == 0:  # mid-canary (its window just opened at 10 %): the process group, as a crash would
                weight_at_kill = target.routing().weight
                os.killpg(before.pid, signal.SIGKILL)
                deadline = time.monotonic() + 30
                while _alive(before.pid) and time.monotonic() < deadline:
                    time.sleep(0.2)
            if i >= 0:
                rctx = dg.build_sensor_context(instance=world["instance"], cursor=recovery_cursor,
                                               resources=world["resources"])
                recovered.append(service_recovery_sensor(rctx).skip_message)
                recovery_cursor = rctx.cursor
            if action in ("promote", "rollback"):
                break
            time.sleep(1.0)
    print(f"FIGURES kill_mid_canary ticks={seen} recovery={[m.split(':')[0] for m in recovered]} "
          f"requests_sent={users.sent} failed_while_down={len(users.failed)}")
    if not isinstance(last, dg.SkipReason):
        print(last.asset_events[0].metadata["decision"].value)
    assert seen[-1] == "promote", seen  # the same weights, recalibrated: healthy, so promoted by its rules
    assert "not_ready" in seen and seen.index("not_ready") < len(seen) - 1  # it waited while the server was down
    assert recovered[0].startswith("restart") and any(m.startswith("recovered") for m in recovered), recovered
    after = target.status()
    assert after.ready and after.url == before.url and after.pid != before.pid
    assert registry.production("asr").version == version
    alerts = [json.loads(x) for x in (world["tmp"] / "alerts.jsonl").read_text().splitlines()]
    service = [(a["status"], a["title"]) for a in alerts if a["kind"] == "service"]
    assert ("firing", "ASR service down: restart") in service and ("resolved", "ASR service back: recovered") in service
    events = read_events(vs, REPO, action=SERVICE_RECOVERY)
    actions = [e.evidence["action"] for e in events]
    assert "restart" in actions and "recovered" in actions
    restart = next(e for e in events if e.evidence["action"] == "restart")
    assert restart.evidence["challenger"] == version and restart.evidence["challenger_weight_pct"] == weight_at_kill == 10.0
    decisions = [e for e in registry.audit_log("asr") if e.version == version and e.actor == "canary_sensor"]
    assert decisions and decisions[-1].to_stage == "production"
    vs.close()
