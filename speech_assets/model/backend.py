"""The model-backend port: which backend reads a checkpoint, and one way to get a recognizer from it.

    backend = backend_named("whisper")                      # or backend_of(checkpoint) for a saved one
    recognizer = load_recognizer(checkpoint, temperature=1.1)

The types of the port (`Backend`, `Recognizer`, `Transcript`, `Sample`, `ModelCard`, `TrainOutcome`) and the
contract every backend keeps are in `model.contract` (re-exported here); this module only dispatches, so the
backends import the contract and never this module (no import circle).
"""

from __future__ import annotations

from collections.abc import Sequence

from speech_assets.model.contract import (  # noqa: F401  (the port's types, re-exported)
    Backend,
    ModelCard,
    ModelOutputs,
    Progress,
    Recognizer,
    Sample,
    TrainOutcome,
    Transcript,
    checkpoint_sha256,
)


class UnknownBackend(ValueError):
    """No backend by that name, or no backend recognises the checkpoint's bytes."""


BACKEND_NAMES = ("ctc", "whisper")
_LOADED: dict[str, Backend] = {}


def backend_named(name: str) -> Backend:
    """The backend called `name`, imported when first asked: using CTC never imports Whisper's stack."""
    if name not in BACKEND_NAMES:
        raise UnknownBackend(f"no model backend {name!r}; known: {', '.join(BACKEND_NAMES)}")
    if name not in _LOADED:
        if name == "ctc":
            from speech_assets.model.ctc_backend import CTCBackend

            _LOADED[name] = CTCBackend()
        else:
            from speech_assets.model.whisper.backend import WhisperBackend

            _LOADED[name] = WhisperBackend()
    return _LOADED[name]


def backend_name_of(checkpoint: bytes) -> str:
    """Which backend wrote `checkpoint`, from its first bytes (no backend is imported): a CTC checkpoint is a
    torch zip archive, a Whisper one an uncompressed tar (`model.whisper.artifact`)."""
    if checkpoint[:4] == b"PK\x03\x04":
        return "ctc"
    if len(checkpoint) > 262 and checkpoint[257:262] == b"ustar":
        return "whisper"
    raise UnknownBackend(
        f"no backend recognises this checkpoint ({len(checkpoint)} bytes, starts {checkpoint[:8]!r}); "
        f"known: {', '.join(BACKEND_NAMES)}"
    )


def backend_of(checkpoint: bytes) -> Backend:
    """The backend that wrote `checkpoint`; it confirms the bytes are its own format."""
    backend = backend_named(backend_name_of(checkpoint))
    if not backend.owns(checkpoint):
        raise UnknownBackend(f"the {backend.name} backend does not recognise this checkpoint")
    return backend


def load_recognizer(checkpoint: bytes, temperature: float = 1.0) -> Recognizer:
    return backend_of(checkpoint).load(checkpoint, temperature=temperature)


def transcribe_samples(recognizer: Recognizer, samples: Sequence[Sample]) -> list[Transcript]:
    """Transcripts of samples with what the recognizer reads: CTC the stored log-mel features (no audio read),
    every other backend the audio."""
    if hasattr(recognizer, "transcribe_features"):  # the CTC transcriber
        return recognizer.transcribe_features([s.features for s in samples])  # type: ignore[attr-defined]
    missing = [s.utt_id for s in samples if s.waveform is None]
    if missing:
        raise ValueError(f"{recognizer.card.family} reads audio; {len(missing)} samples have none (first {missing[0]})")
    return recognizer.transcribe_batch([s.waveform() for s in samples])  # type: ignore[misc]
