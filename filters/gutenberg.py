"""Project Gutenberg books: decode whatever encoding the file has, cut the license off both ends.

LLaMA's books share (Touvron et al. 2023, section 2.1) is Project Gutenberg plus Books3, with
near-duplicate books (more than 90% content overlap) removed; that dedup is the pipeline's
``minhash_dedup`` stage at threshold 0.9. What has to happen per book first, and is here:

* Decoding. Gutenberg files come as ASCII, ISO-8859-1 ("-8.txt" files), UTF-8 ("-0.txt"), often
  with a byte-order mark and CRLF line ends. The header usually says which ("Character set
  encoding: ISO-8859-1"); we trust a BOM first, then the declaration if the bytes agree, then
  strict UTF-8, then Windows-1252 (a superset of Latin-1's printable characters: older files
  carry its curly quotes), then Latin-1, which decodes anything. Line ends become ``\\n`` and the
  text is NFC-normalized, so the same book in two encodings yields the same string.
* The license. Modern files wrap the book in ``*** START OF THE PROJECT GUTENBERG EBOOK ... ***``
  and ``*** END OF ...``, with an "End of the Project Gutenberg EBook of ..." line just before
  the end marker. Files from the 1990s and early 2000s put "THE SMALL PRINT!" at the top, ending
  in ``*END*THE SMALL PRINT! ... *END*``, or at the bottom after the book. Both generations are
  recognized; a file without any marker is returned whole and flagged.
* The producer credits ("Produced by ...", "E-text prepared by ...") right after the start
  marker differ between editions of the same book, so they are removed too.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from dataclasses import dataclass

_START_MARKERS = re.compile(
    r"^[ \t]*\*{3}[ \t]*START OF (?:THE|THIS) PROJECT GUTENBERG[^\n]*$", re.I | re.M
)
# Old files: the small print sits at the top, and its last line ends the header.
_SMALL_PRINT_END = re.compile(r"^[ \t]*\*END\*?[ \t]*THE SMALL PRINT![^\n]*$", re.I | re.M)
_END_MARKERS = re.compile(
    r"^[ \t]*(?:\*{3}[ \t]*END OF (?:THE|THIS) PROJECT GUTENBERG"
    r"|End of (?:the |this )?Project Gutenberg"
    r"|\*{3}[ \t]*START\*{0,2}[ \t]*THE SMALL PRINT)[^\n]*$",
    re.I | re.M,
)
_BOOK_END_LINE = re.compile(r"^[ \t]*End of (?:the |this )?Project Gutenberg", re.I | re.M)
_CREDITS = re.compile(
    r"^(?:Produced by|E-?text prepared by|Transcribed (?:from|by)|This e-?text was (?:prepared|produced)"
    r"|Etext (?:prepared|scanned) by)\b",
    re.I,
)
_DECLARED_ENCODING = re.compile(r"^Character set encoding:[ \t]*([^\r\n]+)", re.I | re.M)
_TITLE = re.compile(r"^Title:[ \t]*([^\r\n]+)", re.M)
_AUTHOR = re.compile(r"^Author:[ \t]*([^\r\n]+)", re.M)
_EBOOK_NUMBER = re.compile(r"\[(?:E-?book|Etext) #(\d+)\]", re.I)
_HEADER_WINDOW = 20_000  # characters: the metadata block is always near the top
_CREDIT_PARAGRAPHS = 3
_CREDIT_MAX_LINES = 6  # a credit names a few people; a longer "paragraph" is the book run on
_DECLARED = {
    "ascii": "ascii", "us-ascii": "ascii", "iso-646-us (us-ascii)": "ascii", "iso-646-us": "ascii",
    "iso-8859-1": "latin-1", "iso 8859-1": "latin-1", "latin-1": "latin-1", "latin1": "latin-1",
    "utf-8": "utf-8", "utf8": "utf-8", "windows-1252": "cp1252", "cp1252": "cp1252",
}


def decode_book(data: bytes) -> tuple[str, str]:
    """(text with ``\\n`` line ends, NFC; the codec that decoded it)."""
    if data.startswith(codecs.BOM_UTF8):
        text, codec = data[len(codecs.BOM_UTF8):].decode("utf-8", errors="replace"), "utf-8-sig"
    else:
        text, codec = _decode_unmarked(data)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return unicodedata.normalize("NFC", text), codec


def _decode_unmarked(data: bytes) -> tuple[str, str]:
    head = data[:_HEADER_WINDOW].decode("latin-1")
    declared = _DECLARED_ENCODING.search(head)
    candidates = []
    if declared:
        codec = _DECLARED.get(declared.group(1).strip().lower())
        if codec:
            candidates.append(codec)
    candidates += ["utf-8", "cp1252"]
    for codec in candidates:
        try:
            return data.decode(codec), codec
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1"), "latin-1"


@dataclass(frozen=True)
class Book:
    """A book's text without the Gutenberg license, and what its header said about it."""

    text: str
    markers: str  # "modern", "small_print" or "none": which boilerplate was recognized
    title: str = ""
    author: str = ""
    ebook_number: str = ""


def strip_gutenberg(text: str) -> Book:
    """The book inside the license header and footer (see the module docstring)."""
    head = text[:_HEADER_WINDOW]
    title = _first(_TITLE, head)
    author = _first(_AUTHOR, head)
    number = _first(_EBOOK_NUMBER, head)
    start = _START_MARKERS.search(text)
    markers = "modern"
    if start is None:
        small_print = _SMALL_PRINT_END.search(text)
        # Before the book it ends the header; after an "End of the Project Gutenberg" line it is
        # a footer, handled below.
        ended = _BOOK_END_LINE.search(text, 0, small_print.start()) if small_print else None
        start = small_print if small_print and ended is None else None
        markers = "small_print" if start else "none"
    body = text[start.end():] if start else text
    end = _END_MARKERS.search(body)
    if end:
        markers = markers if markers != "none" else "footer_only"
        body = body[: end.start()]
    return Book(_drop_credits(body).strip("\n").strip(), markers, title, author, number)


def _drop_credits(body: str) -> str:
    paragraphs = re.split(r"\n[ \t]*\n", body.lstrip("\n"), maxsplit=_CREDIT_PARAGRAPHS)
    kept = []
    for i, paragraph in enumerate(paragraphs):
        if i < _CREDIT_PARAGRAPHS and _CREDITS.match(paragraph.strip()):
            lines = paragraph.strip().split("\n")
            if len(lines) <= _CREDIT_MAX_LINES:
                continue
            paragraph = "\n".join(lines[1:])  # no blank line after the credit: keep the rest
        kept.append(paragraph)
    return "\n\n".join(kept)


def _first(pattern: re.Pattern[str], text: str) -> str:
    match = pattern.search(text)
    return match.group(1).strip() if match else ""
