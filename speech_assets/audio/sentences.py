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
can emit.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator, Mapping
from functools import lru_cache

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


def _w(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# ---------------------------------------------------------------- numbers --
DIGITS = _w("zero one two three four five six seven eight nine")
_TEENS = _w(
    "ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen"
)
_TENS = _w("twenty thirty forty fifty sixty seventy eighty ninety")


def number_to_words(n: int) -> str:
    """Spell a non-negative integer below one million in British-style words.

    >>> number_to_words(347)
    'three hundred and forty seven'
    """
    if n < 0 or n >= 1_000_000:
        raise ValueError(f"number out of range: {n}")
    if n < 10:
        return DIGITS[n]
    if n < 20:
        return _TEENS[n - 10]
    if n < 100:
        tens, unit = divmod(n, 10)
        return _TENS[tens - 2] + ("" if unit == 0 else " " + DIGITS[unit])
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        head = DIGITS[hundreds] + " hundred"
        return head if rest == 0 else head + " and " + number_to_words(rest)
    thousands, rest = divmod(n, 1000)
    head = number_to_words(thousands) + " thousand"
    if rest == 0:
        return head
    if rest < 100:
        return head + " and " + number_to_words(rest)
    return head + " " + number_to_words(rest)


def _year_words(year: int) -> str:
    """'nineteen eighty four', 'two thousand and nine', 'twenty twenty one'."""
    hi, lo = divmod(year, 100)
    if 2000 <= year < 2010:
        return "two thousand" + ("" if lo == 0 else " and " + DIGITS[lo])
    if lo == 0:
        return number_to_words(hi) + " hundred"
    if lo < 10:
        return number_to_words(hi) + " oh " + DIGITS[lo]
    return number_to_words(hi) + " " + number_to_words(lo)


# ------------------------------------------------------------ word lists --
FIRST_NAMES = _w(
    """
    john mary james sarah david emma michael laura peter anna paul lucy mark
    helen thomas kate daniel grace robert alice william sophie richard emily
    george hannah charles olivia edward chloe henry jessica jack rachel oliver
    amy harry ruth samuel claire joseph fiona matthew rose andrew julia simon
    maria steven nina martin ella kevin sofia brian megan
    """
)
LAST_NAMES = _w(
    """
    smith jones brown taylor wilson davies evans thomas johnson roberts walker
    wright robinson thompson white hughes edwards green hall wood harris lewis
    martin jackson clarke clark turner hill scott cooper morris ward moore king
    watson baker harrison morgan patel young allen mitchell parker
    """
)
RELATIVES = _w(
    """
    mother father sister brother aunt uncle cousin grandmother grandfather
    daughter son wife husband friend neighbour
    """
)
JOBS = _w(
    """
    doctor teacher nurse engineer lawyer farmer baker pilot driver student
    artist writer singer chef plumber painter builder dentist manager
    scientist soldier officer librarian cleaner mechanic designer journalist
    pharmacist accountant electrician carpenter gardener waiter photographer
    """
)
ROOMS = _w(
    """
    kitchen bedroom bathroom garage hallway office garden basement attic
    nursery porch dining
    """
)
DEVICES = _w(
    """
    television radio heater fan oven kettle dishwasher printer computer
    speaker projector vacuum microwave toaster fridge freezer
    """
)
CITIES = _w(
    """
    london paris berlin madrid rome dublin edinburgh glasgow manchester
    liverpool boston chicago toronto sydney melbourne tokyo denver seattle
    atlanta dallas houston miami vienna prague lisbon oslo cardiff belfast
    bristol leeds
    """
)
# (singular, plural) nouns for things and places; plurals are listed so the
# vocabulary is explicit and irregular forms are right.
THINGS = (
    ("book", "books"), ("car", "cars"), ("chair", "chairs"), ("table", "tables"),
    ("window", "windows"), ("door", "doors"), ("phone", "phones"), ("bag", "bags"),
    ("letter", "letters"), ("ticket", "tickets"), ("key", "keys"), ("box", "boxes"),
    ("bottle", "bottles"), ("glass", "glasses"), ("cup", "cups"), ("plate", "plates"),
    ("knife", "knives"), ("spoon", "spoons"), ("fork", "forks"), ("lamp", "lamps"),
    ("clock", "clocks"), ("picture", "pictures"), ("camera", "cameras"),
    ("bicycle", "bicycles"), ("boat", "boats"), ("train", "trains"), ("bus", "buses"),
    ("plane", "planes"), ("map", "maps"), ("coat", "coats"), ("hat", "hats"),
    ("shoe", "shoes"), ("shirt", "shirts"), ("jacket", "jackets"), ("dress", "dresses"),
    ("umbrella", "umbrellas"), ("wallet", "wallets"), ("watch", "watches"),
    ("pencil", "pencils"), ("pen", "pens"), ("notebook", "notebooks"),
    ("newspaper", "newspapers"), ("magazine", "magazines"), ("report", "reports"),
    ("parcel", "parcels"), ("package", "packages"), ("gift", "gifts"), ("toy", "toys"),
    ("ball", "balls"), ("guitar", "guitars"), ("piano", "pianos"), ("drum", "drums"),
    ("blanket", "blankets"), ("pillow", "pillows"), ("towel", "towels"),
    ("mirror", "mirrors"), ("basket", "baskets"), ("bucket", "buckets"),
    ("ladder", "ladders"), ("hammer", "hammers"), ("candle", "candles"),
    ("flower", "flowers"), ("tree", "trees"), ("stone", "stones"), ("shell", "shells"),
    ("engine", "engines"), ("wheel", "wheels"), ("battery", "batteries"),
    ("cable", "cables"), ("screen", "screens"), ("keyboard", "keyboards"),
    ("envelope", "envelopes"), ("photo", "photos"), ("painting", "paintings"),
    ("poster", "posters"), ("receipt", "receipts"), ("invoice", "invoices"),
    ("contract", "contracts"), ("recipe", "recipes"), ("puzzle", "puzzles"),
    ("sandwich", "sandwiches"), ("cake", "cakes"), ("apple", "apples"),
    ("orange", "oranges"), ("banana", "bananas"), ("potato", "potatoes"),
    ("tomato", "tomatoes"), ("egg", "eggs"), ("biscuit", "biscuits"),
    ("present", "presents"), ("suitcase", "suitcases"), ("jar", "jars"),
    ("bowl", "bowls"), ("brush", "brushes"), ("bench", "benches"),
    ("fence", "fences"), ("gate", "gates"), ("sign", "signs"), ("card", "cards"),
    ("coin", "coins"), ("note", "notes"), ("file", "files"), ("folder", "folders"),
    ("drawer", "drawers"), ("shelf", "shelves"), ("cupboard", "cupboards"),
    ("sofa", "sofas"), ("rug", "rugs"), ("curtain", "curtains"), ("tent", "tents"),
    ("rope", "ropes"), ("kite", "kites"), ("helmet", "helmets"), ("glove", "gloves"),
    ("scarf", "scarves"), ("ring", "rings"), ("necklace", "necklaces"),
)
PLACES = (
    ("station", "stations"), ("market", "markets"), ("library", "libraries"),
    ("museum", "museums"), ("park", "parks"), ("hospital", "hospitals"),
    ("school", "schools"), ("church", "churches"), ("bank", "banks"),
    ("hotel", "hotels"), ("restaurant", "restaurants"), ("cafe", "cafes"),
    ("bakery", "bakeries"), ("pharmacy", "pharmacies"), ("airport", "airports"),
    ("harbour", "harbours"), ("beach", "beaches"), ("river", "rivers"),
    ("bridge", "bridges"), ("castle", "castles"), ("village", "villages"),
    ("farm", "farms"), ("factory", "factories"), ("stadium", "stadiums"),
    ("theatre", "theatres"), ("cinema", "cinemas"), ("gallery", "galleries"),
    ("office", "offices"), ("shop", "shops"), ("supermarket", "supermarkets"),
    ("garden", "gardens"), ("forest", "forests"), ("mountain", "mountains"),
    ("lake", "lakes"), ("island", "islands"), ("square", "squares"),
    ("street", "streets"), ("road", "roads"), ("corner", "corners"),
    ("university", "universities"), ("college", "colleges"), ("prison", "prisons"),
    ("zoo", "zoos"), ("pool", "pools"), ("gym", "gyms"), ("clinic", "clinics"),
    ("post office", "post offices"), ("petrol station", "petrol stations"),
    ("car park", "car parks"), ("bus stop", "bus stops"),
)
ANIMALS = (
    ("dog", "dogs"), ("cat", "cats"), ("horse", "horses"), ("cow", "cows"),
    ("sheep", "sheep"), ("goat", "goats"), ("pig", "pigs"), ("duck", "ducks"),
    ("goose", "geese"), ("chicken", "chickens"), ("rabbit", "rabbits"),
    ("mouse", "mice"), ("fox", "foxes"), ("wolf", "wolves"), ("bear", "bears"),
    ("deer", "deer"), ("owl", "owls"), ("eagle", "eagles"), ("swan", "swans"),
    ("frog", "frogs"), ("snake", "snakes"), ("lion", "lions"), ("tiger", "tigers"),
    ("elephant", "elephants"), ("monkey", "monkeys"), ("whale", "whales"),
    ("dolphin", "dolphins"), ("squirrel", "squirrels"), ("bee", "bees"),
    ("spider", "spiders"), ("parrot", "parrots"), ("penguin", "penguins"),
)
FOODS = _w(
    """
    bread milk cheese butter rice pasta soup salad chicken beef fish coffee tea
    juice sugar salt pepper honey jam chocolate yoghurt cereal flour oil
    vinegar garlic onions carrots peas beans mushrooms lettuce cucumber lemons
    grapes strawberries cherries pears peaches noodles pizza sausages bacon
    ham lamb porridge pancakes crisps nuts water lemonade
    """
)
ADJECTIVES = _w(
    """
    big small old new red blue green yellow black white brown grey purple pink
    heavy light long short tall wide narrow quiet loud bright dark warm cold
    hot cool wet dry clean dirty cheap expensive empty full broken strange
    lovely beautiful ugly busy lazy happy sad angry tired hungry friendly
    famous quick slow early late simple difficult easy soft hard sharp smooth
    rough fresh rotten sweet bitter salty spicy careful brave clever gentle
    huge tiny ancient modern wooden golden silver plastic strong weak noisy
    """
)
COLOURS = _w("red blue green yellow black white brown grey purple pink orange silver")
# (base, past) verb pairs taking a direct object.
VERBS = (
    ("buy", "bought"), ("sell", "sold"), ("find", "found"), ("lose", "lost"),
    ("bring", "brought"), ("carry", "carried"), ("open", "opened"),
    ("close", "closed"), ("paint", "painted"), ("fix", "fixed"), ("break", "broke"),
    ("wash", "washed"), ("clean", "cleaned"), ("move", "moved"), ("hide", "hid"),
    ("borrow", "borrowed"), ("lend", "lent"), ("check", "checked"),
    ("order", "ordered"), ("collect", "collected"), ("deliver", "delivered"),
    ("send", "sent"), ("keep", "kept"), ("drop", "dropped"), ("pick up", "picked up"),
    ("put away", "put away"), ("look for", "looked for"), ("take", "took"),
    ("give", "gave"), ("show", "showed"), ("steal", "stole"), ("pack", "packed"),
    ("wrap", "wrapped"), ("build", "built"), ("design", "designed"),
    ("draw", "drew"), ("photograph", "photographed"), ("measure", "measured"),
    ("weigh", "weighed"), ("return", "returned"), ("replace", "replaced"),
    ("repair", "repaired"), ("forget", "forgot"), ("remember", "remembered"),
    ("notice", "noticed"), ("sort", "sorted"), ("count", "counted"),
    ("share", "shared"), ("test", "tested"), ("choose", "chose"),
)
# (base, past) intransitive motion verbs.
MOTION_VERBS = (
    ("walk", "walked"), ("run", "ran"), ("drive", "drove"), ("cycle", "cycled"),
    ("swim", "swam"), ("travel", "travelled"), ("fly", "flew"), ("hurry", "hurried"),
    ("wander", "wandered"), ("climb", "climbed"), ("jump", "jumped"),
    ("rush", "rushed"), ("sail", "sailed"), ("march", "marched"),
)
DAYS = _w("monday tuesday wednesday thursday friday saturday sunday")
MONTHS = _w(
    "january february march april may june july august september october november december"
)
WHEN = (
    "today", "tomorrow", "yesterday", "tonight", "this morning", "this afternoon",
    "this evening", "last night", "last week", "next week", "last year",
    "next year", "every day", "on the weekend", "after lunch", "before dinner",
    "in the morning", "in the evening", "at midnight", "at noon", "soon",
    "later", "right now", "once a week", "twice a month",
)
GENRES = _w(
    "jazz rock pop classical blues folk country reggae soul disco punk techno"
)
TASKS = (
    "buy milk", "call the dentist", "pay the rent", "water the plants",
    "feed the cat", "walk the dog", "take out the rubbish", "book a table",
    "pick up the children", "renew my passport", "send the report",
    "charge my phone", "collect the parcel", "cancel the meeting",
    "check the post", "wash the car", "book a taxi", "return the library books",
)
WEATHER = _w("sunny rainy windy cloudy foggy snowy stormy")
EMAIL_DOMAINS = _w("example gmail outlook yahoo hotmail company mail")
EMAIL_TLDS = ("com", "org", "net", "co dot uk", "io")


# ---------------------------------------------------------------- helpers --
def _pick(rng: random.Random, seq):
    return seq[rng.randrange(len(seq))]


def _sing(rng: random.Random, pairs) -> str:
    return _pick(rng, pairs)[0]


def _plur(rng: random.Random, pairs) -> str:
    return _pick(rng, pairs)[1]


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


def _clock_time(rng: random.Random) -> str:
    hour = number_to_words(rng.randrange(1, 13))
    style = rng.randrange(6)
    if style == 0:
        return f"{hour} o'clock"
    if style == 1:
        return f"half past {hour}"
    if style == 2:
        return f"quarter past {hour}"
    if style == 3:
        return f"quarter to {hour}"
    if style == 4:
        minute = rng.choice((10, 15, 20, 30, 40, 45, 50))
        return f"{hour} {number_to_words(minute)}"
    return f"{hour} {_pick(rng, ('in the morning', 'in the evening', 'at night', 'pm', 'am'))}"


# --------------------------------------------------------------- templates --
# Every template is a function rng -> str.  Literal words used in templates
# must be listed in _TEMPLATE_WORDS below (checked by the test-suite, which
# samples sentences and asserts every word is in vocabulary()).


def _t_digits(rng: random.Random) -> str:
    style = rng.randrange(4)
    # At most three digits: intake redacts spoken runs of four or more (PINs, phone and card numbers) to
    # tokens, which would leave the transcript no longer matching the audio.
    run = _digit_run(rng, rng.randrange(1, 4))
    if style == 0:
        return run
    if style == 1:
        return f"my order number is {run}"
    if style == 2:
        return f"the code is {run}"
    return f"reference {run}"


def _t_number(rng: random.Random) -> str:
    style = rng.randrange(8)
    if style == 0:
        return number_to_words(rng.randrange(0, 10000))
    if style == 1:
        pounds = rng.randrange(1, 500)
        cents = rng.randrange(1, 100)
        unit, sub = _pick(rng, (("dollars", "cents"), ("pounds", "pence"), ("euros", "cents")))
        one = {"dollars": "dollar", "pounds": "pound", "euros": "euro"}[unit]
        return f"that will be {_count_noun(pounds, one, unit)} and {number_to_words(cents)} {sub}"
    if style == 2:
        return f"the meeting starts at {_clock_time(rng)}"
    if style == 3:
        return f"i was born in {_year_words(rng.randrange(1940, 2024))}"
    if style == 4:
        sing, plur = _pick(rng, THINGS)
        return f"we need {_count_noun(rng.randrange(2, 100), sing, plur)}"
    if style == 5:
        return f"the temperature is {number_to_words(rng.randrange(0, 40))} degrees"
    if style == 6:
        return (
            f"it is {number_to_words(rng.randrange(2, 300))} miles from here to "
            f"{_pick(rng, CITIES)}"
        )
    return (
        f"the train leaves from platform {number_to_words(rng.randrange(1, 20))} "
        f"at {_clock_time(rng)}"
    )


def _t_command(rng: random.Random) -> str:
    style = rng.randrange(24)
    room = _pick(rng, ROOMS)
    if style == 0:
        return f"turn {_pick(rng, ('on', 'off'))} the {room} lights"
    if style == 1:
        return f"turn {_pick(rng, ('on', 'off'))} the {_pick(rng, DEVICES)}"
    if style == 2:
        n = rng.randrange(1, 61)
        return f"set a timer for {_count_noun(n, 'minute', 'minutes')}"
    if style == 3:
        return f"set an alarm for {_clock_time(rng)}"
    if style == 4:
        return f"play some {_pick(rng, GENRES)} music"
    if style == 5:
        return _pick(
            rng,
            (
                "play the next song", "pause the music", "skip this song",
                "stop the music", "turn the volume up", "turn the volume down",
                "what song is this", "play it again",
            ),
        )
    if style == 6:
        return f"call {_pick(rng, FIRST_NAMES)} {_pick(rng, ('', 'on speaker', 'at home', 'at work')).strip()}".strip()
    if style == 7:
        return f"what is the weather like in {_pick(rng, CITIES)} {_pick(rng, WHEN)}"
    if style == 8:
        return f"remind me to {_pick(rng, TASKS)} {_pick(rng, WHEN)}"
    if style == 9:
        return f"add {_pick(rng, FOODS)} to my shopping list"
    if style == 10:
        return f"dim the {room} lights to {number_to_words(rng.randrange(1, 10) * 10)} percent"
    if style == 11:
        return _pick(
            rng,
            (
                "what time is it", "what is the date today", "read my new messages",
                "lock the front door", "unlock the back door", "open the garage door",
                "close the curtains", "start the dishwasher", "cancel the timer",
                "how are you today", "tell me a joke", "good night",
            ),
        )
    if style == 12:
        return f"navigate to the nearest {_sing(rng, PLACES)}"
    if style == 13:
        return (
            f"send a message to {_pick(rng, FIRST_NAMES)} saying i will be "
            f"{_pick(rng, ('late', 'home soon', 'there in ten minutes', 'at the station'))}"
        )
    if style == 14:
        return f"set the thermostat to {number_to_words(rng.randrange(15, 26))} degrees"
    if style == 15:
        return f"how long will it take to drive to {_pick(rng, CITIES)}"
    if style == 16:
        return f"is it going to be {_pick(rng, WEATHER)} {_pick(rng, WHEN)}"
    if style == 17:
        return f"order more {_pick(rng, FOODS)} for {_pick(rng, DAYS)}"
    if style == 18:
        return f"what is on my calendar for {_pick(rng, DAYS)}"
    if style == 19:
        return f"book a table for {number_to_words(rng.randrange(2, 9))} at {_clock_time(rng)}"
    if style == 20:
        return f"show me pictures of {_plur(rng, ANIMALS)}"
    if style == 21:
        return f"how do you spell {_pick(rng, ADJECTIVES)}"
    if style == 22:
        return f"where is the closest {_sing(rng, PLACES)} that is open {_pick(rng, WHEN)}"
    return f"put the {_pick(rng, DEVICES)} in the {room} on standby"


def _t_open(rng: random.Random) -> str:
    style = rng.randrange(24)
    name = _pick(rng, FIRST_NAMES)
    if style == 0:
        return (
            f"{name} {_pick(rng, VERBS)[1]} the {_pick(rng, ADJECTIVES)} "
            f"{_sing(rng, THINGS)} at the {_sing(rng, PLACES)}"
        )
    if style == 1:
        return f"i think the {_sing(rng, THINGS)} in the {_pick(rng, ROOMS)} is {_pick(rng, ADJECTIVES)}"
    if style == 2:
        return f"we should visit {_pick(rng, CITIES)} in {_pick(rng, MONTHS)}"
    if style == 3:
        return (
            f"my {_pick(rng, RELATIVES)} works as {_a(_pick(rng, JOBS))} near the "
            f"{_sing(rng, PLACES)}"
        )
    if style == 4:
        return (
            f"the {_pick(rng, ADJECTIVES)} {_sing(rng, ANIMALS)} "
            f"{_pick(rng, MOTION_VERBS)[1]} across the {_sing(rng, PLACES)} {_pick(rng, WHEN)}"
        )
    if style == 5:
        return (
            f"did you remember to {_pick(rng, VERBS)[0]} the {_sing(rng, THINGS)} "
            f"before {_pick(rng, ('lunch', 'dinner', 'breakfast', 'the meeting', 'the party'))}"
        )
    if style == 6:
        return f"there are {number_to_words(rng.randrange(2, 20))} {_plur(rng, THINGS)} on the {_pick(rng, ('table', 'shelf', 'floor', 'bench', 'sofa'))}"
    if style == 7:
        return f"{name} and {_pick(rng, FIRST_NAMES)} {_pick(rng, MOTION_VERBS)[1]} to the {_sing(rng, PLACES)} {_pick(rng, WHEN)}"
    if style == 8:
        return f"could you please {_pick(rng, VERBS)[0]} my {_sing(rng, THINGS)}"
    if style == 9:
        return f"the {_pick(rng, JOBS)} said the {_sing(rng, THINGS)} was too {_pick(rng, ADJECTIVES)}"
    if style == 10:
        return f"i would like some {_pick(rng, FOODS)} and {_pick(rng, FOODS)} please"
    if style == 11:
        return f"it was very {_pick(rng, WEATHER)} in {_pick(rng, CITIES)} {_pick(rng, WHEN)}"
    if style == 12:
        return f"{name} {_pick(rng, LAST_NAMES)} is a {_pick(rng, ADJECTIVES)} {_pick(rng, JOBS)} from {_pick(rng, CITIES)}"
    if style == 13:
        return f"have you seen my {_pick(rng, COLOURS)} {_sing(rng, THINGS)}"
    if style == 14:
        return f"the {_plur(rng, ANIMALS)} are sleeping under the {_sing(rng, THINGS)}"
    if style == 15:
        return f"we are going to {_pick(rng, VERBS)[0]} the {_plur(rng, THINGS)} on {_pick(rng, DAYS)}"
    if style == 16:
        return f"she {_pick(rng, ('always', 'never', 'sometimes', 'often', 'usually'))} {_pick(rng, MOTION_VERBS)[1]} to the {_sing(rng, PLACES)} with her {_pick(rng, RELATIVES)}"
    if style == 17:
        return f"he can't find the {_pick(rng, ADJECTIVES)} {_sing(rng, THINGS)} he {_pick(rng, VERBS)[1]} {_pick(rng, WHEN)}"
    if style == 18:
        return f"they don't know where the {_sing(rng, PLACES)} is"
    if style == 19:
        return f"my {_pick(rng, RELATIVES)} cooked {_pick(rng, FOODS)} with {_pick(rng, FOODS)} for dinner"
    if style == 20:
        return f"it's a {_pick(rng, ADJECTIVES)} day for a walk by the {_pick(rng, ('river', 'lake', 'sea', 'beach', 'harbour'))}"
    if style == 22:
        return f"there are {number_to_words(rng.randrange(2, 30))} {_plur(rng, PLACES)} in {_pick(rng, CITIES)}"
    if style == 23:
        return f"i like to {_pick(rng, MOTION_VERBS)[0]} to the {_sing(rng, PLACES)} {_pick(rng, WHEN)}"
    return f"i'll {_pick(rng, VERBS)[0]} the {_sing(rng, THINGS)} and meet you at the {_sing(rng, PLACES)}"


def _t_pii(rng: random.Random) -> str:
    if rng.random() < 0.55:
        digits = _digit_run(rng, rng.randrange(7, 11), first_nonzero=rng.random() < 0.5)
        lead = _pick(
            rng,
            (
                "call me on", "my number is", "you can reach me at",
                "my phone number is", "please text me on", "ring me back on",
                "my mobile is",
            ),
        )
        return f"{lead} {digits}"
    first, last = _pick(rng, FIRST_NAMES), _pick(rng, LAST_NAMES)
    sep = _pick(rng, ("dot", "underscore", ""))
    local = f"{first} {sep} {last}" if sep else f"{first} {last}"
    if rng.random() < 0.3:
        local += " " + _digit_run(rng, rng.randrange(1, 3))
    address = f"{local} at {_pick(rng, EMAIL_DOMAINS)} dot {_pick(rng, EMAIL_TLDS)}"
    lead = _pick(
        rng,
        (
            "my email is", "send it to", "you can email me at",
            "my email address is", "please write to",
        ),
    )
    return f"{lead} {address}"


_GENERATORS = {
    "digits": _t_digits,
    "number": _t_number,
    "command": _t_command,
    "open": _t_open,
    "pii": _t_pii,
}

# Literal words the templates above use (besides the word lists).
_TEMPLATE_WORDS = _w(
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
    """
)


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
    for group in (
        DIGITS, _TEENS, _TENS, FIRST_NAMES, LAST_NAMES, RELATIVES, JOBS, ROOMS,
        DEVICES, CITIES, THINGS, PLACES, ANIMALS, FOODS, ADJECTIVES, COLOURS,
        VERBS, MOTION_VERBS, DAYS, MONTHS, WHEN, GENRES, TASKS, WEATHER,
        EMAIL_DOMAINS, EMAIL_TLDS, _TEMPLATE_WORDS,
    ):
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
        text = " ".join(_GENERATORS[kind](rng).split())
        return text, kind

    def __iter__(self) -> Iterator[tuple[str, str]]:
        while True:
            yield self.sentence()

    def sentences(self, n: int) -> list[tuple[str, str]]:
        return [self.sentence() for _ in range(n)]

    @staticmethod
    def vocabulary() -> frozenset[str]:
        return vocabulary()
