"""Tests for speech_assets.audio.decode / validate.

All fixtures are generated here (numpy + soundfile, optionally espeak-ng);
no binary file is committed.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest
import soundfile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from speech_assets.audio import validate as validate_mod
from speech_assets.audio.decode import (
    AudioRejected as DecodeAudioRejected,
    decode_audio,
    encode_wav_pcm16,
    probe_audio,
)
from speech_assets.audio.validate import (
    AudioRejected,
    ValidatedAudio,
    ValidationPolicy,
    safe_member_path,
    validate_audio,
)

# ---------------------------------------------------------------------------
# Fixture builders
# ---------------------------------------------------------------------------


def encode(samples: np.ndarray, sr: int, fmt: str = "WAV", subtype: str | None = "PCM_16") -> bytes:
    buf = io.BytesIO()
    soundfile.write(buf, samples, sr, format=fmt, subtype=subtype)
    return buf.getvalue()


def tone(sr: int, seconds: float, freq: float = 440.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(sr * seconds))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def speechlike(sr: int = 16000, seconds: float = 2.0, seed: int = 0) -> np.ndarray:
    """Noise bursts (syllables) separated by near-silent pauses."""
    rng = np.random.default_rng(seed)
    n = int(sr * seconds)
    x = rng.normal(0.0, 0.0003, n)  # background around -70 dBFS
    seg = int(0.2 * sr)
    for start in range(0, n, 2 * seg):  # 200 ms on, 200 ms off
        x[start : start + seg] += rng.normal(0.0, 0.1, len(x[start : start + seg]))
    return np.clip(x, -0.95, 0.95).astype(np.float32)


def wav_16k(seconds: float = 1.0) -> bytes:
    return encode(tone(16000, seconds), 16000)


def half(data: bytes) -> bytes:
    return data[: len(data) // 2]


BAD_INPUTS = {
    # name: (builder, expected reason)
    "zero_bytes": (lambda: b"", "empty_file"),
    "truncated_wav": (lambda: half(wav_16k(1.0)), "truncated"),
    "png_named_wav": (lambda: b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "not_audio"),
    "text_named_wav": (lambda: b"this is a transcript, not audio\n" * 10, "not_audio"),
    "rate_4k": (lambda: encode(tone(4000, 1.0, 300), 4000), "sample_rate_too_low"),
    "rate_192k": (lambda: encode(tone(192000, 0.5), 192000), "sample_rate_too_high"),
    "stereo": (
        lambda: encode(np.stack([tone(16000, 1), tone(16000, 1, 880)], 1), 16000),
        "not_mono",
    ),
    "ten_minutes": (lambda: encode(tone(8000, 600.0), 8000, subtype="PCM_U8"), "too_long"),
    "too_short": (lambda: encode(tone(16000, 0.1), 16000), "too_short"),
    "clipped": (lambda: encode(np.sign(tone(16000, 1.0)) * 1.0, 16000), "clipped"),
    "silent_zeros": (lambda: encode(np.zeros(16000, np.float32), 16000), "silent"),
    "aiff": (lambda: encode(tone(16000, 1.0), 16000, "AIFF"), "unsupported_format"),
}


# ---------------------------------------------------------------------------
# Accepted files
# ---------------------------------------------------------------------------


def test_accepts_16k_mono_wav_and_fills_every_field():
    data = wav_16k(1.0)
    v = validate_audio(data)
    assert isinstance(v, ValidatedAudio)
    assert v.sample_rate == 16000 and v.original_sample_rate == 16000
    assert v.resampled is False
    assert v.original_container == "WAV" and v.original_subtype == "PCM_16"
    assert v.original_channels == 1
    assert v.samples.dtype == np.float32 and v.samples.ndim == 1
    assert v.duration_s == pytest.approx(1.0)
    assert v.sha256 == hashlib.sha256(v.wav_bytes).hexdigest()
    # The canonical WAV is a plain 16 kHz mono PCM16 file.
    with wave.open(io.BytesIO(v.wav_bytes)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2)
        assert w.getnframes() == len(v.samples)
    assert v.stats.peak == pytest.approx(0.5, abs=1e-3)
    assert v.stats.rms_dbfs == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)), abs=0.1)
    assert v.stats.clipped_fraction == 0.0
    assert v.stats.active_fraction == pytest.approx(1.0)  # steady tone: active throughout
    assert set(v.summary()) >= {"sha256", "original_sample_rate", "rms_dbfs", "active_fraction"}


def dominant_freq(x: np.ndarray, sr: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / sr)[np.argmax(spectrum)])


@pytest.mark.parametrize("rate", [44100, 8000, 22050, 48000, 11025])
def test_other_rates_are_resampled_to_16k(rate):
    seconds = 1.337
    v = validate_audio(encode(tone(rate, seconds, 440.0), rate))
    assert v.sample_rate == 16000
    assert v.original_sample_rate == rate
    assert v.resampled is True
    assert abs(v.duration_s - seconds) <= 0.010
    assert len(v.samples) == pytest.approx(16000 * seconds, abs=2)
    assert dominant_freq(v.samples, 16000) == pytest.approx(440.0, abs=2.0)  # pitch kept
    with wave.open(io.BytesIO(v.wav_bytes)) as w:
        assert w.getframerate() == 16000


def test_resampling_and_encoding_are_deterministic():
    data = encode(speechlike(44100, 1.0), 44100)
    first, second = validate_audio(data), validate_audio(data)
    assert first.wav_bytes == second.wav_bytes
    assert first.sha256 == second.sha256
    assert np.array_equal(first.samples, second.samples)


def test_encode_wav_pcm16_is_deterministic_and_readable():
    x = tone(16000, 0.5)
    a, b = encode_wav_pcm16(x, 16000), encode_wav_pcm16(x.copy(), 16000)
    assert a == b
    assert len(a) == 44 + 2 * len(x)
    back, sr = soundfile.read(io.BytesIO(a), dtype="float32")
    assert sr == 16000 and np.max(np.abs(back - x)) < 1e-4
    # Out-of-range and NaN samples are clipped / zeroed, never wrapped.
    odd = encode_wav_pcm16(np.array([2.0, -2.0, np.nan], np.float32), 8000)
    assert np.frombuffer(odd[44:], "<i2").tolist() == [32767, -32767, 0]
    with pytest.raises(ValueError):
        encode_wav_pcm16(np.zeros((2, 10), np.float32), 16000)


def test_flac_accepted():
    v = validate_audio(encode(tone(16000, 1.0), 16000, "FLAC"))
    assert v.original_container == "FLAC" and v.original_subtype == "PCM_16"


def test_ogg_vorbis_accepted():
    v = validate_audio(encode(tone(16000, 1.0), 16000, "OGG", "VORBIS"))
    assert v.original_container == "OGG" and v.original_subtype == "VORBIS"


@pytest.mark.skipif(
    "MP3" not in soundfile.available_formats(), reason="libsndfile built without MP3"
)
def test_mp3_accepted():
    v = validate_audio(encode(tone(16000, 1.0), 16000, "MP3", "MPEG_LAYER_III"))
    assert v.original_container == "MP3"
    assert v.duration_s == pytest.approx(1.0, abs=0.1)


def test_stereo_accepted_with_downmix_averages_channels():
    left, right = tone(16000, 1.0, amp=0.5), tone(16000, 1.0, amp=0.1)
    v = validate_audio(encode(np.stack([left, right], 1), 16000), ValidationPolicy(downmix=True))
    assert v.original_channels == 2
    assert v.stats.peak == pytest.approx(0.5, abs=1e-3)  # peak of the original channels
    assert np.max(np.abs(v.samples)) == pytest.approx(0.3, abs=1e-3)  # (0.5 + 0.1) / 2


def test_float_wav_within_range_accepted():
    v = validate_audio(encode(tone(16000, 1.0), 16000, subtype="FLOAT"))
    assert v.original_subtype == "FLOAT"


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_real_speech_from_espeak_is_accepted():
    # espeak-ng writes to a pipe, so its WAV header carries placeholder sizes.
    data = subprocess.run(
        ["espeak-ng", "--stdout", "please call me back tomorrow morning"],
        check=True,
        capture_output=True,
    ).stdout
    v = validate_audio(data)
    assert v.original_sample_rate == 22050 and v.resampled
    assert 0.5 < v.duration_s < 10
    assert v.stats.estimated_snr_db > 20
    assert 0.2 < v.stats.active_fraction < 1.0


def test_activity_and_snr_estimates_on_speechlike_signal():
    v = validate_audio(encode(speechlike(16000, 2.0), 16000))
    assert v.stats.estimated_snr_db > 40  # bursts ~ -20 dBFS over a -70 dBFS floor
    assert v.stats.active_fraction == pytest.approx(0.5, abs=0.05)


def test_min_active_fraction_rejects_mostly_silent_file():
    x = np.random.default_rng(1).normal(0, 0.0003, 16000 * 3).astype(np.float32)
    x[:3200] += np.random.default_rng(2).normal(0, 0.2, 3200).astype(np.float32)  # 0.2 s of sound
    data = encode(x, 16000)
    assert validate_audio(data).stats.active_fraction < 0.1
    with pytest.raises(AudioRejected) as exc:
        validate_audio(data, ValidationPolicy(min_active_fraction=0.2))
    assert exc.value.reason == "silent"
    assert "frames are active" in exc.value.detail


# ---------------------------------------------------------------------------
# Rejections: reason code and a clear detail
# ---------------------------------------------------------------------------


def rejected(data: bytes, policy: ValidationPolicy = ValidationPolicy()) -> AudioRejected:
    with pytest.raises(AudioRejected) as exc:
        validate_audio(data, policy)
    err = exc.value
    assert err.reason and err.detail
    return err


def test_audio_rejected_is_shared_between_modules():
    assert AudioRejected is DecodeAudioRejected


def test_zero_byte_file():
    err = rejected(b"")
    assert err.reason == "empty_file"
    assert "0 bytes" in err.detail


@pytest.mark.parametrize("fraction", [0.5, 0.9, 0.99])
def test_truncated_wav(fraction):
    data = wav_16k(1.0)
    # libsndfile alone would read this silently; the chunk walk must catch it.
    info = soundfile.info(io.BytesIO(data[: int(len(data) * fraction)]))
    assert info.frames > 0
    err = rejected(data[: int(len(data) * fraction)])
    assert err.reason == "truncated"
    assert "data chunk declares 32000 bytes" in err.detail
    assert "cut short" in err.detail


@pytest.mark.parametrize("cut", [4, 11, 20, 30, 40])
def test_wav_cut_inside_header_is_truncated(cut):
    assert rejected(wav_16k(1.0)[:cut]).reason == "truncated"


def test_truncated_flac():
    data = encode(speechlike(16000, 1.0), 16000, "FLAC")
    for cut in (30, 120, len(data) // 2):
        assert rejected(data[:cut]).reason == "truncated", cut


def test_truncated_ogg():
    data = encode(speechlike(16000, 1.0), 16000, "OGG", "VORBIS")
    for cut in (20, 100, len(data) // 2, len(data) - 10):
        assert rejected(data[:cut]).reason == "truncated", cut


def test_png_named_wav_is_not_audio():
    err = rejected(BAD_INPUTS["png_named_wav"][0]())
    assert err.reason == "not_audio"
    assert "PNG image" in err.detail and "89 50 4E 47" in err.detail


def test_text_is_not_audio():
    err = rejected(b"hello, this is plainly text\n")
    assert err.reason == "not_audio"
    assert "text" in err.detail and "hello" in err.detail


def test_random_bytes_are_not_audio():
    data = np.random.default_rng(3).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    assert rejected(data).reason == "not_audio"


def test_nan_float_wav_is_rejected():
    x = tone(16000, 1.0)
    x[100] = np.nan
    err = rejected(encode(x, 16000, subtype="FLOAT"))
    assert err.reason == "not_audio" and "NaN" in err.detail


def test_sample_rate_too_low():
    err = rejected(encode(tone(4000, 1.0, 300), 4000))
    assert err.reason == "sample_rate_too_low"
    assert err.detail == "sample rate 4000 Hz is below the minimum 8000 Hz"


def test_sample_rate_too_high():
    err = rejected(encode(tone(192000, 0.5), 192000))
    assert err.reason == "sample_rate_too_high"
    assert err.detail == "sample rate 192000 Hz is above the maximum 96000 Hz"


def test_irregular_sample_rate_is_refused_before_building_a_huge_kernel(monkeypatch):
    monkeypatch.setattr(validate_mod, "_resample", _forbidden("resample"))
    err = rejected(encode(tone(16001, 1.0), 16001))
    assert err.reason == "unsupported_format"
    assert "16001 Hz" in err.detail


def test_stereo_is_not_mono():
    err = rejected(BAD_INPUTS["stereo"][0]())
    assert err.reason == "not_mono"
    assert err.detail.startswith("2 channels; mono required")


def _forbidden(what: str):
    def fail(*args, **kwargs):
        raise AssertionError(f"{what} must not be called for a file rejected by its header")

    return fail


def test_ten_minute_file_rejected_from_header_without_decoding(monkeypatch):
    data = BAD_INPUTS["ten_minutes"][0]()
    calls: list[str] = []

    def spy(name):
        def fail(*args, **kwargs):
            calls.append(name)
            raise AssertionError(f"{name} called")

        return fail

    # Any attempt to decode samples is recorded (and would also turn the
    # reason into "truncated", failing the reason check below).
    monkeypatch.setattr(soundfile, "read", spy("soundfile.read"))
    monkeypatch.setattr(soundfile.SoundFile, "read", spy("SoundFile.read"))
    monkeypatch.setattr(soundfile.SoundFile, "buffer_read", spy("SoundFile.buffer_read"))
    monkeypatch.setattr(validate_mod, "decode_audio", spy("decode_audio"))
    err = rejected(data)
    assert err.reason == "too_long"
    assert err.detail == "duration 600.0 s exceeds the maximum 30.0 s"
    assert calls == []


def test_header_probe_reads_no_samples():
    header = probe_audio(encode(tone(16000, 2.0), 16000))
    assert (header.container, header.sample_rate, header.channels, header.frames) == (
        "WAV",
        16000,
        1,
        32000,
    )
    assert header.duration_s == 2.0


def test_too_short():
    err = rejected(encode(tone(16000, 0.1), 16000))
    assert err.reason == "too_short"
    assert err.detail == "duration 0.1 s is below the minimum 0.3 s"


def test_clipped():
    err = rejected(BAD_INPUTS["clipped"][0]())
    assert err.reason == "clipped"
    assert "full scale" in err.detail and "at most 1% allowed" in err.detail


def test_a_few_clipped_samples_are_tolerated():
    x = tone(16000, 1.0)
    x[:50] = 1.0  # 0.3% of samples
    assert validate_audio(encode(x, 16000)).stats.clipped_fraction == pytest.approx(50 / 16000)


@pytest.mark.parametrize(
    "samples",
    [
        np.zeros(16000, np.float32),
        np.random.default_rng(4).normal(0, 10 ** (-70 / 20), 16000).astype(np.float32),
    ],
    ids=["digital_zero", "minus_70_dbfs_noise"],
)
def test_silent(samples):
    err = rejected(encode(samples, 16000))
    assert err.reason == "silent"
    assert "below the silence threshold -50.0 dBFS" in err.detail


@pytest.mark.parametrize(
    "data_builder, detail_part",
    [
        (lambda: encode(tone(16000, 1.0), 16000, "AIFF"), "container AIFF"),
        (lambda: encode(tone(16000, 1.0), 16000, "WAV", "IMA_ADPCM"), "IMA_ADPCM"),
        (lambda: b"\x00\x00\x00\x20ftypM4A " + bytes(200), "MP4/M4A"),
    ],
    ids=["aiff", "adpcm_wav", "m4a"],
)
def test_unsupported_formats(data_builder, detail_part):
    err = rejected(data_builder())
    assert err.reason == "unsupported_format"
    assert detail_part in err.detail


def test_policy_allow_list_restricts_containers():
    flac = encode(tone(16000, 1.0), 16000, "FLAC")
    err = rejected(flac, ValidationPolicy(allowed_containers=("WAV",)))
    assert err.reason == "unsupported_format" and "FLAC" in err.detail


def test_decode_audio_shape_and_fields():
    stereo = np.stack([tone(16000, 0.5), tone(16000, 0.5, 880)], 1)
    d = decode_audio(encode(stereo, 16000))
    assert d.samples.shape == (2, 8000) and d.samples.dtype == np.float32
    assert (d.channels, d.frames, d.sample_rate) == (2, 8000, 16000)
    assert (d.container, d.subtype) == ("WAV", "PCM_16")
    assert d.duration_s == 0.5


def test_audio_rejected_pickles():
    import pickle

    err = pickle.loads(pickle.dumps(AudioRejected("truncated", "cut")))
    assert (err.reason, err.detail) == ("truncated", "cut")


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_every_bad_input_in_a_batch_gets_its_reason(tmp_path, name):
    """The intake path: resolve the manifest reference, read, validate."""
    builder, reason = BAD_INPUTS[name]
    (tmp_path / f"{name}.wav").write_bytes(builder())
    path = safe_member_path(tmp_path, f"{name}.wav")
    with pytest.raises(AudioRejected) as exc:
        validate_audio(path.read_bytes())
    assert exc.value.reason == reason
    assert len(exc.value.detail) > 10


# ---------------------------------------------------------------------------
# safe_member_path
# ---------------------------------------------------------------------------


@pytest.fixture()
def batch(tmp_path: Path) -> Path:
    root = tmp_path / "batch"
    (root / "sub").mkdir(parents=True)
    (root / "a.wav").write_bytes(b"a")
    (root / "sub" / "b.wav").write_bytes(b"b")
    (tmp_path / "secret.wav").write_bytes(b"secret")
    (tmp_path / "outside_dir").mkdir()
    (tmp_path / "outside_dir" / "c.wav").write_bytes(b"c")
    return root


def path_error(batch_dir: Path, ref: str) -> AudioRejected:
    with pytest.raises(AudioRejected) as exc:
        safe_member_path(batch_dir, ref)
    assert exc.value.detail
    return exc.value


@pytest.mark.parametrize("ref", ["a.wav", "sub/b.wav", "./sub/b.wav", "sub/../a.wav"])
def test_member_paths_inside_batch(batch, ref):
    assert safe_member_path(batch, ref).read_bytes() in (b"a", b"b")


def test_absolute_path_inside_batch_is_allowed(batch):
    assert safe_member_path(batch, str(batch / "a.wav")) == (batch / "a.wav").resolve()


@pytest.mark.parametrize(
    "ref", ["../secret.wav", "sub/../../secret.wav", "../batch/../secret.wav", ".."]
)
def test_dotdot_escape(batch, ref):
    assert path_error(batch, ref).reason == "path_escapes_batch"


def test_absolute_path_outside(batch):
    outside = batch.parent / "secret.wav"
    err = path_error(batch, str(outside))
    assert err.reason == "path_escapes_batch"
    assert path_error(batch, "/etc/passwd").reason == "path_escapes_batch"


def test_symlink_to_file_outside(batch):
    (batch / "link.wav").symlink_to(batch.parent / "secret.wav")
    err = path_error(batch, "link.wav")
    assert err.reason == "path_escapes_batch"
    assert "symlink" in err.detail


def test_symlinked_directory_outside(batch):
    (batch / "linkdir").symlink_to(batch.parent / "outside_dir", target_is_directory=True)
    assert path_error(batch, "linkdir/c.wav").reason == "path_escapes_batch"


def test_dangling_symlink_outside(batch):
    (batch / "dangling.wav").symlink_to(batch.parent / "nope.wav")
    assert path_error(batch, "dangling.wav").reason == "path_escapes_batch"


def test_symlink_inside_batch_is_allowed(batch):
    (batch / "alias.wav").symlink_to(batch / "sub" / "b.wav")
    assert safe_member_path(batch, "alias.wav") == (batch / "sub" / "b.wav").resolve()


def test_missing_file(batch):
    err = path_error(batch, "nope.wav")
    assert err.reason == "file_missing"
    assert "nope.wav" in err.detail


@pytest.mark.parametrize("ref", ["", "   ", "a\x00.wav"])
def test_unusable_reference(batch, ref):
    assert path_error(batch, ref).reason == "file_missing"


def test_missing_batch_dir(tmp_path):
    assert path_error(tmp_path / "no_batch", "a.wav").reason == "file_missing"


@pytest.mark.parametrize("ref", ["sub", ".", "sub/"])
def test_directory_is_not_a_file(batch, ref):
    assert path_error(batch, ref).reason == "not_a_file"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_fifo_is_not_a_file(batch):
    os.mkfifo(batch / "pipe.wav")
    assert path_error(batch, "pipe.wav").reason == "not_a_file"


def test_batch_dir_given_through_a_symlink(batch, tmp_path):
    alias = tmp_path / "batch_alias"
    alias.symlink_to(batch, target_is_directory=True)
    assert safe_member_path(alias, "a.wav").read_bytes() == b"a"
    assert safe_member_path(alias, str(alias / "a.wav")).read_bytes() == b"a"
    assert path_error(alias, "../secret.wav").reason == "path_escapes_batch"


# ---------------------------------------------------------------------------
# Property tests: nothing but AudioRejected, ever
# ---------------------------------------------------------------------------

_VALID_WAV = encode(speechlike(16000, 0.5), 16000)
_VALID_FLAC = encode(speechlike(16000, 0.5), 16000, "FLAC")
_VALID_OGG = encode(speechlike(16000, 0.5), 16000, "OGG", "VORBIS")


def _outcome_is_clean(data: bytes) -> None:
    try:
        result = validate_audio(data)
    except AudioRejected as err:
        assert isinstance(err.reason, str) and err.reason
        assert isinstance(err.detail, str) and err.detail
    else:
        assert isinstance(result, ValidatedAudio)
        assert result.sample_rate == 16000
        assert result.samples.dtype == np.float32
        assert np.all(np.isfinite(result.samples))


# database=None: no example database written into the working tree.
_PROPERTY_SETTINGS = settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@_PROPERTY_SETTINGS
@given(st.binary(max_size=4096))
def test_arbitrary_bytes_never_raise_anything_else(data):
    _outcome_is_clean(data)


@st.composite
def mutated(draw, base: bytes):
    data = bytearray(base)
    ops = draw(
        st.lists(
            st.tuples(
                st.sampled_from(["set", "insert", "delete", "truncate"]),
                # Bias positions towards the header, where the interesting fields live.
                st.one_of(st.integers(0, 64), st.integers(0, max(0, len(base) - 1))),
                st.integers(0, 255),
            ),
            min_size=1,
            max_size=8,
        )
    )
    for op, pos, value in ops:
        if not data:
            break
        pos = min(pos, len(data) - 1)
        if op == "set":
            data[pos] = value
        elif op == "insert":
            data.insert(pos, value)
        elif op == "delete":
            del data[pos]
        else:
            del data[pos:]
    return bytes(data)


@_PROPERTY_SETTINGS
@given(mutated(_VALID_WAV))
def test_mutated_wav_never_raises_anything_else(data):
    _outcome_is_clean(data)


@_PROPERTY_SETTINGS
@given(st.one_of(mutated(_VALID_FLAC), mutated(_VALID_OGG)))
def test_mutated_flac_and_ogg_never_raise_anything_else(data):
    _outcome_is_clean(data)


@settings(max_examples=100, deadline=None, database=None)
@given(
    rate=st.sampled_from([8000, 11025, 16000, 22050, 32000, 44100, 48000]),
    frames=st.integers(0, 4000),
)
def test_header_rate_and_length_combinations(rate, frames):
    x = np.random.default_rng(frames).normal(0, 0.1, frames).astype(np.float32)
    data = encode(x, rate)
    _outcome_is_clean(data)
    _outcome_is_clean(data[: len(data) - 1])
