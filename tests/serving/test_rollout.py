"""`serving.rollout` without Dagster or a server: the plan it follows, what it records, when it refuses.

A stand-in target records what it is asked to serve (the real `bentoml serve` path is `test_serving_assets.py`);
the store holds a bento record as `build_service_bento` leaves it and a manifest the probe set is chosen from."""

from __future__ import annotations

import json
import logging

import pytest

from speech_assets.serving.probe_set import ProbeSet
from speech_assets.serving.rollout import RolloutError, build_service_bento, publish_deployment_record, roll_out
from speech_assets.serving.routing import RoutingState
from speech_assets.serving.targets import DeploymentStatus
from speech_assets.storage.layout import BENTO_RECORD, DEPLOYMENT_RECORD, PROBE_SET_PATH
from speech_assets.storage.local import LocalVersionStore
from speech_assets.storage.publish import publish_objects
from tests.serving.test_serving_assets import REPO, _seed_store


class FakeTarget:
    """Serves whatever it is told, ready at once (or never, with `ready=False`)."""

    name = "fake"

    def __init__(self, ready: bool = True):
        self.ready, self.state, self.deployed = ready, None, []

    def routing(self) -> RoutingState | None:
        return self.state

    def deploy(self, bento_tag: str, routing: RoutingState) -> DeploymentStatus:
        self.state = routing
        self.deployed.append((bento_tag, routing))
        return DeploymentStatus("fake", bento_tag, "http://127.0.0.1:1", 4242, 1, self.ready, 0.0, routing.revision)


def _bento(production: str, canary: str | None) -> dict:
    models = {v: {"tag": f"asr:{v}", "stage": s, "temperature": 1.0, "checkpoint_sha256": "0" * 64, "size_bytes": 10}
              for v, s in ((production, "production"), (canary, "canary")) if v}
    return {"bento_tag": "asr_service:abc", "source_digest": "d", "size_bytes": 1, "models": models,
            "production": production, "canary": canary}


@pytest.fixture
def store(tmp_path) -> LocalVersionStore:
    _seed_store(tmp_path / "store")
    vs = LocalVersionStore(tmp_path / "store")
    yield vs
    vs.close()


def _record(store, bento: dict) -> None:
    publish_objects(store, REPO, {BENTO_RECORD: json.dumps(bento).encode()}, branch_prefix="t", message="bento",
                    metadata={})


def test_the_first_model_serves_everything_then_a_canary_enters_with_a_probe_set(store, caplog):
    target = FakeTarget()
    _record(store, _bento("1.0.0", None))
    with caplog.at_level(logging.INFO, logger="speech_assets.serving.rollout"):
        first = roll_out(store, REPO, target, first_weight=10.0, probe_utterances=4, run_id="run-1")
    assert first.plan.action == "initial" and first.routing.champion.version == "1.0.0"
    assert first.routing.challenger is None and first.bento_tag == "asr_service:abc"
    assert "rollout: initial — first deployment: 1.0.0 serves all traffic" in caplog.messages
    record = json.loads(store.get_object(REPO, first.commit, DEPLOYMENT_RECORD))
    assert record["status"]["pid"] == 4242 and record["why"] == first.plan.reason
    stored = ProbeSet.from_json(store.get_object(REPO, "main", PROBE_SET_PATH))  # none was stored: chosen now
    assert first.probe == stored and 0 < len(stored.items) <= 4

    _record(store, _bento("1.0.0", "1.1.0"))
    second = roll_out(store, REPO, target, first_weight=10.0, probe_utterances=4, run_id="run-2")
    assert second.plan.action == "canary" and second.routing.challenger.version == "1.1.0"
    assert second.routing.weight == 10.0 and target.deployed[-1][1] == second.routing

    again = roll_out(store, REPO, target, first_weight=10.0, probe_utterances=4, run_id="run-3")
    assert again.plan.action == "unchanged" and again.probe == second.probe  # the canary keeps its probe set


def test_rollout_refuses_without_a_bento_record_or_a_ready_service(store):
    with pytest.raises(RolloutError, match="serving/bento.json is missing: materialize asr_bento first"):
        roll_out(store, REPO, FakeTarget(), first_weight=10.0, probe_utterances=4, run_id="run")
    _record(store, _bento("1.0.0", None))
    with pytest.raises(RolloutError, match="did not become ready on http://127.0.0.1:1"):
        roll_out(store, REPO, FakeTarget(ready=False), first_weight=10.0, probe_utterances=4, run_id="run")


def test_no_bento_is_built_while_nothing_is_in_production(store, tmp_path):
    with pytest.raises(RolloutError, match="no production model in the registry"):
        build_service_bento(store, REPO, tmp_path / "bentoml", run_id="run")


def test_the_deployment_record_is_versioned_with_its_reason(store):
    routing = RoutingState()
    status = DeploymentStatus("fake", None, None, None, None, False, None, 0)
    commit = publish_deployment_record(store, REPO, status, routing, "run", "why not")
    assert json.loads(store.get_object(REPO, commit, DEPLOYMENT_RECORD))["why"] == "why not"
