"""`service_recovery_sensor` on a real BentoML server: SIGKILL it, the next ticks alert, start it again with the
routing it had on its address, say it is back; the restart and the recovery are deployment records in the store;
a server a person stopped stays stopped."""

from __future__ import annotations

import json
import os
import signal
import time

import dagster as dg

from speech_assets.defs.operations.resources import AlertSinkResource
from speech_assets.defs.operations.sensors import service_recovery_sensor
from speech_assets.defs.serving.resources import ServingResource
from speech_assets.defs.storage.resources import VersionStoreResource
from speech_assets.registry.registry import ModelRegistry
from speech_assets.serving.routing import ModelRef, RoutingState
from speech_assets.serving.targets import _alive
from speech_assets.storage.layout import DEPLOYMENT_RECORD
from tests.serving.test_local_target import build_bento
from tests.serving.test_service import _wav, post

REPO = "speech-assets"


def _tick(resources, instance, cursor):
    context = dg.build_sensor_context(instance=instance, resources=resources, cursor=cursor)
    return service_recovery_sensor(context).skip_message, context.cursor


def test_a_killed_server_is_alerted_restarted_with_its_routing_and_reported_back(tmp_path):
    bentoml_home = tmp_path / "bentoml"
    _, tag, bento = build_bento(bentoml_home)
    store = VersionStoreResource(local_root=str(tmp_path / "store"), repository=REPO)
    vs = store.open()
    vs.create_repository(REPO)
    registry = ModelRegistry(vs, REPO)
    registry.register("asr", b"weights", data_commits=["d" * 64], feature_config_hash="f", vocabulary_hash="v",
                      code_version="git-1", training_config={}, seed=1, eval_report_json={"wer": 0.1},
                      calibration_json={"temperature": 1.0}, actor="trainer")
    registry.set_stage("asr", "1.0.0", "production", "op", "first model")
    serving = ServingResource(home=str(tmp_path / "serving"), bentoml_home=str(bentoml_home), port=0)
    resources = {"store": store, "serving": serving,
                 "alerts": AlertSinkResource(log_path=str(tmp_path / "alerts.jsonl"), retries=0)}
    target = serving.target()
    routing = RoutingState().with_champion(ModelRef("1.0.0", tag, 1.0))
    first = target.deploy(bento, routing)
    try:
        with dg.instance_for_test() as instance:
            message, cursor = _tick(resources, instance, None)
            assert message.startswith("healthy")
            os.killpg(first.pid, signal.SIGKILL)
            deadline = time.monotonic() + 30
            while _alive(first.pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            message, cursor = _tick(resources, instance, cursor)  # the first tick that sees it down
            assert message.startswith("restart") and "1.0.0 is in production" in message and "process gone" in message
            messages, deadline = [], time.monotonic() + 120
            while not messages or not messages[-1].startswith("recovered"):
                assert time.monotonic() < deadline, messages
                time.sleep(1.0)
                message, cursor = _tick(resources, instance, cursor)
                messages.append(message)
            assert all(m.startswith(("wait", "recovered")) for m in messages), messages
        back = target.status()
        assert back.ready and back.url == first.url and back.pid != first.pid
        assert back.routing_revision == routing.revision and target.routing().champion.version == "1.0.0"
        code, body = post(back.url + "/transcribe", [("audio", "a.wav", _wav(0.6))], api_key=None)
        assert code == 200 and body["model_version"] == "1.0.0"
        alerts = [json.loads(line) for line in (tmp_path / "alerts.jsonl").read_text().splitlines()]
        assert [(a["kind"], a["status"]) for a in alerts] == [("service", "firing"), ("service", "resolved")]
        assert "restarting with the routing it had" in alerts[0]["details"]["reason"]
        record = json.loads(vs.get_object(REPO, "main", DEPLOYMENT_RECORD))
        assert "ready again" in record["why"] and record["status"]["pid"] == back.pid  # the recovery, in the store
        log = [c.message for c in vs.log(REPO, "main")]
        assert any("restarting" in m for m in log) and any("ready again" in m for m in log)  # both, in the history

        # a person stopped it: recovery leaves it stopped and sends nothing
        target.stop()
        with dg.instance_for_test() as instance:
            message, _ = _tick(resources, instance, cursor)
        assert message.startswith("nothing_to_serve") and not target.status().ready
        assert len((tmp_path / "alerts.jsonl").read_text().splitlines()) == 2
    finally:
        target.stop()
