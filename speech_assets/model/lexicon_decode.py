"""Lexicon-constrained CTC beam search with a word n-gram LM (flashlight-text's decoder via torchaudio).

    dec = LexiconDecoder(lm, lm_weight=1.0, word_score=0.0)
    hyp = dec.decode(log_probs, temperature=1.0, frame_shift_s=0.04)

Greedy decoding of a small character model gets most characters right and
many words wrong: a missed space fuses two words, one wrong letter makes a
non-word.  Searching only over spellings of known words, scored by the
acoustic posteriors plus ``lm_weight`` x the LM log-probability plus
``word_score`` per word, fixes exactly those errors.  The lexicon and the LM
come from the training transcripts (speech_assets.model.lm) and travel in the
checkpoint.  A word outside the lexicon cannot be produced: that is the cost,
measured by the OOV rate the drift monitor reports.

Confidences and word timings come from the Viterbi alignment of the chosen
words, exactly as for ``decode.beam_search``, so calibration treats every
decoder alike.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch

from speech_assets.model.decode import Hypothesis, _hypothesis, log_posteriors, viterbi_align
from speech_assets.model.lm import NgramLM
from speech_assets.model.tokenizer import VOCAB, encode

# flashlight's token names: our blank and space under its conventions
_TOKENS = ["-", "|"] + list(VOCAB[2:])


class LexiconDecoder:
    def __init__(
        self,
        lm: NgramLM,
        lm_weight: float = 1.0,
        word_score: float = 0.0,
        beam_size: int = 32,
        beam_threshold: float = 25.0,
    ):
        # imported here: only decoders that use the LM need flashlight-text
        from torchaudio.models.decoder import ctc_decoder

        self.lm, self.lm_weight, self.word_score = lm, float(lm_weight), float(word_score)
        self._dir = tempfile.TemporaryDirectory(prefix="speech_assets-lm-")
        d = Path(self._dir.name)
        (d / "lm.arpa").write_text(lm.arpa())
        lex = []
        for w in lm.words:
            encode(w)  # every lexicon word must be spellable by the model
            lex.append(f"{w}\t{' '.join(w)} |")
        (d / "lexicon.txt").write_text("\n".join(lex) + "\n")
        self._decoder = ctc_decoder(
            lexicon=str(d / "lexicon.txt"),
            tokens=_TOKENS,
            lm=str(d / "lm.arpa"),
            beam_size=beam_size,
            beam_threshold=beam_threshold,
            lm_weight=lm_weight,
            word_score=word_score,
            sil_score=0.0,
            log_add=True,
        )

    def decode(self, scores, temperature: float = 1.0, frame_shift_s: float = 0.04) -> Hypothesis:
        logp = log_posteriors(scores, temperature)
        if len(logp) == 0:
            return _hypothesis(np.zeros(0, dtype=np.int64), logp, frame_shift_s, 0.0)
        emissions = torch.from_numpy(logp.astype(np.float32))[None]
        best = self._decoder(emissions)[0]
        words = best[0].words if best else []
        text = " ".join(words)
        ids = encode(text)
        try:
            path = viterbi_align(logp, ids)
        except ValueError:  # more letters than frames: fall back to the greedy path
            path = logp.argmax(axis=1)
        hyp = _hypothesis(path, logp, frame_shift_s, float(best[0].score) if best else 0.0)
        hyp.text = text  # the words the search found (a fallback alignment may spell them differently)
        return hyp


def tune_lexicon_decoder(
    lm: NgramLM,
    dev_scores: list,
    dev_texts: list[str],
    lm_weights: tuple[float, ...] = (0.5, 1.0, 1.5, 2.0),
    word_scores: tuple[float, ...] = (-1.0, 0.0, 1.0),
) -> tuple[dict, list[dict]]:
    """Pick (lm_weight, word_score) by dev WER over a small grid.

    Returns the best settings and every grid point's dev WER (for the
    checkpoint's metadata).  Ties go to the smaller LM weight: trust the
    acoustics when the LM does not help.
    """
    import jiwer

    if not dev_scores:
        return {"lm_weight": lm_weights[0], "word_score": 0.0, "dev_wer": None}, []
    grid = []
    for lw in lm_weights:
        for ws in word_scores:
            dec = LexiconDecoder(lm, lm_weight=lw, word_score=ws)
            hyps = [dec.decode(s).text for s in dev_scores]
            grid.append({"lm_weight": lw, "word_score": ws, "dev_wer": float(jiwer.wer(dev_texts, hyps))})
    best = min(grid, key=lambda g: (g["dev_wer"], g["lm_weight"], abs(g["word_score"])))
    return dict(best), grid


@torch.no_grad()
def _log_probs(model, feats: list[np.ndarray], batch_size: int = 32) -> list[np.ndarray]:
    model.eval()
    out: list[np.ndarray | None] = [None] * len(feats)
    order = sorted(range(len(feats)), key=lambda i: feats[i].shape[0])
    for s in range(0, len(order), batch_size):
        idx = order[s : s + batch_size]
        lengths = torch.tensor([feats[i].shape[0] for i in idx])
        x = torch.nn.utils.rnn.pad_sequence([torch.from_numpy(np.asarray(feats[i], np.float32)) for i in idx],
                                            batch_first=True)
        lp, ol = model(x, lengths)
        for row, i in enumerate(idx):
            out[i] = lp[row, : int(ol[row])].numpy().copy()
    return out  # type: ignore[return-value]


def fit_decoder_spec(
    model, train_texts: list[str], dev_set: list[tuple[np.ndarray, str]], order: int = 3, max_dev: int = 400
) -> dict:
    """Fit the word LM on training transcripts and tune its weights on dev: the checkpoint's "decoder" entry.

    Tuning uses at most ``max_dev`` dev utterances (an even stride through them): two weights on a
    small grid do not need more, and the search costs time per utterance and grid point.
    """
    from speech_assets.model.tokenizer import OutOfVocabulary

    texts = []
    for t in train_texts:
        t = " ".join(t.split())
        try:
            encode(t)
        except OutOfVocabulary:
            continue  # redacted or foreign text is not something the model can say
        texts.append(t)
    lm = NgramLM.fit(texts, order=order)
    dev = []
    for f, t in dev_set:
        t = " ".join(t.split())
        try:
            encode(t)
        except OutOfVocabulary:
            continue
        dev.append((f, t))
    if len(dev) > max_dev:
        dev = [dev[i] for i in np.linspace(0, len(dev) - 1, max_dev).round().astype(int)]
    scores = _log_probs(model, [f for f, _ in dev])
    best, grid = tune_lexicon_decoder(lm, scores, [t for _, t in dev])
    return {
        "kind": "lexicon",
        "arpa": lm.arpa(),
        "order": order,
        "lexicon_words": len(lm.words),
        "lm_sentences": len(texts),
        "lm_weight": best["lm_weight"],
        "word_score": best["word_score"],
        "beam_size": 32,
        "dev_wer": best["dev_wer"],
        "grid": grid,
    }
