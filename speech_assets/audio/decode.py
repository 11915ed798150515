"""Decoding of uploaded audio bytes, with structured rejection reasons.

Everything here works on ``bytes`` already in memory (never on paths) and
raises only :class:`AudioRejected` for bad input, so a caller can quarantine a
file with a stable ``reason`` code and a ``detail`` sentence meant for a person.

Reason codes raised by this module:

``empty_file``
    zero bytes.
``not_audio``
    no known audio container could be decoded; the detail names what the
    leading bytes look like (PNG image, text, ...) and shows them in hex.
``truncated``
    the header promises more data than the file holds.  libsndfile happily
    reads a cut RIFF/WAVE file (it just returns fewer frames), so RIFF/WAVE,
    FLAC and Ogg structures are checked here by walking their chunk / block /
    page headers; for any container a decode error or a short read after a
    good header is also reported as ``truncated``.  MP3 has no reliable length
    field, so a cut MP3 is only caught when the decoder fails.
``unsupported_format``
    audio we recognise but do not accept: a container or sample encoding
    outside the allow-list (AIFF, ADPCM WAV, M4A/AAC, ...).

No Dagster (or any orchestration) import here: this is pure domain code.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from typing import Iterable

import numpy as np
import soundfile

__all__ = [
    "ALLOWED_SUBTYPES",
    "AudioHeader",
    "AudioRejected",
    "DEFAULT_ALLOWED_CONTAINERS",
    "DecodedAudio",
    "decode_audio",
    "encode_wav_pcm16",
    "probe_audio",
]


class AudioRejected(Exception):
    """A file that must be quarantined.

    ``reason`` is a short stable code (``"truncated"``, ``"not_mono"``, ...)
    suitable for grouping and contracts; ``detail`` explains it to a person.
    """

    def __init__(self, reason: str, detail: str) -> None:
        if not reason:
            raise ValueError("AudioRejected needs a non-empty reason code")
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail

    def __reduce__(self):  # keep picklable across process boundaries
        return (type(self), (self.reason, self.detail))


DEFAULT_ALLOWED_CONTAINERS: tuple[str, ...] = ("WAV", "FLAC", "OGG", "MP3")

# Sample encodings accepted inside each container.  Lossy/ADPCM telephony
# codecs inside WAV (IMA/MS ADPCM, GSM 6.10, G.721, NMS) are refused: they are
# rare in uploads and usually mean a device export we have never tested.
ALLOWED_SUBTYPES: dict[str, frozenset[str]] = {
    "WAV": frozenset(
        {"PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE", "ULAW", "ALAW"}
    ),
    "FLAC": frozenset({"PCM_S8", "PCM_16", "PCM_24"}),
    "OGG": frozenset({"VORBIS", "OPUS"}),
    "MP3": frozenset({"MPEG_LAYER_I", "MPEG_LAYER_II", "MPEG_LAYER_III"}),
}

# libsndfile names WAVE_FORMAT_EXTENSIBLE files "WAVEX"; for us both are WAV.
_CONTAINER_ALIASES = {"WAVEX": "WAV"}


@dataclass(frozen=True)
class AudioHeader:
    """What the container header says, read without decoding samples."""

    container: str
    subtype: str
    sample_rate: int
    channels: int
    frames: int

    @property
    def duration_s(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate > 0 else 0.0


@dataclass(frozen=True)
class DecodedAudio:
    """Decoded samples, ``float32`` shaped ``[channels, frames]`` in [-1, 1]
    (float files may exceed that range; nothing is clipped here)."""

    samples: np.ndarray
    sample_rate: int
    channels: int
    frames: int
    duration_s: float
    container: str
    subtype: str


# ---------------------------------------------------------------------------
# Recognising what a blob is (for clear "not_audio" details)
# ---------------------------------------------------------------------------

# Leading-byte signatures of common non-audio uploads.
_NON_AUDIO_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (or an Office document)"),
    (b"\x1f\x8b", "gzip-compressed data"),
    (b"\x7fELF", "an ELF executable"),
    (b"MZ", "a Windows executable"),
)

# Audio containers we recognise but cannot (or will not) decode.
_UNSUPPORTED_AUDIO_SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    # (offset, magic, description)
    (4, b"ftyp", "an MP4/M4A container (AAC/ALAC audio is not supported)"),
    (0, b"\x1aE\xdf\xa3", "a Matroska/WebM container (not supported)"),
    (0, b"#!AMR", "an AMR file (not supported)"),
    (0, b"FORM", "an AIFF/IFF file (not supported)"),
    (0, b"caff", "a Core Audio (CAF) file (not supported)"),
    (0, b"wvpk", "a WavPack file (not supported)"),
    (0, b"MAC ", "a Monkey's Audio file (not supported)"),
)


def _hex_prefix(data: bytes, n: int = 8) -> str:
    return " ".join(f"{b:02X}" for b in data[:n])


def _looks_like_text(data: bytes) -> str | None:
    """Return a short quoted preview if the start of *data* is readable text."""
    head = data[:64]
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        # A multi-byte character cut at byte 64 is still text.
        try:
            text = head[:-3].decode("utf-8") if len(head) > 3 else ""
        except UnicodeDecodeError:
            return None
    if not text or any(not (ch.isprintable() or ch in "\r\n\t") for ch in text):
        return None
    preview = text[:24].replace("\r", " ").replace("\n", " ")
    return f"text ({preview!r}{'...' if len(text) > 24 else ''})"


def _describe_non_audio(data: bytes) -> str:
    what = None
    for magic, description in _NON_AUDIO_SIGNATURES:
        if data.startswith(magic):
            what = description
            break
    if what is None and data[:4] == b"RIFF" and len(data) >= 12:
        what = f"a RIFF container of type {data[8:12]!r}, not WAVE"
    if what is None:
        what = _looks_like_text(data)
    head = f"first bytes {_hex_prefix(data)}"
    if what:
        return f"not a recognised audio file (looks like {what}; {head})"
    return f"not a recognised audio file ({head})"


def _unsupported_audio_kind(data: bytes) -> str | None:
    for offset, magic, description in _UNSUPPORTED_AUDIO_SIGNATURES:
        if data[offset : offset + len(magic)] == magic:
            return description
    return None


def _looks_like_mpeg_audio(data: bytes) -> bool:
    """True when *data* starts like an MP3: an ID3v2 tag or an MPEG frame sync.

    mpg123 resynchronises over garbage, so without this check random binary
    that happens to contain ``FF Fx`` somewhere can "decode" as MP3.
    """
    if data[:3] == b"ID3":
        return True
    if len(data) < 4 or data[0] != 0xFF or (data[1] & 0xE0) != 0xE0:
        return False
    version_bits = (data[1] >> 3) & 0x03
    layer_bits = (data[1] >> 1) & 0x03
    bitrate_index = data[2] >> 4
    sample_rate_index = (data[2] >> 2) & 0x03
    return (
        version_bits != 0b01  # reserved
        and layer_bits != 0b00  # reserved
        and bitrate_index != 0b1111  # "bad"
        and sample_rate_index != 0b11  # reserved
    )


# ---------------------------------------------------------------------------
# Structural truncation checks (header-only: no sample is decoded)
# ---------------------------------------------------------------------------


def _truncated(detail: str) -> AudioRejected:
    return AudioRejected("truncated", detail)


# Writers that stream to a pipe cannot seek back to fill in sizes, so they
# leave a placeholder: 0xFFFFFFFF (ffmpeg, sox), 0x7FFFF000 (espeak-ng) or
# similar values near 2 GiB in both the RIFF and the data size.  Such a file
# is read up to its end; its truncation cannot be detected.
_STREAMING_SIZES = frozenset({0xFFFFFFFF})
_STREAMING_PLACEHOLDER_MIN = 0x7FFFF000


def _check_riff_wave(data: bytes) -> None:
    """Walk RIFF/WAVE chunk headers; the data chunk must be fully present.

    Layout: ``RIFF <u32 size> WAVE`` then chunks ``<4-byte id> <u32 size>
    <payload, padded to even length>``.  ``RIFX`` is the big-endian variant.
    """
    endian = "<" if data[:4] == b"RIFF" else ">"
    total = len(data)
    if total < 12:
        raise _truncated(
            f"RIFF/WAVE header is cut short: the file has only {total} bytes"
        )
    if data[8:12] != b"WAVE":
        return  # some other RIFF payload (AVI, WEBP...): not ours to judge
    (riff_size,) = struct.unpack(endian + "I", data[4:8])
    pos = 12
    while pos + 8 <= total:
        chunk_id = data[pos : pos + 4]
        (size,) = struct.unpack(endian + "I", data[pos + 4 : pos + 8])
        body = pos + 8
        available = total - body
        if chunk_id == b"data":
            if size in _STREAMING_SIZES or (
                size >= _STREAMING_PLACEHOLDER_MIN and riff_size >= _STREAMING_PLACEHOLDER_MIN
            ):
                return  # "length unknown": written to a pipe, e.g. espeak-ng --stdout
            if size > available:
                raise _truncated(
                    f"WAV data chunk declares {size} bytes but only {available} "
                    f"are present ({_percent(available, size)} of the audio); "
                    "the file was cut short"
                )
            return
        if size > available:
            name = chunk_id.decode("latin-1")
            raise _truncated(
                f"WAV {name!r} chunk declares {size} bytes but only {available} "
                "are present; the file was cut short before the audio data"
            )
        pos = body + size + (size & 1)
    # Ran out of chunk headers without meeting the data chunk.
    if riff_size + 8 > total:
        raise _truncated(
            f"WAV file ends before its data chunk (header declares "
            f"{riff_size + 8} bytes, {total} present)"
        )
    raise AudioRejected("not_audio", "RIFF/WAVE file has no data chunk")


def _check_flac(data: bytes) -> None:
    """Walk FLAC metadata blocks (``fLaC`` then 4-byte block headers)."""
    total = len(data)
    pos = 4
    for _ in range(10_000):  # bound the walk; real files have a handful
        if pos + 4 > total:
            raise _truncated(
                f"FLAC metadata is cut short at byte {pos} of {total}; "
                "the file was cut before the audio frames"
            )
        header = data[pos]
        length = int.from_bytes(data[pos + 1 : pos + 4], "big")
        if pos + 4 + length > total:
            raise _truncated(
                f"FLAC metadata block declares {length} bytes but only "
                f"{total - pos - 4} are present"
            )
        pos += 4 + length
        if header & 0x80:  # last-metadata-block flag
            break
    if pos >= total:
        raise _truncated("FLAC file has metadata but no audio frames")


def _check_ogg(data: bytes) -> None:
    """Walk Ogg pages; every logical stream must reach its end-of-stream page.

    Page layout: ``OggS``, version, header_type (bit 0x04 = end of stream),
    granule (8), serial (4), sequence (4), CRC (4), n_segments (1), then the
    segment table whose byte values sum to the payload length.
    """
    total = len(data)
    pos = 0
    open_streams: set[int] = set()
    while pos < total:
        if total - pos < 27:
            raise _truncated(f"last Ogg page header is cut short at byte {pos}")
        if data[pos : pos + 4] != b"OggS":
            return  # not at a page boundary: let the decoder judge the damage
        header_type = data[pos + 5]
        (serial,) = struct.unpack("<I", data[pos + 14 : pos + 18])
        n_segments = data[pos + 26]
        table_end = pos + 27 + n_segments
        if table_end > total:
            raise _truncated(f"last Ogg page header is cut short at byte {pos}")
        page_end = table_end + sum(data[pos + 27 : table_end])
        if page_end > total:
            raise _truncated(
                f"Ogg page at byte {pos} declares {page_end - table_end} bytes "
                f"but only {total - table_end} are present; the file was cut short"
            )
        if header_type & 0x02:  # beginning of stream
            open_streams.add(serial)
        if header_type & 0x04:  # end of stream
            open_streams.discard(serial)
        pos = page_end
    if open_streams:
        raise _truncated(
            "Ogg stream ends without its end-of-stream page; the file was cut short"
        )


def _percent(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.0f}%" if whole else "0%"


def _check_structure(data: bytes) -> None:
    magic = data[:4]
    if magic in (b"RIFF", b"RIFX"):
        _check_riff_wave(data)
    elif magic == b"fLaC":
        _check_flac(data)
    elif magic == b"OggS":
        _check_ogg(data)


# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------


def probe_audio(
    data: bytes, allowed_containers: Iterable[str] = DEFAULT_ALLOWED_CONTAINERS
) -> AudioHeader:
    """Read only the header of *data*: container, encoding, rate, channels, length.

    Raises :class:`AudioRejected` (``empty_file``, ``not_audio``,
    ``truncated``, ``unsupported_format``).  No sample is decoded, so this is
    cheap even for hours of audio.
    """
    if len(data) == 0:
        raise AudioRejected("empty_file", "file is empty (0 bytes)")
    data = bytes(data)
    _check_structure(data)
    try:
        info = soundfile.info(io.BytesIO(data))
    except Exception as exc:  # libsndfile reports everything as errors
        kind = _unsupported_audio_kind(data)
        if kind is not None:
            raise AudioRejected("unsupported_format", f"file is {kind}") from None
        detail = _describe_non_audio(data)
        if data[:4] in (b"RIFF", b"RIFX", b"fLaC", b"OggS"):
            detail = (
                f"{data[:4].decode('latin-1')} header present but the file could "
                f"not be decoded ({_short_error(exc)}; first bytes {_hex_prefix(data)})"
            )
        raise AudioRejected("not_audio", detail) from None

    container = _CONTAINER_ALIASES.get(info.format, info.format)
    subtype = str(info.subtype)
    if container == "MP3" and not _looks_like_mpeg_audio(data):
        # mpg123 skipped leading garbage to find something frame-shaped.
        raise AudioRejected("not_audio", _describe_non_audio(data))

    allowed = {c.upper() for c in allowed_containers}
    if container not in allowed:
        raise AudioRejected(
            "unsupported_format",
            f"container {container} is not accepted (accepted: {', '.join(sorted(allowed))})",
        )
    subtypes = ALLOWED_SUBTYPES.get(container)
    if subtypes is not None and subtype not in subtypes:
        raise AudioRejected(
            "unsupported_format",
            f"{container} with {subtype} encoding is not accepted "
            f"(accepted: {', '.join(sorted(subtypes))})",
        )
    sample_rate, channels, frames = int(info.samplerate), int(info.channels), int(info.frames)
    if sample_rate <= 0 or channels <= 0 or frames < 0:
        raise AudioRejected(
            "not_audio",
            f"implausible header: {sample_rate} Hz, {channels} channels, {frames} frames",
        )
    return AudioHeader(container, subtype, sample_rate, channels, frames)


def decode_audio(
    data: bytes,
    allowed_containers: Iterable[str] = DEFAULT_ALLOWED_CONTAINERS,
    *,
    header: AudioHeader | None = None,
) -> DecodedAudio:
    """Decode *data* fully into ``float32`` samples shaped ``[channels, frames]``.

    *header* may be passed when :func:`probe_audio` was already called on the
    same bytes, to skip probing twice.  Raises only :class:`AudioRejected`.
    """
    if header is None:
        header = probe_audio(data, allowed_containers)
    try:
        frames_by_channel, sample_rate = soundfile.read(
            io.BytesIO(bytes(data)), dtype="float32", always_2d=True
        )
    except Exception as exc:
        raise _truncated(
            f"{header.container} header is valid but decoding failed "
            f"({_short_error(exc)}); the file is cut short or corrupt"
        ) from None

    frames = int(frames_by_channel.shape[0])
    # MP3 headers only estimate the length, so a short read is normal there.
    if header.container != "MP3" and frames < header.frames:
        raise _truncated(
            f"{header.container} header declares {header.frames} frames but only "
            f"{frames} could be decoded ({_percent(frames, header.frames)}); "
            "the file was cut short"
        )
    samples = np.ascontiguousarray(frames_by_channel.T, dtype=np.float32)
    channels = int(samples.shape[0])
    sample_rate = int(sample_rate)
    return DecodedAudio(
        samples=samples,
        sample_rate=sample_rate,
        channels=channels,
        frames=frames,
        duration_s=frames / sample_rate,
        container=header.container,
        subtype=header.subtype,
    )


def encode_wav_pcm16(samples: np.ndarray, sample_rate: int) -> bytes:
    """Encode mono float samples as a canonical 16-bit PCM RIFF/WAVE file.

    Deterministic: the same samples and rate always give the same bytes (a
    44-byte header with only ``fmt `` and ``data`` chunks, no timestamps or
    tags).  Samples are clipped to [-1, 1], scaled by 32767 and rounded half
    to even; NaN becomes 0.
    """
    mono = np.asarray(samples, dtype=np.float64)
    if mono.ndim == 2 and mono.shape[0] == 1:
        mono = mono[0]
    if mono.ndim != 1:
        raise ValueError(f"expected mono samples shaped [frames], got {mono.shape}")
    sample_rate = int(sample_rate)
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    mono = np.nan_to_num(mono, nan=0.0, posinf=1.0, neginf=-1.0)
    pcm = np.rint(np.clip(mono, -1.0, 1.0) * 32767.0).astype("<i2")
    payload = pcm.tobytes()
    block_align = 2  # 1 channel x 2 bytes
    header = struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + len(payload),
        b"WAVE",
        b"fmt ",
        16,  # fmt chunk size
        1,  # WAVE_FORMAT_PCM
        1,  # channels
        sample_rate,
        sample_rate * block_align,  # byte rate
        block_align,
        16,  # bits per sample
        b"data",
        len(payload),
    )
    return header + payload


def _short_error(exc: BaseException) -> str:
    """libsndfile messages embed the BytesIO repr; keep only the useful part."""
    message = str(exc).strip() or type(exc).__name__
    if "BytesIO" in message and ":" in message:
        message = message.rsplit(":", 1)[1].strip()
    message = message.rstrip(".")
    return message[:200]


_CANONICAL_HEADER = struct.Struct("<4sI4s4sIHHIIHH4sI")


def read_canonical_wav(data: bytes) -> tuple[np.ndarray, int] | None:
    """Fast path for the files `encode_wav_pcm16` writes (what the store holds after intake): parse the fixed
    44-byte header and view the samples directly. Returns None for anything else; callers then use soundfile."""
    if len(data) < 44:
        return None
    riff, riff_size, wave, fmt, fmt_size, audio_format, channels, rate, byte_rate, align, bits, data_id, size = (
        _CANONICAL_HEADER.unpack_from(data)
    )
    if (
        (riff, wave, fmt, data_id) != (b"RIFF", b"WAVE", b"fmt ", b"data")
        or (fmt_size, audio_format, channels, align, bits) != (16, 1, 1, 2, 16)
        or size != len(data) - 44
        or riff_size != 36 + size
    ):
        return None
    samples = np.frombuffer(data, dtype="<i2", offset=44).astype(np.float32) / 32768.0
    return samples, int(rate)
