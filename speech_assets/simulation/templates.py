"""The sentence templates, as data: a table of templates per kind of sentence, each template a string with slots,
rendered by one function (`render`); `TemplateTable.draw` picks a template and renders it.

    "turn {on|off} the {room} lights"       an inline choice, then a word from ROOMS
    "set the thermostat to {number:15..25} degrees"   a number in 15..25, in words

A seed fixes every draw; the order of a table's templates, of a template's slots and of the draws inside each
slot is what keeps a seed giving the sentences it always gave (tests/simulation/test_sentence_templates.py pins
their digests).  PII sentences are not a table: a phone number or an e-mail address, drawn in a few steps.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from speech_assets.simulation.words import (
    ADJECTIVES,
    ANIMALS,
    CITIES,
    COLOURS,
    CURRENCIES,
    CURRENCY_SINGULAR,
    DAYS,
    DEVICES,
    DIGITS,
    EMAIL_DOMAINS,
    EMAIL_LEADS,
    EMAIL_TLDS,
    FIRST_NAMES,
    FOODS,
    GENRES,
    HOME_COMMANDS,
    JOBS,
    LAST_NAMES,
    MONTHS,
    MOTION_VERBS,
    MUSIC_COMMANDS,
    PHONE_LEADS,
    PLACES,
    RELATIVES,
    ROOMS,
    TASKS,
    THINGS,
    VERBS,
    WEATHER,
    WHEN,
    number_to_words,
    year_words,
)


# ---------------------------------------------------------------- helpers --
def _pick(rng: random.Random, seq):
    return seq[rng.randrange(len(seq))]


def _a(word: str) -> str:
    return ("an " if word[0] in "aeiou" else "a ") + word


def _spoken_digit(rng: random.Random, d: int) -> str:
    if d == 0 and rng.random() < 0.4:
        return "oh"
    return DIGITS[d]


def _digit_run(rng: random.Random, n: int, first_nonzero: bool = False) -> str:
    out = []
    for i in range(n):
        d = rng.randrange(1, 10) if (first_nonzero and i == 0) else rng.randrange(10)
        out.append(_spoken_digit(rng, d))
    return " ".join(out)


def _count_noun(n: int, singular: str, plural: str) -> str:
    return f"{number_to_words(n)} {singular if n == 1 else plural}"


# ------------------------------------------------------------------ slots --
# A slot is what a template leaves open: `{name}` is filled by SLOTS[name](rng), `{name:LO..HI}` by
# RANGED_SLOTS[name](rng, LO, HI) with LO and HI inclusive, and `{this|that|}` by one of its alternatives (the
# empty one too).  Each fill is one or a few seeded draws; a template's slots are filled left to right, so the
# order of the slots in a template is the order of its draws.
Slot = Callable[[random.Random], str]


def _word(seq) -> Slot:
    return lambda rng: _pick(rng, seq)


def _form(pairs, i: int) -> Slot:
    """The singular (0) or plural (1) of a (singular, plural) pair; the base (0) or past (1) of a verb pair."""
    return lambda rng: _pick(rng, pairs)[i]


def _price(rng: random.Random) -> str:
    amount = rng.randrange(1, 500)
    cents = rng.randrange(1, 100)
    unit, sub = _pick(rng, CURRENCIES)
    return f"{_count_noun(amount, CURRENCY_SINGULAR[unit], unit)} and {number_to_words(cents)} {sub}"


def _short_digit_run(rng: random.Random) -> str:
    # At most three digits: intake redacts spoken runs of four or more (PINs, phone and card numbers) to
    # tokens, which would leave the transcript no longer matching the audio.
    return _digit_run(rng, rng.randrange(1, 4))


def _counted_things(rng: random.Random, lo: int, hi: int) -> str:
    singular, plural = _pick(rng, THINGS)
    return _count_noun(rng.randrange(lo, hi + 1), singular, plural)


SLOTS: dict[str, Slot] = {
    "name": _word(FIRST_NAMES),
    "other_name": _word(FIRST_NAMES),
    "last_name": _word(LAST_NAMES),
    "relative": _word(RELATIVES),
    "job": _word(JOBS),
    "a_job": lambda rng: _a(_pick(rng, JOBS)),
    "room": _word(ROOMS),
    "device": _word(DEVICES),
    "city": _word(CITIES),
    "food": _word(FOODS),
    "adjective": _word(ADJECTIVES),
    "colour": _word(COLOURS),
    "day": _word(DAYS),
    "month": _word(MONTHS),
    "when": _word(WHEN),
    "genre": _word(GENRES),
    "task": _word(TASKS),
    "weather": _word(WEATHER),
    "music_command": _word(MUSIC_COMMANDS),
    "home_command": _word(HOME_COMMANDS),
    "thing": _form(THINGS, 0),
    "things": _form(THINGS, 1),
    "place": _form(PLACES, 0),
    "places": _form(PLACES, 1),
    "animal": _form(ANIMALS, 0),
    "animals": _form(ANIMALS, 1),
    "verb": _form(VERBS, 0),
    "verb_past": _form(VERBS, 1),
    "motion": _form(MOTION_VERBS, 0),
    "motion_past": _form(MOTION_VERBS, 1),
    "digit_run": _short_digit_run,
    "price": _price,
    "hour": lambda rng: number_to_words(rng.randrange(1, 13)),
    "minute": lambda rng: number_to_words(rng.choice((10, 15, 20, 30, 40, 45, 50))),
    "clock_time": lambda rng: CLOCK_TIMES.draw(rng),
}
RANGED_SLOTS: dict[str, Callable[[random.Random, int, int], str]] = {
    "number": lambda rng, lo, hi: number_to_words(rng.randrange(lo, hi + 1)),
    "tens": lambda rng, lo, hi: number_to_words(rng.randrange(lo, hi + 1) * 10),
    "year": lambda rng, lo, hi: year_words(rng.randrange(lo, hi + 1)),
    "minutes": lambda rng, lo, hi: _count_noun(rng.randrange(lo, hi + 1), "minute", "minutes"),
    "counted_things": _counted_things,
}
SLOT_RE = re.compile(r"\{([^{}]*)\}")


def _fill(slot: str, rng: random.Random, drawn: Mapping[str, str]) -> str:
    if slot in drawn:
        return drawn[slot]
    if "|" in slot:
        return _pick(rng, slot.split("|"))
    name, _, bounds = slot.partition(":")
    if bounds:
        lo, hi = bounds.split("..")
        return RANGED_SLOTS[name](rng, int(lo), int(hi))
    return SLOTS[name](rng)


def render(template: str, rng: random.Random, drawn: Mapping[str, str] | None = None) -> str:
    """`template` with its slots filled left to right; a slot named in `drawn` takes that value, drawing nothing.

    >>> render("turn {on|off} the {room} lights", random.Random(0), {"room": "kitchen"})
    'turn off the kitchen lights'
    """
    drawn = drawn or {}
    return SLOT_RE.sub(lambda m: _fill(m.group(1), rng, drawn), template)


@dataclass(frozen=True)
class TemplateTable:
    """A kind of sentence (or phrase): one of `templates`, chosen uniformly, rendered with `render`.

    `drawn_before` and `drawn_after` are slots drawn once whether the chosen template uses them or not, before
    and after the template is chosen; a template that names one gets that value.  They exist so a seed keeps
    giving the sentences it always gave: those draws happen where the generator always made them.
    """

    templates: tuple[str, ...]
    drawn_before: tuple[str, ...] = ()
    drawn_after: tuple[str, ...] = ()

    def draw(self, rng: random.Random) -> str:
        drawn = {name: SLOTS[name](rng) for name in self.drawn_before}
        template = self.templates[rng.randrange(len(self.templates))]
        drawn.update({name: SLOTS[name](rng) for name in self.drawn_after})
        return render(template, rng, drawn)


# --------------------------------------------------------------- templates --
# Literal words used in templates must be listed in TEMPLATE_WORDS below (the test-suite checks every
# template's words and samples sentences against vocabulary()).  The order of a table's templates is part of
# what a seed means: append, never reorder.

CLOCK_TIMES = TemplateTable(
    (
        "{hour} o'clock",
        "half past {hour}",
        "quarter past {hour}",
        "quarter to {hour}",
        "{hour} {minute}",
        "{hour} {in the morning|in the evening|at night|pm|am}",
    ),
    drawn_before=("hour",),
)

DIGIT_SENTENCES = TemplateTable(
    (
        "{digit_run}",
        "my order number is {digit_run}",
        "the code is {digit_run}",
        "reference {digit_run}",
    ),
    drawn_after=("digit_run",),
)

NUMBER_SENTENCES = TemplateTable(
    (
        "{number:0..9999}",
        "that will be {price}",
        "the meeting starts at {clock_time}",
        "i was born in {year:1940..2023}",
        "we need {counted_things:2..99}",
        "the temperature is {number:0..39} degrees",
        "it is {number:2..299} miles from here to {city}",
        "the train leaves from platform {number:1..19} at {clock_time}",
    ),
)

COMMANDS = TemplateTable(
    (
        "turn {on|off} the {room} lights",
        "turn {on|off} the {device}",
        "set a timer for {minutes:1..60}",
        "set an alarm for {clock_time}",
        "play some {genre} music",
        "{music_command}",
        "call {name} {|on speaker|at home|at work}",
        "what is the weather like in {city} {when}",
        "remind me to {task} {when}",
        "add {food} to my shopping list",
        "dim the {room} lights to {tens:1..9} percent",
        "{home_command}",
        "navigate to the nearest {place}",
        "send a message to {name} saying i will be {late|home soon|there in ten minutes|at the station}",
        "set the thermostat to {number:15..25} degrees",
        "how long will it take to drive to {city}",
        "is it going to be {weather} {when}",
        "order more {food} for {day}",
        "what is on my calendar for {day}",
        "book a table for {number:2..8} at {clock_time}",
        "show me pictures of {animals}",
        "how do you spell {adjective}",
        "where is the closest {place} that is open {when}",
        "put the {device} in the {room} on standby",
    ),
    drawn_after=("room",),
)

OPEN_SENTENCES = TemplateTable(
    (
        "{name} {verb_past} the {adjective} {thing} at the {place}",
        "i think the {thing} in the {room} is {adjective}",
        "we should visit {city} in {month}",
        "my {relative} works as {a_job} near the {place}",
        "the {adjective} {animal} {motion_past} across the {place} {when}",
        "did you remember to {verb} the {thing} before {lunch|dinner|breakfast|the meeting|the party}",
        "there are {number:2..19} {things} on the {table|shelf|floor|bench|sofa}",
        "{name} and {other_name} {motion_past} to the {place} {when}",
        "could you please {verb} my {thing}",
        "the {job} said the {thing} was too {adjective}",
        "i would like some {food} and {food} please",
        "it was very {weather} in {city} {when}",
        "{name} {last_name} is a {adjective} {job} from {city}",
        "have you seen my {colour} {thing}",
        "the {animals} are sleeping under the {thing}",
        "we are going to {verb} the {things} on {day}",
        "she {always|never|sometimes|often|usually} {motion_past} to the {place} with her {relative}",
        "he can't find the {adjective} {thing} he {verb_past} {when}",
        "they don't know where the {place} is",
        "my {relative} cooked {food} with {food} for dinner",
        "it's a {adjective} day for a walk by the {river|lake|sea|beach|harbour}",
        "i'll {verb} the {thing} and meet you at the {place}",
        "there are {number:2..29} {places} in {city}",
        "i like to {motion} to the {place} {when}",
    ),
    drawn_after=("name",),
)

#: The template table of each kind but ``pii``.
TABLES: dict[str, TemplateTable] = {
    "digits": DIGIT_SENTENCES,
    "number": NUMBER_SENTENCES,
    "command": COMMANDS,
    "open": OPEN_SENTENCES,
}

def pii_sentence(rng: random.Random) -> str:
    # Not a table: a phone number or an e-mail address, each built from several draws (see the module doc).
    if rng.random() < 0.55:
        digits = _digit_run(rng, rng.randrange(7, 11), first_nonzero=rng.random() < 0.5)
        return f"{_pick(rng, PHONE_LEADS)} {digits}"
    first, last = _pick(rng, FIRST_NAMES), _pick(rng, LAST_NAMES)
    sep = _pick(rng, ("dot", "underscore", ""))
    local = f"{first} {sep} {last}" if sep else f"{first} {last}"
    if rng.random() < 0.3:
        local += " " + _digit_run(rng, rng.randrange(1, 3))
    address = f"{local} at {_pick(rng, EMAIL_DOMAINS)} dot {_pick(rng, EMAIL_TLDS)}"
    return f"{_pick(rng, EMAIL_LEADS)} {address}"


#: kind -> the function that draws one sentence of that kind
GENERATORS: dict[str, Slot] = {**{kind: table.draw for kind, table in TABLES.items()}, "pii": pii_sentence}


#: Literal words the templates above use (besides the word lists).
TEMPLATE_WORDS = tuple(
    """
    my order number is the code reference hundred and thousand oh that will be
    dollar dollars cents pound pounds pence euro euros meeting starts at i was
    born in we need temperature degrees it miles from here to train leaves
    platform o'clock half past quarter pm am turn on off lights set a timer
    for minute minutes an alarm play some music next song pause skip this stop
    volume up down what call speaker home work weather like remind me add
    shopping list dim percent time date today read new messages lock front
    door unlock back open garage close curtains start dishwasher cancel how
    are you tell joke good night navigate nearest send message saying will
    late soon there ten station thermostat long take drive going be more
    calendar book table show pictures of do spell where closest put standby
    think should visit works as near across did remember before lunch dinner
    breakfast party are on shelf floor bench sofa could please said too would
    some very seen have sleeping under going she always never sometimes often
    usually with her he can't find they don't know cooked day walk by sea
    beach harbour river lake it's i'll meet rent again can like
    call mobile ring email address write underscore dot reach text phone
    at in morning evening
    """.split()
)
