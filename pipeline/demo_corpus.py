"""The demo's own crawl: generated pages that exercise every stage, written by us, seeded.

Each kind of page is there to be caught by something: articles should survive; boilerplate-heavy
pages lose their navigation to line dedup; near-duplicates collapse in MinHash; pages in other
languages go to language ID; keyword spam and lorem ipsum go to the quality rules; images, PDFs,
404s, requests and revisits are skipped by the reader. The English prose comes from a small
grammar so that the pages are many and distinct without shipping anyone's text.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

TOPICS: dict[str, dict[str, list[str]]] = {
    "gardening": {
        "nouns": ["garden", "soil", "seedling", "tomato", "compost heap", "greenhouse", "orchard", "herb bed",
                  "hedge", "pumpkin patch", "rose bush", "potato crop", "lawn", "vegetable plot", "apple tree"],
        "adjs": ["sunny", "sheltered", "fertile", "sandy", "overgrown", "well-drained", "young", "neglected",
                 "tidy", "muddy", "fragrant", "stony"],
        "places": ["the north border", "a raised bed", "the allotment", "the kitchen window", "the back wall",
                   "the riverside plots", "a city balcony", "the walled garden"],
    },
    "astronomy": {
        "nouns": ["telescope", "comet", "nebula", "observatory", "star cluster", "planet", "eclipse",
                  "meteor shower", "spectrograph", "moon", "galaxy", "pulsar", "asteroid", "sky chart", "lens"],
        "adjs": ["distant", "faint", "bright", "cold", "ancient", "rotating", "dusty", "red", "massive", "young",
                 "quiet", "unusual"],
        "places": ["the southern sky", "the mountain observatory", "a dark rural site", "the desert plateau",
                   "the university dome", "an island station", "the coastal hills", "a backyard pier"],
    },
    "cooking": {
        "nouns": ["broth", "sourdough loaf", "cast-iron pan", "spice blend", "risotto", "marinade", "pastry",
                  "stock pot", "sauce", "oven", "dumpling", "stew", "salad", "flatbread", "custard"],
        "adjs": ["slow", "fragrant", "crisp", "rich", "seasonal", "homemade", "simple", "smoky", "tangy",
                 "golden", "hearty", "delicate"],
        "places": ["a small kitchen", "the village bakery", "a market stall", "the family table",
                   "a harbour cafe", "the school canteen", "a mountain hut", "the night market"],
    },
    "railways": {
        "nouns": ["locomotive", "signal box", "branch line", "timetable", "viaduct", "station clock",
                  "sleeper car", "junction", "freight yard", "platform", "tunnel", "tram", "ticket office",
                  "carriage", "footbridge"],
        "adjs": ["restored", "busy", "narrow-gauge", "electric", "historic", "punctual", "rural", "crowded",
                 "steep", "modern", "forgotten", "scenic"],
        "places": ["the coastal valley", "the old market town", "the capital", "the mountain pass",
                   "the border crossing", "a mining village", "the river delta", "the northern plains"],
    },
    "beekeeping": {
        "nouns": ["hive", "queen", "worker bee", "honeycomb", "smoker", "apiary", "swarm", "frame",
                  "nectar flow", "brood", "wax cap", "drone", "feeder", "veil", "honey jar"],
        "adjs": ["healthy", "gentle", "crowded", "productive", "calm", "late", "strong", "weak", "busy",
                 "golden", "noisy", "careful"],
        "places": ["the meadow edge", "a rooftop apiary", "the lime trees", "the heather moor",
                   "the orchard corner", "a village green", "the chalk downs", "a clover field"],
    },
}

# (third person singular, plural) verb forms, shared by all topics.
_VERBS = [("needs", "need"), ("rewards", "reward"), ("protects", "protect"), ("changes", "change"),
          ("surprises", "surprise"), ("follows", "follow"), ("improves", "improve"), ("shapes", "shape"),
          ("outlasts", "outlast"), ("attracts", "attract"), ("depends on", "depend on"), ("resembles", "resemble")]
_PEOPLE = ["local volunteers", "visiting students", "two retired engineers", "our neighbours", "the regulars",
           "many beginners", "a few specialists", "the older residents", "curious children", "most newcomers"]
_TIMES = ["Every spring", "Last October", "On quiet evenings", "Before dawn", "During the long drought",
          "In early summer", "After the storms", "Each weekend", "Around midwinter", "Twice a month"]
_ADVERBS = ["slowly", "quietly", "unexpectedly", "steadily", "carefully", "gradually", "rarely", "often"]
_TEMPLATES = [
    "{time}, {people} {verb_pl} the {adj} {noun} near {place}.",
    "The {adj} {noun} {verb_sg} the {noun2} {adverb}, or so {people} claim.",
    "Nobody expected that the {noun} at {place} would {verb_pl} a {adj2} {noun2}.",
    "{people_cap} {adverb} {verb_pl} how the {noun} {verb_sg} every {adj} {noun2}.",
    "Why does a {adj} {noun} {verb_pl} the {noun2}? {people_cap} still argue about it.",
    "At {place}, a {adj} {noun} and an {adj2} {noun2} share the same corner.",
    "{time} the {noun} grew {adj}, and {people} noticed it {adverb}.",
    "Records kept since {year} show the {noun} {verb_sg} {place} more than before.",
    "It is {adverb} said that a {adj} {noun} {verb_sg} patience above all.",
    "Between {place} and {place2}, {people} found {count} {adj} examples of a {noun}.",
]


def _an(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def sentence(rng: random.Random, topic: str) -> str:
    words = TOPICS[topic]
    noun, noun2 = rng.sample(words["nouns"], 2)
    adj, adj2 = rng.sample(words["adjs"], 2)
    place, place2 = rng.sample(words["places"], 2)
    verb_sg, verb_pl = rng.choice(_VERBS)
    people = rng.choice(_PEOPLE)
    text = rng.choice(_TEMPLATES).format(
        time=rng.choice(_TIMES), people=people, people_cap=people[0].upper() + people[1:], verb_sg=verb_sg,
        verb_pl=verb_pl, adj=adj, adj2=adj2, noun=noun, noun2=noun2, place=place, place2=place2,
        adverb=rng.choice(_ADVERBS), year=rng.randint(1890, 2015), count=rng.randint(3, 40),
    )
    text = text.replace(" a a", " an a").replace(" a e", " an e").replace(" a o", " an o").replace(" a u", " an u")
    text = text.replace(" an " + adj2, f" {_an(adj2)} {adj2}")
    return text[0].upper() + text[1:]


def article(rng: random.Random, topic: str, n_paragraphs: int) -> list[str]:
    return [" ".join(sentence(rng, topic) for _ in range(rng.randint(3, 5))) for _ in range(n_paragraphs)]


FOREIGN: dict[str, list[str]] = {
    "de": [
        "Der kleine Bahnhof am Rand der Stadt wurde im letzten Jahr vollständig renoviert. Die Fahrgäste "
        "freuen sich über die neuen Bänke, die hellen Wartehallen und die pünktlichen Verbindungen in die "
        "umliegenden Dörfer. Viele Pendler nehmen jetzt lieber den Zug als das Auto.",
        "Im Frühling beginnt die Arbeit im Garten mit dem Umgraben der Beete. Wer seine Tomaten früh "
        "aussät, sollte die jungen Pflanzen an einem warmen und hellen Fenster vorziehen und erst nach den "
        "Eisheiligen ins Freie setzen. Regelmäßiges Gießen ist dabei besonders wichtig.",
    ],
    "fr": [
        "La petite gare au bord de la ville a été entièrement rénovée l'année dernière. Les voyageurs "
        "apprécient les nouveaux bancs, les salles d'attente lumineuses et les correspondances régulières "
        "vers les villages voisins. Beaucoup de gens prennent désormais le train plutôt que la voiture.",
        "Au printemps, le travail au jardin commence par le bêchage des plates-bandes. Celui qui sème ses "
        "tomates tôt doit garder les jeunes plants près d'une fenêtre chaude et claire, puis les mettre en "
        "pleine terre lorsque les gelées sont passées. Un arrosage régulier reste essentiel.",
    ],
    "es": [
        "La pequeña estación en las afueras de la ciudad fue renovada por completo el año pasado. Los "
        "viajeros agradecen los bancos nuevos, las salas de espera luminosas y las conexiones puntuales con "
        "los pueblos cercanos. Muchas personas prefieren ahora el tren al coche.",
    ],
    "ja": [
        "町の外れにある小さな駅は、昨年すっかり改装されました。新しいベンチや明るい待合室、近くの村への"
        "時間通りの接続を、利用者はとても喜んでいます。今では車よりも電車を選ぶ人が増えています。",
    ],
}

NAVIGATION = ["Home", "About us", "Contact", "Privacy policy", "Terms of use", "Sitemap", "Newsletter sign-up"]
COOKIE_BANNER = "This website uses cookies to improve your experience. By continuing you accept our cookie policy."
FOOTER = "Copyright 2024 Example Media Group. All rights reserved."


@dataclass(frozen=True)
class Page:
    url: str
    title: str
    paragraphs: list[str]
    lang: str = "en"
    boilerplate: bool = True


def mutate(rng: random.Random, paragraphs: list[str], fraction: float) -> list[str]:
    """A syndicated copy: a few words swapped, as another site republishing the story would."""
    out = []
    for para in paragraphs:
        words = para.split(" ")
        for i in rng.sample(range(len(words)), k=max(1, int(len(words) * fraction))):
            words[i] = rng.choice(["really", "also", "often", "quite", "indeed"])
        out.append(" ".join(words))
    return out


def demo_pages(seed: int = 1234, n_articles: int = 60) -> list[Page]:
    """The HTML pages of the demo crawl, deterministic for a seed."""
    rng = random.Random(seed)
    pages: list[Page] = []
    topics = sorted(TOPICS)
    for i in range(n_articles):
        topic = topics[i % len(topics)]
        paragraphs = article(rng, topic, rng.randint(4, 8))
        pages.append(Page(f"https://{topic}-journal.example/{i:03d}", f"Notes on {topic}, part {i}", paragraphs))
        if i % 10 == 0:  # a near-duplicate republished elsewhere
            pages.append(Page(f"https://aggregator.example/story/{i:03d}", f"Notes on {topic}",
                              mutate(rng, paragraphs, 0.03)))
    for lang, paragraphs in sorted(FOREIGN.items()):
        for j, para in enumerate(paragraphs):
            pages.append(Page(f"https://news-{lang}.example/{j}", para[:40], [para], lang=lang))
    spam = " ".join(["cheap", "best", "buy", "casino", "bonus", "free"] * 40)
    pages.append(Page("https://win-big.example/", "BEST CASINO BONUS", [spam, spam]))
    pages.append(Page("https://template.example/", "Lorem ipsum", [
        "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore. "
        * 3]))
    pages.append(Page("https://shop.example/cart", "Your cart", ["Cart", "Checkout", "0 items"]))
    return pages


def to_html(page: Page) -> str:
    nav = "".join(f'<li><a href="/{n.lower().replace(" ", "-")}">{n}</a></li>' for n in NAVIGATION)
    body = "".join(f"<p>{p}</p>" for p in page.paragraphs)
    chrome_top = f'<nav><ul>{nav}</ul></nav><div class="cookie">{COOKIE_BANNER}</div>' if page.boilerplate else ""
    chrome_bottom = f"<footer><p>{FOOTER}</p><ul>{nav}</ul></footer>" if page.boilerplate else ""
    return (f'<!DOCTYPE html><html lang="{page.lang}"><head><meta charset="utf-8"><title>{page.title}</title>'
            f"</head><body>{chrome_top}<main><article><h1>{page.title}</h1>{body}</article></main>"
            f"{chrome_bottom}</body></html>")
