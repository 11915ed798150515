"""Validation of one uploaded audio file against an ingest policy.

:func:`validate_audio` turns raw bytes into a :class:`ValidatedAudio` (mono,
``float32``, resampled to the target rate, plus a canonical 16-bit WAV and its
SHA-256) or raises :class:`AudioRejected` with a stable ``reason`` code and a
``detail`` sentence for a person.  It never raises anything else for bad
input; a wrong *argument type* (not bytes) or an inconsistent policy is a
programming error and raises ``TypeError``/``ValueError``.

Reason codes, in the order they are checked (cheap header checks first, so a
two-hour upload is rejected after reading a few header bytes, never decoded):

========================  ==================================================
``empty_file``            0 bytes
``not_audio``             no audio container could be decoded
``truncated``             header promises more data than the file holds
``unsupported_format``    container/encoding outside the allow-list, or a
                          sample rate whose ratio to the target is too
                          irregular to resample exactly
``sample_rate_too_low``   below ``min_sample_rate``
``sample_rate_too_high``  above ``max_sample_rate``
``not_mono``              more than one channel and ``downmix`` is off
``too_short``             shorter than ``min_duration_s``
``too_long``              longer than ``max_duration_s``
``clipped``               too many samples at full scale
``silent``                whole-file level below ``silence_dbfs``, or (when
                          ``min_active_fraction`` is set) too little activity
========================  ==================================================

Also here: :func:`safe_member_path`, which resolves a manifest's audio
reference inside a batch folder (``path_escapes_batch``, ``file_missing``,
``not_a_file``).

No Dagster import: pure domain code.
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from speech_assets.audio.decode import (
    DEFAULT_ALLOWED_CONTAINERS,
    AudioHeader,
    AudioRejected,
    decode_audio,
    encode_wav_pcm16,
    probe_audio,
)

__all__ = [
    "AudioRejected",
    "AudioStats",
    "ValidatedAudio",
    "ValidationPolicy",
    "safe_member_path",
    "validate_audio",
]

# A sample at or beyond this magnitude counts as clipped.  16-bit full scale
# is 32767/32768 = 0.99997, comfortably above it.
CLIP_LEVEL = 0.999
# Frame length for the level statistics (20 ms, the usual speech frame).
FRAME_S = 0.020
# Levels are floored here so digital silence gives a finite number.
FLOOR_DBFS = -120.0
# Refuse to build a resampling kernel bigger than this many coefficients.
# Every common rate (8k, 11.025k, 12k, 22.05k, 24k, 32k, 44.1k, 48k, 88.2k,
# 96k) to 16 kHz needs under 0.3 M; an odd rate like 16001 Hz would need
# 256 M (1 GiB) because the rates share no common factor.
MAX_RESAMPLE_KERNEL = 4_000_000
_LOWPASS_FILTER_WIDTH = 6
_ROLLOFF = 0.99


@dataclass(frozen=True)
class ValidationPolicy:
    """What an accepted upload must look like.

    ``require_mono`` / ``downmix``: the output is always mono.  A file with
    several channels is rejected (``not_mono``) when ``require_mono`` is true
    and ``downmix`` is false, because averaging two channels may mix two
    speakers; otherwise its channels are averaged.

    ``min_active_fraction``: optional (``None`` = off).  A 20 ms frame is
    *active* when its level (dBFS) is above ``silence_dbfs`` and no more than
    ``active_margin_db`` below the loud level of the file (the 90th percentile
    frame level).  So pauses well below the speech count as inactive, while a
    steady signal counts as active throughout.  Too little activity is
    reported as ``silent``.
    """

    target_sample_rate: int = 16000
    min_sample_rate: int = 8000
    max_sample_rate: int = 96000
    min_duration_s: float = 0.3
    max_duration_s: float = 30.0
    allowed_containers: tuple[str, ...] = DEFAULT_ALLOWED_CONTAINERS
    require_mono: bool = True
    downmix: bool = False
    max_clipped_fraction: float = 0.01
    silence_dbfs: float = -50.0
    min_active_fraction: float | None = None
    active_margin_db: float = 30.0

    def __post_init__(self) -> None:
        if self.target_sample_rate <= 0:
            raise ValueError("target_sample_rate must be positive")
        if not 0 < self.min_sample_rate <= self.max_sample_rate:
            raise ValueError("need 0 < min_sample_rate <= max_sample_rate")
        if not 0 <= self.min_duration_s <= self.max_duration_s:
            raise ValueError("need 0 <= min_duration_s <= max_duration_s")
        if not 0 <= self.max_clipped_fraction <= 1:
            raise ValueError("max_clipped_fraction must be within [0, 1]")
        if self.min_active_fraction is not None and not 0 <= self.min_active_fraction <= 1:
            raise ValueError("min_active_fraction must be within [0, 1] or None")
        # Accept a list from config files but keep the dataclass hashable.
        object.__setattr__(
            self, "allowed_containers", tuple(c.upper() for c in self.allowed_containers)
        )


@dataclass(frozen=True)
class AudioStats:
    """Level statistics of an accepted file.

    ``rms_dbfs``, ``peak`` and ``clipped_fraction`` are measured on the decoded
    samples before resampling (resampling overshoot would distort them);
    clipping counts every channel.  ``estimated_snr_db`` and
    ``active_fraction`` use 20 ms frames of the final mono signal:
    ``estimated_snr_db`` is the 90th minus the 10th percentile frame level in
    dB (loud-frame energy over quiet-frame energy), clamped to [0, 100].  It is
    a crude contrast measure: speech with pauses scores high, steady noise or
    a steady tone scores near 0.
    """

    rms_dbfs: float
    peak: float
    clipped_fraction: float
    estimated_snr_db: float
    active_fraction: float


@dataclass(frozen=True)
class ValidatedAudio:
    samples: np.ndarray = field(repr=False)  # mono float32 at sample_rate
    sample_rate: int
    duration_s: float
    original_sample_rate: int
    original_container: str
    original_subtype: str
    original_channels: int
    resampled: bool
    wav_bytes: bytes = field(repr=False)  # PCM16 mono WAV at sample_rate
    sha256: str
    stats: AudioStats

    def summary(self) -> dict[str, Any]:
        """JSON-ready metadata (everything except samples and WAV bytes)."""
        return {
            "sample_rate": self.sample_rate,
            "duration_s": self.duration_s,
            "original_sample_rate": self.original_sample_rate,
            "original_container": self.original_container,
            "original_subtype": self.original_subtype,
            "original_channels": self.original_channels,
            "resampled": self.resampled,
            "sha256": self.sha256,
            "wav_size_bytes": len(self.wav_bytes),
            "rms_dbfs": self.stats.rms_dbfs,
            "peak": self.stats.peak,
            "clipped_fraction": self.stats.clipped_fraction,
            "estimated_snr_db": self.stats.estimated_snr_db,
            "active_fraction": self.stats.active_fraction,
        }


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def _fmt_s(seconds: float) -> str:
    """600 -> '600.0', 0.25 -> '0.25', 0.1234 -> '0.123'."""
    text = f"{seconds:.3f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def _fmt_pct(fraction: float) -> str:
    return f"{100.0 * fraction:.2g}%"


def _level_dbfs(mean_square: float) -> float:
    if not mean_square > 0.0 or not math.isfinite(mean_square):
        return FLOOR_DBFS
    return max(FLOOR_DBFS, 10.0 * math.log10(mean_square))


def _resample_kernel_size(orig: int, new: int) -> int:
    """Coefficients in torchaudio's sinc kernel for ``orig -> new`` Hz."""
    g = math.gcd(orig, new)
    orig_r, new_r = orig // g, new // g
    width = math.ceil(_LOWPASS_FILTER_WIDTH * orig_r / (min(orig_r, new_r) * _ROLLOFF))
    return new_r * (2 * width + orig_r)


def _resample(mono: np.ndarray, orig: int, new: int) -> np.ndarray:
    """Band-limited sinc resampling via torchaudio (deterministic on CPU).

    Computed in float64 so the result does not depend on float32 summation
    order across thread counts, then cast back to float32.
    """
    import torch  # lazy: importing this module must stay cheap
    import torchaudio.functional as F

    waveform = torch.from_numpy(np.ascontiguousarray(mono, dtype=np.float64))
    with torch.no_grad():
        out = F.resample(
            waveform,
            orig,
            new,
            lowpass_filter_width=_LOWPASS_FILTER_WIDTH,
            rolloff=_ROLLOFF,
            resampling_method="sinc_interp_hann",
        )
    return out.numpy().astype(np.float32)


def _frame_levels(mono: np.ndarray, sample_rate: int) -> np.ndarray:
    frame_len = max(1, int(round(FRAME_S * sample_rate)))
    n_frames = len(mono) // frame_len
    if n_frames == 0:
        frames = mono[np.newaxis, :]
    else:
        frames = mono[: n_frames * frame_len].reshape(n_frames, frame_len)
    mean_square = np.mean(np.square(frames, dtype=np.float64), axis=1)
    with np.errstate(divide="ignore"):
        levels = 10.0 * np.log10(mean_square)
    return np.maximum(np.nan_to_num(levels, nan=FLOOR_DBFS, neginf=FLOOR_DBFS), FLOOR_DBFS)


def _activity(levels: np.ndarray, policy: ValidationPolicy) -> tuple[float, float]:
    """(estimated_snr_db, active_fraction) from per-frame levels in dBFS."""
    if levels.size == 0:
        return 0.0, 0.0
    noise_floor = float(np.percentile(levels, 10))
    loud = float(np.percentile(levels, 90))
    snr = min(100.0, max(0.0, loud - noise_floor))
    active = (levels >= loud - policy.active_margin_db) & (levels > policy.silence_dbfs)
    return snr, float(np.mean(active))


# ---------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------


def _check_header(header: AudioHeader, policy: ValidationPolicy) -> None:
    """Everything decidable from the header alone, before decoding."""
    rate = header.sample_rate
    if rate < policy.min_sample_rate:
        raise AudioRejected(
            "sample_rate_too_low",
            f"sample rate {rate} Hz is below the minimum {policy.min_sample_rate} Hz",
        )
    if rate > policy.max_sample_rate:
        raise AudioRejected(
            "sample_rate_too_high",
            f"sample rate {rate} Hz is above the maximum {policy.max_sample_rate} Hz",
        )
    if header.channels > 1 and policy.require_mono and not policy.downmix:
        raise AudioRejected(
            "not_mono",
            f"{header.channels} channels; mono required "
            "(channels are not averaged because they may hold different speakers)",
        )
    _check_duration(header.duration_s, policy)
    if rate != policy.target_sample_rate:
        kernel = _resample_kernel_size(rate, policy.target_sample_rate)
        if kernel > MAX_RESAMPLE_KERNEL:
            raise AudioRejected(
                "unsupported_format",
                f"sample rate {rate} Hz cannot be resampled exactly to "
                f"{policy.target_sample_rate} Hz (the rates share too small a "
                "common factor); use a standard rate such as 16000, 44100 or 48000 Hz",
            )


def _check_duration(duration_s: float, policy: ValidationPolicy) -> None:
    if duration_s < policy.min_duration_s:
        raise AudioRejected(
            "too_short",
            f"duration {_fmt_s(duration_s)} s is below the minimum "
            f"{_fmt_s(policy.min_duration_s)} s",
        )
    if duration_s > policy.max_duration_s:
        raise AudioRejected(
            "too_long",
            f"duration {_fmt_s(duration_s)} s exceeds the maximum "
            f"{_fmt_s(policy.max_duration_s)} s",
        )


# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------


def validate_audio(data: bytes, policy: ValidationPolicy = ValidationPolicy()) -> ValidatedAudio:
    """Validate and normalise one upload; raise :class:`AudioRejected` if bad.

    Steps: size -> header (container, encoding, rate, channels, duration) ->
    full decode -> clipping / silence -> downmix -> resample to
    ``policy.target_sample_rate`` -> canonical PCM16 WAV + SHA-256.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"validate_audio expects bytes, got {type(data).__name__}")
    data = bytes(data)

    # 1. Cheap checks: size and header only (no sample decoded yet).
    header = probe_audio(data, policy.allowed_containers)
    _check_header(header, policy)

    # 2. Decode.  The header was trusted so far; re-check what decoding shows.
    decoded = decode_audio(data, policy.allowed_containers, header=header)
    samples = decoded.samples
    if not np.all(np.isfinite(samples)):
        raise AudioRejected(
            "not_audio", "decoded samples contain NaN or infinite values (corrupt float data)"
        )
    _check_duration(decoded.duration_s, policy)  # MP3 headers only estimate length

    # 3. Level checks on the original samples.
    total = samples.size
    magnitude = np.abs(samples)
    peak = float(magnitude.max()) if total else 0.0
    clipped_fraction = float(np.count_nonzero(magnitude >= CLIP_LEVEL)) / total if total else 0.0
    if clipped_fraction > policy.max_clipped_fraction:
        raise AudioRejected(
            "clipped",
            f"{_fmt_pct(clipped_fraction)} of samples are at full scale "
            f"(|x| >= {CLIP_LEVEL}); at most {_fmt_pct(policy.max_clipped_fraction)} allowed",
        )

    mono = samples[0] if decoded.channels == 1 else samples.mean(axis=0, dtype=np.float64)
    mono = np.asarray(mono, dtype=np.float32)
    rms_dbfs = _level_dbfs(float(np.mean(np.square(mono, dtype=np.float64))))
    if rms_dbfs < policy.silence_dbfs:
        raise AudioRejected(
            "silent",
            f"overall level {rms_dbfs:.1f} dBFS is below the silence threshold "
            f"{policy.silence_dbfs:.1f} dBFS",
        )

    # 4. Normalise: resample, encode, hash.
    target = policy.target_sample_rate
    resampled = decoded.sample_rate != target
    out = _resample(mono, decoded.sample_rate, target) if resampled else mono.copy()
    wav_bytes = encode_wav_pcm16(out, target)

    snr_db, active_fraction = _activity(_frame_levels(out, target), policy)
    if policy.min_active_fraction is not None and active_fraction < policy.min_active_fraction:
        raise AudioRejected(
            "silent",
            f"only {_fmt_pct(active_fraction)} of 20 ms frames are active; at least "
            f"{_fmt_pct(policy.min_active_fraction)} required",
        )

    return ValidatedAudio(
        samples=out,
        sample_rate=target,
        duration_s=len(out) / target,
        original_sample_rate=decoded.sample_rate,
        original_container=decoded.container,
        original_subtype=decoded.subtype,
        original_channels=decoded.channels,
        resampled=resampled,
        wav_bytes=wav_bytes,
        sha256=hashlib.sha256(wav_bytes).hexdigest(),
        stats=AudioStats(
            rms_dbfs=rms_dbfs,
            peak=peak,
            clipped_fraction=clipped_fraction,
            estimated_snr_db=snr_db,
            active_fraction=active_fraction,
        ),
    )


def safe_member_path(batch_dir: Path, audio_ref: str) -> Path:
    """Resolve *audio_ref* (from a batch manifest) to a regular file in *batch_dir*.

    Raises :class:`AudioRejected`:

    * ``path_escapes_batch``: an absolute path outside the batch, ``..``
      climbing out of it, or a symlink (anywhere along the path) whose target
      lies outside it.  The lexical check runs first, so a ``../`` or absolute
      reference is refused without touching the filesystem outside the batch;
      the symlink check only resolves link targets (metadata), never opens them.
    * ``file_missing``: nothing there (or an unusable reference: empty, NUL).
    * ``not_a_file``: a directory, FIFO, device...

    Returns the fully resolved path.  Callers should read it promptly (a
    symlink swapped in afterwards is not covered).
    """
    ref = str(audio_ref)
    if not ref.strip() or "\x00" in ref:
        raise AudioRejected(
            "file_missing", f"audio reference {ref!r} is not a usable file path"
        )
    try:
        root = Path(batch_dir).resolve(strict=True)
    except (OSError, RuntimeError):
        raise AudioRejected(
            "file_missing", f"batch folder {str(batch_dir)!r} does not exist"
        ) from None

    # Lexical containment: no filesystem access beyond this point until it holds.
    candidate = Path(ref) if os.path.isabs(ref) else root / ref
    lexical = Path(os.path.normpath(candidate))
    if not _is_within(lexical, root) and not _is_within(
        lexical, Path(os.path.normpath(os.path.abspath(batch_dir)))
    ):
        raise AudioRejected(
            "path_escapes_batch", f"audio reference {ref!r} points outside the batch folder"
        )

    # Symlink containment: resolve links and check again.
    try:
        resolved = Path(os.path.realpath(candidate))
    except (OSError, ValueError, RuntimeError):
        raise AudioRejected(
            "path_escapes_batch", f"audio reference {ref!r} could not be resolved safely"
        ) from None
    if not _is_within(resolved, root):
        raise AudioRejected(
            "path_escapes_batch",
            f"audio reference {ref!r} resolves (through a symlink) outside the batch folder",
        )

    try:
        if not resolved.exists():
            raise AudioRejected("file_missing", f"audio file {ref!r} is not in the batch")
        if not resolved.is_file():
            kind = "a directory" if resolved.is_dir() else "not a regular file"
            raise AudioRejected("not_a_file", f"audio reference {ref!r} is {kind}")
    except OSError as exc:
        raise AudioRejected(
            "file_missing", f"audio file {ref!r} cannot be accessed ({exc.strerror or exc})"
        ) from None
    return resolved


def _is_within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents
