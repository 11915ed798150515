"""What the simulated speakers can say: the word lists and phrases the sentence templates draw from, and numbers
spelled out in words.  Data only; `speech_assets.simulation.templates` turns it into sentences.

Lists of (singular, plural) and (base, past) pairs spell the irregular forms out.  Appending to a list changes
what a seed generates (a pick is an index into the list): the pinned digests in
tests/simulation/test_sentence_templates.py say so.
"""

from __future__ import annotations


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


def year_words(year: int) -> str:
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

# Whole phrases a template picks as one slot.
MUSIC_COMMANDS = (
    "play the next song", "pause the music", "skip this song",
    "stop the music", "turn the volume up", "turn the volume down",
    "what song is this", "play it again",
)
HOME_COMMANDS = (
    "what time is it", "what is the date today", "read my new messages",
    "lock the front door", "unlock the back door", "open the garage door",
    "close the curtains", "start the dishwasher", "cancel the timer",
    "how are you today", "tell me a joke", "good night",
)
CURRENCIES = (("dollars", "cents"), ("pounds", "pence"), ("euros", "cents"))
CURRENCY_SINGULAR = {"dollars": "dollar", "pounds": "pound", "euros": "euro"}
PHONE_LEADS = (
    "call me on", "my number is", "you can reach me at",
    "my phone number is", "please text me on", "ring me back on",
    "my mobile is",
)
EMAIL_LEADS = (
    "my email is", "send it to", "you can email me at",
    "my email address is", "please write to",
)


#: Every list the generator emits words from (`vocabulary()` is their words and the templates' literal words).
WORD_GROUPS = (
    DIGITS, _TEENS, _TENS, FIRST_NAMES, LAST_NAMES, RELATIVES, JOBS, ROOMS,
    DEVICES, CITIES, THINGS, PLACES, ANIMALS, FOODS, ADJECTIVES, COLOURS,
    VERBS, MOTION_VERBS, DAYS, MONTHS, WHEN, GENRES, TASKS, WEATHER,
    EMAIL_DOMAINS, EMAIL_TLDS, MUSIC_COMMANDS, HOME_COMMANDS, CURRENCIES, PHONE_LEADS, EMAIL_LEADS,
)
