import re

import pytest

from speech_assets.simulation.sentences import (
    KINDS,
    TEXT_RE,
    SentenceGenerator,
    number_to_words,
    vocabulary,
)

_DIGIT_WORDS = {"zero", "oh", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"}


def _longest_digit_run(text: str) -> int:
    best = run = 0
    for w in text.split():
        run = run + 1 if w in _DIGIT_WORDS else 0
        best = max(best, run)
    return best


def test_same_seed_same_sentences_different_seed_different():
    a = SentenceGenerator(7).sentences(200)
    b = SentenceGenerator(7).sentences(200)
    c = SentenceGenerator(8).sentences(200)
    assert a == b
    assert a != c


def test_text_is_normalized_and_within_vocabulary():
    vocab = vocabulary()
    gen = SentenceGenerator(1)
    for _ in range(3000):
        text, kind = gen.sentence()
        assert kind in KINDS
        assert TEXT_RE.match(text), text
        assert set(text.split()) <= vocab, set(text.split()) - vocab


def test_vocabulary_is_large_and_clean():
    vocab = vocabulary()
    assert len(vocab) >= 600
    assert all(re.fullmatch(r"[a-z']+", w) for w in vocab)
    assert SentenceGenerator.vocabulary() == vocab


def test_every_kind_appears():
    kinds = {k for _, k in SentenceGenerator(3, pii_fraction=0.05).sentences(2000)}
    assert kinds == set(KINDS)


@pytest.mark.parametrize("fraction", [0.03, 0.2])
def test_pii_fraction_roughly_honoured(fraction):
    n = 5000
    got = sum(k == "pii" for _, k in SentenceGenerator(11, pii_fraction=fraction).sentences(n)) / n
    assert abs(got - fraction) < max(0.01, 0.25 * fraction)


def test_default_pii_fraction_and_zero():
    n = 5000
    default = sum(k == "pii" for _, k in SentenceGenerator(5).sentences(n)) / n
    assert 0.015 < default < 0.045
    assert not any(k == "pii" for _, k in SentenceGenerator(5, pii_fraction=0).sentences(n))


def test_pii_sentences_carry_a_phone_number_or_an_email():
    phones = emails = 0
    for text, kind in SentenceGenerator(2, pii_fraction=1.0).sentences(300):
        assert kind == "pii"
        run = _longest_digit_run(text)
        if " at " in f" {text} " and " dot " in f" {text} ":
            emails += 1
        else:
            assert 7 <= run <= 10, text
            phones += 1
    assert phones > 50 and emails > 50


def test_kind_weights_select_kinds():
    out = SentenceGenerator(4, pii_fraction=0, kind_weights={"command": 1}).sentences(100)
    assert {k for _, k in out} == {"command"}
    with pytest.raises(ValueError):
        SentenceGenerator(4, kind_weights={"poetry": 1})
    with pytest.raises(ValueError):
        SentenceGenerator(4, pii_fraction=1.5)


def test_number_to_words():
    assert number_to_words(0) == "zero"
    assert number_to_words(13) == "thirteen"
    assert number_to_words(40) == "forty"
    assert number_to_words(347) == "three hundred and forty seven"
    assert number_to_words(2005) == "two thousand and five"
    assert number_to_words(9999) == "nine thousand nine hundred and ninety nine"
