"""The model-backend port's types: what the loop needs from a model family, and nothing else.

    backend = backend_named("whisper")                      # or backend_of(checkpoint) for a saved one
    outcome = backend.train(train, dev, {"max_steps": 60}, seed=0, init=champion_blob, progress=log_progress)
    recognizer = backend.load(outcome.checkpoint, temperature=1.1)
    recognizer.transcribe_batch([wave1, wave2])             # -> [Transcript(text, confidence, words), ...]
    backend.describe(outcome.checkpoint)                    # -> ModelCard(family, parameters, base model, ...)

Training, evaluation, the registry, `asr_bento` and the BentoML service use a model only through this port.
A checkpoint is opaque bytes that record their own backend (`backend_of` tells which), so the service loads the
right one and a canary can route a CTC champion against a Whisper challenger.

Contract every backend keeps (tests/model/test_backend_contract.py runs one suite over all of them):
- `train` is deterministic for the same samples, config, seed, init and thread count (same `digest`);
  `config` holds only plain values and unknown keys are an error; `init` (a checkpoint of this backend) warm-starts.
- `digest` names the trained weights; `checkpoint_sha256(outcome.checkpoint)` names the artifact's bytes.
- `load(...).transcribe_batch` takes float32 mono 16 kHz waveforms in [-1, 1] and returns one `Transcript` per
  input, in order: normalised text (lower-case words, `text.normalize`'s alphabet), a confidence in [0, 1]
  (calibrated by `temperature`: the evaluation fits it on dev), and word timings.
- `outputs(checkpoint, samples)` runs the model once over samples and gives what evaluation needs: hypotheses
  and their confidences at any temperature, so calibration fitting costs no extra forward passes.
- `describe` reads the card without loading the weights for inference.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass
class Transcript:
    text: str
    confidence: float  # probability the transcript is right, after the recognizer's temperature
    words: list[tuple[str, float, float, float]] = field(default_factory=list)  # (word, start_s, end_s, conf)
    duration_s: float = 0.0


@dataclass(frozen=True)
class Sample:
    """One utterance as a backend sees it. CTC reads `features` (the feature store's log-mel); Whisper reads the
    audio (`waveform()`, loaded on demand: a backend that does not need it never pays for it)."""

    utt_id: str
    text: str  # the normalised reference
    features: np.ndarray | None = None  # float32 [frames, n_mels]
    waveform: Callable[[], np.ndarray] | None = None  # float32 mono 16 kHz
    duration_s: float = 0.0


@dataclass(frozen=True)
class ModelCard:
    """What a checkpoint is, said without loading it for inference."""

    family: str  # the backend's name: "ctc" | "whisper"
    format: str  # the artifact format and its version, e.g. "speech_assets.ctc/1"
    parameters: int
    base_model: str | None  # what it was fine-tuned from ("openai/whisper-tiny.en", a version, ...); None: scratch
    tokenizer: str  # "characters a-z ' space" | "whisper byte-level BPE (51864 tokens)" ...
    vocabulary_hash: str  # changes when the output alphabet does: the registry refuses to mix them silently
    extra: dict = field(default_factory=dict)  # backend-specific, plain values (lineage, decoder, quantization)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrainOutcome:
    checkpoint: bytes
    digest: str  # of the trained weights
    card: ModelCard
    loss_curve: list[float]
    dev_wer_curve: list[tuple[int, float]]  # (step, dev WER)
    model_config: dict
    train_config: dict
    steps: int
    seconds: float
    stopped_reason: str  # "completed" | "early_stopping" | "time_budget"
    n_train: int
    n_skipped: dict[str, int] = field(default_factory=dict)  # reason -> utterances not trained on
    best_dev_wer: float | None = None
    summary: dict = field(default_factory=dict)  # backend-specific figures for the asset's metadata


class ModelOutputs(Protocol):
    """One forward pass of a model over samples, rescored at any temperature without running it again."""

    decoder: str  # how hypotheses were searched ("lexicon", "greedy", "beam search 5", ...)
    forward_seconds: float

    def texts(self) -> list[str]: ...

    def confidences(self, temperature: float) -> np.ndarray: ...


@runtime_checkable
class Recognizer(Protocol):
    card: ModelCard
    temperature: float

    def transcribe_batch(self, waveforms: Sequence[np.ndarray]) -> list[Transcript]: ...

    def transcribe(self, waveform: np.ndarray) -> Transcript: ...


Progress = Callable[[dict], None]  # events: {"event": "step"|"eval"|"stage", "step", "of", "eta_s", "message", ...}


class Backend(Protocol):
    name: str

    def owns(self, checkpoint: bytes) -> bool: ...

    def default_config(self) -> dict: ...

    def train(
        self, train: Sequence[Sample], dev: Sequence[Sample], config: dict, *, seed: int = 0,
        init: bytes | None = None, progress: Progress | None = None, extra: dict | None = None,
    ) -> TrainOutcome: ...  # extra: plain values recorded in the checkpoint (lineage)

    def load(self, checkpoint: bytes, *, temperature: float = 1.0) -> Recognizer: ...

    def outputs(self, checkpoint: bytes, samples: Sequence[Sample], *, progress: Progress | None = None
                ) -> ModelOutputs: ...

    def describe(self, checkpoint: bytes) -> ModelCard: ...


def checkpoint_sha256(checkpoint: bytes) -> str:
    return hashlib.sha256(checkpoint).hexdigest()
