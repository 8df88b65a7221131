"""The URLs an article cites, from its wikitext: the positive side of LLaMA's quality classifier.

Touvron et al. 2023, 2.1: the CommonCrawl classifier was trained on "pages used as references in
Wikipedia" against random pages. A reference is, in wikitext, one of:

* a citation template, ``{{cite web |url=... |archive-url=...}}`` (any ``cite ...`` template, and
  ``{{citation}}``), in a ``<ref>`` or in a bibliography list: its URL parameters;
* a bare external link inside ``<ref>...</ref>``, bracketed (``[http://x.org title]``) or not.

With ``all_links`` every external link of the article counts too (navigation links in
"External links" sections, official sites in infoboxes): more pages, less of a reference.

The wikitext is parsed with mwparserfromhell (as filters.wikitext does), so nesting is right:
a template inside a ref inside a comment is not a citation. URLs are returned as written; the
caller normalizes them (filters.urls) and counts the ones that name no page. Each URL is
returned once per article, with the kind of its first sighting: citation templates first.
"""

from __future__ import annotations

from dataclasses import dataclass

import mwparserfromhell
from mwparserfromhell.nodes import Template
from mwparserfromhell.parser import ParserError
from mwparserfromhell.wikicode import Wikicode

CITE_URL, ARCHIVE_URL, REF_LINK, EXTERNAL_LINK = "cite_url", "archive_url", "ref_link", "external_link"
KINDS = (CITE_URL, ARCHIVE_URL, REF_LINK, EXTERNAL_LINK)

# Citation Style 1 parameters that hold the cited work's address (Help:CS1, "URL" parameters).
_URL_PARAMETERS = {
    "url": CITE_URL, "chapter-url": CITE_URL, "chapterurl": CITE_URL, "contribution-url": CITE_URL,
    "section-url": CITE_URL, "entry-url": CITE_URL, "article-url": CITE_URL, "conference-url": CITE_URL,
    "transcript-url": CITE_URL, "map-url": CITE_URL,
    "archive-url": ARCHIVE_URL, "archiveurl": ARCHIVE_URL,
}


@dataclass(frozen=True, slots=True)
class Citation:
    """A URL as the article wrote it, and how it was cited (one of :data:`KINDS`)."""

    url: str
    kind: str


class UnparseableWikitext(ValueError):
    """mwparserfromhell gave up on the page; the caller counts it."""


def cited_urls(wikitext: str, all_links: bool = False) -> list[Citation]:
    """The article's cited URLs, each once; see the module docstring for what counts."""
    try:
        code = mwparserfromhell.parse(wikitext)
    except (ParserError, RecursionError) as exc:
        raise UnparseableWikitext(str(exc)) from None
    found: dict[str, str] = {}
    for template in code.filter_templates(recursive=True):
        if _is_citation(template):
            for param in template.params:
                kind = _URL_PARAMETERS.get(str(param.name).strip().lower())
                url = _param_url(param.value) if kind else ""
                if url:
                    found.setdefault(url, kind)  # type: ignore[arg-type]
    for tag in code.filter_tags(recursive=True):
        if str(tag.tag).strip().lower() == "ref" and tag.contents is not None:
            for link in tag.contents.filter_external_links(recursive=True):
                found.setdefault(str(link.url).strip(), REF_LINK)
    if all_links:
        for link in code.filter_external_links(recursive=True):
            found.setdefault(str(link.url).strip(), EXTERNAL_LINK)
    found.pop("", None)
    return [Citation(url, kind) for url, kind in found.items()]


def _is_citation(template: Template) -> bool:
    name = str(template.name).strip().lower().replace("_", " ")
    return name.startswith("cite ") or name == "citation"


def _param_url(value: Wikicode) -> str:
    """The URL in a parameter's value; else its raw text (``{{Google books|...}}``), which the
    caller's normalization refuses and counts, so no citation is lost unseen."""
    links = value.filter_external_links(recursive=False)
    return str(links[0].url).strip() if links else str(value).strip()
