"""Uploads: every bad input becomes a 4xx with a reason; good ones of any common rate become 16 kHz mono."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf

from speech_assets.serving.upload import UploadError, read_upload


def _audio(seconds=1.0, rate=16000, channels=1, fmt="WAV", subtype="PCM_16") -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    x = 0.3 * np.sin(2 * np.pi * 220 * t)
    data = np.stack([x] * channels, axis=1) if channels > 1 else x
    buf = io.BytesIO()
    sf.write(buf, data, rate, format=fmt, subtype=subtype)
    return buf.getvalue()


@pytest.mark.parametrize("rate, channels, fmt", [(16000, 1, "WAV"), (44100, 2, "WAV"), (8000, 1, "FLAC"), (48000, 1, "FLAC")])
def test_common_rates_and_formats_become_16k_mono(rate, channels, fmt):
    audio = read_upload(_audio(1.5, rate, channels, fmt), max_bytes=10_000_000, max_duration_s=30)
    assert audio.sample_rate == 16000 and audio.samples.ndim == 1
    assert abs(audio.duration_s - 1.5) < 0.01


@pytest.mark.parametrize(
    "data, status, code",
    [
        (b"", 400, "empty_file"),
        (b"%PDF-1.4 not audio" * 10, 400, "not_audio"),
        (_audio(1.0)[:3000], 400, "truncated"),
        (_audio(40.0), 413, "too_long"),
        (_audio(1.0, rate=4000), 415, "sample_rate_too_low"),
    ],
)
def test_bad_uploads_are_client_errors_with_a_reason(data, status, code):
    with pytest.raises(UploadError) as exc:
        read_upload(data, max_bytes=10_000_000, max_duration_s=30)
    assert (exc.value.status, exc.value.code) == (status, code)
    assert exc.value.message and 400 <= exc.value.status < 500


def test_size_limit_is_checked_before_decoding():
    with pytest.raises(UploadError) as exc:
        read_upload(_audio(2.0), max_bytes=1000, max_duration_s=30)
    assert (exc.value.status, exc.value.code) == (413, "too_large")
