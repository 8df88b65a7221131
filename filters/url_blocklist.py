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

The UT1 blacklist (Université Toulouse 1 Capitole, CC BY-SA 4.0; the list RefinedWeb used): set
``ut1`` to its ``blacklists.tar.gz`` as downloaded, or to the ``blacklists/`` folder it unpacks to,
and ``ut1_categories`` to the categories to block (``[adult, agressif, phishing, malware]``). Each
category is a folder holding a ``domains`` file (one domain per line, the format above), which is
read; its ``urls`` file (pages, not hosts) is not. A category that is a symbolic link to another
(UT1 has aliases) is followed. The tarball is streamed, never unpacked to disk. Unlike a
``domains_file`` you wrote, a line of a UT1 ``domains`` file that is not a domain is skipped and
counted (one warning per category), since one stray line among millions should not stop a run; an
unknown category is an error naming the categories the archive has. UT1 domains are added to
``domains_file``'s list (the shipped one when it is null). The loaded set lives once per worker
process (cached per path and categories, never in the filter object, so Beam ships only names);
the adult category alone has millions of entries, so expect a few hundred MB per worker for it.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import tarfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlsplit

from filters.config import ConfigError
from filters.document import Document
from filters.verdict import Verdict

log = logging.getLogger(__name__)

DEFAULT_LIST = "blocked_domains.txt"
"""The shipped list, a file under ``filters/resources/``; used when ``domains_file`` is None."""


@dataclass(frozen=True)
class UrlBlocklist:
    """Drops a page whose URL's host, or any parent domain of it, is on the blocklist."""

    name: ClassVar[str] = "url_blocklist"

    domains_file: str | None = None
    """A local list file; None uses refinery's shipped list (filters/resources/blocked_domains.txt)."""
    ut1: str | None = None
    """The UT1 blacklist: its ``blacklists.tar.gz`` or the unpacked ``blacklists/`` folder."""
    ut1_categories: tuple[str, ...] = ()
    """UT1 categories whose ``domains`` are blocked as well (``[adult, phishing]``); needs ``ut1``."""

    def __post_init__(self) -> None:
        if self.domains_file is not None and not Path(self.domains_file).is_file():
            raise ValueError(f"{self.name}.domains_file: no such file: {self.domains_file}")
        if isinstance(self.ut1_categories, str):
            raise ValueError(f"ut1_categories must be a list of categories, got the string {self.ut1_categories!r}")
        object.__setattr__(self, "ut1_categories", tuple(self.ut1_categories))
        if self.ut1 is None and self.ut1_categories:
            raise ValueError("ut1_categories is set but ut1 (the blacklists.tar.gz or folder) is not")
        if self.ut1 is not None:
            if not self.ut1_categories:
                raise ValueError("ut1 is set but ut1_categories is empty: name the categories to block, e.g. [adult]")
            if not Path(self.ut1).exists():
                raise ValueError(f"{self.name}.ut1: no such file or folder: {self.ut1}")
            if Path(self.ut1).is_dir():  # cheap to check now; a tarball's categories are checked in setup()
                missing = [c for c in self.ut1_categories if not (Path(self.ut1) / c / "domains").is_file()]
                if missing:
                    raise ValueError(f"{self.name}.ut1: no category '{missing[0]}' in {self.ut1} "
                                     f"(has: {', '.join(ut1_category_names(self.ut1))})")

    def setup(self) -> None:
        """Load the lists now (for ``DoFn.setup``): a bad UT1 archive fails the worker at start."""
        blocked_domains(self.domains_file)
        if self.ut1 is not None:
            ut1_domains(self.ut1, self.ut1_categories)

    def __call__(self, doc: Document) -> Verdict:
        if not doc.url.strip():
            return Verdict.KEEP
        host = url_host(doc.url)
        if host is None:
            return Verdict.drop(f"{self.name}.unparseable_url")
        if blocked_match(host, blocked_domains(self.domains_file)) is not None or (
            self.ut1 is not None and blocked_match(host, ut1_domains(self.ut1, self.ut1_categories)) is not None
        ):
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
        try:
            entry = domain_entry(line)
        except ValueError as exc:
            raise ConfigError(f"{source}: line {number}: {exc}: {line.strip()!r}") from None
        if entry:
            domains.add(entry)
    return frozenset(domains)


def domain_entry(line: str) -> str | None:
    """One list line as a domain (None for a blank or comment line); ValueError if it is not a domain."""
    entry = line.split(" #", 1)[0].split("\t#", 1)[0].strip().lower()
    if not entry or entry.startswith("#"):
        return None
    entry = entry.removeprefix("*.").strip(".")
    if "/" in entry or any(c.isspace() for c in entry) or not entry:
        raise ValueError("not a domain")
    if not entry.isascii():
        try:
            entry = entry.encode("idna").decode("ascii")
        except UnicodeError:
            raise ValueError("not a valid domain") from None
    return entry


@functools.lru_cache(maxsize=4)
def ut1_domains(path: str, categories: tuple[str, ...]) -> frozenset[str]:
    """The union of the UT1 ``categories``' domains, from the tarball or folder at ``path``, once per process."""
    domains: set[str] = set()
    for category, text in _ut1_domain_files(path, categories):
        source = f"{path}: {category}/domains"
        kept, skipped = _parse_lenient(text)
        domains |= kept
        if skipped:
            log.warning("url_blocklist: %s: skipped %d line(s) that are not domains, e.g. line %d: %r",
                        source, len(skipped), *skipped[0])
    return frozenset(domains)


def ut1_category_names(path: str) -> list[str]:
    """The categories (folders with a ``domains`` file, or links to one) of a UT1 tarball or folder."""
    if Path(path).is_dir():
        return sorted(p.parent.name for p in Path(path).glob("*/domains"))
    members = _tar_members(path)
    names = {name.split("/")[-2] for name in members if name.endswith("/domains") and name.count("/") >= 1}
    links = {name.split("/")[-1] for name, m in members.items() if m.issym() and name.count("/") >= 1}
    return sorted(names | {link for link in links if _tar_category_file(members, link) is not None})


def _ut1_domain_files(path: str, categories: tuple[str, ...]) -> list[tuple[str, str]]:
    """(category, text of its ``domains`` file) for each category, or a ConfigError naming what exists."""
    if Path(path).is_dir():
        found = {c: Path(path) / c / "domains" for c in categories}
        missing = [c for c, f in found.items() if not f.is_file()]
        if missing:
            raise ConfigError(f"{path}: no UT1 category '{missing[0]}' (has: {', '.join(ut1_category_names(path))})")
        return [(c, _read_text(f)) for c, f in found.items()]
    try:
        with tarfile.open(path, "r:*") as tar:
            members = {m.name.removeprefix("./"): m for m in tar}
            out = []
            for category in categories:
                member = _tar_category_file(members, category)
                if member is None:
                    raise ConfigError(f"{path}: no UT1 category '{category}' (has: {', '.join(ut1_category_names(path))})")
                handle = tar.extractfile(member)
                out.append((category, (handle.read() if handle else b"").decode("utf-8", errors="replace")))
            return out
    except (OSError, tarfile.TarError, EOFError) as exc:
        raise ConfigError(f"{path}: cannot read UT1 blacklist tarball: {exc}") from None


def _tar_members(path: str) -> dict[str, tarfile.TarInfo]:
    try:
        with tarfile.open(path, "r:*") as tar:
            return {m.name.removeprefix("./"): m for m in tar}
    except (OSError, tarfile.TarError, EOFError) as exc:
        raise ConfigError(f"{path}: cannot read UT1 blacklist tarball: {exc}") from None


def _tar_category_file(members: dict[str, tarfile.TarInfo], category: str) -> tarfile.TarInfo | None:
    """The member holding ``category``'s domains: ``<top>/<category>/domains``, following a category link."""
    for _ in range(8):  # links may chain; a loop in the archive ends here
        candidates = [n for n in members if n.endswith(f"/{category}/domains") or n == f"{category}/domains"]
        if candidates:
            member = members[min(candidates, key=len)]
            return member if member.isfile() or member.issym() else None
        links = [m for n, m in members.items() if m.issym() and (n.endswith(f"/{category}") or n == category)]
        if not links:
            return None
        category = links[0].linkname.rstrip("/").split("/")[-1]
    return None


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read UT1 domains: {exc}") from None


def _parse_lenient(text: str) -> tuple[set[str], list[tuple[int, str]]]:
    """Domains of a third-party list, and the (line number, line) of each line that is not one."""
    kept: set[str] = set()
    skipped: list[tuple[int, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        try:
            entry = domain_entry(line)
        except ValueError:
            skipped.append((number, line.strip()))
            continue
        if entry:
            kept.add(entry)
    return kept, skipped
