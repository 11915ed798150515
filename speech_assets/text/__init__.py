"""The platform's one text normaliser: every transcript and every hypothesis, whatever wrote it, to one alphabet.

See :mod:`speech_assets.text.normalize`. Pure standard library; every package may import it.
"""

from speech_assets.text.normalize import (
    ALPHABET,
    REASONS,
    Unnormalisable,
    is_normalised,
    normalize_for_scoring,
    normalize_text,
)

__all__ = [
    "ALPHABET",
    "REASONS",
    "Unnormalisable",
    "is_normalised",
    "normalize_for_scoring",
    "normalize_text",
]
