"""Tests for speech_assets.audio.pii.sanitize_transcript."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from speech_assets.audio.pii import PII_KINDS, SanitizedTranscript, sanitize_transcript


def clean(text: str) -> str:
    return sanitize_transcript(text).text


# ---------------------------------------------------------------------------
# E-mail
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("mail a.b@c.com now", "mail <email> now"),
        ("John.Smith+news@mail.example.co.uk.", "<email>."),
        ("write to first_last-99@sub.domain.org, thanks", "write to <email>, thanks"),
        ("(jane@gmail.com)", "(<email>)"),
    ],
)
def test_written_email(text, expected):
    assert clean(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("it is john dot smith at example dot com", "it is <email>"),
        ("jane at gmail dot com", "<email>"),
        ("Reach me at Jane at Gmail dot com, ok?", "Reach me at <email>, ok?"),
        ("bob underscore lee at mail dot co dot uk please", "<email> please"),
        ("mary one two at yahoo dot com", "<email>"),
        ("john@gmail dot com", "<email>"),
        ("email me at jane at gmail dot com", "email me at <email>"),
    ],
)
def test_spoken_email(text, expected):
    assert clean(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "I looked at the dot com bubble",
        "meet me at home",
        "we arrived at noon dot",
        "look at page dot in the corner",
        "I'm at work dot com",
    ],
)
def test_not_emails(text):
    assert clean(text) == text


# ---------------------------------------------------------------------------
# Written numbers
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("call +1 555-123-4567 today", "call <phone> today"),
        ("call (555) 123 4567 today", "call <phone> today"),
        ("my mobile is 07700 900123.", "my mobile is <phone>."),
        ("ring 555-1234", "ring <phone>"),
        ("+44 (0)20 7946 0958", "<phone>"),
        ("dial 555.123.4567 now", "dial <phone> now"),
        ("+353 1 234 5678 9012", "<phone>"),  # 13 digits with "+": phone, not card
    ],
)
def test_written_phone(text, expected):
    assert clean(text) == expected


@pytest.mark.parametrize(
    "number",
    ["4111 1111 1111 1111", "4111-1111-1111-1111", "4111111111111111", "378282246310005"],
)
def test_written_card_luhn_valid(number):
    result = sanitize_transcript(f"card {number} expires")
    assert result.text == "card <card> expires"
    assert result.counts["card"] == 1


def test_written_long_number_failing_luhn_is_digits():
    assert clean("ref 4111 1111 1111 1112") == "ref <digits>"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("my pin is 4821", "my pin is <digits>"),
        ("code 123456.", "code <digits>."),
        ("account 12 34 56", "account <digits>"),
        ("id 123456789012345678901234", "id <digits>"),
    ],
)
def test_written_digits(text, expected):
    assert clean(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "I have 3 kids and 42 cats",
        "back in 2019 and 1987",
        "pi is 3.14159",
        "it costs 1,250,000 dollars",
        "it costs $12500",
        "meet at 10:30 or 14:45:10",
        "born 2024-01-15",
        "from 1999-2004",
        "pages 10-20 and 100-200",
        "the mp3 and the A380 and covid19",
        "call 911",
    ],
)
def test_written_numbers_left_alone(text):
    assert clean(text) == text


# ---------------------------------------------------------------------------
# Spoken digit runs
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected, kind",
    [
        ("my pin is one two three four", "my pin is <digits>", "digits"),
        ("code nine nine eight seven six five", "code <digits>", "digits"),
        ("it's five five five one two three four", "it's <phone>", "phone"),
        ("oh seven seven double oh nine oh oh one two three", "<phone>", "phone"),
        ("plus four four seven seven oh oh nine oh oh one two three", "<phone>", "phone"),
        ("five-five-five, one two, three four", "<phone>", "phone"),
        ("Five Five Five One Two Three Four.", "<phone>.", "phone"),
        (
            "card four one one one one one one one one one one one one one one one ok",
            "card <card> ok",
            "card",
        ),
        ("triple nine one", "<digits>", "digits"),  # 9 9 9 1
    ],
)
def test_spoken_digit_runs(text, expected, kind):
    result = sanitize_transcript(text)
    assert result.text == expected
    assert result.counts[kind] == 1 and result.total == 1


def test_plus_stays_when_run_is_not_a_phone():
    assert clean("plus one two three four") == "plus <digits>"


@pytest.mark.parametrize(
    "text",
    [
        "set a timer for ten minutes",
        "call extension two four",
        "one two three go",
        "Oh, one more thing",
        "someone, anyone, nobody",
        "the phone is on the table",
        "twenty-one two three",  # "one" inside "twenty-one" is not a digit word
        "double check the double doors",
        "nine to five",
    ],
)
def test_spoken_keep_alone(text):
    result = sanitize_transcript(text)
    assert result.text == text
    assert result.total == 0


# ---------------------------------------------------------------------------
# Whole-transcript behaviour
# ---------------------------------------------------------------------------


def test_counts_and_total():
    text = (
        "I'm jane at gmail dot com, backup j.doe@work.org; call 555-123-4567 or "
        "five five five nine eight seven six; card 4111 1111 1111 1111; pin 4821 "
        "and also one two three four."
    )
    result = sanitize_transcript(text)
    assert result.text == (
        "I'm <email>, backup <email>; call <phone> or <phone>; card <card>; pin <digits> "
        "and also <digits>."
    )
    assert result.counts == {"email": 2, "phone": 2, "card": 1, "digits": 2}
    assert result.total == 7
    assert set(result.counts) == set(PII_KINDS)


def test_clean_text_reports_zero_counts():
    result = sanitize_transcript("nothing to see here")
    assert result == SanitizedTranscript("nothing to see here", dict.fromkeys(PII_KINDS, 0))
    assert result.total == 0


def test_other_text_preserved_exactly():
    text = "  Héllo,\tworld!  call 555-123-4567\n\nthen   ÜBER  café…  "
    assert clean(text) == "  Héllo,\tworld!  call <phone>\n\nthen   ÜBER  café…  "


def test_empty_string():
    assert sanitize_transcript("").text == ""


def test_bytes_are_refused():
    with pytest.raises(TypeError):
        sanitize_transcript(b"call 555 1234")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text",
    [
        "john dot smith at example dot com and 555-123-4567",
        "<email> <phone> <card> <digits>",
        "one two three <digits> four five six",
        "<digits> at gmail dot com",
        "x @ five five five five five five five dot com",
        "plus one two three four",
    ],
)
def test_idempotent_examples(text):
    once = sanitize_transcript(text)
    twice = sanitize_transcript(once.text)
    assert twice.text == once.text
    assert twice.total == 0 or "<" not in text  # nothing new found in tokens


_VOCAB = [
    "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "zero",
    "oh", "double", "triple", "plus", "at", "dot", "@", ".", "-", ",", "(", ")", "+",
    "john", "gmail", "com", "co", "uk", "the", "call", "me", "555", "1234", "4111",
    "2019", "3.5", "10:30", "<phone>", "<digits>", "é", "underscore", "\n",
]  # fmt: skip


@settings(max_examples=300, deadline=None, database=None)
@given(
    st.lists(st.sampled_from(_VOCAB), max_size=30),
    st.lists(st.sampled_from([" ", "", "  ", "-", ", "]), min_size=30, max_size=30),
)
def test_idempotent_property(words, seps):
    text = "".join(w + s for w, s in zip(words, seps))
    once = sanitize_transcript(text)
    assert sanitize_transcript(once.text).text == once.text
    assert once.total == sum(once.text.count(f"<{k}>") for k in PII_KINDS) - sum(
        text.count(f"<{k}>") for k in PII_KINDS
    )


@settings(max_examples=200, deadline=None, database=None)
@given(st.text(max_size=200))
def test_arbitrary_text_is_idempotent(text):
    once = sanitize_transcript(text).text
    assert sanitize_transcript(once).text == once


@pytest.mark.parametrize(
    "text",
    [
        "one " * 5000,
        "john dot " * 3000,
        "x dot " * 3000 + " at gmail dot",
        "john at " + "gmail dot " * 3000,
        "x@" + "a." * 5000,
        "(1)" * 5000,
    ],
    ids=["digit_words", "dotted_local", "dotted_no_tld", "long_domain", "email_labels", "parens"],
)
def test_pathological_input_stays_fast(text):
    # Bounded repetitions keep every pattern near-linear; before bounding,
    # some of these took ~20 s.  The limit is generous to avoid flakiness.
    import time

    start = time.perf_counter()
    sanitize_transcript(text)
    assert time.perf_counter() - start < 3.0
