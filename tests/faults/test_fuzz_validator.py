"""Fuzz the audio validator: every input is accepted or rejected with a known reason, nothing else ever escapes.

Hypothesis, bounded and reproducible (derandomized: the same cases on every run and in CI). Four families of input:
arbitrary bytes; hand-built RIFF/WAVE headers with random fields (zero channels, huge rates, wrong sizes, odd
formats); real WAV/FLAC/OGG files truncated or with bytes overwritten; and well-formed audio with extreme content
(NaN/inf floats, full-scale clipping, silence, a single sample, too long, odd rates, many channels). Then one
`stage_batch` over a landing batch of fuzzed files: accepted + quarantined == files, every rejection has a reason
and its bytes are kept in quarantine, byte for byte.
"""

from __future__ import annotations

import hashlib
import io
import json
import struct
from collections import Counter

import numpy as np
import pyarrow.parquet as pq
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from speech_assets.audio.validate import AudioRejected, ValidatedAudio, ValidationPolicy, validate_audio
from speech_assets.intake.batch import metadata_path, rejections_path, stage_batch
from speech_assets.intake.landing import LandingBatch
from tests.faults.helpers import report
from tests.intake.conftest import REPO, speechlike

# The reason codes validate_audio documents; anything else is a bug (safe_member_path's codes never come from it).
REASONS = {"empty_file", "not_audio", "truncated", "unsupported_format", "sample_rate_too_low", "sample_rate_too_high",
           "not_mono", "too_short", "too_long", "clipped", "silent"}
POLICY = ValidationPolicy()
FUZZ = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SEEN: Counter = Counter()  # outcome -> cases, over every test of this module (reported by the last one)


def _check(data: bytes, family: str) -> str:
    try:
        out = validate_audio(data, POLICY)
    except AudioRejected as rej:
        assert rej.reason in REASONS, f"unknown reason {rej.reason!r}: {rej.detail}"
        assert rej.detail and rej.detail.strip(), rej.reason
        outcome = rej.reason
    else:
        assert isinstance(out, ValidatedAudio)
        assert out.sample_rate == POLICY.target_sample_rate and np.all(np.isfinite(out.samples))
        assert POLICY.min_duration_s <= out.duration_s <= POLICY.max_duration_s + 0.01
        assert hashlib.sha256(out.wav_bytes).hexdigest() == out.sha256
        outcome = "accepted"
    SEEN[(family, outcome)] += 1
    return outcome


def _encode(x: np.ndarray, rate: int, fmt: str = "WAV", subtype: str | None = None) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, rate, format=fmt, subtype=subtype)
    return buf.getvalue()


_REAL = {
    "wav16": _encode(speechlike(0.8), 16000, "WAV", "PCM_16"),
    "wav_float": _encode(speechlike(0.6, 22050), 22050, "WAV", "FLOAT"),
    "flac": _encode(speechlike(0.8, 44100), 44100, "FLAC", "PCM_16"),
    "ogg": _encode(speechlike(0.8), 16000, "OGG", "VORBIS"),
}


@FUZZ
@given(st.binary(max_size=2048))
def test_arbitrary_bytes(data):
    _check(data, "bytes")


@st.composite
def riff(draw) -> bytes:
    """A RIFF/WAVE header whose every field is drawn, around a payload that may or may not match it."""
    u16 = st.one_of(st.sampled_from([0, 1, 2, 3, 6, 7, 0xFFFE]), st.integers(0, 0xFFFF))
    u32 = st.one_of(st.sampled_from([0, 1, 8000, 16000, 44100, 4_000_000, 0x7FFFFFFF, 0xFFFFFFFF]),
                    st.integers(0, 0xFFFFFFFF))
    fmt_tag, channels = draw(u16), draw(st.one_of(st.integers(0, 8), u16))
    rate, bits = draw(u32), draw(st.one_of(st.sampled_from([0, 8, 16, 24, 32, 64]), u16))
    block = draw(st.one_of(st.just(channels * bits // 8 & 0xFFFF), u16))
    payload = draw(st.one_of(st.binary(max_size=600), st.just(_encode(speechlike(0.4), 16000)[44:])))
    data_size = draw(st.one_of(st.just(len(payload)), u32))
    fmt_size = draw(st.sampled_from([16, 18, 40, 0, 2, 0xFFFFFFFF]))
    fmt_body = struct.pack("<HHIIHH", fmt_tag, channels & 0xFFFF, rate, (rate * block) & 0xFFFFFFFF, block, bits)
    fmt_body = (fmt_body + bytes(max(0, min(fmt_size, 64) - 16)))[: max(2, min(fmt_size, 64))]
    body = b"WAVE" + b"fmt " + struct.pack("<I", fmt_size) + fmt_body + b"data" + struct.pack("<I", data_size) + payload
    riff_size = draw(st.one_of(st.just(len(body)), u32))
    return b"RIFF" + struct.pack("<I", riff_size) + body


@FUZZ
@given(riff())
def test_riff_headers_with_random_fields(data):
    _check(data, "riff")


@FUZZ
@given(st.sampled_from(sorted(_REAL)), st.data())
def test_real_files_truncated_or_corrupted(name, data):
    raw = bytearray(_REAL[name])
    how = data.draw(st.sampled_from(["truncate", "overwrite", "flip", "splice"]))
    if how == "truncate":
        raw = raw[: data.draw(st.integers(0, len(raw) - 1))]
    elif how == "overwrite":
        at = data.draw(st.integers(0, min(len(raw) - 1, 200)))  # headers are where parsers are fragile
        chunk = data.draw(st.binary(min_size=1, max_size=64))
        raw[at: at + len(chunk)] = chunk
    elif how == "flip":
        for at in data.draw(st.lists(st.integers(0, len(raw) - 1), min_size=1, max_size=16)):
            raw[at] ^= 1 << data.draw(st.integers(0, 7))
    else:
        other = _REAL[data.draw(st.sampled_from(sorted(_REAL)))]
        raw = raw[: data.draw(st.integers(0, len(raw)))] + other[data.draw(st.integers(0, len(other))):]
    _check(bytes(raw), f"corrupt-{name}")


@st.composite
def extreme_audio(draw) -> bytes:
    kind = draw(st.sampled_from(["nan", "inf", "clipped", "silence", "one_sample", "too_long", "loud_noise",
                                 "dc", "channels", "odd_rate", "tiny"]))
    rate = draw(st.sampled_from([8000, 16000, 44100, 48000])) if kind != "odd_rate" else draw(st.integers(1, 200_000))
    seconds = {"one_sample": 1 / rate, "too_long": 31.0, "tiny": 0.05}.get(kind, draw(st.floats(0.3, 1.5)))
    n = max(1, int(seconds * rate)) if kind != "too_long" else int(31.0 * 8000)
    rate = 8000 if kind == "too_long" else rate
    x = speechlike(n / rate + 1e-9, rate)[:n].astype(np.float32) if n > 1 else np.zeros(1, np.float32)
    subtype = "FLOAT"
    if kind in ("nan", "inf"):
        idx = draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=5))
        x[idx] = np.nan if kind == "nan" else np.inf
    elif kind == "clipped":
        x = np.clip(x * draw(st.floats(2.0, 100.0)), -1.0, 1.0)
        subtype = "PCM_16"
    elif kind == "silence":
        x = np.zeros(n, np.float32) + draw(st.sampled_from([0.0, 1e-6]))
    elif kind == "loud_noise":
        x = np.random.default_rng(draw(st.integers(0, 9))).uniform(-1, 1, n).astype(np.float32)
    elif kind == "dc":
        x = np.full(n, draw(st.floats(-1.0, 1.0)), np.float32)
    elif kind == "channels":
        x = np.stack([x] * draw(st.integers(2, 8)), axis=1)
    fmt = draw(st.sampled_from(["WAV", "FLAC"])) if subtype == "PCM_16" and kind != "odd_rate" else "WAV"
    try:
        return _encode(x, rate, fmt, subtype)
    except (sf.LibsndfileError, ValueError, RuntimeError):  # a rate libsndfile cannot even write: plain WAV header
        return _encode(x, min(max(rate, 1), 655350), "WAV", "FLOAT")


@FUZZ
@given(extreme_audio())
def test_well_formed_audio_with_extreme_content(data):
    _check(data, "extreme")


def test_a_batch_of_fuzzed_files_is_split_into_accepted_and_quarantined_with_nothing_lost(store, tmp_path):
    """One stage_batch over fuzzed files (fixed seed): every file is accounted for, every rejection keeps its bytes."""
    rng = np.random.default_rng(6)
    batch_dir = tmp_path / "landing" / "fuzzed"
    (batch_dir / "audio").mkdir(parents=True)
    files = {"empty.wav": b"", "noise.wav": bytes(rng.integers(0, 256, 900, dtype=np.uint8)),
             "riff-zero-channels.wav": _zero_channel_wav()}
    for name, raw in _REAL.items():
        files[f"{name}-ok.bin"] = raw
        files[f"{name}-cut.bin"] = raw[: len(raw) // 3]
        flipped = bytearray(raw)
        for at in rng.integers(0, min(len(raw), 128), 6):
            flipped[at] ^= 0xFF
        files[f"{name}-flipped.bin"] = bytes(flipped)
    files["nan.wav"] = _encode(np.where(np.arange(8000) == 5, np.nan, speechlike(0.5)).astype(np.float32), 16000,
                               "WAV", "FLOAT")
    files["clipped.wav"] = _encode(np.clip(speechlike(1.0) * 50, -1, 1), 16000, "WAV", "PCM_16")
    files["silent.wav"] = _encode(np.zeros(16000, np.float32), 16000, "WAV", "PCM_16")
    rows = []
    for i, (name, raw) in enumerate(sorted(files.items())):
        (batch_dir / "audio" / name).write_bytes(raw)
        rows.append(json.dumps({"audio_filepath": f"audio/{name}", "text": f"file number {i}", "speaker": "s"}))
    (batch_dir / "manifest.jsonl").write_text("\n".join(rows) + "\n")
    staged = stage_batch(store, REPO, LandingBatch("fuzzed", batch_dir), run_id="fuzz")

    assert staged.accepted + staged.rejected == len(files)
    accepted = pq.read_table(io.BytesIO(store.get_object(REPO, staged.commit_id, metadata_path("fuzzed")))).to_pylist()
    rejected = pq.read_table(io.BytesIO(store.get_object(REPO, staged.commit_id, rejections_path("fuzzed")))).to_pylist()
    assert len(accepted) == staged.accepted and len(rejected) == staged.rejected
    by_ref = {r["source_ref"]: r for r in accepted}
    for name, raw in files.items():
        row = next((r for r in rejected if r["source_ref"] == repr(f"audio/{name}")), None)
        if row is None:
            assert f"audio/{name}" in by_ref, f"{name} is neither accepted nor quarantined"
            continue
        assert row["reason"] in REASONS and row["detail"], row
        if raw:  # the rejected bytes are kept, byte for byte
            assert store.get_object(REPO, staged.commit_id, row["quarantine_path"]) == raw
            assert row["source_sha256"] == hashlib.sha256(raw).hexdigest()
        else:
            assert row["reason"] == "empty_file"
    assert {"wav16-ok.bin", "flac-ok.bin"} <= {r["source_ref"].removeprefix("audio/") for r in accepted}
    outcomes = Counter(o for (_, o) in SEEN.elements())
    report(tmp_path, "fuzz_validator", {
        "fuzz_cases": sum(SEEN.values()), "by_family": dict(Counter(f for (f, _) in SEEN.elements())),
        "outcomes": dict(outcomes), "unexpected_exceptions": 0,
        "batch_files": len(files), "batch_accepted": staged.accepted, "batch_quarantined": staged.rejected,
        "batch_reasons": staged.rejection_reasons,
    })


def _zero_channel_wav() -> bytes:
    fmt = struct.pack("<HHIIHH", 1, 0, 16000, 32000, 2, 16)
    payload = bytes(3200)
    return (b"RIFF" + struct.pack("<I", 36 + len(payload)) + b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt
            + b"data" + struct.pack("<I", len(payload)) + payload)
