"""CTC decoding: greedy and prefix beam search (no LM), with confidences and word timings.

All functions take one utterance's scores ``[T, V]`` (log-probs or logits,
torch or numpy, already cut to its valid length) and a ``temperature``.
Temperature divides the scores before the softmax; because a log-softmax
only shifts each frame by a constant, dividing log-probs or logits by T
gives the same posteriors.  T > 1 flattens them (lower confidences), T < 1
sharpens; calibration fits T on held-out data.

Confidence definitions (all in [0, 1]):

* token confidence: the peak posterior of an emitted character over the run
  of frames the alignment gives it (``max_t p_t(c)``);
* word confidence: the geometric mean of its characters' token confidences;
* utterance confidence: the geometric mean of all emitted tokens' confidences
  (characters and the spaces between words); for an empty hypothesis, the
  geometric mean over frames of the best posterior (how sure the model is
  that nothing was said).

The alignment is the greedy path itself for ``greedy_decode``, and the
Viterbi (best single) path of the chosen hypothesis for ``beam_search``.
Word start/end times come from the first frame of a word's first character
and the last frame of its last character.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from speech_assets.model.tokenizer import BLANK, VOCAB

SPACE = VOCAB.index(" ")
NEG_INF = -np.inf


@dataclass
class Word:
    word: str
    start_s: float
    end_s: float
    confidence: float


@dataclass
class Hypothesis:
    text: str
    ids: list[int]  # collapsed token ids, blanks removed
    confidence: float
    words: list[Word] = field(default_factory=list)
    log_prob: float = 0.0  # path (greedy) or prefix (beam) log-probability
    path: np.ndarray | None = None  # frame labels of the alignment the confidences come from


def log_posteriors(scores, temperature: float = 1.0) -> np.ndarray:
    """[T, V] log-probs or logits -> float64 log-posteriors at ``temperature``."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    x = scores.detach().cpu().double() if isinstance(scores, torch.Tensor) else torch.as_tensor(
        np.asarray(scores, dtype=np.float64)
    )
    if x.ndim != 2:
        raise ValueError(f"expected [T, V] scores, got shape {tuple(x.shape)}")
    return torch.log_softmax(x / temperature, dim=-1).numpy()


def _tokens_from_path(path: np.ndarray) -> list[tuple[int, int, int]]:
    """Frame labels -> [(token, first_frame, last_frame)] of emitted (non-blank) tokens."""
    out: list[tuple[int, int, int]] = []
    prev = BLANK
    for t, lab in enumerate(path.tolist()):
        if lab != BLANK and lab == prev:
            tok, first, _ = out[-1]
            out[-1] = (tok, first, t)
        elif lab != BLANK:
            out.append((lab, t, t))
        prev = lab
    return out


def _hypothesis(path: np.ndarray, logp: np.ndarray, frame_shift_s: float, log_prob: float) -> Hypothesis:
    tokens = _tokens_from_path(path)
    # peak log-posterior of each token over its frames
    tok_lp = [float(logp[a : b + 1, tok].max()) for tok, a, b in tokens]
    words: list[Word] = []
    chars: list[tuple[str, int, int, float]] = []

    def flush() -> None:
        if chars:
            words.append(
                Word(
                    word="".join(c for c, *_ in chars),
                    start_s=round(chars[0][1] * frame_shift_s, 3),
                    end_s=round((chars[-1][2] + 1) * frame_shift_s, 3),
                    confidence=float(np.exp(np.mean([lp for *_, lp in chars]))),
                )
            )
            chars.clear()

    for (tok, a, b), lp in zip(tokens, tok_lp):
        if tok == SPACE:
            flush()
        else:
            chars.append((VOCAB[tok], a, b, lp))
    flush()
    if tokens:
        conf = float(np.exp(np.mean(tok_lp)))
    else:
        conf = float(np.exp(logp.max(axis=1).mean())) if len(logp) else 0.0
    return Hypothesis(
        text=" ".join(w.word for w in words),
        ids=[tok for tok, _, _ in tokens],
        confidence=min(1.0, max(0.0, conf)),
        words=words,
        log_prob=log_prob,
        path=path,
    )


def confidence_at(hyp: Hypothesis, scores, temperature: float) -> float:
    """Only the utterance confidence of ``at_temperature(hyp, scores, temperature)``, vectorized.

    Calibration fitting asks for it dozens of times per dev utterance; this
    skips building words (same number, tested).
    """
    if hyp.path is None:
        raise ValueError("hypothesis has no alignment path to rescore")
    logp = log_posteriors(scores, temperature)
    tokens = _tokens_from_path(hyp.path)
    if not tokens:
        return float(np.exp(logp.max(axis=1).mean())) if len(logp) else 0.0
    frames = np.concatenate([np.arange(a, b + 1) for _, a, b in tokens])
    labels = np.concatenate([np.full(b - a + 1, tok) for tok, a, b in tokens])
    starts = np.cumsum([0] + [b - a + 1 for _, a, b in tokens[:-1]])
    peaks = np.maximum.reduceat(logp[frames, labels], starts)
    return min(1.0, max(0.0, float(np.exp(peaks.mean()))))


def at_temperature(hyp: Hypothesis, scores, temperature: float, frame_shift_s: float = 0.04) -> Hypothesis:
    """The same words, confidences recomputed at ``temperature`` on the same alignment.

    Calibration changes how sure the model says it is, never what it says:
    the search runs once (at temperature 1) and every fitted temperature is
    applied here, which is also what makes fitting it cheap.
    """
    if hyp.path is None:
        raise ValueError("hypothesis has no alignment path to rescore")
    out = _hypothesis(hyp.path, log_posteriors(scores, temperature), frame_shift_s, hyp.log_prob)
    out.text = hyp.text
    return out


def greedy_decode(scores, temperature: float = 1.0, frame_shift_s: float = 0.04) -> Hypothesis:
    """Best label per frame, repeats collapsed, blanks removed."""
    logp = log_posteriors(scores, temperature)
    path = logp.argmax(axis=1)
    return _hypothesis(path, logp, frame_shift_s, float(logp.max(axis=1).sum()))


def viterbi_align(logp: np.ndarray, ids: list[int]) -> np.ndarray:
    """Most likely frame labelling [T] that collapses to ``ids`` (CTC forced alignment)."""
    T = logp.shape[0]
    ext = [BLANK]
    for i in ids:
        ext += [i, BLANK]
    ext = np.array(ext)
    S = len(ext)
    # a label may be skipped over the blank before it unless it repeats the previous label
    can_skip = np.zeros(S, dtype=bool)
    can_skip[2:] = (ext[2:] != BLANK) & (ext[2:] != ext[:-2])
    score = np.full(S, NEG_INF)
    score[0] = logp[0, ext[0]]
    if S > 1:
        score[1] = logp[0, ext[1]]
    back = np.zeros((T, S), dtype=np.int64)
    idx = np.arange(S)
    for t in range(1, T):
        stay = score
        step = np.concatenate(([NEG_INF], score[:-1]))
        skip = np.where(can_skip, np.concatenate(([NEG_INF, NEG_INF], score[:-2])), NEG_INF)
        cand = np.stack([stay, step, skip])
        arg = cand.argmax(axis=0)
        back[t] = idx - arg
        score = cand[arg, idx] + logp[t, ext]
    end = S - 1 if S == 1 or score[S - 1] >= score[S - 2] else S - 2
    if not np.isfinite(score[end]):
        raise ValueError(f"{len(ids)} tokens cannot be aligned to {T} frames")
    path = np.empty(T, dtype=np.int64)
    s = end
    for t in range(T - 1, -1, -1):
        path[t] = ext[s]
        s = back[t, s]
    return path


def beam_search(
    scores,
    beam_width: int = 8,
    temperature: float = 1.0,
    frame_shift_s: float = 0.04,
    token_min_prob: float = 1e-4,
) -> Hypothesis:
    """CTC prefix beam search: the most probable label sequence, summed over its alignments.

    Keeps ``beam_width`` prefixes, each with the log-probability of ending in
    a blank (pb) and in its last label (pnb).  Per frame, only labels with a
    posterior of at least ``token_min_prob`` are tried as extensions (speed).
    """
    if beam_width < 1:
        raise ValueError("beam_width must be >= 1")
    logp = log_posteriors(scores, temperature)
    T, V = logp.shape
    beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, NEG_INF)}
    min_lp = np.log(token_min_prob)
    for t in range(T):
        row = logp[t]
        cands = [c for c in np.nonzero(row >= min_lp)[0].tolist() if c != BLANK]
        nxt: dict[tuple[int, ...], list[float]] = {}

        def add(prefix, pb=NEG_INF, pnb=NEG_INF):
            cur = nxt.setdefault(prefix, [NEG_INF, NEG_INF])
            cur[0] = np.logaddexp(cur[0], pb)
            cur[1] = np.logaddexp(cur[1], pnb)

        for prefix, (pb, pnb) in beams.items():
            total = np.logaddexp(pb, pnb)
            add(prefix, pb=total + row[BLANK])
            last = prefix[-1] if prefix else None
            if last is not None:
                add(prefix, pnb=pnb + row[last])  # repeated label, no blank between: same prefix
            for c in cands:
                # after a repeat label, only a path through blank extends the prefix
                add(prefix + (c,), pnb=(pb if c == last else total) + row[c])
        ranked = sorted(nxt.items(), key=lambda kv: np.logaddexp(*kv[1]), reverse=True)
        beams = {p: (v[0], v[1]) for p, v in ranked[:beam_width]}
    best, (pb, pnb) = max(beams.items(), key=lambda kv: np.logaddexp(*kv[1]))
    path = viterbi_align(logp, list(best)) if T else np.zeros(0, dtype=np.int64)
    return _hypothesis(path, logp, frame_shift_s, float(np.logaddexp(pb, pnb)))


def greedy_texts(log_probs: torch.Tensor, lengths: torch.Tensor) -> list[str]:
    """Batch greedy decoding to text only ([B, T, V], [B]); the fast path for dev WER."""
    best = log_probs.argmax(dim=-1).cpu().numpy()
    out = []
    for row, n in zip(best, lengths.tolist()):
        row = row[:n]
        keep = row[(row != BLANK) & np.concatenate(([True], row[1:] != row[:-1]))]
        out.append(" ".join("".join(VOCAB[i] for i in keep.tolist()).split()))
    return out
