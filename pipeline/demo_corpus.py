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
        "nouns": ["garden", "soil", "seedling", "tomato plant", "compost heap", "greenhouse", "orchard",
                  "herb bed", "watering can", "hedge"],
        "adjs": ["sunny", "sheltered", "fertile", "sandy", "overgrown", "well-drained", "young"],
        "verbs": ["needs", "rewards", "tolerates", "protects", "feeds", "shades"],
        "places": ["the north border", "a raised bed", "the allotment", "the kitchen window"],
    },
    "astronomy": {
        "nouns": ["telescope", "comet", "nebula", "observatory", "star cluster", "planet", "eclipse",
                  "meteor shower", "spectrograph", "moon"],
        "adjs": ["distant", "faint", "bright", "cold", "ancient", "rotating", "dusty"],
        "verbs": ["reveals", "follows", "outshines", "crosses", "illuminates", "records"],
        "places": ["the southern sky", "the mountain observatory", "a dark rural site", "the Milky Way"],
    },
    "cooking": {
        "nouns": ["broth", "sourdough loaf", "cast-iron pan", "spice blend", "risotto", "marinade",
                  "pastry", "stock pot", "sauce", "oven"],
        "adjs": ["slow", "fragrant", "crisp", "rich", "seasonal", "homemade", "simple"],
        "verbs": ["improves", "balances", "softens", "thickens", "brightens", "flavours"],
        "places": ["a small kitchen", "the village bakery", "a market stall", "the family table"],
    },
    "railways": {
        "nouns": ["locomotive", "signal box", "branch line", "timetable", "viaduct", "station clock",
                  "sleeper car", "junction", "freight yard", "platform"],
        "adjs": ["restored", "busy", "narrow-gauge", "electric", "historic", "punctual", "rural"],
        "verbs": ["connects", "carries", "serves", "crosses", "replaces", "links"],
        "places": ["the coastal valley", "the old market town", "the capital", "the mountain pass"],
    },
    "beekeeping": {
        "nouns": ["hive", "queen", "worker bee", "honeycomb", "smoker", "apiary", "swarm", "frame",
                  "nectar flow", "brood"],
        "adjs": ["healthy", "gentle", "crowded", "productive", "calm", "late", "strong"],
        "verbs": ["supports", "strengthens", "builds", "defends", "gathers", "warms"],
        "places": ["the meadow edge", "a rooftop apiary", "the lime trees", "the heather moor"],
    },
}

_OPENERS = ["In practice,", "Over the years,", "According to local records,", "Most experienced people agree that",
            "Early in the season,", "By contrast,", "For this reason,", "In many regions,"]
_ENDINGS = ["which surprises many newcomers", "as long as the weather holds", "throughout the whole year",
            "when it is given enough time", "and the results are easy to see", "without much extra effort"]

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


def sentence(rng: random.Random, topic: str) -> str:
    words = TOPICS[topic]
    noun, other = rng.sample(words["nouns"], 2)
    text = (f"{rng.choice(_OPENERS)} the {rng.choice(words['adjs'])} {noun} near {rng.choice(words['places'])} "
            f"{rng.choice(words['verbs'])} the {rng.choice(words['adjs'])} {other}, {rng.choice(_ENDINGS)}.")
    return text[0].upper() + text[1:]


def article(rng: random.Random, topic: str, n_paragraphs: int) -> list[str]:
    return [" ".join(sentence(rng, topic) for _ in range(rng.randint(4, 7))) for _ in range(n_paragraphs)]


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
