"""Stripping personal data from transcripts before they are stored.

:func:`sanitize_transcript` replaces, in this order:

1. e-mail addresses, written (``a.b@c.com``) or spoken
   (``john dot smith at example dot com``)          -> ``<email>``
2. written US-style dotted phone numbers (``555.123.4567``) -> ``<phone>``
3. written digit runs (groups joined by single spaces or dashes, optional
   ``+`` prefix and parenthesised groups), classified by digit count:

   ==========  ============================================================
   < 4         left alone ("3 kids", "42")
   4           a plausible year (1900-2099) without separators: left alone
   4 - 6       ``<digits>`` (PINs, codes)
   7 - 12      ``<phone>``  (also 13-15 when written with a leading ``+``)
   13 - 19     ``<card>`` when Luhn-valid, else ``<digits>``
   20 +        ``<digits>``
   ==========  ============================================================

   Left alone as well: decimals and thousands (``3.14159``, ``1,250``),
   times (``10:30``), ISO dates (``2024-01-15``), year ranges
   (``1999-2004``), small ranges (``10-20``, ``100-200``), amounts after
   a currency sign, and digits glued to letters (``mp3``, ``A380``).
4. spoken digit runs: consecutive ``zero/oh/one ... nine`` (``double five``
   and ``triple oh`` count 2 and 3 digits), separated by spaces, commas or
   hyphens: 4-6 digits -> ``<digits>``, 7-12 -> ``<phone>``, 13-19 ->
   ``<card>``, 20+ -> ``<digits>``; fewer than 4 are left alone ("call
   extension two four").  A ``plus`` just before a phone-length run is part of
   the phone number.

Only the matched spans change; all other text (spacing, case, punctuation)
is kept byte for byte.  The tokens contain no digits, ``@`` or number words,
so sanitising twice gives the same text as sanitising once.

No Dagster import: pure domain code.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

__all__ = ["PII_KINDS", "SanitizedTranscript", "sanitize_transcript"]

PII_KINDS: tuple[str, ...] = ("email", "phone", "card", "digits")
_TOKEN = {kind: f"<{kind}>" for kind in PII_KINDS}


@dataclass(frozen=True)
class SanitizedTranscript:
    text: str
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PII_KINDS, 0))

    @property
    def total(self) -> int:
        return sum(self.counts.values())


# ---------------------------------------------------------------------------
# E-mail addresses
# ---------------------------------------------------------------------------

# Written: local part, "@", one or more domain labels each followed by ".",
# then an alphabetic top-level domain.
_WRITTEN_EMAIL = re.compile(
    r"""
    (?<![\w.+%-])               # start of the address, not inside a word
    [\w.+%-]+                   # local part: letters, digits, . _ % + -
    @
    (?:[^\W_][\w-]*\.)+         # domain labels: "example." "mail.co."
    [^\W\d_]{2,}                # top-level domain: letters only
    """,
    re.VERBOSE,
)

# Spoken: words joined by spoken separators, "at" (or "@"), then domain words
# joined by "dot" ending in a well-known top-level domain.  TLDs that are
# everyday English words ("in", "it", "me", "at", "be", "no", "us") are left
# out on purpose, and so are stop words as address parts, so that "looked at
# the dot com bubble" is not an address.
_SPOKEN_TLDS = (
    "com net org edu gov mil io co uk de fr es nl ca au info biz ai dev app "
    "eu ch se dk fi pl ie nz jp cn br ru mx za tv xyz"
).split()
_STOP_WORDS = (
    "a an the this that these those my your his her its our their me him us "
    "them it i you we they is was are be at dot underscore dash hyphen in on "
    "of to and or for with from by"
).split()
_DIGIT_WORDS = {
    "zero": "0", "oh": "0", "one": "1", "two": "2", "three": "3",
    "four": "4", "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9",
}  # fmt: skip

_WORD = r"[^\W_]+"  # letters and digits, any script
_LABEL = rf"(?!(?:{'|'.join(_STOP_WORDS)})\b){_WORD}"
_DIGIT_WORD = rf"(?:{'|'.join(_DIGIT_WORDS)})\b"

_SPOKEN_EMAIL = re.compile(
    rf"""
    (?<![\w<>'’])                                     # start of a word, not a token
    {_LABEL}                                          # "john"
    (?:
        \s+(?:dot|underscore|dash|hyphen)\s+{_LABEL}  # " dot smith"
      | \s+{_DIGIT_WORD}                              # " one two" (jane one two at ...)
    ){{0,8}}                                           # bounded: keeps matching linear
    (?:\s+at\s+|\s*@\s*)                              # " at " or "@"
    (?:{_LABEL}\s+dot\s+){{1,4}}                       # "example dot ", "mail dot co dot "
    (?:{'|'.join(_SPOKEN_TLDS)})\b                    # "com"
    """,
    re.VERBOSE | re.IGNORECASE,
)

# ---------------------------------------------------------------------------
# Written numbers
# ---------------------------------------------------------------------------

# 555.123.4567 (dots are otherwise decimal points, so only this exact shape).
_DOTTED_PHONE = re.compile(
    r"""
    (?<![\w.,])
    (?:\+\d{1,3}[ .])?          # optional country code
    \(?\d{3}\)?\.\d{3}\.\d{4}
    (?![\w]|[.,]\d)
    """,
    re.VERBOSE,
)

_WRITTEN_NUMBER = re.compile(
    r"""
    (?<![\w.,:/+\-$€£¥])       # not glued to a word, decimal, time, sign or currency
    (?P<plus>\+\ ?)?            # international prefix "+" or "+ "
    (?:\(\d+\)|\d+)             # first group: 555 or (555)
    (?:
        [\ -]?\(\d+\)           # a parenthesised group: " (0)"
      | (?:[\ -]|(?<=\)))\d+     # a group after one space or dash, or right
                                #   after ")": " 123" "-4567" "(0)20"
    )*
    (?![\w]|[.,:/-]?\d)         # not followed by a word, decimal or time part
    """,
    re.VERBOSE,
)

# Shapes that are not personal data although they are digit runs.
_ISO_DATE = re.compile(r"(?:19|20)\d\d-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])")
_YEAR_RANGE = re.compile(r"(?:1[89]|20|21)\d\d-(?:1[89]|20|21)\d\d")
_YEAR = re.compile(r"(?:19|20)\d\d")
_SMALL_RANGE = re.compile(r"\d{1,3}-\d{1,3}")  # "10-20", "100-200" (at most 6 digits)

# ---------------------------------------------------------------------------
# Spoken digit runs
# ---------------------------------------------------------------------------

_SPOKEN_DIGIT = rf"(?:(?:double|triple)\s+)?{_DIGIT_WORD}"
_SPOKEN_RUN = re.compile(
    rf"""
    (?<![\w'’-])                       # start of a word ("twenty-one" is not "one")
    (?P<plus>plus\s+)?
    (?P<run>
        {_SPOKEN_DIGIT}
        (?:(?:\s*[,-]\s*|\s+){_SPOKEN_DIGIT})*    # separated by spaces, commas, hyphens
    )
    """,
    re.VERBOSE | re.IGNORECASE,
)
_MULTIPLIER = re.compile(r"\b(double|triple)\s+|\b(?:" + "|".join(_DIGIT_WORDS) + r")\b", re.I)


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _spoken_kind(n_digits: int) -> str | None:
    if n_digits < 4:
        return None
    if n_digits <= 6:
        return "digits"
    if n_digits <= 12:
        return "phone"
    if n_digits <= 19:
        return "card"
    return "digits"


def _written_kind(text: str, has_plus: bool) -> str | None:
    digits = "".join(ch for ch in text if ch.isdigit())
    n = len(digits)
    if n < 4:
        return None
    if not has_plus and (
        _YEAR.fullmatch(text)
        or _ISO_DATE.fullmatch(text)
        or _YEAR_RANGE.fullmatch(text)
        or _SMALL_RANGE.fullmatch(text)
    ):
        return None
    if has_plus and 7 <= n <= 15:
        return "phone"
    if 13 <= n <= 19 and _luhn_ok(digits):
        return "card"
    if n <= 6:
        return "digits"
    if n <= 12:
        return "phone"
    return "digits"


def _count_spoken_digits(run: str) -> int:
    count = 0
    multiplier = 1
    for m in _MULTIPLIER.finditer(run):
        word = m.group(1)
        if word:
            multiplier = 3 if word.lower() == "triple" else 2
        else:
            count += multiplier
            multiplier = 1
    return count


def sanitize_transcript(text: str) -> SanitizedTranscript:
    """Replace e-mails, phone numbers, card numbers and digit codes with tokens.

    Returns the new text and how many of each kind were replaced.  *text* must
    already be ``str`` (bytes are decoded, and decoding errors handled, by the
    caller).
    """
    if not isinstance(text, str):
        raise TypeError(f"sanitize_transcript expects str, got {type(text).__name__}")
    counts = dict.fromkeys(PII_KINDS, 0)

    def redact(kind: str) -> str:
        counts[kind] += 1
        return _TOKEN[kind]

    def written_number(m: re.Match[str]) -> str:
        plus = m.group("plus") or ""
        kind = _written_kind(m.group(0)[len(plus) :], has_plus=bool(plus))
        return m.group(0) if kind is None else redact(kind)

    def spoken_run(m: re.Match[str]) -> str:
        kind = _spoken_kind(_count_spoken_digits(m.group("run")))
        if kind is None:
            return m.group(0)
        plus = m.group("plus") or ""
        if plus and kind != "phone":
            return plus + redact(kind)  # "plus" only belongs to phone numbers
        return redact(kind)

    out = _WRITTEN_EMAIL.sub(lambda m: redact("email"), text)
    out = _SPOKEN_EMAIL.sub(lambda m: redact("email"), out)
    out = _DOTTED_PHONE.sub(lambda m: redact("phone"), out)
    out = _WRITTEN_NUMBER.sub(written_number, out)
    out = _SPOKEN_RUN.sub(spoken_run, out)
    return SanitizedTranscript(text=out, counts=counts)


def speaker_sha256(speaker_id: str) -> str:
    """How a speaker is named where their id must not be: the audit trail, and intake's check for erased speakers.
    One definition for both, so the digest an erasure records is the one intake compares against."""
    return hashlib.sha256(speaker_id.encode("utf-8")).hexdigest()
