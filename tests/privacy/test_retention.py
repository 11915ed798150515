"""Raw-audio retention: with a fake `now`, only batches published before the cutoff lose their audio, in one
commit with its audit event and a tombstone; metadata and features stay; nothing to do writes nothing."""

from __future__ import annotations

import io
from datetime import timedelta

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from speech_assets.defs.privacy.assets import raw_audio_retention
from speech_assets.defs.storage.resources import VersionStoreResource
from speech_assets.features.logmel import FeatureConfig
from speech_assets.features.store import load_features
from speech_assets.storage.audit_log import RETENTION, read_events
from speech_assets.governance.audit import verify_append_only
from speech_assets.intake.batch import metadata_path
from speech_assets.privacy.retention import publish_times, sweep_raw_audio, tombstone_path
from speech_assets.intake.manifest import swept_batches
from speech_assets.serving.probe_set import probe_set_from_manifest
from speech_assets.storage.base import NotFoundError
from speech_assets.storage.publish import publish_objects
from tests.privacy.conftest import REPO

BATCHES = ["day-01", "day-02", "day-03"]


def _audio(store, batch, ref="main"):
    return {s.path: s.size_bytes for s in store.list_objects(REPO, ref, f"audio/{batch}/")}


def test_only_old_batches_lose_their_audio_in_one_recorded_commit(store):
    base = store.resolve(REPO, "main")
    times = publish_times(store, REPO, base, BATCHES)
    assert {src for _, src in times.values()} == {"audit"}
    assert times["day-01"][0] < times["day-02"][0] < times["day-03"][0]
    # `now` ten days after day-02's publish: day-01 and day-02 are past a 10-day limit, day-03 is not
    now = times["day-02"][0] + timedelta(days=10)
    old = {b: _audio(store, b) for b in BATCHES}

    result = sweep_raw_audio(store, REPO, 10, now, "retention-test")

    assert [b.batch_id for b in result.batches] == ["day-01", "day-02"]
    assert result.objects == len(old["day-01"]) + len(old["day-02"])
    assert result.bytes_freed == sum(old["day-01"].values()) + sum(old["day-02"].values())
    for b in ("day-01", "day-02"):
        assert _audio(store, b) == {}
        for path in old[b]:
            with pytest.raises(NotFoundError):
                store.get_object(REPO, "main", path)
        # metadata and features stay, and a tombstone says the audio is gone on purpose
        store.stat_object(REPO, "main", metadata_path(b))
        assert load_features(store, REPO, "main", FeatureConfig(), b)
        tomb = swept_batches(store, REPO)[b]
        assert tomb["event_id"] == result.event_id and tomb["objects"] == len(old[b])
    assert _audio(store, "day-03") == old["day-03"]
    (event,) = read_events(store, REPO, action=RETENTION)
    assert event.event_id == result.event_id and event.actor == "retention-test"
    assert set(event.evidence["batches"]) == {"day-01", "day-02"}
    assert event.evidence["objects"] == result.objects and event.evidence["bytes_freed"] == result.bytes_freed
    assert store.resolve(REPO, "main") == result.merge_commit
    changes = store.diff(REPO, base, "main")
    assert {c.path for c in changes if c.type == "added"} == {event.path, tombstone_path("day-01"),
                                                             tombstone_path("day-02")}
    assert {c.type for c in changes if not c.path.startswith(("retention/", "audit/"))} == {"removed"}
    assert verify_append_only(store, REPO).ok
    # a new probe set is chosen only from batches that still have audio
    probe = probe_set_from_manifest(store, REPO, "main", size=20)
    assert all(not i.utt_id.startswith(("day-01", "day-02")) for i in probe.items)

    # nothing left to do: no commit
    head = store.resolve(REPO, "main")
    again = sweep_raw_audio(store, REPO, 10, now, "retention-test")
    assert again.batches == [] and again.merge_commit is None and store.resolve(REPO, "main") == head


def test_a_batch_from_before_the_audit_trail_is_aged_by_its_publish_commit(store):
    sink = io.BytesIO()
    pq.write_table(pa.table({"utt_id": ["legacy-0"], "batch_id": ["legacy"], "audio_path": ["audio/legacy/a.wav"]}),
                   sink)
    publish_objects(store, REPO, {metadata_path("legacy"): sink.getvalue(), "audio/legacy/a.wav": b"RIFF...."},
                    branch_prefix="legacy", message="publish batch legacy", metadata={"batch_id": "legacy"})
    commit_time = store.get_commit(REPO, "main").creation_date
    (t, source) = publish_times(store, REPO, "main", ["legacy"])["legacy"]
    assert source == "commit" and abs(t.timestamp() - commit_time) < 1e-3
    dry = sweep_raw_audio(store, REPO, 1, t + timedelta(days=2), "ops", dry_run=True)
    assert "legacy" in [b.batch_id for b in dry.batches] and dry.merge_commit is None
    assert store.get_object(REPO, "main", "audio/legacy/a.wav") == b"RIFF...."


def test_the_retention_asset_sweeps_and_reports(store, tmp_path):
    resources = {"store": VersionStoreResource(local_root=str(tmp_path / "store"), repository=REPO)}
    with dg.instance_for_test() as instance:
        result = dg.materialize([raw_audio_retention], instance=instance, resources=resources,
                                run_config={"ops": {"raw_audio_retention": {"config": {"max_age_days": 0}}}})
    assert result.success
    (mat,) = result.asset_materializations_for_node("raw_audio_retention")
    md = {k: v.value for k, v in mat.metadata.items()}
    assert md["batches_swept"] == 3 and md["objects"] > 0 and md["bytes_freed"] > 0
    assert md["commit_out"] == store.resolve(REPO, "main") and "day-03" in md["batches"]
    assert all(_audio(store, b) == {} for b in BATCHES)
