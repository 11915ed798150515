"""Text normalisation to the platform alphabet: lower-case a-z, the apostrophe and single spaces.

One normaliser for every transcript the platform trains on and every hypothesis it scores, whoever wrote it: a
corpus (Common Voice, NeMo manifests, LibriSpeech), Whisper (cased, punctuated, digits: "Eight of spades, four of
clubs.", "Mr. John Dashwood", "$5", "10 meters") or the CTC model. Two texts that say the same words normalise to
the same string, so a word error rate measures words, not spelling conventions.

:func:`normalize_text` (for references and training targets; raises :class:`Unnormalisable` instead of losing
letters), in this order:

* Unicode: NFKD, then combining accents dropped (``café`` -> ``cafe``, ``naïve`` -> ``naive``); Latin letters with no
  decomposition spelled out (``ß`` -> ``ss``, ``æ`` -> ``ae``, ``ø`` -> ``o``, ``ł`` -> ``l``); curly and other
  apostrophe look-alikes (``’ ‘ ʼ ´ `` ``) -> ``'``; digits of any script -> ``0-9``; ``½ ¼ ¾ ⅓ ⅔`` -> words.
  A letter that has no a-z spelling (Cyrillic, Greek, CJK, IPA, ...) raises, reason ``non_latin_script`` (a letter
  of another script) or ``unmappable_letter`` (a Latin or modifier letter such as ``ə``).
* e-mail addresses and web domains: ``jane.doe@example.com`` -> ``jane dot doe at example dot com``.
* abbreviations, only when written with their period (or, for titles, capitalised before a capitalised name, as in
  British "Mr Smith"): ``Mr.`` mister, ``Mrs.`` missus, ``Ms.`` miss, ``Dr.`` doctor, ``Prof.`` professor,
  ``St.`` saint, ``Mt.`` mount, ``Jr.`` junior, ``Sr.`` senior, ``vs.`` versus, ``etc.`` et cetera, ``e.g.`` for
  example, ``i.e.`` that is, ``No. 5`` number five, and a few more (``_ABBREVIATIONS``). ``St.`` and ``Dr.`` after a
  capitalised word and not before one are the street and the drive ("Baker St." -> "baker street").
* numbers, to words (American style, no "and"): integers with or without thousands separators (``1,000`` -> one
  thousand), decimals (``3.5`` -> three point five), ordinals (``21st`` -> twenty first), four-digit numbers
  1100-2099 standing alone as years (``1999`` -> nineteen ninety nine, ``2005`` -> two thousand five), decades
  (``1990s`` -> nineteen nineties, ``'90s`` -> nineties), percentages, money (``$5`` -> five dollars, ``£3.50`` ->
  three pounds fifty pence, ``€2 million`` -> two million euros), times (``10:30`` -> ten thirty, ``10:05`` -> ten oh
  five, ``10:00`` -> ten o'clock, ``7pm`` -> seven p m), a few units after a number (``5 km`` -> five kilometers),
  ``-5`` -> minus five. A number with a leading zero (``007``) or of more than 21 digits is read digit by digit.
* symbols: ``&`` and, ``+`` plus, ``=`` equals, ``@`` at, ``%`` percent, ``°`` degrees (``°C`` degrees celsius),
  ``×`` times.
* case folded; hyphens, dashes and every other punctuation mark become a space (``cold-hearted`` -> cold hearted);
  an apostrophe survives only between two letters (``don't``, ``o'clock``, ``it's``): quotes ``'like this'`` go.
  Contractions stay as written: Whisper writes "it's" and the references write "it's".
* spaces collapsed and stripped; a text that is then empty raises, reason ``empty_after_normalisation``.

Properties (tested): the result is always :func:`is_normalised`; normalising twice equals normalising once; a text
that :func:`is_normalised` already is comes back unchanged (the simulated corpus is such text, so its scores do not
move). Every rule above that rewrites words needs a digit, a symbol, a period or a capital letter to fire, none of
which normalised text holds.

:func:`normalize_for_scoring` is the same without the refusals, for hypotheses: letters it cannot spell become word
breaks and an empty result is ``""``; it never raises, so a model's odd output is scored, not crashed on.

Pure standard library.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = [
    "ALPHABET",
    "EMPTY_AFTER_NORMALISATION",
    "NON_LATIN_SCRIPT",
    "REASONS",
    "UNMAPPABLE_LETTER",
    "Unnormalisable",
    "is_normalised",
    "normalize_for_scoring",
    "normalize_text",
]

#: Every character normalised text may hold (the CTC model's output alphabet, blank aside).
ALPHABET: frozenset[str] = frozenset("abcdefghijklmnopqrstuvwxyz' ")

NON_LATIN_SCRIPT = "non_latin_script"
UNMAPPABLE_LETTER = "unmappable_letter"
EMPTY_AFTER_NORMALISATION = "empty_after_normalisation"
#: Every :attr:`Unnormalisable.reason`.
REASONS: tuple[str, ...] = (NON_LATIN_SCRIPT, UNMAPPABLE_LETTER, EMPTY_AFTER_NORMALISATION)


class Unnormalisable(ValueError):
    """The text cannot be written in the platform alphabet without losing what it says.

    ``reason`` is one of :data:`REASONS` (a short machine code for counting); ``chars`` the distinct letters that
    have no a-z spelling (empty for ``empty_after_normalisation``); ``str(exc)`` says it for a person. The text
    itself is not kept on the exception: transcripts may hold personal data, and exceptions end up in logs.
    """

    def __init__(self, reason: str, message: str, chars: tuple[str, ...] = ()):
        super().__init__(message)
        self.reason = reason
        self.chars = tuple(chars)


_WORD = r"[a-z]+(?:'[a-z]+)*"
_NORMALISED = re.compile(rf"{_WORD}(?: {_WORD})*")


def is_normalised(text: object) -> bool:
    """True when ``text`` is a non-empty string of words of a-z, single-spaced, apostrophes only inside words.

    Exactly the strings :func:`normalize_text` returns, and the ones it returns unchanged.
    """
    return isinstance(text, str) and _NORMALISED.fullmatch(text) is not None


def normalize_text(text: str) -> str:
    """``text`` in the platform alphabet (see the module docstring for every rule).

    Raises :class:`Unnormalisable` when ``text`` holds a letter with no a-z spelling (never dropped silently) or
    nothing is left; TypeError when ``text`` is not a string. Idempotent; the identity on :func:`is_normalised` text.
    """
    if not isinstance(text, str):
        raise TypeError(f"normalize_text takes a str, got {type(text).__name__}")
    if is_normalised(text):  # the common case (simulated and already-imported corpora): no work, no risk
        return text
    return _normalise(text, strict=True)


def normalize_for_scoring(text: str | None) -> str:
    """Like :func:`normalize_text` but never raises: for scoring hypotheses.

    Letters with no a-z spelling become word breaks, ``None`` and text with nothing left give ``""``; a non-string
    is read as ``str(text)``.
    """
    if text is None:
        return ""
    if not isinstance(text, str):
        text = str(text)
    if is_normalised(text):
        return text
    return _normalise(text, strict=False)


def _normalise(text: str, *, strict: bool) -> str:
    s = _fold_unicode(text, strict)
    s = _spell_out(s)
    s = _to_alphabet(s)
    if not s and strict:
        raise Unnormalisable(
            EMPTY_AFTER_NORMALISATION,
            "the transcript holds no word once punctuation and symbols are removed",
        )
    return s


# ----------------------------------------------------------------- unicode --
# Mapped before NFKD, which would otherwise turn the acute accent used as an apostrophe into a space and a
# combining mark, and leave dashes and symbols as punctuation to be dropped. Mapped after it too, for characters
# NFKD produces (``ŉ`` -> ``ʼn``).
_CHAR_MAP = str.maketrans({
    "\u2019": "'", "\u2018": "'", "\u201b": "'", "\u02bc": "'", "\u02bb": "'", "\u02b9": "'", "\u00b4": "'",
    "`": "'", "\u2032": "'", "\uff07": "'",
    "\u2010": "-", "\u2011": "-", "\u2212": "-", "\ufe63": "-", "\uff0d": "-",
    "\u2012": " ", "\u2013": " ", "\u2014": " ", "\u2015": " ", "\u2e3a": " ", "\u2e3b": " ",
    "\u00d7": " times ", "\u00f7": " divided by ", "\u00b1": " plus or minus ",
    "\u2103": " degrees C ", "\u2109": " degrees F ", "\u00b0": " degrees ", "\u00ba": " degrees ",
    "\u2122": " ", "\u2120": " ", "\u00a9": " ", "\u00ae": " ",
})  # fmt: skip

# Latin letters NFKD leaves whole; each spelled as English spells the loanwords and names that carry it.
_LATIN_LETTERS = {
    "ß": "ss", "ẞ": "SS", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ø": "o", "Ø": "O",
    "đ": "d", "Đ": "D", "ð": "d", "Ð": "D", "þ": "th", "Þ": "TH", "ł": "l", "Ł": "L", "ı": "i",
    "ħ": "h", "Ħ": "H", "ŧ": "t", "Ŧ": "T",
}  # fmt: skip

# Currency signs outside ASCII survive the fold so the number pass can read "£3" as "three pounds".
_KEPT_SYMBOLS = frozenset("£€¥₹¢")

_FRACTIONS = {  # after a digit ("2½" two and a half), alone ("½ cup")
    "½": ("a half", "one half"),
    "¼": ("a quarter", "one quarter"),
    "¾": ("three quarters", "three quarters"),
    "⅓": ("a third", "one third"),
    "⅔": ("two thirds", "two thirds"),
}
_FRACTION_AFTER_DIGIT = re.compile(r"(?<=\d)\s?([½¼¾⅓⅔])")
_FRACTION = re.compile(r"[½¼¾⅓⅔]")


def _fold_unicode(text: str, strict: bool) -> str:
    """ASCII (plus the currency signs of _KEPT_SYMBOLS), or Unnormalisable (strict) for letters with no spelling."""
    s = _FRACTION_AFTER_DIGIT.sub(lambda m: f" and {_FRACTIONS[m.group(1)][0]} ", text)
    s = _FRACTION.sub(lambda m: f" {_FRACTIONS[m.group(0)][1]} ", s)
    s = unicodedata.normalize("NFKD", s.translate(_CHAR_MAP)).translate(_CHAR_MAP)
    out: list[str] = []
    bad: dict[str, None] = {}
    for ch in s:
        if ch < "\x80":
            out.append(ch if ch.isprintable() else " ")  # tabs, newlines, control bytes: word breaks
        elif ch in _LATIN_LETTERS:
            out.append(_LATIN_LETTERS[ch])
        elif ch in _KEPT_SYMBOLS:
            out.append(ch)
        else:
            cat = unicodedata.category(ch)
            if cat in ("Mn", "Me", "Cf"):  # accents split off by NFKD; soft hyphens, zero-width joiners, BOMs
                continue
            if cat == "Nd":
                out.append(str(unicodedata.decimal(ch)))
            elif cat.startswith("L"):
                bad[ch] = None
                out.append(" ")
            else:  # punctuation, symbols, emoji, separators: no letters to lose
                out.append(" ")
    if bad and strict:
        chars = tuple(bad)
        reason = UNMAPPABLE_LETTER if all(_is_latin_or_modifier(c) for c in chars) else NON_LATIN_SCRIPT
        shown = ", ".join(f"{c!r} ({unicodedata.name(c, 'unnamed')})" for c in chars[:5])
        more = f" and {len(chars) - 5} more" if len(chars) > 5 else ""
        raise Unnormalisable(
            reason, f"the transcript holds letters with no spelling in a-z: {shown}{more}", chars
        )
    return "".join(out)


def _is_latin_or_modifier(ch: str) -> bool:
    name = unicodedata.name(ch, "")
    return name.startswith("LATIN ") or unicodedata.category(ch) == "Lm"


# ------------------------------------------------------------ e-mail, web --
_TLDS = "com net org edu gov mil io co uk de fr nl ca au info biz ai dev app eu tv xyz".split()
_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?!\w)")
# A dotted name counts as a web domain only when it ends in a known top-level domain, so "U.S." and "e.g." do not.
_DOMAIN = re.compile(rf"(?<![\w.@-])(?:[A-Za-z0-9-]+\.)+(?:{'|'.join(_TLDS)})(?!\w|\.\w)", re.IGNORECASE)
_EMAIL_SPOKEN = str.maketrans({".": " dot ", "@": " at ", "_": " underscore ", "-": " dash ", "+": " plus "})


def _spell_addresses(s: str) -> str:
    if "@" in s:  # both patterns scan ahead from every start: skip them when they cannot match
        s = _EMAIL.sub(lambda m: f" {m.group(0).translate(_EMAIL_SPOKEN)} ", s)
    if "." in s:
        s = _DOMAIN.sub(lambda m: f" {m.group(0).replace('.', ' dot ')} ", s)
    return s


# ----------------------------------------------------------- abbreviations --
_ABBREVIATIONS = {
    "mr": "mister", "mrs": "missus", "ms": "miss", "dr": "doctor", "prof": "professor", "st": "saint",
    "mt": "mount", "jr": "junior", "sr": "senior", "vs": "versus", "etc": "et cetera", "e.g": "for example",
    "i.e": "that is", "capt": "captain", "lt": "lieutenant", "col": "colonel", "sgt": "sergeant",
    "rev": "reverend", "approx": "approximately", "dept": "department", "ave": "avenue", "blvd": "boulevard",
    "ltd": "limited",
}  # fmt: skip
_PLACE_SENSE = {"st": "street", "dr": "drive"}
_ALTERNATION = "|".join(re.escape(k) for k in sorted(_ABBREVIATIONS, key=len, reverse=True))
# Not inside a word or after another period ("x.i.e."), nor a unit after a number ("5 ms.").
_ABBREV_DOTTED = re.compile(rf"(?<![A-Za-z0-9'.])(?<!\d\s)({_ALTERNATION})\.", re.IGNORECASE)
# British titles have no period; only a capitalised title before a capitalised name counts, so lower-case words
# ("st", "dr" in normalised text) are never touched.
_TITLE_UNDOTTED = re.compile(r"(?<![A-Za-z0-9'.])(Mr|Mrs|Ms|Dr|Prof|St|MR|MRS|MS|DR|PROF|ST)(?=\s+[A-Z])")
_NUMBER_ABBREV = re.compile(r"(?<![A-Za-z0-9'.])(no|nos)\.\s?(?=\d)", re.IGNORECASE)
_NAME_BEFORE = re.compile(r"[A-Z][a-z]+\s+$")
_NAME_AFTER = re.compile(r"\s+[A-Z]")


def _expand_abbreviation(m: re.Match) -> str:
    key = m.group(1).lower()
    if key in _PLACE_SENSE and not _NAME_AFTER.match(m.string, m.end()) \
            and _NAME_BEFORE.search(m.string[max(0, m.start() - 40):m.start()]):
        return f" {_PLACE_SENSE[key]} "  # "Baker St." is a street, "St. Paul" a saint
    return f" {_ABBREVIATIONS[key]} "


def _spell_abbreviations(s: str) -> str:
    if "." in s:
        s = _NUMBER_ABBREV.sub(lambda m: " numbers " if m.group(1).lower() == "nos" else " number ", s)
        s = _ABBREV_DOTTED.sub(_expand_abbreviation, s)
    return _TITLE_UNDOTTED.sub(_expand_abbreviation, s)


# ----------------------------------------------------------------- numbers --
_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = ("", "thousand", "million", "billion", "trillion", "quadrillion", "quintillion")
_MAX_CARDINAL_DIGITS = 3 * len(_SCALES)  # 21: longer digit strings are identifiers, read digit by digit
_ORDINAL_WORDS = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
                  "nine": "ninth", "twelve": "twelfth"}


def _below_thousand(n: int) -> list[str]:
    words: list[str] = []
    hundreds, rest = divmod(n, 100)
    if hundreds:
        words += [_ONES[hundreds], "hundred"]
    if rest >= 20:
        tens, unit = divmod(rest, 10)
        words.append(_TENS[tens])
        if unit:
            words.append(_ONES[unit])
    elif rest or not words:
        words.append(_ONES[rest])
    return words


def _cardinal(n: int) -> str:
    """'one thousand two hundred thirty four': no "and", as Whisper's American spelling has it."""
    if n == 0:
        return "zero"
    words: list[str] = []
    groups: list[int] = []
    while n:
        n, group = divmod(n, 1000)
        groups.append(group)
    for scale, group in reversed(list(enumerate(groups))):
        if group:
            words += _below_thousand(group)
            if _SCALES[scale]:
                words.append(_SCALES[scale])
    return " ".join(words)


def _year(n: int) -> str:
    """1100-2099 as a year is said: 'nineteen ninety nine', 'nineteen oh five', 'two thousand five'."""
    hi, lo = divmod(n, 100)
    if 2000 <= n < 2010:
        return _cardinal(n)
    if lo == 0:
        return f"{_cardinal(hi)} hundred"
    if lo < 10:
        return f"{_cardinal(hi)} oh {_ONES[lo]}"
    return f"{_cardinal(hi)} {_cardinal(lo)}"


def _digit_by_digit(digits: str) -> str:
    return " ".join(_ONES[int(d)] for d in digits)


def _ordinal(words: str) -> str:
    head, _, last = words.rpartition(" ")
    if last in _ORDINAL_WORDS:
        last = _ORDINAL_WORDS[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return f"{head} {last}" if head else last


def _plural(words: str) -> str:
    head, _, last = words.rpartition(" ")
    if last.endswith("y"):
        last = last[:-1] + "ies"
    elif last.endswith("x"):
        last += "es"
    else:
        last += "s"
    return f"{head} {last}" if head else last


def _number_words(text: str, *, year: bool = False) -> str:
    """A written number (``1,234.5``, ``007``, ``.5``, ``2.0.1``) in words; ``year`` reads a lone 1100-2099 as a year."""
    whole, _, frac = text.partition(".")
    digits = whole.replace(",", "")
    if not digits:
        words = ""
    elif len(digits) > _MAX_CARDINAL_DIGITS or ("," not in whole and len(digits) > 1 and digits[0] == "0"):
        words = _digit_by_digit(digits)
    elif year and not frac and "," not in whole and len(digits) == 4 and 1100 <= int(digits) <= 2099:
        words = _year(int(digits))
    else:
        words = _cardinal(int(digits))
    for part in frac.split(".") if frac else ():
        words = f"{words} point {_digit_by_digit(part)}".strip()
    return words


# sign -> (unit, units, sub-unit, sub-units)
_CURRENCIES = {
    "$": ("dollar", "dollars", "cent", "cents"),
    "£": ("pound", "pounds", "penny", "pence"),
    "€": ("euro", "euros", "cent", "cents"),
    "¥": ("yen", "yen", None, None),
    "₹": ("rupee", "rupees", "paisa", "paise"),
    "¢": ("cent", "cents", None, None),
}
_MONEY_SCALES = {"k": "thousand", "m": "million", "b": "billion", "bn": "billion", "thousand": "thousand",
                 "million": "million", "billion": "billion", "trillion": "trillion"}
_UNITS = {
    "km/h": ("kilometer per hour", "kilometers per hour"), "kph": ("kilometer per hour", "kilometers per hour"),
    "mph": ("mile per hour", "miles per hour"), "km": ("kilometer", "kilometers"), "cm": ("centimeter", "centimeters"),
    "mm": ("millimeter", "millimeters"), "kg": ("kilogram", "kilograms"), "mg": ("milligram", "milligrams"),
    "ml": ("milliliter", "milliliters"), "lbs": ("pound", "pounds"), "lb": ("pound", "pounds"),
    "oz": ("ounce", "ounces"), "ft": ("foot", "feet"), "kb": ("kilobyte", "kilobytes"),
    "mb": ("megabyte", "megabytes"), "gb": ("gigabyte", "gigabytes"), "tb": ("terabyte", "terabytes"),
    "khz": ("kilohertz", "kilohertz"), "mhz": ("megahertz", "megahertz"), "ghz": ("gigahertz", "gigahertz"),
    "hz": ("hertz", "hertz"), "mins": ("minute", "minutes"), "min": ("minute", "minutes"),
    "hrs": ("hour", "hours"), "hr": ("hour", "hours"), "secs": ("second", "seconds"), "sec": ("second", "seconds"),
}  # fmt: skip
_UNIT_ALTERNATION = "|".join(re.escape(u) for u in sorted(_UNITS, key=len, reverse=True))

_INT = r"\d{1,3}(?:,\d{3})+(?!\d)|\d+"
_NUM = rf"(?:{_INT})(?:\.\d+)*"  # "2.0.1" (a version) too
_AMPM = r"(?P<{0}>[ap])\.?m(?![a-z])\.?"
_NUMBERS = re.compile(
    rf"""
      (?P<money>(?P<cur>[$£€¥₹])\s?(?P<mnum>{_NUM})
          (?:\s?(?P<mscale>thousand|million|billion|trillion|bn|k|m|b)(?![a-z]))?)
    | (?P<time>(?<![\d:.,])(?P<th>\d{{1,2}}):(?P<tm>[0-5]\d)(?::(?P<ts>[0-5]\d))?(?![\d:])
          (?:\s?{_AMPM.format("tap")})?)
    | (?P<clock>(?<![\d:.,])(?P<ch>\d{{1,2}})\s?{_AMPM.format("cap")})
    | (?P<ordinal>(?P<onum>{_INT})(?P<osuf>st|nd|rd|th)(?![a-z]))
    | (?P<decade>(?P<dap>')?(?P<dnum>\d+)'?s(?![a-z']))
    | (?P<number>(?P<hash>\#\s?)?(?P<neg>(?<![\w.,])-)?(?P<num>{_NUM}|(?<![\w.])\.\d+)
          (?:\s?(?P<post>%|[$£€¥₹¢])|\s?(?P<unit>{_UNIT_ALTERNATION})(?![a-z]))?)
    """,
    re.VERBOSE | re.IGNORECASE,
)


def _money(number: str, sign: str, scale: str | None) -> str:
    unit, units, sub, subs = _CURRENCIES[sign]
    if scale:  # "$5 million": five million dollars
        return f"{_number_words(number)} {_MONEY_SCALES[scale.lower()]} {units}"
    whole, _, frac = number.partition(".")
    if sub and len(frac) == 2:  # "$5.50": five dollars fifty cents
        n, cents = int(whole.replace(",", "") or 0), int(frac)
        parts = []
        if n or not cents:
            parts.append(f"{_cardinal(n)} {unit if n == 1 else units}")
        if cents:
            parts.append(f"{_cardinal(cents)} {sub if cents == 1 else subs}")
        return " ".join(parts)
    return f"{_number_words(number)} {unit if number == '1' else units}"


def _time(m: re.Match) -> str:
    hour, minutes, seconds, ampm = m.group("th"), m.group("tm"), m.group("ts"), m.group("tap")
    words = [_cardinal(int(hour))]
    for part in (minutes, seconds):
        if part is None or part == "00":
            continue
        words.append(f"oh {_ONES[int(part[1])]}" if part[0] == "0" else _cardinal(int(part)))
    if minutes == "00" and not seconds and not ampm:
        words.append("o'clock")
    if ampm:
        words.append(f"{ampm.lower()} m")
    return " ".join(words)


def _spell_number(m: re.Match) -> str:
    if m.group("money"):
        words = _money(m.group("mnum"), m.group("cur"), m.group("mscale"))
    elif m.group("time"):
        words = _time(m)
    elif m.group("clock"):
        words = f"{_cardinal(int(m.group('ch')))} {m.group('cap').lower()} m"
    elif m.group("ordinal"):
        words = _ordinal(_cardinal(int(m.group("onum").replace(",", ""))))
    elif m.group("decade"):
        digits = m.group("dnum")
        words = _plural(_cardinal(int(digits)) if m.group("dap") else _number_words(digits, year=True))
    else:
        number, post, unit = m.group("num"), m.group("post"), m.group("unit")
        plain = not (post or unit or m.group("neg") or m.group("hash"))
        words = _number_words(number, year=plain)
        if post == "%":
            words += " percent"
        elif post:
            words = _money(number, post, None)
        elif unit:
            one, many = _UNITS[unit.lower()]
            words += f" {one if number == '1' else many}"
        if m.group("neg"):
            words = f"minus {words}"
        if m.group("hash"):
            words = f"number {words}"
    return f" {words} "


# ----------------------------------------------------------------- symbols --
_SYMBOLS = str.maketrans({"&": " and ", "+": " plus ", "=": " equals ", "@": " at ", "%": " percent "})
_TEMPERATURE = re.compile(r"\bdegrees\s+([CF])\b")  # capital only: "degrees c" in normalised text stays


def _spell_out(s: str) -> str:
    s = _spell_addresses(s)
    s = _spell_abbreviations(s)
    s = _NUMBERS.sub(_spell_number, s)
    s = _TEMPERATURE.sub(lambda m: "degrees celsius" if m.group(1) == "C" else "degrees fahrenheit", s)
    return s.translate(_SYMBOLS)


_NOT_ALPHABET = re.compile(r"[^a-z']+")
_APOSTROPHES = re.compile(r"'+")
_EDGE_APOSTROPHE = re.compile(r"(?<![a-z])'|'(?![a-z])")


def _to_alphabet(s: str) -> str:
    s = _NOT_ALPHABET.sub(" ", s.lower())
    s = _EDGE_APOSTROPHE.sub(" ", _APOSTROPHES.sub("'", s))
    return " ".join(s.split())
