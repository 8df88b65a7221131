"""filters.urls.match_key: spellings of one page meet; different pages stay apart; junk is named."""

from __future__ import annotations

import pytest

from filters.urls import UnusableUrl, key_domain, match_key


@pytest.mark.parametrize(
    ("a", "b"),
    [
        # scheme and host case, www., trailing slash
        ("HTTPS://WWW.Example.ORG/Page/", "http://example.org/Page"),
        # default ports, for their own scheme
        ("http://example.org:80/a", "https://example.org:443/a"),
        # fragment
        ("http://example.org/a#section-2", "http://example.org/a"),
        # IDNA: a Unicode host and its punycode
        ("https://bücher.de/katalog", "https://xn--bcher-kva.de/katalog"),
        # percent-encoding: escaped unreserved characters, lower-case escapes, raw UTF-8
        ("http://example.org/%7Euser/caf%c3%a9", "http://example.org/~user/café"),
        ("http://example.org/a b", "http://example.org/a%20b"),
        # query order and tracking parameters
        ("http://example.org/s?b=2&a=1", "http://example.org/s?a=1&b=2"),
        ("http://example.org/s?id=7&utm_source=tw&utm_medium=x&fbclid=abc", "http://example.org/s?id=7"),
        # protocol-relative links, as Wikipedia writes some
        ("//example.org/a", "http://example.org/a"),
        # a Wayback capture stands for the page it captured
        ("https://web.archive.org/web/20100101000000/http://www.example.org/a", "http://example.org/a"),
        ("http://web.archive.org/web/2010id_/http:/example.org/a", "http://example.org/a"),
        # user info and a trailing dot on the host
        ("http://user:pw@example.org./a", "http://example.org/a"),
    ],
)
def test_spellings_of_one_page_share_a_key(a: str, b: str) -> None:
    assert match_key(a) == match_key(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("http://example.org/Page", "http://example.org/page"),  # paths are case-sensitive
        ("http://example.org/s?a=1", "http://example.org/s?a=2"),
        ("http://example.org:8080/a", "http://example.org/a"),  # a non-default port is another server
        ("http://example.org/a%2Fb", "http://example.org/a/b"),  # an escaped slash is not a slash
        ("http://blog.example.org/a", "http://example.org/a"),
    ],
)
def test_different_pages_keep_different_keys(a: str, b: str) -> None:
    assert match_key(a) != match_key(b)


def test_the_key_has_no_scheme_and_a_readable_form() -> None:
    assert match_key("HTTP://WWW.Example.org:8080/a/?z=1&y=2#f") == "example.org:8080/a?y=2&z=1"
    assert match_key("http://[2001:db8::1]:8080/x") == "[2001:db8::1]:8080/x"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("", "url.empty"),
        ("   ", "url.empty"),
        ("mailto:someone@example.org", "url.not_http"),
        ("ftp://ftp.example.org/file", "url.not_http"),
        ("www.example.org/no-scheme", "url.not_http"),
        ("http://exa mple.org/", "url.bad_host"),
        ("http://", "url.bad_host"),
        ("http://[::1/", "url.bad_host"),
    ],
)
def test_strings_that_name_no_page_are_refused_with_a_reason(url: str, reason: str) -> None:
    with pytest.raises(UnusableUrl) as refused:
        match_key(url)
    assert refused.value.reason == reason


def test_domain_of_a_key() -> None:
    assert key_domain(match_key("https://www.News.example.co.uk:8443/a?b=1")) == "news.example.co.uk"
    assert key_domain(match_key("http://example.org?q=1")) == "example.org"
    assert key_domain(match_key("http://[2001:db8::1]/x")) == "2001:db8::1"
