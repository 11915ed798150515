"""One contract suite over every model backend (`model.backend`), as the store adapters have theirs.

Each backend trains a few steps on real recordings (Debian's pocketsphinx-testdata, installed by the set-up
script), and must then keep the port's promises: deterministic training, its own artifact format, a card, a
recognizer whose transcripts are in the platform's alphabet, and evaluation outputs equal to what it serves.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from speech_assets.model.backend import (
    BACKEND_NAMES,
    Recognizer,
    Sample,
    Transcript,
    UnknownBackend,
    backend_name_of,
    backend_named,
    backend_of,
)

DATA = Path("/usr/share/pocketsphinx/test/data")
ALPHABET = set("abcdefghijklmnopqrstuvwxyz' ")

# a few steps on a tiny model: the contract, not accuracy
TINY = {
    "ctc": {"epochs": 1, "max_steps": 2, "batch_size": 2, "hidden": 32, "conv_channels": 16, "layers": 1,
            "lm_order": 0, "max_minutes": 5.0},
    "whisper": {"base_model": "tiny.en", "max_steps": 2, "batch_size": 2, "dev_utterances": 2},
}

pytestmark = pytest.mark.skipif(not (DATA / "cards").is_dir(),
                                reason="needs Debian's pocketsphinx-testdata (scripts/setup.sh installs it)")


def _recordings() -> list[tuple[str, np.ndarray, str]]:
    import soundfile as sf

    texts = {}
    for line in (DATA / "cards" / "cards.transcription").read_text().splitlines():
        body, utt = line.rsplit("(", 1)
        texts[utt.strip(") ")] = " ".join(body.replace("<s>", "").replace("</s>", "").split())
    out = []
    for utt, text in sorted(texts.items()):
        wave, rate = sf.read(DATA / "cards" / f"{utt}.wav", dtype="float32")
        assert rate == 16000
        out.append((f"cards-{utt}", wave, text))
    return out


@pytest.fixture(scope="module")
def recordings():
    return _recordings()


@pytest.fixture(scope="module")
def samples(recordings):
    from speech_assets.features.logmel import FeatureConfig, LogMelExtractor, to_storage_dtype

    extract = LogMelExtractor(FeatureConfig())
    feats = extract([w for _, w, _ in recordings])
    return [Sample(utt, text, features=to_storage_dtype(f).astype(np.float32), waveform=lambda w=w: w,
                   duration_s=len(w) / 16000) for (utt, w, text), f in zip(recordings, feats)]


@pytest.fixture(scope="module", params=BACKEND_NAMES)
def trained(request, samples):
    backend = backend_named(request.param)
    outcome = backend.train(samples[:4], samples[4:], TINY[request.param], seed=3, extra={"note": "contract"})
    return backend, outcome


def test_names_resolve_and_unknown_ones_are_refused():
    assert [backend_named(n).name for n in BACKEND_NAMES] == list(BACKEND_NAMES)
    with pytest.raises(UnknownBackend, match="known: ctc, whisper"):
        backend_named("wav2vec2")
    with pytest.raises(UnknownBackend, match="no backend recognises"):
        backend_of(b"not a checkpoint at all" * 20)


def test_training_is_deterministic_and_names_its_weights(trained, samples):
    backend, outcome = trained
    again = backend.train(samples[:4], samples[4:], TINY[backend.name], seed=3, extra={"note": "contract"})
    assert again.digest == outcome.digest and len(outcome.digest) == 64
    assert outcome.steps == 2 and len(outcome.loss_curve) >= 1 and all(np.isfinite(outcome.loss_curve))
    assert outcome.n_train == 4 and outcome.stopped_reason in ("completed", "early_stopping", "time_budget")


def test_the_checkpoint_records_its_backend(trained):
    backend, outcome = trained
    assert backend.owns(outcome.checkpoint)
    assert backend_name_of(outcome.checkpoint) == backend.name and backend_of(outcome.checkpoint) is backend
    others = [backend_named(n) for n in BACKEND_NAMES if n != backend.name]
    assert not any(o.owns(outcome.checkpoint) for o in others)


def test_the_card_describes_the_model(trained):
    backend, outcome = trained
    card = backend.describe(outcome.checkpoint)
    assert card == outcome.card
    assert card.family == backend.name and card.format.startswith(f"speech_assets.{backend.name}/")
    assert card.parameters > 1000 and card.tokenizer and len(card.vocabulary_hash) == 16
    assert card.to_dict()["family"] == backend.name


def test_unknown_config_keys_are_refused(samples):
    for name in BACKEND_NAMES:
        with pytest.raises(ValueError, match="unknown"):
            backend_named(name).train(samples[:2], [], {**TINY[name], "learning_rat": 1.0}, seed=0)
        assert set(TINY[name]) <= set(backend_named(name).default_config())


def test_the_recognizer_serves_transcripts_in_the_platform_alphabet(trained, recordings):
    backend, outcome = trained
    recognizer = backend.load(outcome.checkpoint)
    assert isinstance(recognizer, Recognizer) and recognizer.card.family == backend.name
    waves = [w for _, w, _ in recordings]
    out = recognizer.transcribe_batch(waves)
    assert len(out) == len(waves) and all(isinstance(t, Transcript) for t in out)
    for t, w in zip(out, waves):
        assert set(t.text) <= ALPHABET and t.text == " ".join(t.text.split())
        assert 0.0 <= t.confidence <= 1.0
        for word, start, end, conf in t.words:
            assert word and 0.0 <= start <= end <= len(w) / 16000 + 0.5 and 0.0 <= conf <= 1.0
    assert recognizer.transcribe(waves[0]).text == out[0].text  # one at a time = in a batch


def test_evaluation_outputs_are_what_the_service_answers(trained, samples, recordings):
    backend, outcome = trained
    outputs = backend.outputs(outcome.checkpoint, samples)
    served = backend.load(outcome.checkpoint).transcribe_batch([w for _, w, _ in recordings])
    assert outputs.texts() == [t.text for t in served]
    c1 = outputs.confidences(1.0)
    assert c1.shape == (len(samples),) and np.all((c1 >= 0) & (c1 <= 1))
    np.testing.assert_allclose(c1, [t.confidence for t in served], atol=1e-4)
    hot = outputs.confidences(3.0)
    assert hot.shape == c1.shape and not np.allclose(hot, c1)  # a temperature rescales, it is not ignored


def test_warm_start_from_its_own_checkpoint(trained, samples):
    backend, outcome = trained
    warm = backend.train(samples[:4], samples[4:], {**TINY[backend.name], "warm_start": True}
                         if backend.name == "ctc" else TINY[backend.name], seed=3, init=outcome.checkpoint)
    assert backend.owns(warm.checkpoint) and warm.digest != outcome.digest
