"""Seeded generator of normalized ASR transcripts for simulated traffic.

Every sentence is lowercase, uses only the letters a-z, the apostrophe and
single spaces (the normalized form an ASR model is scored against), and comes
with a *kind*:

``digits``   a short run of spoken digits ("three four seven"; at most three, see _t_digits)
``number``   quantities, prices, times and years said as words
``command``  voice-assistant commands ("turn on the kitchen lights")
``open``     open-domain sentences built from templates over a vocabulary
             of several hundred words, so word error rate means something
``pii``      a sentence carrying personal data in spoken form (a phone number
             as a run of 7-10 spoken digits, or an e-mail address such as
             "john dot smith at example dot com"); a configurable fraction
             (default 3 %) of the traffic, so downstream PII redaction has
             something to find

``SentenceGenerator(seed).sentence()`` returns ``(text, kind)``; the same seed
gives the same sequence.  :func:`vocabulary` returns every word the generator
can emit.  What is said is data: the word lists in
:mod:`speech_assets.simulation.words`, the template tables in
:mod:`speech_assets.simulation.templates`.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator, Mapping
from functools import lru_cache

from speech_assets.simulation.templates import GENERATORS, TEMPLATE_WORDS
from speech_assets.simulation.words import WORD_GROUPS, number_to_words

__all__ = [
    "KINDS",
    "DEFAULT_KIND_WEIGHTS",
    "SentenceGenerator",
    "vocabulary",
    "number_to_words",
    "TEXT_RE",
]

#: Pattern every generated transcript matches.
TEXT_RE = re.compile(r"^[a-z']+( [a-z']+)*$")

KINDS = ("digits", "number", "command", "open", "pii")

#: Mix of the non-PII kinds (PII is drawn first, with ``pii_fraction``).
DEFAULT_KIND_WEIGHTS: dict[str, float] = {
    "digits": 0.10,
    "number": 0.10,
    "command": 0.35,
    "open": 0.45,
}


def _words_of(items) -> set[str]:
    out: set[str] = set()
    for item in items:
        if isinstance(item, tuple):
            out |= _words_of(item)
        else:
            out.update(item.split())
    return out


@lru_cache(maxsize=1)
def _vocabulary() -> frozenset[str]:
    words: set[str] = set()
    for group in (*WORD_GROUPS, TEMPLATE_WORDS):
        words |= _words_of(group)
    return frozenset(words)


def vocabulary() -> frozenset[str]:
    """Every word :class:`SentenceGenerator` can emit."""
    return _vocabulary()


class SentenceGenerator:
    """Seeded source of ``(text, kind)`` transcripts.

    ``pii_fraction`` of the sentences are of kind ``"pii"``; the rest are drawn
    from ``kind_weights`` (default :data:`DEFAULT_KIND_WEIGHTS`, keys among
    ``digits``, ``number``, ``command``, ``open``).
    """

    def __init__(
        self,
        seed: int,
        pii_fraction: float = 0.03,
        kind_weights: Mapping[str, float] | None = None,
    ) -> None:
        if not 0.0 <= pii_fraction <= 1.0:
            raise ValueError(f"pii_fraction must be in [0, 1], got {pii_fraction}")
        weights = dict(DEFAULT_KIND_WEIGHTS if kind_weights is None else kind_weights)
        unknown = set(weights) - set(DEFAULT_KIND_WEIGHTS)
        if unknown:
            raise ValueError(
                f"unknown sentence kinds {sorted(unknown)}; choose from {sorted(DEFAULT_KIND_WEIGHTS)}"
            )
        if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
            raise ValueError(f"kind weights must be non-negative and not all zero: {weights}")
        self.seed = seed
        self.pii_fraction = float(pii_fraction)
        self._kinds = [k for k in DEFAULT_KIND_WEIGHTS if weights.get(k, 0) > 0]
        self._weights = [float(weights[k]) for k in self._kinds]
        # String seeds go through sha512 in random.Random: stable across runs
        # and independent of PYTHONHASHSEED.
        self._rng = random.Random(f"sentences:{seed}")

    def sentence(self) -> tuple[str, str]:
        rng = self._rng
        if rng.random() < self.pii_fraction:
            kind = "pii"
        else:
            kind = rng.choices(self._kinds, weights=self._weights)[0]
        text = " ".join(GENERATORS[kind](rng).split())
        return text, kind

    def __iter__(self) -> Iterator[tuple[str, str]]:
        while True:
            yield self.sentence()

    def sentences(self, n: int) -> list[tuple[str, str]]:
        return [self.sentence() for _ in range(n)]

    @staticmethod
    def vocabulary() -> frozenset[str]:
        return vocabulary()
