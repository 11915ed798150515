"""Character vocabulary for CTC.

Index 0 is the CTC blank, then space, apostrophe and a-z: exactly the
alphabet of normalized transcripts (speech_assets.simulation.sentences.TEXT_RE).
Anything else (upper case, digits, the "<phone>" of a redacted transcript)
is not silently dropped: ``encode`` raises, so a caller decides whether to
skip the utterance (training does, and counts it).
"""

from __future__ import annotations

from collections.abc import Iterable

BLANK = 0
VOCAB: tuple[str, ...] = ("<blank>", " ", "'") + tuple("abcdefghijklmnopqrstuvwxyz")
VOCAB_SIZE = len(VOCAB)  # 29
_INDEX = {ch: i for i, ch in enumerate(VOCAB) if i != BLANK}


class OutOfVocabulary(ValueError):
    """A transcript holds characters the model cannot emit."""

    def __init__(self, text: str, chars: list[str]):
        super().__init__(f"characters {chars!r} not in the vocabulary: {text!r}")
        self.text, self.chars = text, chars


def unknown_chars(text: str) -> list[str]:
    """The distinct characters of ``text`` outside the vocabulary, in order of appearance."""
    return list(dict.fromkeys(ch for ch in text if ch not in _INDEX))


def encode(text: str) -> list[int]:
    bad = unknown_chars(text)
    if bad:
        raise OutOfVocabulary(text, bad)
    return [_INDEX[ch] for ch in text]


def decode(ids: Iterable[int]) -> str:
    """Ids -> text; blanks are dropped (no CTC collapsing: see decode.py for that)."""
    out = []
    for i in ids:
        i = int(i)
        if not 0 <= i < VOCAB_SIZE:
            raise ValueError(f"token id {i} out of range 0..{VOCAB_SIZE - 1}")
        if i != BLANK:
            out.append(VOCAB[i])
    return "".join(out)
