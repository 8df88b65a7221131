"""Record classification, charset decoding and extraction on hand-made bytes and a real page."""

from __future__ import annotations

import gzip
import json

import pytest

from filters.html import ExtractOptions, decode_html, html_skip_reason, looks_like_html, page_text
from tests.conftest import SHARED_DATA

PAGE = b"<!DOCTYPE html><html><head><title>t</title></head><body><p>hello</p></body></html>"


@pytest.mark.parametrize(
    ("record_type", "status", "content_type", "payload", "reason"),
    [
        ("request", None, None, b"GET /", "read.not_response"),
        ("metadata", None, None, b"x", "read.not_response"),
        ("revisit", 200, "text/html", b"", "read.revisit"),
        ("response", 404, "text/html", PAGE, "read.http_status"),
        ("response", 301, "text/html", b"", "read.http_status"),
        ("response", 200, "text/html", b"", "read.empty_payload"),
        ("response", 200, "image/png", b"\x89PNG", "read.not_html"),
        ("response", 200, "application/pdf", b"%PDF", "read.not_html"),
        ("response", 200, "text/plain", b"just text", "read.not_html"),
        ("response", 200, "text/html; charset=utf-8", PAGE, None),
        ("response", 200, "application/xhtml+xml", PAGE, None),
        # No HTTP headers at all (Wayback exports): the body is sniffed.
        ("response", None, None, PAGE, None),
        ("response", None, None, b"\xef\xbb\xbf  <!-- c --> <html><body>x</body></html>", None),
        ("response", None, None, b"%PDF-1.4 binary", "read.not_html"),
        # Mislabelled octet-stream that is really HTML.
        ("response", 200, "application/octet-stream", PAGE, None),
    ],
)
def test_skip_reasons(record_type, status, content_type, payload, reason) -> None:
    assert html_skip_reason(record_type, status, content_type, payload) == reason


def test_sniffing_ignores_text_that_only_mentions_html() -> None:
    assert not looks_like_html(b"This text talks about <html> tags")


def test_charset_from_http_header() -> None:
    body = "café".encode("cp1252")
    assert decode_html(body, "text/html; charset=windows-1252") == "café"


def test_charset_from_meta_when_header_is_silent() -> None:
    body = '<meta charset="iso-8859-1"><p>Größe</p>'.encode("latin-1")
    assert "Größe" in decode_html(body, "text/html")


def test_wrong_declared_charset_falls_back_to_detection() -> None:
    body = ("<html><body>" + "中文网页内容，这是一个测试页面。" * 20 + "</body></html>").encode("gbk")
    text = decode_html(body, "text/html; charset=utf-8")
    assert "中文网页" in text


def test_unknown_charset_and_bad_bytes_never_raise() -> None:
    assert isinstance(decode_html(b"\xff\xfe\xfa<p>x</p>", "text/html; charset=no-such-charset"), str)
    assert decode_html(b"", None) == ""


def test_bom_wins() -> None:
    assert decode_html(b"\xef\xbb\xbf<p>\xc3\xa9</p>", "text/html; charset=latin-1") == "<p>é</p>"


def test_page_text_reasons() -> None:
    assert page_text(b"<html><body></body></html>", "text/html", "", ExtractOptions()) == ("", "extract.no_text")
    big = b"<html><body>" + b"<p>x</p>" * 1000 + b"</body></html>"
    assert page_text(big, "text/html", "", ExtractOptions(max_html_chars=100))[1] == "extract.too_large"


def test_real_article_extracts_its_body() -> None:
    aeb = SHARED_DATA / "html_extraction" / "scrapinghub_article_extraction_benchmark"
    truth = json.loads((aeb / "ground-truth.json").read_text())
    key = sorted(truth)[0]
    html = gzip.decompress((aeb / "html" / f"{key}.html.gz").read_bytes())
    text, reason = page_text(html, "text/html", truth[key]["url"], ExtractOptions())
    assert reason == ""
    gold_words = truth[key]["articleBody"].split()
    assert " ".join(gold_words[:8]) in " ".join(text.split())
