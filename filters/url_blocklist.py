"""Drop pages from blocked domains before any parsing: the cheapest filter runs first.

RefinedWeb (Penedo et al. 2023, section 3.1 / App. G.1) removed adult, violent and hateful
sites by domain with the UT1 blacklist before extracting text; C4 and Gopher relied on word
lists alone. A domain check costs a dictionary lookup per label of the host, so it runs on the
raw WARC record, saving extraction time on pages that would be thrown away.

Matching: the URL's host (lowercased, port and credentials removed, internationalised names
converted to their ``xn--`` ASCII form) is blocked if it or any parent domain is listed, so
``example.com`` blocks ``www.example.com`` and ``cdn.eu.example.com``, and a bare TLD entry such
as ``xxx`` blocks all of ``.xxx``. IP-address hosts match only an identical entry.

A document without a URL (Wikipedia dumps, books) is kept: there is nothing to check. A
non-empty URL whose host cannot be read is dropped as ``url_blocklist.unparseable_url``: if we
cannot tell the site we cannot vouch for it, and such records are rare enough to read by hand
in the rejects.

List format: one domain per line, ``#`` starts a comment (whole line or after a space), blank
lines ignored. The default is refinery's own short list (``filters/resources/blocked_domains.txt``).

Using the UT1 blacklist (Université Toulouse 1 Capitole; the list RefinedWeb used): download
and unpack ``blacklists.tar.gz``; each category is a folder holding a ``domains`` file (one
domain per line, this exact format) and a ``urls`` file (not used here). Concatenate the
``domains`` files of the categories you want, e.g.::

    cat blacklists/adult/domains blacklists/agressif/domains blacklists/phishing/domains \\
        blacklists/malware/domains > /data/lists/ut1_blocked_domains.txt

and point the filter config at it (``domains_file: /data/lists/ut1_blocked_domains.txt``).
Lines holding a ``/`` (a ``urls`` file concatenated by mistake) are rejected with the file and
line named. The loaded set lives once per worker process (cached per path, never in the filter
object, so Beam ships only the path); the adult category alone has millions of entries, so
expect a few hundred MB per worker for it.
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlsplit

from filters.config import ConfigError
from filters.document import Document
from filters.verdict import Verdict

DEFAULT_LIST = "blocked_domains.txt"
"""The shipped list, a file under ``filters/resources/``; used when ``domains_file`` is None."""


@dataclass(frozen=True)
class UrlBlocklist:
    """Drops a page whose URL's host, or any parent domain of it, is on the blocklist."""

    name: ClassVar[str] = "url_blocklist"

    # A local file path; None uses refinery's shipped list (filters/resources/blocked_domains.txt).
    domains_file: str | None = None

    def __post_init__(self) -> None:
        if self.domains_file is not None and not Path(self.domains_file).is_file():
            raise ValueError(f"{self.name}.domains_file: no such file: {self.domains_file}")

    def __call__(self, doc: Document) -> Verdict:
        if not doc.url.strip():
            return Verdict.KEEP
        host = url_host(doc.url)
        if host is None:
            return Verdict.drop(f"{self.name}.unparseable_url")
        if blocked_match(host, blocked_domains(self.domains_file)) is not None:
            return Verdict.drop(f"{self.name}.blocked_domain")
        return Verdict.KEEP


def url_host(url: str) -> str | None:
    """The URL's host in the list's form (lowercase ASCII, no trailing dot), or None if unreadable."""
    url = url.strip()
    if "//" not in url:
        url = "//" + url  # "example.com/page": without a scheme urlsplit would read it as a path
    try:
        host = urlsplit(url).hostname
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return None
    if not host:
        return None
    host = host.rstrip(".")
    if not host or any(c.isspace() for c in host):
        return None
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    return host


def blocked_match(host: str, blocked: frozenset[str]) -> str | None:
    """The listed entry that blocks ``host`` (itself or its nearest listed parent), or None."""
    try:
        ipaddress.ip_address(host)
        return host if host in blocked else None
    except ValueError:
        pass
    labels = host.split(".")
    for i in range(len(labels)):
        candidate = ".".join(labels[i:])
        if candidate in blocked:
            return candidate
    return None


@functools.lru_cache(maxsize=4)
def blocked_domains(domains_file: str | None) -> frozenset[str]:
    """The parsed list for a file (None: the shipped list), loaded once per process."""
    if domains_file is None:
        source = f"filters/resources/{DEFAULT_LIST}"
        text = resources.files("filters").joinpath("resources", DEFAULT_LIST).read_text(encoding="utf-8")
    else:
        source = domains_file
        try:
            text = Path(domains_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{domains_file}: cannot read domain blocklist: {exc}") from None
    return parse_domain_list(text, source)


def parse_domain_list(text: str, source: str = "<list>") -> frozenset[str]:
    """Domains of a list file, normalised like :func:`url_host` output; bad lines raise ConfigError."""
    domains: set[str] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        entry = line.split(" #", 1)[0].split("\t#", 1)[0].strip().lower()
        if not entry or entry.startswith("#"):
            continue
        entry = entry.removeprefix("*.").strip(".")
        if "/" in entry or any(c.isspace() for c in entry) or not entry:
            raise ConfigError(f"{source}: line {number}: not a domain: {line.strip()!r}")
        if not entry.isascii():
            try:
                entry = entry.encode("idna").decode("ascii")
            except UnicodeError:
                raise ConfigError(f"{source}: line {number}: not a valid domain: {line.strip()!r}") from None
        domains.add(entry)
    return frozenset(domains)
