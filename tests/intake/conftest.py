from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speech_assets.storage.local import LocalVersionStore

REPO = "speech-assets"


def speechlike(seconds: float, sr: int = 16000, seed: int = 0, channels: int = 1) -> np.ndarray:
    """A syllable-rate amplitude-modulated harmonic tone with pauses: passes silence/clipping checks."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    f0 = 110 + 40 * rng.random()
    voiced = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6))
    envelope = np.clip(np.sin(2 * np.pi * 3.0 * t), 0, None) ** 2
    x = (0.3 * voiced * envelope + 0.002 * rng.standard_normal(t.size)).astype(np.float32)
    x = 0.5 * x / max(1e-6, np.abs(x).max())
    return np.stack([x] * channels, axis=1) if channels > 1 else x


def write_wav(path: Path, seconds: float = 1.5, sr: int = 16000, seed: int = 0, channels: int = 1) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, speechlike(seconds, sr, seed, channels), sr, subtype="PCM_16")
    return path


def make_batch(root: Path, name: str, rows: list[dict], *, raw_lines: list[bytes] = (), ready: bool = True) -> Path:
    """A NeMo-layout landing batch. Each row may carry `_audio` = (seconds, sr, seed, channels) to write."""
    batch = root / name
    (batch / "audio").mkdir(parents=True, exist_ok=True)
    lines = []
    for row in rows:
        row = dict(row)
        spec = row.pop("_audio", None)
        if spec is not None:
            write_wav(batch / row["audio_filepath"], *spec)
        lines.append(json.dumps(row).encode())
    (batch / "manifest.jsonl").write_bytes(b"\n".join([*lines, *raw_lines]) + b"\n")
    if ready:
        (batch / "_READY").write_bytes(b"")
    return batch


def good_rows(n: int, *, speaker_prefix: str = "spk", accent: str = "us", seed: int = 0) -> list[dict]:
    return [
        {
            "audio_filepath": f"audio/good_{seed}_{i}.wav",
            "text": f"turn on the kitchen lights number {i}",
            "speaker": f"{speaker_prefix}{i % 3}",
            "accent": accent,
            "channel": "clean",
            "duration": 1.5,
            "_audio": (1.5, 16000, seed * 100 + i, 1),
        }
        for i in range(n)
    ]


@pytest.fixture
def store(tmp_path) -> LocalVersionStore:
    s = LocalVersionStore(tmp_path / "store")
    s.create_repository(REPO)
    return s


@pytest.fixture
def landing(tmp_path) -> Path:
    d = tmp_path / "landing"
    d.mkdir()
    return d
