"""An HTTP upload -> a 16 kHz mono waveform the model can hear, or a client error that says why.

The service answers every bad upload with a 4xx and a sentence (never a 500): the intake's validator
(speech_assets.audio.validate) does the decoding, with a serving policy — stereo is downmixed (a caller
cannot always choose), any rate from 8 to 96 kHz is resampled, clipping is allowed (we transcribe what
we get), and the size and duration limits come from the service's configuration.
"""

from __future__ import annotations

from dataclasses import dataclass

from speech_assets.audio.decode import AudioRejected
from speech_assets.audio.validate import ValidatedAudio, ValidationPolicy, validate_audio

# reason code -> HTTP status: 413 for "too big", 415 for "a format we do not take", 400 for the rest
_STATUS = {
    "too_long": 413,
    "unsupported_format": 415,
    "sample_rate_too_high": 415,
    "sample_rate_too_low": 415,
}


@dataclass
class UploadError(Exception):
    status: int
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message}"

    def to_dict(self) -> dict:
        return {"error": self.code, "message": self.message}


def serving_policy(max_duration_s: float) -> ValidationPolicy:
    return ValidationPolicy(
        min_duration_s=0.05, max_duration_s=max_duration_s, require_mono=False, downmix=True,
        max_clipped_fraction=1.0, allowed_containers=("WAV", "FLAC", "OGG", "MP3"),
    )


def read_upload(data: bytes | None, *, max_bytes: int, max_duration_s: float) -> ValidatedAudio:
    if data is None or len(data) == 0:
        raise UploadError(400, "empty_file", "the upload is empty: send an audio file in the 'audio' form field")
    if len(data) > max_bytes:
        raise UploadError(413, "too_large", f"the upload is {len(data):,} bytes; the limit is {max_bytes:,}")
    try:
        return validate_audio(data, serving_policy(max_duration_s))
    except AudioRejected as exc:
        raise UploadError(_STATUS.get(exc.reason, 400), exc.reason, exc.detail) from None
