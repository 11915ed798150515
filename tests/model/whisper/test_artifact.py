"""The Whisper checkpoint container: deterministic bytes, a card read from the head, safe extraction, the cache."""

from __future__ import annotations

import io
import os
import shutil
import tarfile

import pytest

from speech_assets.model.contract import ModelCard
from speech_assets.model.whisper import artifact


def _card(**kw) -> ModelCard:
    base = dict(family="whisper", format=artifact.FORMAT, parameters=123, base_model="openai/whisper-tiny.en",
                tokenizer="whisper byte-level BPE (3 tokens)", vocabulary_hash="0123456789abcdef",
                extra={"quantization": "int8"})
    base.update(kw)
    return ModelCard(**base)


def _ct2(folder, weights: bytes = b"\x01\x02weights" * 100):
    folder.mkdir(parents=True)
    (folder / "model.bin").write_bytes(weights)
    (folder / "config.json").write_text('{"alignment_heads": []}')
    (folder / "tokenizer.json").write_text('{"model": {"vocab": {"a": 0}}}')
    (folder / "vocabulary.json").write_text('["a"]')
    return folder


def test_same_inputs_give_the_same_bytes_whatever_the_files_metadata(tmp_path):
    a = _ct2(tmp_path / "a")
    b = tmp_path / "b"
    shutil.copytree(a, b)
    os.utime(b / "model.bin", (1e9, 1e9))  # other times and modes on disk: not part of the artifact
    os.chmod(b / "config.json", 0o600)
    blob_a = artifact.pack(a, _card(), {"seed": 0})
    blob_b = artifact.pack(b, _card(), {"seed": 0})
    assert blob_a == blob_b
    assert artifact.pack(a, _card(), {"seed": 1}) != blob_a
    names = [m.name for m in tarfile.open(fileobj=io.BytesIO(blob_a)).getmembers()]
    assert names == ["speech_assets.json", "ct2/config.json", "ct2/model.bin", "ct2/tokenizer.json",
                     "ct2/vocabulary.json"]
    for m in tarfile.open(fileobj=io.BytesIO(blob_a)).getmembers():
        assert (m.mtime, m.uid, m.gid, m.mode, m.uname, m.gname) == (0, 0, 0, 0o644, "", "")


def test_card_round_trips_and_is_read_from_the_head(tmp_path):
    blob = artifact.pack(_ct2(tmp_path / "m"), _card(), {"train_config": {"max_steps": 3}})
    assert artifact.is_whisper_artifact(blob)
    card, extra = artifact.read_card(blob)
    assert card == _card()
    assert extra == {"train_config": {"max_steps": 3}}
    # the head alone (weights cut off) still tells what the checkpoint is
    first = tarfile.open(fileobj=io.BytesIO(blob)).next()
    head_len = 512 + -(-first.size // 512) * 512
    assert artifact.read_card(blob[: head_len + 512])[0] == _card()


def test_other_bytes_are_not_whisper_artifacts(tmp_path):
    assert not artifact.is_whisper_artifact(b"")
    assert not artifact.is_whisper_artifact(b"PK\x03\x04" + b"\0" * 1000)  # a zip (e.g. a torch checkpoint)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        tar.addfile(tarfile.TarInfo("other.json"), io.BytesIO(b""))
    assert not artifact.is_whisper_artifact(buf.getvalue())
    with pytest.raises(artifact.ArtifactError):
        artifact.read_card(buf.getvalue())


def test_unpack_restores_the_folder(tmp_path):
    src = _ct2(tmp_path / "m")
    out = artifact.unpack(artifact.pack(src, _card()), tmp_path / "x")
    assert out == tmp_path / "x" / "ct2"
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in src.iterdir())
    assert (out / "model.bin").read_bytes() == (src / "model.bin").read_bytes()
    assert artifact.weights_sha256(out) == artifact.weights_sha256(src)


def _evil(name: str, kind=tarfile.REGTYPE) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        head = b'{"format": "speech_assets.whisper/1", "card": {}, "extra": {}}'
        info = tarfile.TarInfo("speech_assets.json")
        info.size = len(head)
        tar.addfile(info, io.BytesIO(head))
        info = tarfile.TarInfo(name)
        info.type = kind
        if kind == tarfile.SYMTYPE:
            info.linkname = "/etc/passwd"
            tar.addfile(info)
        else:
            info.size = 4
            tar.addfile(info, io.BytesIO(b"evil"))
    return buf.getvalue()


@pytest.mark.parametrize("name,kind", [
    ("ct2/../../escaped", tarfile.REGTYPE), ("/tmp/absolute", tarfile.REGTYPE), ("ct2/sub/nested", tarfile.REGTYPE),
    ("ct2/model.bin", tarfile.SYMTYPE), ("elsewhere.txt", tarfile.REGTYPE),
])
def test_unpack_refuses_unsafe_members_before_writing(tmp_path, name, kind):
    with pytest.raises(artifact.ArtifactError):
        artifact.unpack(_evil(name, kind), tmp_path / "x")
    assert not (tmp_path / "x").exists()
    assert not (tmp_path.parent / "escaped").exists()


def test_pack_refuses_incomplete_folders(tmp_path):
    folder = _ct2(tmp_path / "m")
    (folder / "tokenizer.json").unlink()
    with pytest.raises(artifact.ArtifactError, match="tokenizer.json"):
        artifact.pack(folder, _card())


def test_cache_extracts_once_per_artifact(tmp_path, monkeypatch):
    monkeypatch.setenv(artifact.CACHE_ENV, str(tmp_path / "cache"))
    blob = artifact.pack(_ct2(tmp_path / "m"), _card())
    first = artifact.cached_ct2_dir(blob)
    assert first.parent.parent == tmp_path / "cache"
    marker = first / "model.bin"
    mtime = marker.stat().st_mtime_ns
    os.utime(marker, ns=(mtime - 10**9, mtime - 10**9))  # if it were extracted again, the time would change
    assert artifact.cached_ct2_dir(blob) == first
    assert marker.stat().st_mtime_ns == mtime - 10**9
    other = artifact.cached_ct2_dir(artifact.pack(tmp_path / "m", _card(parameters=5)))
    assert other != first
    assert [p.name for p in (tmp_path / "cache").iterdir() if p.name.startswith(".")] == []  # no temp folders left
