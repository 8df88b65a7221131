"""From an HTTP response to main text: is it HTML, what charset is it in, what is its main text.

These are decisions on one record, kept pure so they can be tested on bytes; the Beam plumbing
(reading archives, the per-document time cap) lives in ``pipeline/``. Two extractors are offered
(``ExtractOptions.engine``): trafilatura, the reference, and resiliparse, the fast path.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from typing import Literal

# Sniffing looks only at the start of a body: enough for a doctype or an <html> tag after a BOM,
# comments or a byte-order mark, but cheap on multi-MB payloads.
_SNIFF_BYTES = 2048
_HTML_START = re.compile(rb"^\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html|head|body|meta|title)\b", re.I | re.S)
_META_CHARSET = re.compile(
    rb"""<meta[^>]+?charset\s*=\s*["']?\s*([a-zA-Z0-9_\-:.]+)""", re.I
)
_HEADER_CHARSET = re.compile(r"charset\s*=\s*[\"']?\s*([a-zA-Z0-9_\-:.]+)", re.I)
_HTML_TYPES = ("text/html", "application/xhtml+xml")


def html_skip_reason(
    record_type: str, http_status: int | None, content_type: str | None, payload: bytes | None
) -> str | None:
    """Why a record is not an HTML page to extract (a ``read.*`` reason), or None if it is.

    The Content-Type decides when the record has HTTP headers; records stored without them
    (Wayback exports) or with no Content-Type are sniffed, since their HTML would otherwise be lost.
    """
    if record_type == "revisit":
        return "read.revisit"
    if record_type != "response":
        return "read.not_response"
    if http_status is not None and not 200 <= http_status < 300:
        return "read.http_status"
    if not payload:
        return "read.empty_payload"
    mime = (content_type or "").split(";", 1)[0].strip().lower()
    if mime in _HTML_TYPES:
        return None
    if mime and mime not in ("text/plain", "application/octet-stream", "unknown", "unk"):
        return "read.not_html"
    return None if looks_like_html(payload) else "read.not_html"


def looks_like_html(payload: bytes) -> bool:
    head = payload[:_SNIFF_BYTES].lstrip(codecs.BOM_UTF8)
    return bool(_HTML_START.match(head))


def decode_html(payload: bytes, content_type: str | None = None) -> str:
    """Bytes to str: the HTTP charset, then a ``<meta>`` charset, then detection; never raises.

    Declared charsets are wrong often enough (GBK pages labelled UTF-8 in the 2020 CC sample) that
    a declared charset is only trusted if the bytes decode under it without errors.
    """
    if payload.startswith(codecs.BOM_UTF8):
        return payload[len(codecs.BOM_UTF8):].decode("utf-8", "replace")
    for name in (_declared(content_type), _meta_charset(payload)):
        codec = _codec(name)
        if codec:
            try:
                return payload.decode(codec)
            except UnicodeDecodeError:
                pass
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        pass
    return _detect(payload)


def _declared(content_type: str | None) -> str | None:
    match = _HEADER_CHARSET.search(content_type or "")
    return match.group(1) if match else None


def _meta_charset(payload: bytes) -> str | None:
    match = _META_CHARSET.search(payload[:4096])
    return match.group(1).decode("ascii", "ignore") if match else None


def _codec(name: str | None) -> str | None:
    if not name:
        return None
    try:
        codec = codecs.lookup(name.strip().lower()).name
    except LookupError:
        return None
    # WHATWG: pages labelled latin-1 are decoded as windows-1252, a superset that browsers use.
    return "cp1252" if codec in ("latin-1", "iso8859-1", "ascii") else codec


def _detect(payload: bytes) -> str:
    from charset_normalizer import from_bytes  # imported late: only needed for undeclared bytes

    best = from_bytes(payload[:65536]).best()
    encoding = best.encoding if best is not None else "utf-8"
    return payload.decode(encoding, "replace")


ENGINES = ("trafilatura", "resiliparse")


@dataclass(frozen=True, slots=True)
class ExtractOptions:
    """How a page's main text is found, as the config's ``extract:`` section names it.

    ``engine`` picks the extractor. trafilatura is the default: it is what the LLaMA-style recipes
    were built with and scores best on the shared gold pages (AEB token F1 0.959). resiliparse is
    the fast path: about 14 times cheaper per page at AEB F1 0.937 (``benchmarks/pipeline_cost.py``,
    ``tests/pipeline/test_extraction_quality.py``).

    ``favor_precision``, ``favor_recall`` and ``deduplicate`` are trafilatura's own knobs and are
    refused with the other engine rather than silently ignored.
    """

    engine: Literal["trafilatura", "resiliparse"] = "trafilatura"
    favor_precision: bool = False
    favor_recall: bool = False
    # trafilatura keeps comment sections unless told otherwise; we drop them (with either engine):
    # on the shared pages dropping them scores better (AEB F1 0.959 vs 0.948, trafilatura-eval
    # 0.924 vs 0.919), and reader comments are the least edited text of a page.
    include_comments: bool = False
    include_tables: bool = True
    deduplicate: bool = False
    # Pages beyond this many characters of HTML are skipped as ``extract.too_large``: both engines'
    # cost grows with the DOM, and such pages are almost never articles.
    max_html_chars: int = 2_000_000
    # Per-document wall-time cap; a page that takes longer is killed and counted (extract.timeout).
    # Both engines need it: resiliparse's main-content pass is quadratic in nesting depth (8,000
    # nested <div>s take 2.3 s, 200,000 would take hours), trafilatura's pruning likewise.
    timeout_seconds: float = 10.0
    # Below this many characters of extracted text the page counts as extract.no_text.
    min_text_chars: int = 1

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ValueError(f"extract.engine {self.engine!r} is not one of {', '.join(ENGINES)}")
        if self.engine != "trafilatura":
            for knob in ("favor_precision", "favor_recall", "deduplicate"):
                if getattr(self, knob):
                    raise ValueError(f"extract.{knob} is a trafilatura option; extract.engine is {self.engine}")
        if self.timeout_seconds <= 0:
            raise ValueError("extract.timeout_seconds must be positive")


def extract_main_text(html: str, options: ExtractOptions, url: str | None = None) -> str:
    """The page's main text with the configured engine ('' if it found none); never raises on bad markup."""
    if options.engine == "resiliparse":
        return _resiliparse_text(html, options)
    return _trafilatura_text(html, options, url)


def _trafilatura_text(html: str, options: ExtractOptions, url: str | None) -> str:
    import trafilatura  # imported late so that filters/ stays cheap to import

    try:
        text = trafilatura.extract(
            html,
            url=url or None,
            favor_precision=options.favor_precision,
            favor_recall=options.favor_recall,
            include_comments=options.include_comments,
            include_tables=options.include_tables,
            deduplicate=options.deduplicate,
            with_metadata=False,
        )
    except (ValueError, TypeError, RecursionError, AssertionError):
        return ""
    return text or ""


def _resiliparse_text(html: str, options: ExtractOptions) -> str:
    """resiliparse's main-content text, shaped like trafilatura's output for the filters after it.

    Blocks become lines and list items keep a bullet (the Gopher bullet rule and the line rules of
    C4 and FineWeb read lines); link targets, image alt texts, form fields and the "posted by /
    on" meta lines are left out: they are navigation and markup, not prose to train on.
    """
    from resiliparse.extract.html2text import extract_plain_text
    from resiliparse.parse.html import HTMLParserException

    try:
        text = extract_plain_text(
            html,
            preserve_formatting=True,
            main_content=True,
            list_bullets=True,
            alt_texts=False,
            links=False,
            form_fields=False,
            noscript=False,
            comments=options.include_comments,
            post_meta=False,
            skip_elements=None if options.include_tables else ["table"],
        )
    except (HTMLParserException, ValueError, TypeError):
        return ""
    # One block per line with no blank lines between, as trafilatura writes it, so that the
    # tokenizer and the model see the same text shape whichever engine ran.
    return "\n".join(line for line in text.splitlines() if line.strip())


def page_text(payload: bytes, content_type: str | None, url: str, options: ExtractOptions) -> tuple[str, str]:
    """Decode and extract one page: ``(text, "")`` or ``("", reason)`` with an ``extract.*`` reason."""
    html = decode_html(payload, content_type)
    if len(html) > options.max_html_chars:
        return "", "extract.too_large"
    text = extract_main_text(html, options, url).strip()
    if len(text) < max(options.min_text_chars, 1):
        return "", "extract.no_text"
    return text, ""
