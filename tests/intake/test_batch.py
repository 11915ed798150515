"""Write-audit-publish intake on the local store: bad inputs, contract gate, crash safety, re-ingest."""

from __future__ import annotations

import io
import json
import os

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from speech_assets.intake import batch as batch_mod
from speech_assets.storage.audit_log import read_events
from speech_assets.intake.batch import ingest_batch, metadata_path, rejections_path
from speech_assets.intake.landing import LandingBatch, scan_landing
from tests.intake.conftest import REPO, good_rows, make_batch, write_wav


def _rejections(store, ref, batch_id):
    return pq.read_table(io.BytesIO(store.get_object(REPO, ref, rejections_path(batch_id)))).to_pylist()


def _metadata(store, ref, batch_id):
    return pq.read_table(io.BytesIO(store.get_object(REPO, ref, metadata_path(batch_id)))).to_pylist()


def test_every_bad_input_is_quarantined_with_its_reason_and_the_batch_goes_on(store, landing, tmp_path):
    secret = tmp_path / "secret.wav"  # outside the batch: must never be read into the store
    write_wav(secret, seconds=1.0, seed=99)
    batch_dir = make_batch(landing, "bad-day", good_rows(3))
    audio = batch_dir / "audio"
    (audio / "zero.wav").write_bytes(b"")
    good = (audio / "good_0_0.wav").read_bytes()
    (audio / "truncated.wav").write_bytes(good[: len(good) // 2])
    (audio / "notaudio.wav").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(2000))
    write_wav(audio / "lowrate.wav", seconds=1.0, sr=4000)
    write_wav(audio / "rate44k.wav", seconds=1.2, sr=44100, seed=5)
    write_wav(audio / "stereo.wav", seconds=1.0, channels=2)
    sf.write(audio / "tenmin.wav", np.zeros(10 * 60 * 8000, dtype=np.int16), 8000, subtype="PCM_16")
    rows = [
        {"audio_filepath": "audio/zero.wav", "text": "zero", "speaker": "u"},
        {"audio_filepath": "audio/truncated.wav", "text": "truncated", "speaker": "u"},
        {"audio_filepath": "audio/notaudio.wav", "text": "not audio", "speaker": "u"},
        {"audio_filepath": "audio/lowrate.wav", "text": "low rate", "speaker": "u"},
        {"audio_filepath": "audio/rate44k.wav", "text": "resampled fine", "speaker": "u"},
        {"audio_filepath": "audio/stereo.wav", "text": "stereo", "speaker": "u"},
        {"audio_filepath": "audio/tenmin.wav", "text": "ten minutes", "speaker": "u"},
        {"audio_filepath": "../secret.wav", "text": "climbs out", "speaker": "u"},
        {"audio_filepath": "audio/../../secret.wav", "text": "climbs out twice", "speaker": "u"},
        {"audio_filepath": str(secret), "text": "absolute path outside", "speaker": "u"},
        {"audio_filepath": "audio/missing.wav", "text": "missing", "speaker": "u"},
    ]
    import json

    with open(batch_dir / "manifest.jsonl", "ab") as f:
        for r in rows:
            f.write((json.dumps(r) + "\n").encode())
        f.write(b'{"audio_filepath": "audio/good_0_1.wav", "text": "caf\xe9 in latin-1"}\n')

    (b,) = scan_landing(landing)
    result = ingest_batch(store, REPO, b, run_id="test-run")

    assert result.published, result.contract.markdown()
    reasons = {r["source_ref"]: r["reason"] for r in _rejections(store, "main", b.batch_id)}
    assert reasons == {
        "'audio/zero.wav'": "empty_file",
        "'audio/truncated.wav'": "truncated",
        "'audio/notaudio.wav'": "not_audio",
        "'audio/lowrate.wav'": "sample_rate_too_low",
        "'audio/stereo.wav'": "not_mono",
        "'audio/tenmin.wav'": "too_long",
        "'../secret.wav'": "path_escapes_batch",
        "'audio/../../secret.wav'": "path_escapes_batch",
        repr(str(secret)): "path_escapes_batch",
        "'audio/missing.wav'": "file_missing",
        "'audio/good_0_1.wav'": "manifest_not_utf8",
    }
    details = {r["reason"]: r["detail"] for r in _rejections(store, "main", b.batch_id)}
    assert all(details[k] for k in details), details  # every reason explained for a person
    assert "4000 Hz" in details["sample_rate_too_low"]

    accepted = _metadata(store, "main", b.batch_id)
    assert sorted(r["source_ref"] for r in accepted) == sorted(
        ["audio/good_0_0.wav", "audio/good_0_1.wav", "audio/good_0_2.wav", "audio/rate44k.wav"]
    )
    resampled = next(r for r in accepted if r["source_ref"] == "audio/rate44k.wav")
    assert resampled["original_sample_rate"] == 44100 and resampled["sample_rate"] == 16000 and resampled["resampled"]
    assert abs(resampled["duration_s"] - 1.2) < 0.01

    # Nothing dropped: rejected bytes that existed inside the batch are kept in quarantine.
    kept = {o.path for o in store.list_objects(REPO, "main", f"quarantine/{b.batch_id}/files/")}
    # zero-byte has no bytes; the 3 escapes and the missing file were never read; the non-UTF-8 row's audio is kept
    assert len(kept) == 6
    records = list(store.list_objects(REPO, "main", f"quarantine/{b.batch_id}/records/"))
    assert [store.get_object(REPO, "main", r.path) for r in records] == [
        b'{"audio_filepath": "audio/good_0_1.wav", "text": "caf\xe9 in latin-1"}'
    ]
    # And nothing from outside the batch folder entered the store.
    secret_digest = __import__("hashlib").sha256(secret.read_bytes()).hexdigest()
    assert all(o.checksum != secret_digest for o in store.list_objects(REPO, "main"))
    assert result.staged.accepted == 4 and result.staged.rejected == 11


def test_contract_failure_keeps_batch_out_of_main(store, landing):
    make_batch(landing, "all-bad", [{"audio_filepath": "audio/none.wav", "text": "missing", "speaker": "x"}])
    (b,) = scan_landing(landing)
    head = store.resolve(REPO, "main")

    result = ingest_batch(store, REPO, b, run_id="r1")

    assert not result.published
    assert not result.contract.passed
    assert any(c.outcome == "failed" and "Row count" in c.name for c in result.contract.checks)
    assert store.resolve(REPO, "main") == head
    assert list(store.list_objects(REPO, "main")) == []
    # The failed batch is kept on its branch for a person to inspect, quarantine included.
    assert result.staged.branch in store.list_branches(REPO)
    assert _rejections(store, result.staged.branch, b.batch_id)[0]["reason"] == "file_missing"


def test_contract_catches_unredacted_pii_and_main_stays_untouched(store, landing, monkeypatch):
    rows = good_rows(2)
    rows[0]["text"] = "mail me at jane.doe@example.com"
    make_batch(landing, "leaky", rows)
    (b,) = scan_landing(landing)
    head = store.resolve(REPO, "main")

    # Simulate a regression in the sanitizer: the contract, not the sanitizer, must stop the publish.
    from speech_assets.audio.pii import SanitizedTranscript

    monkeypatch.setattr(batch_mod, "sanitize_transcript", lambda t: SanitizedTranscript(t, {}))
    result = ingest_batch(store, REPO, b, run_id="r1")

    assert not result.published
    failed = [c.name for c in result.contract.failed_checks]
    assert failed == ["no e-mail address left in transcripts"]
    assert store.resolve(REPO, "main") == head


def test_pii_is_redacted_and_counted(store, landing):
    rows = good_rows(3)
    rows[0]["text"] = "call me on five five five one two three four five six"
    rows[1]["text"] = "my email is john dot smith at example dot com"
    make_batch(landing, "pii", rows)
    (b,) = scan_landing(landing)
    result = ingest_batch(store, REPO, b, run_id="r1")
    assert result.published
    texts = {r["source_ref"]: r["text"] for r in _metadata(store, "main", b.batch_id)}
    assert "<phone>" in texts["audio/good_0_0.wav"] and "five" not in texts["audio/good_0_0.wav"]
    assert "<email>" in texts["audio/good_0_1.wav"] and "smith" not in texts["audio/good_0_1.wav"]
    assert result.staged.redacted_utterances == 2
    assert result.staged.redactions == {"email": 1, "phone": 1}


def test_crash_mid_batch_leaves_main_untouched_and_rerun_publishes(store, landing, monkeypatch):
    make_batch(landing, "first", good_rows(2, seed=1))
    (first,) = scan_landing(landing)
    assert ingest_batch(store, REPO, first, run_id="r0").published
    head = store.resolve(REPO, "main")
    before = {o.path: o.checksum for o in store.list_objects(REPO, "main")}

    make_batch(landing, "second", good_rows(4, seed=2, speaker_prefix="other"))
    second = next(b for b in scan_landing(landing) if b.batch_id == "second")
    real = batch_mod.validate_audio
    calls = {"n": 0}

    def crashing(data, policy):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("power cut")
        return real(data, policy)

    monkeypatch.setattr(batch_mod, "validate_audio", crashing)
    with pytest.raises(RuntimeError, match="power cut"):
        ingest_batch(store, REPO, second, run_id="r1", workers=1)
    assert store.resolve(REPO, "main") == head
    assert {o.path: o.checksum for o in store.list_objects(REPO, "main")} == before

    monkeypatch.setattr(batch_mod, "validate_audio", real)
    result = ingest_batch(store, REPO, second, run_id="r2")
    assert result.published and result.staged.accepted == 4
    assert len(_metadata(store, "main", "second")) == 4
    assert len(_metadata(store, "main", "first")) == 2


def test_changed_batch_replaces_its_previous_version(store, landing):
    make_batch(landing, "day", good_rows(3))
    (b,) = scan_landing(landing)
    r1 = ingest_batch(store, REPO, b, run_id="r1")
    # The same batch id arrives again with one file fewer: main must hold only the new version.
    make_batch(landing, "day", good_rows(2))
    os.remove(landing / "day" / "audio" / "good_0_2.wav")
    (b2,) = scan_landing(landing)
    assert b2.content_hash() != r1.staged.content_hash
    r2 = ingest_batch(store, REPO, b2, run_id="r2")
    assert r2.published
    assert len(_metadata(store, "main", "day")) == 2
    assert len(list(store.list_objects(REPO, "main", "audio/day/"))) == 2


def test_commit_metadata_names_batch_run_counts_and_checksums(store, landing):
    make_batch(landing, "meta", good_rows(2))
    (b,) = scan_landing(landing)
    r = ingest_batch(store, REPO, b, run_id="run-42")
    c = store.get_commit(REPO, r.staged.commit_id)
    assert c.metadata["batch_id"] == "meta" and c.metadata["run_id"] == "run-42"
    assert c.metadata["accepted"] == "2" and c.metadata["rejected"] == "0"
    assert c.metadata["content_hash"] == b.content_hash()
    assert c.metadata["metadata_sha256"] == store.stat_object(REPO, r.staged.commit_id, metadata_path("meta")).checksum
    merge = store.get_commit(REPO, r.published_commit)
    (audit_commit,) = [p for p in merge.parents if store.get_commit(REPO, p).metadata.get("audit_event")]
    assert store.get_commit(REPO, audit_commit).parents == (r.staged.commit_id,)
    # the publish event landed on main with the batch, naming the audited commit and the counts
    (event,) = read_events(store, REPO, "main", action="data_publish")
    assert event.evidence["audited_commit"] == r.staged.commit_id and event.evidence["accepted"] == 2
    assert event.actor == "intake" and event.subject == "batch meta"
    assert json.loads(c.metadata["redactions"]) == r.staged.redactions


def test_landing_ignores_unready_batches_and_hash_tracks_content(landing):
    make_batch(landing, "not-yet", good_rows(1), ready=False)
    assert scan_landing(landing) == []
    (landing / "not-yet" / "_READY").write_bytes(b"")
    (b,) = scan_landing(landing)
    h1 = b.content_hash()
    assert LandingBatch(b.batch_id, b.path).content_hash() == h1
    (landing / "not-yet" / "manifest.jsonl").write_bytes(b"")
    assert b.content_hash() != h1
