"""Word LM (Kneser-Ney -> ARPA) and the lexicon decoder that uses it through flashlight-text/KenLM."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from speech_assets.model.architecture import CTCModel
from speech_assets.model.decode import at_temperature, greedy_decode
from speech_assets.model.inference import Transcriber
from speech_assets.model.lexicon_decode import LexiconDecoder, fit_decoder_spec, tune_lexicon_decoder
from speech_assets.model.lm import BOS, EOS, UNK, NgramLM
from speech_assets.model.tokenizer import VOCAB_SIZE, encode
from speech_assets.model.train import checkpoint_bytes

from tests.model.test_model import TINY, tiny_data

SENTENCES = [
    "turn on the kitchen lights",
    "turn off the kitchen lights",
    "turn on the radio",
    "what is the weather in paris",
    "what is the time",
    "the cat sat on the mat",
]


def emissions(text: str, frames_per_char: int = 3, peak: float = -0.05, floor: float = -6.0) -> torch.Tensor:
    """Log-posteriors that spell ``text`` one char per block: a confident greedy path."""
    ids = encode(text)
    lp = np.full((len(ids) * frames_per_char + 2, VOCAB_SIZE), floor)
    lp[0, 0] = lp[-1, 0] = peak
    for i, t in enumerate(ids):
        lp[1 + frames_per_char * i, t] = peak
        for k in range(1, frames_per_char):
            lp[1 + frames_per_char * i + k, 0] = peak
    return torch.log_softmax(torch.tensor(lp), dim=-1)


@pytest.mark.parametrize("order", [1, 2, 3])
def test_lm_is_a_distribution_in_every_context(order):
    lm = NgramLM.fit(SENTENCES, order=order)
    vocab = lm.words + [EOS, UNK]
    for ctx in [(), (BOS,), ("turn",), (BOS, "turn"), ("the", "kitchen"), ("never", "seen")]:
        total = sum(10 ** lm.log10_prob(w, ctx) for w in vocab)
        assert total == pytest.approx(1.0, abs=1e-6), ctx


def test_lm_prefers_seen_word_order_and_keeps_mass_for_the_unseen():
    lm = NgramLM.fit(SENTENCES, order=3)
    assert lm.log10_prob("lights", ("the", "kitchen")) > lm.log10_prob("radio", ("the", "kitchen"))
    assert lm.log10_prob("on", (BOS, "turn")) > lm.log10_prob("the", (BOS, "turn"))
    assert lm.log10_prob("paris", ("kitchen",)) > -99  # unseen bigram: backs off, never zero
    assert lm.words == sorted({w for s in SENTENCES for w in s.split()})


def test_arpa_round_trip_and_rejects_garbage():
    lm = NgramLM.fit(SENTENCES, order=3)
    text = lm.arpa()
    assert "\\data\\" in text and "ngram 3=" in text and "\\end\\" in text
    back = NgramLM.from_arpa(text)
    assert back.order == 3 and back.words == lm.words
    for ctx, w in [(("turn",), "on"), (("the", "kitchen"), "lights"), ((), "cat")]:
        assert back.log10_prob(w, ctx) == pytest.approx(lm.log10_prob(w, ctx), abs=1e-5)
    with pytest.raises(ValueError):
        NgramLM.from_arpa("hello world")
    with pytest.raises(ValueError):
        NgramLM.fit([], order=2)


def test_lexicon_decoder_fixes_fused_and_misspelt_words():
    lm = NgramLM.fit(SENTENCES, order=3)
    dec = LexiconDecoder(lm, lm_weight=1.0, word_score=0.0)
    scores = emissions("turnon the kitchen lihts")
    assert greedy_decode(scores).text == "turnon the kitchen lihts"
    hyp = dec.decode(scores)
    assert hyp.text == "turn on the kitchen lights"
    assert [w.word for w in hyp.words] == hyp.text.split()
    assert 0.0 < hyp.confidence <= 1.0
    assert all(0 <= w.start_s <= w.end_s for w in hyp.words)
    # only lexicon words can come out
    assert set(dec.decode(emissions("zebra crossing")).text.split()) <= set(lm.words)


def test_temperature_rescoring_keeps_words_and_moves_confidence():
    dec = LexiconDecoder(NgramLM.fit(SENTENCES, order=2))
    scores = emissions("what is the time", peak=-0.3, floor=-3.0)
    hyp = dec.decode(scores)
    hot = at_temperature(hyp, scores, 2.0)
    cold = at_temperature(hyp, scores, 0.5)
    assert hot.text == cold.text == hyp.text == "what is the time"
    assert hot.confidence < hyp.confidence < cold.confidence


def test_tuning_picks_the_best_grid_point_by_dev_wer():
    lm = NgramLM.fit(SENTENCES, order=3)
    texts = ["turn on the radio", "what is the time"]
    scores = [emissions("turnon the radoi"), emissions("what is the tme")]
    best, grid = tune_lexicon_decoder(lm, scores, texts, lm_weights=(0.0, 1.0), word_scores=(0.0,))
    assert len(grid) == 2
    assert best["dev_wer"] == min(g["dev_wer"] for g in grid)
    assert best["dev_wer"] == 0.0


def test_transcriber_uses_the_checkpoints_lexicon_decoder():
    torch.manual_seed(0)
    model = CTCModel(TINY).eval()
    data = tiny_data(12)
    spec = fit_decoder_spec(model, [t for _, t in data], data[:4], order=2)
    assert spec["kind"] == "lexicon" and spec["lexicon_words"] > 0 and len(spec["grid"]) == 12
    blob = checkpoint_bytes(model.state_dict(), TINY, {"decoder": spec})
    lex = Transcriber.from_checkpoint(blob)
    greedy = Transcriber.from_checkpoint(blob, decoder="greedy")
    wave = np.random.default_rng(0).normal(scale=0.1, size=16000).astype(np.float32)
    out = lex.transcribe(wave)
    assert set(out.text.split()) <= set(NgramLM.from_arpa(spec["arpa"]).words)
    assert 0.0 <= out.confidence <= 1.0
    assert isinstance(greedy.transcribe(wave).text, str)
    # a checkpoint without an LM cannot be asked for one
    plain = checkpoint_bytes(model.state_dict(), TINY, {})
    with pytest.raises(ValueError, match="no lexicon"):
        Transcriber.from_checkpoint(plain, decoder="lexicon")


def test_fast_confidence_equals_the_full_rescoring():
    from speech_assets.model.decode import confidence_at

    rng = np.random.default_rng(1)
    dec = LexiconDecoder(NgramLM.fit(SENTENCES, order=2))
    for text in ["turn on the radio", "what is the time"]:
        scores = emissions(text, peak=-0.4, floor=-2.5) + torch.tensor(rng.normal(0, 0.3, (1, VOCAB_SIZE)))
        hyp = dec.decode(scores)
        for t in (0.5, 1.0, 1.7, 4.0):
            assert confidence_at(hyp, scores, t) == pytest.approx(at_temperature(hyp, scores, t).confidence, rel=1e-9)
    empty = greedy_decode(torch.log_softmax(torch.zeros(5, VOCAB_SIZE), -1))
    assert confidence_at(empty, torch.zeros(5, VOCAB_SIZE), 2.0) == pytest.approx(
        at_temperature(empty, torch.zeros(5, VOCAB_SIZE), 2.0).confidence
    )
