"""Fast tests of the CTC model package: tokenizer, shapes, determinism, warm start, decoding, checkpoints, serving, sweep."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from speech_assets.model.architecture import CTCModel, ModelConfig
from speech_assets.model.decode import beam_search, greedy_decode, viterbi_align
from speech_assets.model.inference import Transcriber, Transcript
from speech_assets.model.sweep import SweepConfig, format_table, sample_trials, sweep
from speech_assets.model.tokenizer import BLANK, VOCAB, VOCAB_SIZE, OutOfVocabulary, decode, encode
from speech_assets.model.train import (
    TrainConfig,
    checkpoint_bytes,
    load_checkpoint,
    state_digest,
    train,
)

TINY = ModelConfig(conv_channels=4, hidden=32, layers=1, dropout=0.1)
WORDS = ["yes", "no", "up", "down", "left", "right", "go", "stop"]


def tiny_data(n: int = 20, seed: int = 0) -> list[tuple[np.ndarray, str]]:
    """Synthetic 'speech': each character is a few frames of its own random spectrum."""
    rng = np.random.default_rng(seed)
    proto = rng.normal(size=(VOCAB_SIZE, 80)).astype(np.float32)
    out = []
    for i in range(n):
        text = " ".join(WORDS[j] for j in rng.integers(0, len(WORDS), size=2))
        frames = [proto[VOCAB.index(ch)] for ch in text for _ in range(6)]
        feats = np.stack([proto[0]] * 8 + frames + [proto[0]] * 8)
        out.append((feats + 0.1 * rng.normal(size=feats.shape).astype(np.float32), text))
    return out


def tiny_cfg(**kw) -> TrainConfig:
    base = dict(seed=0, epochs=1000, max_steps=5, batch_size=4, lr=3e-3, spec_augment=True, max_minutes=None)
    base.update(kw)
    return TrainConfig(**base)


# ------------------------------------------------------------- tokenizer --
def test_tokenizer_round_trip_and_layout():
    text = "don't stop me now"
    ids = encode(text)
    assert decode(ids) == text
    assert VOCAB[BLANK] == "<blank>" and VOCAB[1] == " " and VOCAB[2] == "'" and VOCAB_SIZE == 29
    assert min(ids) >= 1  # nothing encodes to the blank


@pytest.mark.parametrize("bad", ["call <phone> now", "Hello", "room 101", "naïve"])
def test_tokenizer_rejects_out_of_vocabulary(bad):
    with pytest.raises(OutOfVocabulary) as exc:
        encode(bad)
    assert exc.value.chars


def test_training_skips_out_of_vocabulary_transcripts():
    data = tiny_data(8)
    data[3] = (data[3][0], "call <phone> now")
    res = train(data, None, TINY, tiny_cfg(max_steps=1))
    assert res.n_skipped == 1 and res.n_train == 7


# ---------------------------------------------------------- architecture --
@pytest.mark.parametrize(
    "time_stride, expected",
    [
        (4, [51, 40, 3]),  # ceil(ceil(T / 2) / 2)
        (3, [68, 54, 3]),  # ceil(T / 3)
        (2, [102, 80, 5]),  # ceil(T / 2)
    ],
)
def test_output_shapes_and_lengths(time_stride, expected):
    torch.manual_seed(0)
    config = ModelConfig(time_stride=time_stride)
    model = CTCModel(config).eval()
    lengths = torch.tensor([203, 160, 9])
    log_probs, out_lengths = model(torch.randn(3, 203, 80), lengths)
    assert log_probs.shape == (3, expected[0], VOCAB_SIZE)
    assert out_lengths.tolist() == expected
    assert torch.allclose(log_probs.exp().sum(-1), torch.ones(3, expected[0]), atol=1e-5)
    assert config.frame_shift_s == pytest.approx(0.01 * time_stride)


def test_time_stride_must_be_supported():
    with pytest.raises(ValueError, match="time_stride"):
        ModelConfig(time_stride=5)


@pytest.mark.parametrize("time_stride", [2, 3, 4])
def test_outputs_do_not_depend_on_batching(time_stride):
    torch.manual_seed(0)
    model = CTCModel(ModelConfig(**{**TINY.to_dict(), "time_stride": time_stride})).eval()
    x, lengths = torch.randn(2, 50, 80), torch.tensor([50, 23])
    batched, out_lengths = model(x, lengths)
    alone, _ = model(x[1:, :23], lengths[1:])
    assert torch.allclose(batched[1, : out_lengths[1]], alone[0], atol=1e-5)


def test_default_parameter_count_in_range():
    n = CTCModel(ModelConfig()).num_parameters()
    assert 1_000_000 <= n <= 5_000_000
    assert ModelConfig().to_dict() == ModelConfig.from_dict(ModelConfig().to_dict()).to_dict()
    assert list(ModelConfig().to_dict())[:2] == ["n_mels", "sample_rate"]  # stable order


# -------------------------------------------------------------- training --
def test_training_is_deterministic():
    data = tiny_data()
    a = train(data, data[:4], TINY, tiny_cfg())
    b = train(data, data[:4], TINY, tiny_cfg())
    c = train(data, data[:4], TINY, tiny_cfg(seed=1))
    assert a.steps == 5 and a.digest == state_digest(a.state_dict)
    assert a.digest == b.digest and a.loss_curve == b.loss_curve
    assert c.digest != a.digest


def test_training_leaves_global_torch_state_alone():
    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    threads = torch.get_num_threads()
    train(tiny_data(8), None, TINY, tiny_cfg(max_steps=2, num_threads=1))
    assert torch.equal(torch.rand(1), expected)
    assert torch.get_num_threads() == threads and not torch.are_deterministic_algorithms_enabled()


def test_warm_start_starts_lower():
    data = tiny_data()
    pre = train(data, None, TINY, tiny_cfg(epochs=20, max_steps=60, spec_augment=False))
    cold = train(data, None, TINY, tiny_cfg(max_steps=1))
    warm = train(data, None, TINY, tiny_cfg(max_steps=1, warm_start=True), init_state=pre.state_dict)
    ignored = train(data, None, TINY, tiny_cfg(max_steps=1), init_state=pre.state_dict)
    assert warm.warm_started and not ignored.warm_started
    assert warm.loss_curve[0] < 0.8 * cold.loss_curve[0]
    assert ignored.loss_curve[0] == cold.loss_curve[0]


def test_time_budget_stops_cleanly_and_says_so():
    res = train(tiny_data(), tiny_data(4, seed=1), TINY, tiny_cfg(max_steps=50, max_minutes=0.0))
    assert res.stopped_reason == "time_budget" and res.steps == 1
    assert res.dev_wer_curve  # the final evaluation still happens


def test_dev_evaluation_and_early_stopping():
    data = tiny_data()
    res = train(data, data[:4], TINY, tiny_cfg(epochs=10, max_steps=30, eval_every=2, patience=1, lr=1e-9))
    assert res.stopped_reason == "early_stopping" and res.steps < 30
    assert all(0.0 <= w for _, w in res.dev_wer_curve)


# -------------------------------------------------------------- decoding --
def peaked(labels: list[int], p: float = 0.9) -> np.ndarray:
    lp = np.full((len(labels), VOCAB_SIZE), np.log((1 - p) / (VOCAB_SIZE - 1)))
    lp[np.arange(len(labels)), labels] = np.log(p)
    return lp


def frames_for(text: str) -> list[int]:
    ids = encode(text)
    labels = [BLANK, BLANK]
    for prev, cur in zip([None] + ids, ids):
        if prev == cur:
            labels.append(BLANK)
        labels += [cur, cur]
    return labels + [BLANK, BLANK]


def test_greedy_and_beam_agree_on_peaked_posteriors():
    text = "hello world it's all good"
    lp = peaked(frames_for(text))
    g, b = greedy_decode(lp), beam_search(lp, beam_width=8)
    assert g.text == b.text == text
    assert [w.word for w in g.words] == text.split()
    for hyp in (g, b):
        assert 0.0 <= hyp.confidence <= 1.0
        assert all(0.0 <= w.confidence <= 1.0 for w in hyp.words)
        assert all(0.0 <= w.start_s < w.end_s for w in hyp.words)
        assert [w.start_s for w in hyp.words] == sorted(w.start_s for w in hyp.words)
    # beam's Viterbi alignment of a clean path is the path itself
    assert viterbi_align(lp, encode(text)).tolist() == frames_for(text)


def test_beam_beats_greedy_when_probability_is_split_over_alignments():
    # Greedy picks blank at every frame (0.4 > 0.3 each), but "a" has total
    # probability 1 - 0.4^2 = 0.84 summed over its alignments.
    lp = np.full((2, VOCAB_SIZE), np.log(0.3 / (VOCAB_SIZE - 2)))
    lp[:, BLANK] = np.log(0.4)
    lp[:, encode("a")[0]] = np.log(0.3)
    assert greedy_decode(lp).text == ""
    assert beam_search(lp, beam_width=4).text == "a"


def test_temperature_lowers_confidence_of_peaked_posteriors():
    lp = peaked(frames_for("good morning"), p=0.95)
    c1 = greedy_decode(lp, temperature=1.0).confidence
    c2 = greedy_decode(lp, temperature=2.0).confidence
    c05 = greedy_decode(lp, temperature=0.5).confidence
    assert c2 < c1 < c05 <= 1.0
    assert beam_search(lp, temperature=2.0).confidence < beam_search(lp).confidence
    with pytest.raises(ValueError):
        greedy_decode(lp, temperature=0.0)


def test_empty_hypothesis_has_a_confidence():
    hyp = greedy_decode(peaked([BLANK] * 10))
    assert hyp.text == "" and hyp.words == [] and 0.0 < hyp.confidence <= 1.0


# ----------------------------------------------------- checkpoint/serving --
def test_checkpoint_round_trip():
    torch.manual_seed(0)
    model = CTCModel(TINY).eval()
    blob = checkpoint_bytes(model.state_dict(), TINY, {"run": "abc", "wer": 0.1, "curve": [1.0, 0.5]})
    loaded, cfg, extra = load_checkpoint(blob)
    assert cfg == TINY and extra == {"run": "abc", "wer": 0.1, "curve": [1.0, 0.5]}
    assert state_digest(loaded.state_dict()) == state_digest(model.state_dict())
    x, lengths = torch.randn(2, 40, 80), torch.tensor([40, 31])
    with torch.no_grad():
        assert torch.equal(model(x, lengths)[0], loaded(x, lengths)[0])
    with pytest.raises(TypeError):
        checkpoint_bytes(model.state_dict(), TINY, {"bad": object()})


def test_transcriber_returns_fields_in_range():
    torch.manual_seed(0)
    blob = checkpoint_bytes(CTCModel(TINY).state_dict(), TINY, {})
    tr = Transcriber.from_checkpoint(blob, temperature=1.5)
    t = np.arange(16000, dtype=np.float32) / 16000
    wave = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    out = tr.transcribe(wave)
    assert isinstance(out, Transcript) and isinstance(out.text, str)
    assert 0.0 <= out.confidence <= 1.0 and out.duration_s == pytest.approx(1.0)
    for word, start, end, conf in out.words:
        assert word and 0.0 <= start < end <= out.duration_s + 0.05 and 0.0 <= conf <= 1.0
    batch = tr.transcribe_batch([wave, wave[:4000], np.zeros(100, np.float32)])
    assert batch[0].text == out.text and batch[1].duration_s == pytest.approx(0.25)
    assert tr.features(wave).shape == (101, 80)
    with pytest.raises(ValueError):
        tr.transcribe(np.zeros((2, 100), np.float32))


# ------------------------------------------------------------------ sweep --
def test_sweep_respects_budget_and_prunes_a_bad_trial():
    space = {"train.lr": [3e-3, 1e-9]}
    # a sampler seed whose first trial is the good lr and second the bad one
    seed = next(s for s in range(100) if [p["train.lr"] for p in sample_trials(space, 3, s)][:2] == [3e-3, 1e-9])
    data = tiny_data()
    res = sweep(
        data, data[:6], TINY, tiny_cfg(epochs=5, max_steps=12, spec_augment=False),
        SweepConfig(n_trials=3, seed=seed, space=space, probe_steps=6, prune_margin=0.05),
    )
    assert len(res.trials) == 3
    assert res.trials[0].status == "completed" and res.trials[0].steps == 12
    assert res.trials[1].status == "pruned" and res.trials[1].steps == 6
    assert res.best_params == {"train.lr": 3e-3} and res.best_train_config.lr == 3e-3
    assert "pruned" in format_table(res.trials)
    with pytest.raises(ValueError):
        sample_trials({"train.nonsense": [1]}, 1, 0)
