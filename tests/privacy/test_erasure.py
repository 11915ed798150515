"""Per-speaker erasure from main: the speaker's audio is unreadable from main afterwards, nothing else changes."""

from __future__ import annotations

import hashlib
import io
import json

import dagster as dg
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from speech_assets.defs.monitoring.resources import RetrainSettings
from speech_assets.defs.monitoring.sensors import retrain_sensor
from speech_assets.defs.storage.resources import VersionStoreResource
from speech_assets.features.logmel import FeatureConfig
from speech_assets.features.store import compute_batch_features, feature_dir, load_features, load_stats
from speech_assets.storage.audit_log import ERASURE, read_events
from speech_assets.governance.audit import verify_append_only
from speech_assets.intake.batch import metadata_path
from speech_assets.intake.manifest import MANIFEST_PATH, publish_manifest, read_manifest_rows
from speech_assets.privacy.erasure import UnknownSpeakerError, erase_speaker, speaker_sha256, speaker_subject
from speech_assets.registry.marks import erasure_marks
from speech_assets.registry.registry import ModelRegistry
from speech_assets.serving.probe_set import PROBE_SET_PATH, ProbeSet
from speech_assets.storage.base import NotFoundError
from speech_assets.storage.local import LocalVersionStore
from speech_assets.storage.publish import publish_objects
from tests.privacy.conftest import REPO, TARGET

FC = FeatureConfig()


def _metadata_rows(store, ref="main") -> list[dict]:
    rows = []
    for obj in store.list_objects(REPO, ref, "metadata/"):
        rows += pq.read_table(io.BytesIO(store.get_object(REPO, ref, obj.path))).to_pylist()
    return rows


def _register(registry, name, blob, data_commit, parent=None):
    return registry.register(
        name, blob, data_commits=[data_commit], feature_config_hash=FC.digest(), vocabulary_hash="v",
        code_version="1", training_config={}, seed=0, eval_report_json=b"{}", calibration_json={"temperature": 1.0},
        actor="test", parent_version=parent)


def test_the_speakers_audio_is_unreadable_from_main_and_nothing_else_changes(store):
    base = store.resolve(REPO, "main")
    before = _metadata_rows(store)
    target_rows = [r for r in before if r["speaker"] == TARGET]
    assert {r["batch_id"] for r in target_rows} == {"day-01", "day-02"} and len(target_rows) == 4
    erased = {r["utt_id"] for r in target_rows}
    kept_feats = {b: {u: f for u, f in load_features(store, REPO, base, FC, b).items() if u not in erased}
                  for b in ("day-01", "day-02", "day-03")}

    result = erase_speaker(store, REPO, TARGET, actor="dpo@example.org", reason="erasure request #118")

    assert result.utterances == 4 and result.objects_removed == 4 and not result.nothing_to_erase
    # THE test the issue asks for: every one of the speaker's recordings is gone from main ...
    for r in target_rows:
        with pytest.raises(NotFoundError):
            store.get_object(REPO, "main", r["audio_path"])
    # ... while older commits still hold them until garbage collection (the documented limit)
    assert store.get_object(REPO, base, target_rows[0]["audio_path"])[:4] == b"RIFF"

    # metadata, manifest and every feature index hold none of the speaker's utterances
    after = _metadata_rows(store)
    assert not [r for r in after if r["speaker"] == TARGET or r["utt_id"] in erased]
    assert len(after) == len(before) - 4
    manifest = read_manifest_rows(store, REPO, "main")
    assert {r["utt_id"] for r in manifest} == {r["utt_id"] for r in after}
    # byte-identical to what the audio_manifest asset would publish: it finds nothing to change
    assert publish_manifest(store, REPO, "after").changed is False
    for b in ("day-01", "day-02", "day-03"):
        feats = load_features(store, REPO, "main", FC, b)
        assert set(feats) == set(kept_feats[b])
        for u, f in feats.items():  # the other speakers' features are exactly what they were
            assert np.array_equal(f, kept_feats[b][u])
        stats = load_stats(store, REPO, "main", FC, b)
        meta_sha = hashlib.sha256(store.get_object(REPO, "main", metadata_path(b))).hexdigest()
        assert stats["utterances"] == len(feats) and stats["frames"] == sum(f.shape[0] for f in feats.values())
        assert stats["source_metadata_sha256"] == meta_sha
        # the features asset sees them current: no recomputation (which would need the erased audio)
        assert compute_batch_features(store, REPO, b, run_id="after").skipped
    assert "weather" in load_stats(store, REPO, "main", FC, "day-01")["words"]  # spk12's words stay
    assert "kitchen" not in load_stats(store, REPO, "main", FC, "day-01")["words"]  # spk0's are gone

    # exactly these paths changed between the base and main: nothing else, byte for byte
    changes = {(c.path, c.type) for c in store.diff(REPO, base, "main")}
    fdirs = [feature_dir(FC, b) for b in ("day-01", "day-02")]
    expected = {(r["audio_path"], "removed") for r in target_rows}
    expected |= {(metadata_path(b), "changed") for b in ("day-01", "day-02")} | {(MANIFEST_PATH, "changed")}
    expected |= {(f"{d}/{n}", "changed") for d in fdirs for n in ("features.npy", "index.parquet", "stats.json")}
    (event,) = read_events(store, REPO, action=ERASURE)
    expected |= {(event.path, "added")}
    assert changes == expected

    # the audit event names the speaker by digest only, with the evidence
    assert event.subject == speaker_subject(TARGET) == f"speaker:sha256:{speaker_sha256(TARGET)}"
    assert event.actor == "dpo@example.org" and event.evidence["erasure_id"] == event.event_id == result.erasure_id
    assert event.evidence["utterances_removed"] == 4 and set(event.evidence["batches"]) == {"day-01", "day-02"}
    assert event.evidence["base_commit"] == base and event.evidence["reason"] == "erasure request #118"
    head = store.get_commit(REPO, "main")
    assert head.id == result.merge_commit and result.commit_id in head.parents
    commit = store.get_commit(REPO, result.commit_id)
    assert "erasure request #118" in commit.message and commit.metadata["reason"] == "erasure request #118"
    assert commit.metadata["erasure_id"] == event.event_id
    raw = json.dumps(event.to_json()) + commit.message + json.dumps(commit.metadata) + head.message
    assert TARGET not in raw.replace(speaker_sha256(TARGET), "")
    assert verify_append_only(store, REPO).ok
    assert not [b for b in store.list_branches(REPO) if b.startswith("erasure-")]

    # idempotent: a second erasure finds nothing and writes nothing
    again = erase_speaker(store, REPO, TARGET, actor="dpo@example.org", reason="erasure request #118")
    assert again.nothing_to_erase and "nothing to erase" in again.message and again.erasure_id == event.event_id
    assert store.resolve(REPO, "main") == head.id


def test_an_unknown_speaker_is_an_error_and_writes_nothing(store):
    head, branches = store.resolve(REPO, "main"), store.list_branches(REPO)
    with pytest.raises(UnknownSpeakerError, match="no utterance"):
        erase_speaker(store, REPO, "spk999", actor="dpo", reason="request")
    with pytest.raises(ValueError, match="must not contain the speaker id"):
        erase_speaker(store, REPO, TARGET, actor="dpo", reason=f"request from {TARGET}")
    dry = erase_speaker(store, REPO, TARGET, actor="dpo", reason="request", dry_run=True)
    assert dry.utterances == 4 and dry.dry_run and dry.merge_commit is None
    assert store.resolve(REPO, "main") == head and store.list_branches(REPO) == branches


class _CrashingStore(LocalVersionStore):
    """Dies on the n-th write, as a process killed mid-erasure would."""

    def __init__(self, root, fail_at: int):
        super().__init__(root)
        self.writes, self.fail_at = 0, fail_at

    def put_object(self, *args, **kwargs):
        self.writes += 1
        if self.writes == self.fail_at:
            raise RuntimeError("simulated crash mid-erasure")
        return super().put_object(*args, **kwargs)


def test_a_crash_mid_erasure_leaves_main_untouched(store, tmp_path):
    head = store.resolve(REPO, "main")
    audio = next(r["audio_path"] for r in _metadata_rows(store) if r["speaker"] == TARGET)
    crashing = _CrashingStore(tmp_path / "store", fail_at=4)  # after day-01's metadata and features are staged
    with pytest.raises(RuntimeError, match="simulated crash"):
        erase_speaker(crashing, REPO, TARGET, actor="dpo", reason="request")
    assert crashing.writes == 4
    assert store.resolve(REPO, "main") == head
    assert store.get_object(REPO, "main", audio)[:4] == b"RIFF"
    assert not read_events(store, REPO, action=ERASURE)
    # a retry after the crash completes
    assert erase_speaker(store, REPO, TARGET, actor="dpo", reason="request").utterances == 4
    with pytest.raises(NotFoundError):
        store.get_object(REPO, "main", audio)


def test_models_trained_on_the_speaker_are_marked_and_production_is_retrained_once_from_scratch(store, tmp_path):
    registry = ModelRegistry(store, REPO)
    trained_commit = store.resolve(REPO, "main")  # its manifest has spk0 in the train split
    no_manifest = store.log(REPO, "main")[-1].id  # the first commit: no manifest, nothing trained on
    v1 = _register(registry, "asr", b"weights-1", trained_commit)
    v2 = _register(registry, "asr", b"weights-2", no_manifest, parent=v1.version)  # warm-started from v1
    other = _register(registry, "kws", b"weights-3", no_manifest)
    registry.set_stage("asr", v1.version, "production", actor="test", reason="first model")

    result = erase_speaker(store, REPO, TARGET, actor="dpo", reason="request 7")

    marked = {(m.model, m.version) for m in result.affected_models}
    assert marked == {("asr", v1.version), ("asr", v2.version)}
    assert erasure_marks(store, REPO, "asr") == {v1.version: [result.erasure_id], v2.version: [result.erasure_id]}
    assert erasure_marks(store, REPO, "kws") == {} and other.version
    (event,) = read_events(store, REPO, action=ERASURE)
    assert {(m["model"], m["version"]) for m in event.evidence["affected_models"]} == marked
    assert "warm-started" in next(m.why for m in result.affected_models if m.version == v2.version)

    # the retrain sensor asks for one retrain of the marked production model, from scratch
    resources = {"store": VersionStoreResource(local_root=str(tmp_path / "store"), repository=REPO),
                 "retrain": RetrainSettings(min_new_utterances=10**6, scratch_train_config_json='{"epochs": 3}')}
    with dg.instance_for_test() as instance:
        first = retrain_sensor(dg.build_sensor_context(instance=instance, resources=resources))
        (request,) = first.run_requests
        assert request.run_key == f"retrain-erasure-{result.erasure_id}"
        assert request.tags["speech_assets/trigger"] == "erasure"
        assert request.tags["speech_assets/erasures"] == result.erasure_id
        # the fine-tune's short schedule (RetrainSettings' train_config: 2 epochs, warm start) is replaced whole
        assert request.run_config["ops"]["asr_checkpoint"]["config"] == {"epochs": 3, "warm_start": False}
        again = retrain_sensor(dg.build_sensor_context(instance=instance, resources=resources, cursor=first.cursor))
        assert isinstance(again, dg.SkipReason)
        assert result.erasure_id in json.loads(first.cursor)["state"]["handled_erasures"]


def test_a_test_split_speaker_leaves_the_probe_set_and_the_evaluation_rows(store):
    probe = ProbeSet.from_json(store.get_object(REPO, "main", PROBE_SET_PATH))
    rows = {r["utt_id"]: r for r in _metadata_rows(store)}
    assert probe.items and {rows[i.utt_id]["speaker"] for i in probe.items} == {"spk12"}
    table = pa.table({"utterance_id": ["u1", "u2", "u3"], "speaker": ["spk12", "spk1", "spk12"],
                      "reference": ["a", "b", "c"], "hypothesis": ["a", "b", "c"]})
    sink = io.BytesIO()
    pq.write_table(table, sink)
    publish_objects(store, REPO, {"evaluations/abc/rows.parquet": sink.getvalue()}, branch_prefix="eval",
                    message="eval", metadata={"run_id": "e"})

    result = erase_speaker(store, REPO, "spk12", actor="dpo", reason="request 9")

    assert result.probe_items_removed == len(probe.items) and result.evaluation_rows_removed == 2
    after = ProbeSet.from_json(store.get_object(REPO, "main", PROBE_SET_PATH))
    assert after.items == () and after.commit == probe.commit
    left = pq.read_table(io.BytesIO(store.get_object(REPO, "main", "evaluations/abc/rows.parquet"))).to_pylist()
    assert [r["speaker"] for r in left] == ["spk1"]


def test_an_erased_speaker_does_not_come_back_through_a_rerun_of_an_old_batch(store, published):
    from speech_assets.audio.validate import ValidationPolicy
    from speech_assets.intake.batch import ingest_batch
    from speech_assets.intake.landing import scan_landing

    erase_speaker(store, REPO, TARGET, actor="dpo", reason="request 7")
    (day1,) = [b for b in scan_landing(published.parent / "landing") if b.batch_id == "day-01"]
    # a different validation policy re-ingests the batch (same content would be a no-op: already published)
    result = ingest_batch(store, REPO, day1, run_id="rerun", policy=ValidationPolicy(min_duration_s=0.2))
    assert result.published and result.staged.erased_speaker_rows == 2
    rows = pq.read_table(io.BytesIO(store.get_object(REPO, "main", metadata_path("day-01")))).to_pylist()
    assert TARGET not in {r["speaker"] for r in rows} and len(rows) == 4
    assert not list(store.list_objects(REPO, "main", "quarantine/day-01/"))  # skipped, not kept in quarantine
    event = [e for e in read_events(store, REPO, action="data_publish") if e.evidence["run_id"] == "rerun"]
    assert event and event[0].evidence["erased_speaker_rows"] == 2
