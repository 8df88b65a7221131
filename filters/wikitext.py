"""Wikipedia wikitext -> plain text, as LLaMA prepared its Wikipedia share.

Touvron et al. 2023, section 2.1: "We process the data to remove hyperlinks, comments and other
formatting boilerplate." The markup is parsed with mwparserfromhell and the tree is rendered back
to text by our own walker, node type by node type, because the library's ``strip_code`` keeps
the cell text of tables and the captions of images, both of which read as noise out of context:

* templates (``{{...}}``), template arguments and comments are removed; infoboxes, navboxes,
  citation templates and unit conversions all go (the last ones lose their numbers: the price
  of not evaluating templates, which needs the whole template namespace);
* links keep their visible text: ``[[Paris|the capital]]`` -> "the capital", ``[[Paris]]`` ->
  "Paris", ``[http://x.org the site]`` -> "the site"; a bare external URL is removed;
* links into the File/Image/Media/Category namespaces (and their localized names, which the
  dump's siteinfo lists) and interlanguage links (``[[de:Paris]]``) are removed whole;
* tables, references (``<ref>``), galleries, math and the other tags MediaWiki does not render as
  prose are removed with their content; formatting tags (bold, italics, ``<span>``) keep theirs;
* headings stay as lines of their own; sections whose heading is pure back matter (References,
  External links, See also, ...) are removed with everything under them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import mwparserfromhell
from mwparserfromhell.nodes import (
    Argument,
    Comment,
    ExternalLink,
    Heading,
    HTMLEntity,
    Node,
    Tag,
    Template,
    Text,
    Wikilink,
)
from mwparserfromhell.parser import ParserError

# Canonical names of the namespaces whose links are media or bookkeeping, not prose. "Image" is
# the old alias of "File" that articles still use.
CANONICAL_DROP_NAMESPACES = ("file", "image", "media", "category")

# Tags whose content is not running prose. Tables, references and galleries are named by the
# brief (LLaMA's "formatting boilerplate"); the rest render as pictures, code or widgets.
DROP_TAGS = frozenset({
    "table", "ref", "references", "gallery", "math", "chem", "ce", "score", "timeline", "graph",
    "imagemap", "templatedata", "syntaxhighlight", "source", "pre", "hiero", "mapframe", "maplink",
    "inputbox", "categorytree", "noinclude", "includeonly", "onlyinclude", "div", "indicator",
})
_LINE_BREAK_TAGS = frozenset({"br", "li", "dt", "dd", "p"})

# English back-matter sections: link lists and bibliographies, no prose.
DEFAULT_DROP_SECTIONS = (
    "references", "external links", "see also", "further reading", "notes", "notes and references",
    "footnotes", "bibliography", "sources", "citations", "works cited", "references and notes",
)

_INTERLANGUAGE = re.compile(r"^[a-z]{2,3}(?:-[a-z]{2,8})*$")
_MAGIC_WORD = re.compile(r"__[A-Z]+__")
_STYLE_QUOTES = re.compile(r"'{2,}")
_EMPTY_BRACKETS = re.compile(r"\(\s*[,;:]?\s*\)|\[\s*\]")
_SPACE_BEFORE_PUNCT = re.compile(r"[ \t]+([,.;:!?)])")
_SPACE_AFTER_OPEN = re.compile(r"\([ \t]*(?:[,;:][ \t]*)*")
_REPEATED_PUNCT = re.compile(r"([,;])(\s*[,;])+")
_MULTI_SPACE = re.compile(r"[ \t]{2,}")
_MANY_NEWLINES = re.compile(r"\n{3,}")
_LIST_MARKUP_ONLY = re.compile(r"^[*#:;\s]+$")


@dataclass(frozen=True)
class WikitextCleaner:
    """Renders one article's wikitext to plain text (the rules in the module docstring).

    ``namespaces`` adds link namespaces to drop beyond the canonical English ones, e.g. the
    localized "Datei"/"Kategorie" of a German dump (its siteinfo names them).
    """

    drop_sections: tuple[str, ...] = DEFAULT_DROP_SECTIONS
    namespaces: tuple[str, ...] = ()
    _drop_ns: frozenset[str] = field(init=False, repr=False, compare=False)
    _drop_sections: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = {n.strip().lower() for n in (*CANONICAL_DROP_NAMESPACES, *self.namespaces) if n.strip()}
        object.__setattr__(self, "_drop_ns", frozenset(names))
        object.__setattr__(self, "_drop_sections", frozenset(s.strip().lower() for s in self.drop_sections))

    def __call__(self, wikitext: str) -> str:
        """Plain text of ``wikitext``; raises ValueError when the markup cannot be parsed."""
        try:
            # MediaWiki ends '' and ''' at the end of a line; mwparserfromhell may carry an unclosed
            # one across headings, so style quotes are left as text and removed in tidy().
            code = mwparserfromhell.parse(wikitext, skip_style_tags=True)
        except ParserError as exc:  # the tokenizer gives up on some pathological nesting
            raise ValueError(f"wikitext does not parse: {exc}") from None
        return tidy(_Render(self).nodes(code.nodes))


class _Render:
    """One pass over one article; holds whether we are inside a dropped section."""

    def __init__(self, cleaner: WikitextCleaner) -> None:
        self._drop_ns = cleaner._drop_ns
        self._drop_sections = cleaner._drop_sections
        self._skip_level = 0  # >0 while inside a dropped section of that heading level

    def nodes(self, nodes: Iterable[Node]) -> str:
        parts: list[str] = []
        for node in nodes:
            if isinstance(node, Heading):
                if self._skip_level and node.level > self._skip_level:
                    continue
                self._skip_level = 0
                title = self._plain(node.title.nodes).strip()
                if title.lower() in self._drop_sections:
                    self._skip_level = node.level
                    continue
                parts.append(f"\n\n{title}")  # the heading's own line end follows as text
            elif self._skip_level:
                continue
            elif isinstance(node, Text):
                parts.append(str(node.value))
            elif isinstance(node, HTMLEntity):
                parts.append(node.normalize())
            elif isinstance(node, Wikilink):
                parts.append(self._link_text(node))
            elif isinstance(node, ExternalLink):
                parts.append(self.nodes(node.title.nodes) if node.title else "")
            elif isinstance(node, Tag):
                parts.append(self._tag_text(node))
            elif isinstance(node, (Template, Comment, Argument)):
                continue
        return "".join(parts)

    def _plain(self, nodes: Iterable[Node]) -> str:
        saved, self._skip_level = self._skip_level, 0
        try:
            return self.nodes(nodes)
        finally:
            self._skip_level = saved

    def _link_text(self, link: Wikilink) -> str:
        title = str(link.title).strip()
        if not title.startswith(":"):  # a leading colon makes a visible link to a category or file
            prefix, sep, _ = title.partition(":")
            prefix = prefix.strip().lower()
            if sep and (prefix in self._drop_ns or _INTERLANGUAGE.match(prefix)):
                return ""
        shown = link.text if link.text is not None else link.title
        text = self.nodes(shown.nodes)
        return text.lstrip(":") if link.text is None else text

    def _tag_text(self, tag: Tag) -> str:
        name = str(tag.tag).strip().lower()
        if name in DROP_TAGS:
            return ""
        if tag.wiki_markup and name in _LINE_BREAK_TAGS:
            return ""  # a list bullet: the line end before it and the item's text are Text nodes
        if name == "br":
            return "\n"
        if tag.contents is None:
            return ""
        inner = self.nodes(tag.contents.nodes)
        return f"{inner}\n" if name in _LINE_BREAK_TAGS else inner


def tidy(text: str) -> str:
    """Whitespace and the punctuation that removed templates leave behind ("born ( ; )")."""
    text = _STYLE_QUOTES.sub("", _MAGIC_WORD.sub("", text))
    text = text.replace("\u00a0", " ")
    lines = []
    for line in text.split("\n"):
        line = _EMPTY_BRACKETS.sub("", line)
        line = _SPACE_AFTER_OPEN.sub("(", line)
        line = _REPEATED_PUNCT.sub(r"\1", line)
        line = _SPACE_BEFORE_PUNCT.sub(r"\1", line)
        line = _MULTI_SPACE.sub(" ", line).strip()
        if _LIST_MARKUP_ONLY.match(line):
            line = ""
        lines.append(line)
    return _MANY_NEWLINES.sub("\n\n", "\n".join(lines)).strip()


def wikitext_to_text(wikitext: str, namespaces: Iterable[str] = ()) -> str:
    """Plain text of one article with the default rules (see :class:`WikitextCleaner`)."""
    return WikitextCleaner(namespaces=tuple(namespaces))(wikitext)
