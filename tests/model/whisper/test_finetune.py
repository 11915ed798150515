"""Whisper fine-tuning: the config, which samples train, the teacher-forcing layout, and short real runs on
tiny.en (frozen encoder and full), each a few steps on the pocketsphinx recordings."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import soundfile as sf

from speech_assets.model.contract import Sample
from speech_assets.model.whisper.finetune import (
    MAX_TEXT_TOKENS,
    WhisperTrainConfig,
    _teacher_forcing,
    finetune,
    select_utterances,
)
from tests.model.whisper.conftest import POCKETSPHINX_DATA, THREADS


def _transcripts() -> dict[str, str]:
    out = {}
    for path in (POCKETSPHINX_DATA / "cards" / "cards.transcription", POCKETSPHINX_DATA / "librivox" / "transcription"):
        for line in path.read_text().splitlines():
            body, utt = line.rsplit("(", 1)
            out[utt.strip(") ")] = " ".join(body.replace("<s>", "").replace("</s>", "").split())
    return out


def make_samples(paths) -> list[Sample]:
    texts = _transcripts()
    out = []
    for p in paths:
        pcm, rate = sf.read(p, dtype="int16")
        wave = pcm.astype(np.float32) / 32768.0
        out.append(Sample(p.stem, texts[p.stem], waveform=lambda w=wave: w, duration_s=len(wave) / rate))
    return out


@pytest.fixture(scope="module")
def samples(clips) -> list[Sample]:
    return make_samples(clips)


@pytest.fixture(scope="module")
def base_model(tiny_dir):
    import torch

    torch.set_num_threads(THREADS)
    from speech_assets.model.whisper.convert import ct2_to_hf

    return ct2_to_hf(tiny_dir)


@pytest.fixture(scope="module")
def tokenizer(tiny_dir):
    from speech_assets.model.whisper.convert import load_tokenizer

    return load_tokenizer(tiny_dir)


def _run(base_model, tiny_dir, tmp_path, train, **config):
    events = []
    cfg = WhisperTrainConfig.from_dict({"batch_size": 2, "dev_utterances": 0, **config})
    result = finetune(copy.deepcopy(base_model), tiny_dir, train, [], cfg, seed=0, out_dir=tmp_path / "ct2",
                      base_model="tiny.en", progress=events.append)
    return result, events


def test_config_round_trips_and_refuses_unknown_or_bad_values():
    cfg = WhisperTrainConfig()
    assert (cfg.base_model, cfg.batch_size, cfg.full_finetune, cfg.quantization) == ("tiny.en", 8, False, "int8")
    assert WhisperTrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown.*learning_rate"):
        WhisperTrainConfig.from_dict({"learning_rate": 1e-4})
    for bad in ({"max_steps": 0}, {"batch_size": 1.5}, {"lr": 0.0}, {"max_minutes": -1}, {"max_train_utterances": 0}):
        with pytest.raises(ValueError):
            WhisperTrainConfig.from_dict(bad)


def test_samples_that_cannot_train_are_skipped_and_counted(tokenizer):
    wave = lambda: np.zeros(16000, np.float32)  # noqa: E731
    samples = [
        Sample("ok", "ten of clubs", waveform=wave, duration_s=1.0),
        Sample("empty", "  ", waveform=wave, duration_s=1.0),
        Sample("mute", "five five", duration_s=1.0),
        Sample("long_audio", "five five", waveform=wave, duration_s=31.0),
        Sample("long_text", " ".join(["dashwood"] * MAX_TEXT_TOKENS), waveform=wave, duration_s=1.0),
    ]
    kept, skipped = select_utterances(samples, tokenizer, cap=None)
    assert [u.utt_id for u in kept] == ["ok"]
    assert kept[0].tokens == tokenizer.encode(" ten of clubs", add_special_tokens=False).ids
    assert dict(skipped) == {"empty_text": 1, "no_audio": 1, "audio_too_long": 1, "text_too_long": 1}


def test_the_cap_picks_the_same_utterances_whatever_the_order(tokenizer):
    samples = [Sample(f"u{i:02d}", "seven of clubs", waveform=lambda: None, duration_s=1.0) for i in range(20)]
    first, _ = select_utterances(samples, tokenizer, cap=5)
    again, _ = select_utterances(samples[::-1], tokenizer, cap=5)
    assert len(first) == 5 and [u.utt_id for u in first] == [u.utt_id for u in again]


def test_teacher_forcing_scores_the_text_and_end_of_text_only():
    prompt, eot = [50257, 50362], 50256
    inputs, labels = _teacher_forcing(prompt, [[1, 2, 3], [7]], eot)
    assert inputs.tolist() == [[50257, 50362, 1, 2, 3], [50257, 50362, 7, eot, eot]]
    assert labels.tolist() == [[-100, 1, 2, 3, eot], [-100, 7, eot, -100, -100]]


def test_the_training_prompt_is_the_serving_prompt(tiny_dir, tokenizer):
    from faster_whisper.tokenizer import Tokenizer

    from speech_assets.model.whisper.convert import special_token_ids
    from speech_assets.model.whisper.recognizer import decoder_prompt

    ids = special_token_ids(tokenizer)
    served = decoder_prompt(Tokenizer(tokenizer, False, task="transcribe", language="en"))
    assert served == [ids["sot"], ids["notimestamps"]]


def test_frozen_encoder_overfits_two_utterances(base_model, tiny_dir, tmp_path, samples):
    """8 steps on the same 2 librivox utterances (each step sees both): the loss must come down."""
    two = [s for s in samples if s.utt_id.startswith("sense")][:2]
    result, events = _run(base_model, tiny_dir, tmp_path, two, max_steps=8, warmup_steps=1, lr=1e-4)
    curve = result.loss_curve
    print(f"\noverfit loss curve (2 utterances, 8 steps): {[round(x, 3) for x in curve]}")
    assert len(curve) == 8 and all(math.isfinite(x) for x in curve)
    assert np.mean(curve[-2:]) < 0.5 * np.mean(curve[:2])
    assert result.stopped_reason == "completed" and result.n_train == 2 and result.dev_wer is None
    assert (result.ct2_dir / "model.bin").is_file() and len(result.digest) == 64
    assert result.summary["recipe"].startswith("frozen encoder")
    assert result.summary["trainable_parameters"] < result.parameters  # the encoder stayed out
    stages = [e.get("stage") for e in events if e["event"] == "stage"]
    assert stages[0] == "encoding" and "export" in stages
    assert any("encoding: 2/2 utterances" in (e.get("message") or "") for e in events)
    steps = [e for e in events if e["event"] == "step"]
    assert steps[-1]["step"] == 8 and "loss" in steps[-1]["message"] and steps[0]["eta_s"] is not None


def test_full_finetune_trains_the_encoder_too(base_model, tiny_dir, tmp_path, samples):
    import torch

    model = copy.deepcopy(base_model)
    before = model.model.encoder.conv1.weight.detach().clone()
    cfg = WhisperTrainConfig(max_steps=1, batch_size=2, full_finetune=True, dev_utterances=0, lr=1e-4, warmup_steps=0)
    result = finetune(model, tiny_dir, samples[:2], [], cfg, seed=0, out_dir=tmp_path / "ct2", base_model=None)
    assert result.steps == 1 and math.isfinite(result.loss_curve[0])
    assert result.summary["trainable_parameters"] == result.parameters
    assert not torch.equal(before, model.model.encoder.conv1.weight)
    assert torch.get_num_threads() == THREADS  # the run's thread setting is put back


def test_a_callback_or_the_time_budget_stops_the_run(base_model, tiny_dir, tmp_path, samples):
    stop = lambda e: e["event"] == "step"  # noqa: E731
    cfg = WhisperTrainConfig(max_steps=5, batch_size=2, dev_utterances=0)
    result = finetune(copy.deepcopy(base_model), tiny_dir, samples[:2], [], cfg, seed=0, out_dir=tmp_path / "a",
                      base_model=None, progress=stop)
    assert result.stopped_reason == "callback" and result.steps == 1
    result, _ = _run(base_model, tiny_dir, tmp_path / "b", samples[:2], max_steps=5, max_minutes=1e-4)
    assert result.stopped_reason == "time_budget" and result.steps == 1


def test_the_encoder_runs_a_fitted_context_as_ctranslate2_does(base_model, tiny_dir, samples):
    """`encoder_states` is Hugging Face's encoder at 3000 frames, and at a shorter input CTranslate2's (the
    positions cut to the input): both engines must read a fitted context alike, or training would not see what
    serving sees."""
    import ctranslate2
    import torch
    from faster_whisper.feature_extractor import FeatureExtractor

    from speech_assets.model.whisper.finetune import encoder_states
    from speech_assets.model.whisper.recognizer import window_features

    extractor = FeatureExtractor(feature_size=80)
    wave = samples[0].waveform()
    full, _ = window_features(extractor, wave)
    short, frames = window_features(extractor, wave, 2.0)
    assert full.shape[-1] == 3000 and short.shape[-1] < 3000 and short.shape[-1] >= frames
    encoder = base_model.model.encoder
    with torch.no_grad():
        assert torch.equal(encoder_states(encoder, torch.from_numpy(full)[None]),
                           encoder(input_features=torch.from_numpy(full)[None]).last_hidden_state)
        ours = encoder_states(encoder, torch.from_numpy(short)[None]).numpy()
    engine = ctranslate2.models.Whisper(str(tiny_dir), device="cpu", compute_type="float32", intra_threads=THREADS)
    theirs = np.asarray(engine.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(short[None]))))
    assert ours.shape == theirs.shape == (1, short.shape[-1] // 2, 384)
    assert np.abs(ours - theirs).max() < 1e-2 * np.abs(theirs).max()


def test_a_fitted_context_trains_in_length_groups_and_is_served_that_way(base_model, tiny_dir, tmp_path, samples):
    """Utterances of different lengths train in batches of one length each; the card says the context, and the
    served recognizer reads it from there (a pretrained checkpoint keeps Whisper's window)."""
    from speech_assets.model.whisper.backend import WhisperBackend
    from speech_assets.model.whisper.finetune import _batches

    lengths = [200, 400, 200, 600, 400, 200]
    rng = np.random.default_rng(0)
    gen = _batches(lengths, 2, rng)
    seen = [next(gen) for _ in range(8)]
    assert all(len({lengths[i] for i in b}) == 1 for b in seen)
    assert sorted(i for b in seen[:4] for i in b) == list(range(6))  # one pass covers every utterance once
    assert [next(_batches([3000] * 5, 2, np.random.default_rng(1))) for _ in range(1)][0] == \
        [int(i) for i in np.random.default_rng(1).permutation(5)[:2]]  # one length: the permutation in order

    mixed = [samples[0], samples[5], samples[1], samples[6]]  # short cards and longer librivox clips
    backend = WhisperBackend()
    outcome = backend.train(mixed, [], {"max_steps": 3, "batch_size": 2, "warmup_steps": 1, "dev_utterances": 0,
                                        "num_threads": THREADS, "audio_context_s": 2.0}, seed=0)
    assert outcome.steps == 3 and all(math.isfinite(x) for x in outcome.loss_curve)
    assert "audio context fitted to the clip (2 s steps)" in outcome.summary["recipe"]
    assert backend.describe(outcome.checkpoint).extra["audio_context_s"] == 2.0
    assert backend.load(outcome.checkpoint, cpu_threads=THREADS).audio_context_s == 2.0
    assert "audio_context_s" not in backend.describe(backend.pretrained_checkpoint("tiny.en")).extra
    with pytest.raises(ValueError, match="audio_context_s"):
        WhisperTrainConfig(audio_context_s=0.0)
