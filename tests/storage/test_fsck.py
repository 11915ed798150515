"""`store fsck` finds silently damaged content; the local store moves it aside and takes the right bytes back."""

from __future__ import annotations

import hashlib

import pytest

from speech_assets.cli import main as cli_main
from speech_assets.storage.base import StoreError
from speech_assets.storage.fsck import check_objects
from speech_assets.storage.local import LocalVersionStore

REPO = "speech-assets"


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("SPEECH_ASSETS_STORE", str(tmp_path / "store"))
    monkeypatch.delenv("LAKEFS_ENDPOINT", raising=False)
    s = LocalVersionStore(tmp_path / "store")
    s.create_repository(REPO)
    for i in range(3):
        s.put_object(REPO, "main", f"audio/b/{i}.wav", f"clip {i}".encode() * 100)
    s.commit(REPO, "main", "three clips")
    return s


def test_fsck_finds_flipped_and_missing_content_and_repair_restores_every_commit(store, tmp_path, capsys):
    assert check_objects(store, REPO).ok
    good = store.get_object(REPO, "main", "audio/b/1.wav")
    blob = store.object_path(REPO, "main", "audio/b/1.wav")
    blob.write_bytes(b"X" + good[1:])  # a bit flip on disk
    store.object_path(REPO, "main", "audio/b/2.wav").unlink()  # a content file deleted by hand

    report = check_objects(store, REPO)
    assert report.objects == 3 and not report.ok
    problems = {d.path: d.problem for d in report.damaged}
    assert set(problems) == {"audio/b/1.wav", "audio/b/2.wav"}
    assert problems["audio/b/1.wav"].startswith("content differs") and "missing" in problems["audio/b/2.wav"]

    # CLI: reports, exits 1, moves the damaged file aside
    assert cli_main(["store", "fsck", "--quarantine"]) == 1
    out = capsys.readouterr().out
    assert "DAMAGED audio/b/1.wav" in out and "moved aside" in out and "2 damaged" in out
    assert not blob.exists() and any((tmp_path / "store" / "corrupt").iterdir())

    with pytest.raises(StoreError, match="not the lost content"):
        store.repair_blob(b"wrong bytes", hashlib.sha256(good).hexdigest())
    source = tmp_path / "backup.wav"
    source.write_bytes(good)
    assert cli_main(["store", "repair", "audio/b/1.wav", str(source)]) == 0
    store.repair_blob(f"clip {2}".encode() * 100, store.stat_object(REPO, "main", "audio/b/2.wav").checksum)
    assert check_objects(store, REPO).ok
    assert store.get_object(REPO, "main", "audio/b/1.wav") == good  # no new commit needed: same content address
    assert len(store.log(REPO, "main")) == 2  # the initial commit and "three clips"


def test_fsck_removes_temp_files_of_killed_writers_but_not_fresh_ones(store, capsys):
    import os
    import time

    folder = store.object_path(REPO, "main", "audio/b/0.wav").parent
    stale, fresh = folder / ".tmp-killed", folder / ".tmp-writing"
    stale.write_bytes(b"half")
    fresh.write_bytes(b"half")
    old = time.time() - 2 * 3600
    os.utime(stale, (old, old))
    assert cli_main(["store", "fsck"]) == 0
    assert "removed 1 stale temp file" in capsys.readouterr().out
    assert not stale.exists() and fresh.exists()
