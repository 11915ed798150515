"""The optional pocketsphinx baseline on synthetic speech from espeak-ng."""

from __future__ import annotations

import shutil
import struct
import subprocess

import numpy as np
import pytest

from speech_assets.evaluation.baseline import (
    BaselineUnavailable,
    normalize_transcript,
    pocketsphinx_available,
    pocketsphinx_unavailable_reason,
    transcribe_pocketsphinx,
)


def read_wav_pcm16(data: bytes) -> tuple[np.ndarray, int]:
    """Mono 16-bit PCM and its rate from RIFF bytes.

    espeak-ng writing to a pipe cannot seek back to fill in the chunk sizes,
    so the data chunk's size field is bogus; take everything after it.
    """
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    pos, rate, channels = 12, None, None
    while pos + 8 <= len(data):
        cid, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        if cid == b"fmt ":
            fmt, channels, rate = struct.unpack("<HHI", data[pos + 8 : pos + 16])
            bits = struct.unpack("<H", data[pos + 22 : pos + 24])[0]
            assert fmt == 1 and bits == 16
        elif cid == b"data":
            body = data[pos + 8 :]
            pcm = np.frombuffer(body[: len(body) // 2 * 2], dtype="<i2")
            assert channels == 1
            return pcm, rate
        pos += 8 + size + (size & 1)
    raise AssertionError("no data chunk")


def resample(x: np.ndarray, src: int, dst: int) -> np.ndarray:
    """Band-limited resampling by truncating / padding the spectrum."""
    n_out = int(round(len(x) * dst / src))
    spec = np.fft.rfft(x)
    keep = n_out // 2 + 1
    spec = spec[:keep] if len(spec) >= keep else np.pad(spec, (0, keep - len(spec)))
    return np.fft.irfft(spec, n_out) * (n_out / len(x))


def test_normalize_transcript():
    # the one normaliser: digits become words, punctuation a word break
    assert normalize_transcript("Hello, World! it's READ(2)  now") == "hello world it's read two now"
    assert normalize_transcript(None) == ""


def test_availability_is_consistent():
    reason = pocketsphinx_unavailable_reason()
    assert pocketsphinx_available() == (reason is None)
    if reason is not None:
        with pytest.raises(BaselineUnavailable, match="pocketsphinx"):
            transcribe_pocketsphinx([np.zeros(16000)])


def test_pocketsphinx_transcribes_espeak_speech():
    reason = pocketsphinx_unavailable_reason()
    if reason is not None:
        pytest.skip(f"pocketsphinx baseline cannot run here: {reason}")
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        pytest.skip("espeak-ng is not installed, so there is no synthetic speech to transcribe")
    wav = subprocess.run(
        [espeak, "--stdout", "turn on the kitchen lights please"], check=True, capture_output=True, timeout=30
    ).stdout
    pcm, rate = read_wav_pcm16(wav)
    audio = resample(pcm.astype(np.float64) / 32768.0, rate, 16000)
    silence = np.zeros(8000)  # half a second on each side, as in a real recording
    texts = transcribe_pocketsphinx([np.concatenate([silence, audio, silence]), np.zeros(0)])
    assert len(texts) == 2
    assert texts[0].strip() != ""
    assert all(c.isalpha() and c.islower() or c in " '" for c in texts[0])  # normalized
    assert texts[1] == ""  # empty input, empty output
