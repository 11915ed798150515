"""Synthetic evaluation rows shared by the evaluation tests."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

VOCAB = [
    "turn", "on", "the", "kitchen", "lights", "play", "some", "music", "what", "time",
    "is", "it", "call", "my", "mother", "set", "a", "timer", "for", "ten", "minutes",
    "weather", "today", "in", "london", "please", "stop", "next", "song", "open",
]


def make_rows(
    *,
    speakers: Mapping[str, tuple[int, int, float]],
    words: int = 10,
    seed: int = 0,
    channels: tuple[str, ...] = ("phone", "headset"),
) -> list[dict]:
    """Rows for speakers grouped by accent.

    ``speakers``: accent -> (n_speakers, utterances per speaker, word error
    probability).  Each reference word is replaced by "zzz" with that
    probability; channel alternates per utterance so it is independent of
    accent.  Speaker ids embed the accent so they never collide.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for accent, (n_spk, n_utt, p) in speakers.items():
        for s in range(n_spk):
            for u in range(n_utt):
                ref = [VOCAB[i] for i in rng.integers(0, len(VOCAB), size=words)]
                hyp = [w if rng.random() >= p else "zzz" for w in ref]
                rows.append(
                    {
                        "utterance_id": f"{accent}-{s}-{u}",
                        "speaker": f"{accent}-{s}",
                        "reference": " ".join(ref),
                        "hypothesis": " ".join(hyp),
                        "accent": accent,
                        "channel": channels[u % len(channels)],
                        "snr_band": "clean" if u % 3 else "noisy",
                        "duration_band": "short",
                    }
                )
    return rows


def with_error_rate(rows: list[dict], rates: Mapping[str, float], seed: int) -> list[dict]:
    """Another model's output on the same utterances: per-accent word error probability."""
    rng = np.random.default_rng(seed)
    out = []
    for r in rows:
        p = rates[r["accent"]]
        hyp = [w if rng.random() >= p else "zzz" for w in r["reference"].split()]
        out.append({k: v for k, v in r.items() if k != "hypothesis"} | {"hypothesis": " ".join(hyp)})
    return out
