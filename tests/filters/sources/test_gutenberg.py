"""Decoding and license stripping of Project Gutenberg files: hand-written variants and real files."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from filters.gutenberg import decode_book, strip_gutenberg

EDITIONS = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "dedup" / "gutenberg_edition_groups"

BODY = "CHAPTER I\n\nThe tide came in at dawn, and the boats went out.\n\nCHAPTER II\n\nThey came back at noon."


def modern(body: str = BODY) -> str:
    return ("The Project Gutenberg EBook of Tides, by A. Writer\n\nTitle: Tides\n\nAuthor: A. Writer\n\n"
            "Release Date: May 1, 2004 [EBook #99999]\n\nLanguage: English\n\n"
            "*** START OF THIS PROJECT GUTENBERG EBOOK TIDES ***\n\n\n\n\nProduced by A. Volunteer\n\n\n\n\n"
            f"{body}\n\n\n\nEnd of the Project Gutenberg EBook of Tides, by A. Writer\n\n"
            "*** END OF THIS PROJECT GUTENBERG EBOOK TIDES ***\n\n***** This file should be named 99999.txt *****\n"
            "Section 1. General Terms of Use and Redistributing Project Gutenberg-tm electronic works\n")


def test_decode_utf8_with_bom_and_crlf():
    text, codec = decode_book(codecs.BOM_UTF8 + "L'Abbé\r\nline two\r\n".encode("utf-8"))
    assert (text, codec) == ("L'Abbé\nline two\n", "utf-8-sig")


def test_decode_declared_latin1():
    data = "Character set encoding: ISO-8859-1\r\n\r\nL'Abbé".encode("latin-1")
    assert decode_book(data) == ("Character set encoding: ISO-8859-1\n\nL'Abbé", "latin-1")


def test_decode_undeclared_windows_1252_quotes():
    text, codec = decode_book(b"\x93Tides,\x94 she said.\r")
    assert (text, codec) == ("\u201cTides,\u201d she said.\n", "cp1252")


def test_decode_normalizes_to_nfc():
    assert decode_book("Abbe\u0301".encode("utf-8"))[0] == "Abb\u00e9"


def test_strips_modern_header_footer_and_credits():
    book = strip_gutenberg(modern())
    assert book.text == BODY
    assert (book.markers, book.title, book.author, book.ebook_number) == ("modern", "Tides", "A. Writer", "99999")


def test_strips_old_small_print_header():
    text = ("The Project Gutenberg Etext of Tides\n\n**Welcome To The World of Free Plain Vanilla Electronic Texts**\n\n"
            "***START**THE SMALL PRINT!**FOR PUBLIC DOMAIN ETEXTS**START***\nWhy is this \"Small Print!\" statement here?\n"
            "*END*THE SMALL PRINT! FOR PUBLIC DOMAIN ETEXTS*Ver.04.29.93*END*\n\n"
            f"{BODY}\n\nEnd of The Project Gutenberg Etext of Tides\n")
    book = strip_gutenberg(text)
    assert (book.text, book.markers) == (BODY, "small_print")


def test_small_print_at_the_end_is_a_footer():
    text = (f"*** START OF THE PROJECT GUTENBERG EBOOK TIDES ***\n\n{BODY}\n\n"
            "***START**THE SMALL PRINT!**FOR PUBLIC DOMAIN EBOOKS**START***\nlegal text\n"
            "*END THE SMALL PRINT! FOR PUBLIC DOMAIN EBOOKS*Ver.02/11/02*END*\n")
    assert strip_gutenberg(text).text == BODY


def test_text_without_markers_is_kept_whole_and_flagged():
    book = strip_gutenberg(BODY)
    assert (book.text, book.markers) == (BODY, "none")


def test_a_credit_line_run_into_the_book_removes_only_itself():
    body = "Produced by A. Volunteer\n" + "\n".join(f"Line {i} of the book." for i in range(10))
    book = strip_gutenberg(modern(body))
    assert book.text == "\n".join(f"Line {i} of the book." for i in range(10))


@pytest.mark.parametrize("name", ["pg12200__12200.txt", "pg12200__12200-0.txt", "pg12200__12200-8.txt",
                                  "pg972__old_dvldc10.txt", "pg9198__old_8tcng10.txt"])
def test_real_editions_lose_every_license_line(name: str):
    text, _ = decode_book((EDITIONS / name).read_bytes())
    book = strip_gutenberg(text)
    assert book.markers in ("modern", "small_print")
    assert 0.9 * len(text) < len(book.text) + 25_000 < len(text) + 25_000
    for marker in ("START OF TH", "END OF TH", "SMALL PRINT", "Project Gutenberg-tm", "\r"):
        assert marker not in book.text


def test_latin1_and_utf8_editions_decode_to_the_same_book():
    utf8 = strip_gutenberg(decode_book((EDITIONS / "pg12200__12200-0.txt").read_bytes())[0]).text
    latin1 = strip_gutenberg(decode_book((EDITIONS / "pg12200__12200-8.txt").read_bytes())[0]).text
    assert "L'Abbé" in utf8 and "L'Abbé" in latin1
    # Latin-1 cannot spell every character of the UTF-8 edition (a macron or two): compare words.
    words, other = set(utf8.split()), set(latin1.split())
    assert len(words & other) / len(words | other) > 0.99
