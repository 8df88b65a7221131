"""One URL normalization, so a URL cited in Wikipedia and the URL a crawler fetched meet in a join.

LLaMA's quality classifier learns "pages cited as references in Wikipedia" against random pages
(Touvron et al. 2023, 2.1). Finding the cited pages in a crawl is a join on the URL, and the two
sides spell the same page differently: ``HTTP://WWW.Example.org:80/caf%c3%a9?b=2&a=1#top`` in a
citation is ``https://example.org/café?a=1&b=2`` in the crawl. :func:`match_key` maps both to one
key, and every refinery join on URLs (``wiki-references``, ``build-quality-set``) goes through it.

The heavy lifting is w3lib's ``canonicalize_url`` (Scrapy's, maintained, pinned in pyproject):
lowercased scheme and host, IDNA (``bücher.de`` -> ``xn--bcher-kva.de``), percent-encoding made
canonical (unreserved characters decoded, the rest encoded as upper-case UTF-8 escapes), query
arguments sorted, the fragment removed. On top of it, choices of our own for matching pages:

- the scheme is dropped: ``http`` and ``https`` serve the same page on nearly every site, and
  Wikipedia's older citations are ``http`` for sites the crawl now fetches over ``https``;
- the default port, a leading ``www.``, a trailing dot on the host, user info and trailing
  slashes of the path are dropped;
- tracking parameters (``utm_*``, ``fbclid``, ``gclid`` and the like) are dropped: they name the
  campaign that led to the page, not the page;
- a Wayback Machine capture (``web.archive.org/web/<timestamp>/<url>``) stands for the page it
  captured, so a citation's ``archive-url`` and a crawl's snapshot match the original page.

A URL that cannot name a web page raises :class:`UnusableUrl` with a stable ``reason``, for the
caller to count: ``url.empty``, ``url.not_http`` (mailto:, ftp:, no scheme) and ``url.bad_host``.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from w3lib.url import canonicalize_url

DEFAULT_PORTS = {"http": 80, "https": 443}
TRACKING_PARAMS = frozenset({
    "fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "mc_cid", "mc_eid", "igshid",
    "_ga", "_gl", "_hsenc", "_hsmi", "mkt_tok", "ref_src", "spm", "cmpid",
})
TRACKING_PREFIXES = ("utm_",)
# web.archive.org/web/20100101000000/http://example.org/ ; the timestamp may carry a mode (id_, im_).
_WAYBACK = re.compile(r"^(?:https?:)?//(?:web\.|www\.)?archive\.org/web/\d{1,14}[a-z_]*/+(?P<url>.+)$",
                      re.IGNORECASE)
_SCHEME_WITHOUT_SLASHES = re.compile(r"^(https?):/*(?=[^/])", re.IGNORECASE)


class UnusableUrl(ValueError):
    """A string that does not name a web page; ``reason`` is a stable counter name (``url.<why>``)."""

    def __init__(self, reason: str, url: str) -> None:
        super().__init__(f"{reason}: {url[:200]!r}")
        self.reason = reason


def match_key(url: str) -> str:
    """The form both sides of a URL join are compared in: ``host[:port]/path[?query]``, no scheme.

    Raises :class:`UnusableUrl` for strings that name no web page.
    """
    text = url.strip()
    if not text:
        raise UnusableUrl("url.empty", url)
    for _ in range(3):  # a capture of a capture is rare; three levels is plenty
        wayback = _WAYBACK.match(text)
        if not wayback:
            break
        text = _SCHEME_WITHOUT_SLASHES.sub(r"\1://", wayback.group("url"))
    if text.startswith("//"):
        text = "http:" + text
    scheme = text.split(":", 1)[0].lower() if ":" in text else ""
    if scheme not in DEFAULT_PORTS:
        raise UnusableUrl("url.not_http", url)
    try:
        parts = urlsplit(canonicalize_url(text))
        host, port = parts.hostname, parts.port
    except (ValueError, UnicodeError):
        raise UnusableUrl("url.bad_host", url) from None
    host = (host or "").rstrip(".")
    if not host or any(c.isspace() for c in host):
        raise UnusableUrl("url.bad_host", url)
    host = host.removeprefix("www.")
    netloc = host if port in (None, DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    if ":" in host:  # an IPv6 literal keeps its brackets
        netloc = f"[{host}]" + netloc[len(host):]
    query = "&".join(arg for arg in parts.query.split("&") if arg and not _is_tracking(arg))
    return netloc + parts.path.rstrip("/") + (f"?{query}" if query else "")


def key_domain(key: str) -> str:
    """The host of a :func:`match_key` result, without port: what per-domain counts group by."""
    netloc = re.split(r"[/?]", key, maxsplit=1)[0]
    if netloc.startswith("["):
        return netloc[1:].split("]", 1)[0]
    return netloc.split(":", 1)[0]


def _is_tracking(argument: str) -> bool:
    name = argument.split("=", 1)[0].lower()
    return name in TRACKING_PARAMS or name.startswith(TRACKING_PREFIXES)
