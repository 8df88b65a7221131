"""ReadWikipedia: a MediaWiki XML dump (``pages-articles*.xml[.bz2]``) -> one Document per article.

The dump is streamed with ``iterparse``; each ``<page>`` element is cleared once read, and so is
the root's list of finished pages, so memory holds one page, whatever the dump's size. Only
namespace 0 (articles) is kept and redirects are skipped, as LLaMA did (Touvron et al. 2023,
section 2.1); both are counted, not written to rejects, since they hold no prose. The wikitext is
turned into plain text by :class:`filters.wikitext.WikitextCleaner` after a Reshuffle.

The language is ``options.language`` if set, else the dump's file name (``enwiki-...`` -> en,
``gensim_enwiki-...`` -> en, ``zh_yuewiki-...`` -> zh_yue), else the host of the siteinfo base
URL. Ids are ``wikipedia:<lang>:<page id>``: page ids never change, so re-runs agree.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit
from xml.etree.ElementTree import Element, iterparse

from filters.document import Document
from filters.wikitext import DEFAULT_DROP_SECTIONS, WikitextCleaner
from pipeline.sources.source_reader import Reject, Skip, SourceReader, open_decompressed

STAGE = "ReadWikipedia"
NOT_ARTICLE = "wikipedia.not_article"
REDIRECT = "wikipedia.redirect"
NO_TEXT = "wikipedia.no_text"
TOO_SHORT = "wikipedia.too_short"
CLEAN_FAILED = "wikipedia.clean_failed"

# Namespace keys of media and category pages, whose localized names the siteinfo lists.
_MEDIA_NAMESPACE_KEYS = {"-2", "6", "14"}
_DUMP_NAME = re.compile(r"([a-z][a-z_]*)wiki-")
_WIKI_CODE = re.compile(r"^[a-z]{2,3}(?:_[a-z]+)*$")


@dataclass(frozen=True, kw_only=True)
class WikipediaOptions:
    """``input.options`` of ``format: wikipedia``."""

    # ISO code for the lang column; None reads it from the dump's file name (or its siteinfo).
    language: str | None = None
    # Articles whose clean text is shorter than this are dropped as wikipedia.too_short: stubs
    # and disambiguation pages that lose their lists carry a line or two.
    min_chars: int = 1
    # Back-matter sections removed with their content (English names; set them for other wikis).
    drop_sections: tuple[str, ...] = DEFAULT_DROP_SECTIONS

    def __post_init__(self) -> None:
        if self.min_chars < 0:
            raise ValueError("min_chars must be >= 0")


def language_from_dump_name(path: str) -> str | None:
    """The wiki's language code from a dump file name, or None if the name does not tell."""
    name = path.rsplit("/", 1)[-1].lower()
    match = _DUMP_NAME.search(name)
    if not match:
        return None
    # A prefix like "gensim_" may precede the wiki code: keep the first segment of 2-3 letters
    # and what follows it (zh_min_nan, be_x_old).
    segments = match.group(1).split("_")
    for i, segment in enumerate(segments):
        if 2 <= len(segment) <= 3:
            code = "_".join(segments[i:])
            return code if _WIKI_CODE.match(code) else None
    if segments[-1] == "simple":  # simplewiki is the Simple English Wikipedia
        return "en"
    return None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child_text(elem: Element, name: str) -> str:
    for child in elem:
        if _local(child.tag) == name:
            return child.text or ""
    return ""


def _child(elem: Element, name: str) -> Element | None:
    for child in elem:
        if _local(child.tag) == name:
            return child
    return None


@dataclass(frozen=True)
class _Siteinfo:
    base_url: str = ""
    namespaces: tuple[str, ...] = ()

    @classmethod
    def from_element(cls, elem: Element) -> _Siteinfo:
        names = []
        namespaces = _child(elem, "namespaces")
        for ns in namespaces if namespaces is not None else ():
            if ns.get("key") in _MEDIA_NAMESPACE_KEYS and ns.text:
                names.append(ns.text)
        base = _child_text(elem, "base")
        return cls(base_url=f"{urlsplit(base).scheme}://{urlsplit(base).netloc}" if base else "",
                   namespaces=tuple(names))


@dataclass(frozen=True)
class ParseDump:
    """One dump file -> (Document with wikitext, link namespaces) per article, Skips for the rest."""

    source: str
    options: WikipediaOptions

    def __call__(self, path: str) -> Iterator[Any]:
        language = self.options.language or language_from_dump_name(path)
        site = _Siteinfo()
        with open_decompressed(path) as stream:
            events = iterparse(stream, events=("start", "end"))
            root: Element | None = None
            for event, elem in events:
                if root is None and event == "start":
                    root = elem
                if event != "end":
                    continue
                name = _local(elem.tag)
                if name == "siteinfo":
                    site = _Siteinfo.from_element(elem)
                    if language is None and site.base_url:
                        language = urlsplit(site.base_url).netloc.split(".", 1)[0] or None
                    root.clear()  # type: ignore[union-attr]
                elif name == "page":
                    yield self._page(elem, path, language or "", site)
                    elem.clear()
                    root.clear()  # type: ignore[union-attr]  # drop the finished pages' shells

    def _page(self, page: Element, path: str, language: str, site: _Siteinfo) -> Any:
        if _child_text(page, "ns").strip() != "0":
            return Skip(NOT_ARTICLE)
        if _child(page, "redirect") is not None:
            return Skip(REDIRECT)
        page_id = _child_text(page, "id").strip()
        title = _child_text(page, "title")
        revision = _child(page, "revision")
        wikitext = _child_text(revision, "text") if revision is not None else ""
        url = f"{site.base_url}/wiki/{quote(title.replace(' ', '_'))}" if site.base_url else ""
        doc = Document(
            id=f"wikipedia:{language}:{page_id}",
            text=wikitext,
            source=self.source,
            url=url,
            lang=language,
            timestamp=_child_text(revision, "timestamp").strip() if revision is not None else "",
            warc_file=path,
            meta={"title": title, "revision_id": _child_text(revision, "id").strip() if revision is not None else ""},
        )
        if not wikitext.strip():
            return Reject(doc, NO_TEXT)
        if wikitext.lstrip()[:9].upper() == "#REDIRECT":  # a redirect without the <redirect/> tag
            return Skip(REDIRECT)
        return doc, site.namespaces


@dataclass(frozen=True)
class CleanArticle:
    """(Document with wikitext, link namespaces) -> Document with plain text, or a Reject."""

    options: WikipediaOptions

    def __call__(self, record: tuple[Document, tuple[str, ...]]) -> Document | Reject:
        doc, namespaces = record
        cleaner = WikitextCleaner(drop_sections=self.options.drop_sections, namespaces=namespaces)
        text = cleaner(doc.text)
        cleaned = doc.replace(text=text)
        if len(text) < max(self.options.min_chars, 1):
            return Reject(cleaned, TOO_SHORT)
        return cleaned


def read_wikipedia(options: WikipediaOptions, source: str = "wikipedia") -> SourceReader:
    """The reader PTransform for Wikipedia dumps."""
    return SourceReader(STAGE, ParseDump(source, options), CleanArticle(options), failure_reason=CLEAN_FAILED)
