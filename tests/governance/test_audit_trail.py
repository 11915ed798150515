"""The platform audit trail: data publishes, model events and others in one timeline; append-only checked over
history; "which model served at T and on what data"; the `audit` CLI."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from speech_assets.cli import main as cli_main
from speech_assets.storage.audit_log import APPROVAL, PLATFORM_AUDIT_PREFIX, new_event, read_events, record_event
from speech_assets.governance.audit import timeline, verify_append_only
from speech_assets.governance.served import served_at
from speech_assets.intake.batch import ingest_batch
from speech_assets.intake.landing import scan_landing
from speech_assets.intake.manifest import publish_manifest
from speech_assets.registry.registry import ModelRegistry
from speech_assets.storage.local import LocalVersionStore
from tests.intake.conftest import REPO, good_rows, make_batch

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)


class Clock:
    def __init__(self):
        self.now = T0

    def __call__(self):
        return self.now


@pytest.fixture
def history(tmp_path):
    """Two published batches, a manifest, 1.0.0 in production, then 1.1.0 rolled out as a canary and promoted."""
    store = LocalVersionStore(tmp_path / "store")
    store.create_repository(REPO)
    landing = tmp_path / "landing"
    landing.mkdir()
    make_batch(landing, "day-01", good_rows(3, speaker_prefix="a"))
    make_batch(landing, "day-02", good_rows(2, speaker_prefix="b", accent="gb", seed=5))
    for b in scan_landing(landing):
        assert ingest_batch(store, REPO, b, run_id=f"run-{b.batch_id}").published
    manifest_commit = publish_manifest(store, REPO, "run-manifest").commit_id

    clock = Clock()
    reg = ModelRegistry(store, REPO, clock=clock)
    common = dict(data_commits=[manifest_commit], feature_config_hash="f", vocabulary_hash="v", code_version="c",
                  training_config={}, seed=1, eval_report_json={"wer": 0.1}, calibration_json={"t": 1.0})
    reg.register("asr", b"weights-1", actor="trainer", **common)
    reg.set_stage("asr", "1.0.0", "production", "trainer", "first model")  # at T0
    clock.now = T0 + timedelta(hours=1)
    reg.register("asr", b"weights-2", actor="trainer", **common)
    reg.set_stage("asr", "1.1.0", "canary", "trainer", "retrained on drift")
    clock.now = T0 + timedelta(hours=2)
    reg.record_decision("asr", "1.1.0", "canary-controller", "window ok", {"decision": {"action": "step", "weight": 50.0}})
    clock.now = T0 + timedelta(hours=3)
    reg.set_stage("asr", "1.1.0", "production", "canary-controller", "canary promoted")
    return store, manifest_commit


def test_timeline_holds_publishes_and_model_events_in_time_order(history):
    store, _ = history
    entries = timeline(store, REPO)
    kinds = [(e.kind, e.action) for e in entries]
    assert kinds.count(("platform", "data_publish")) == 2
    assert ("model", "register") in kinds and ("model", "canary") in kinds
    stamps = [datetime.fromisoformat(e.ts.replace("Z", "+00:00")) for e in entries]
    assert stamps == sorted(stamps)
    publish = next(e for e in entries if e.action == "data_publish" and e.subject == "batch day-01")
    assert publish.evidence["accepted"] == 3 and publish.evidence["audited_commit"]


@pytest.mark.parametrize(
    "offset_h, expected",
    [
        (-1, []),  # before anything was promoted
        (0.5, [("production", "1.0.0", None)]),
        (1.5, [("production", "1.0.0", None), ("canary", "1.1.0", None)]),  # canary registered, before its first step
        (2.5, [("production", "1.0.0", None), ("canary", "1.1.0", 50.0)]),
        (3.5, [("production", "1.1.0", None)]),
    ],
)
def test_served_at_replays_the_registry_events(history, offset_h, expected):
    store, manifest_commit = history
    answer = served_at(store, REPO, "asr", T0 + timedelta(hours=offset_h))
    assert [(s.role, s.version, s.weight) for s in answer.serving] == expected
    for s in answer.serving:
        (data,) = s.data
        assert data.data_commit == manifest_commit
        assert set(data.batches) == {"day-01", "day-02"} and data.utterances == 5
        assert set(data.published) == {"day-01", "day-02"}  # each batch's publish event is found


def test_append_only_holds_and_catches_a_rewritten_or_deleted_event(history):
    store, _ = history
    ok = verify_append_only(store, REPO)
    assert ok.ok and ok.audit_objects >= 2 + 5 and ok.commits_checked > 5
    event = read_events(store, REPO)[0]
    store.create_branch(REPO, "tamper", "main")
    store.put_object(REPO, "tamper", event.path, b'{"forged": true}')
    store.delete_object(REPO, "tamper", "audit/asr/00000001-register.json")
    store.commit(REPO, "tamper", "tidy up")
    store.merge(REPO, "tamper", "main")
    broken = verify_append_only(store, REPO)
    assert not broken.ok
    assert any("changed " + event.path in p for p in broken.problems)
    assert any("removed audit/asr/00000001-register.json" in p for p in broken.problems)


def test_events_need_an_actor_and_record_event_publishes_one(history):
    store, _ = history
    with pytest.raises(ValueError, match="named actor"):
        new_event(APPROVAL, " ", "asr 2.0.0", "x")
    before = store.resolve(REPO, "main")
    ev = new_event(APPROVAL, "alice", "asr 2.0.0 -> production", "approved", {"ticket": "OPS-1"})
    assert ev.path.startswith(PLATFORM_AUDIT_PREFIX)
    merged = record_event(store, REPO, ev)
    assert merged != before and store.resolve(REPO, "main") == merged
    (got,) = read_events(store, REPO, action=APPROVAL)
    assert (got.actor, got.evidence) == ("alice", {"ticket": "OPS-1"})


def test_audit_cli_log_served_at_and_verify(history, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SPEECH_ASSETS_STORE", str(tmp_path / "store"))
    for var in ("LAKEFS_ENDPOINT", "LAKEFS_ACCESS_KEY_ID", "LAKEFS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(var, raising=False)
    assert cli_main(["audit", "log", "--action", "data_publish"]) == 0
    out = capsys.readouterr().out
    assert out.count("data_publish") == 2 and "batch day-02" in out
    assert cli_main(["audit", "served-at", (T0 + timedelta(hours=2.5)).isoformat(), "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert [(s["role"], s["version"], s["weight"]) for s in body["serving"]] == [
        ("production", "1.0.0", None), ("canary", "1.1.0", 50.0)]
    assert cli_main(["audit", "served-at", "2026-11-01T15:30:00Z"]) == 0
    text = capsys.readouterr().out
    assert "production 1.1.0" in text and "day-01" in text and "5 utterances" in text
    assert cli_main(["audit", "verify"]) == 0
    assert "append-only: OK" in capsys.readouterr().out


def test_served_at_names_the_erasures_that_marked_a_served_version(history):
    from speech_assets.privacy.erasure import erase_speaker

    store, _ = history
    result = erase_speaker(store, REPO, "a0", actor="dpo", reason="request 9")
    answer = served_at(store, REPO, "asr", T0 + timedelta(hours=3.5))
    (prod,) = answer.serving
    assert prod.erasure_marks == (result.erasure_id,)
    assert f"erasure(s) {result.erasure_id}" in answer.text()
    kinds = [(e.kind, e.action) for e in timeline(store, REPO)]
    assert kinds[-1] == ("platform", "erasure")
