import pickle

import pytest

from filters.config import ConfigError, from_dict
from filters.url_blocklist import UrlBlocklist, blocked_domains, blocked_match, parse_domain_list, url_host
from tests.filters.rule_samples import EDGE_CASES, ENGLISH_PROSE, doc


def verdict_for(url: str, **config):
    verdict = UrlBlocklist(**config)(doc(ENGLISH_PROSE, url=url))
    assert verdict.updates == {}
    return verdict


def test_keeps_ordinary_pages():
    assert verdict_for("https://en.wikipedia.org/wiki/Bridge").keep
    assert verdict_for("https://www.example.com/news?id=3").keep


@pytest.mark.parametrize(
    "url",
    [
        "https://pornhub.com/view",
        "http://www.PornHub.com:8080/x",  # case, port and subdomain
        "https://user:pw@de.xhamster.com/",  # credentials
        "https://stormfront.org./forum",  # trailing dot of a fully qualified name
        "pornhub.com/page",  # no scheme
        "https://anything.xxx/",  # a bare TLD entry blocks the whole TLD
    ],
)
def test_blocked_domain(url):
    assert verdict_for(url).reason == "url_blocklist.blocked_domain"


def test_parent_domains_block_but_suffix_strings_do_not():
    blocked = frozenset({"bad.com"})
    assert blocked_match("a.b.bad.com", blocked) == "bad.com"
    assert blocked_match("notbad.com", blocked) is None
    assert blocked_match("bad.com.evil.org", blocked) is None


def test_ip_hosts_match_only_exactly():
    blocked = frozenset({"10.0.0.1", "0.1"})
    assert blocked_match("10.0.0.1", blocked) == "10.0.0.1"
    assert blocked_match("10.0.0.2", blocked) is None
    assert blocked_match("192.168.0.1", blocked) is None  # "0.1" is not a parent of an IP
    assert url_host("http://[2001:db8::1]:80/") == "2001:db8::1"


def test_unparseable_url():
    for url in ("http://[::1/", "http://", "https:///path"):
        assert verdict_for(url).reason == "url_blocklist.unparseable_url", url


def test_internationalised_hosts_are_compared_in_ascii(tmp_path):
    domains_file = tmp_path / "domains.txt"
    domains_file.write_text("bücher.example\n", encoding="utf-8")
    assert verdict_for("https://www.Bücher.example/", domains_file=str(domains_file)).reason == (
        "url_blocklist.blocked_domain"
    )
    assert url_host("https://例え.jp/") == "xn--r8jz45g.jp"


def test_document_without_url_is_kept():
    assert verdict_for("").keep and verdict_for("   ").keep


def test_list_format(tmp_path):
    text = "# UT1-style list\n\nBad.com\n*.worse.org  # wildcard form\n.dot.net\n10.0.0.1\n"
    assert parse_domain_list(text) == frozenset({"bad.com", "worse.org", "dot.net", "10.0.0.1"})
    with pytest.raises(ConfigError, match="line 2"):
        parse_domain_list("ok.com\nbad.com/some/path\n", "urls")


def test_default_list_is_shipped():
    shipped = blocked_domains(None)
    assert {"pornhub.com", "stormfront.org", "xxx"} <= shipped and len(shipped) >= 20


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        UrlBlocklist(domains_file=str(tmp_path / "nope.txt"))
    with pytest.raises(ConfigError, match="domains_file"):
        from_dict(UrlBlocklist, {"domains_file": str(tmp_path / "nope.txt")})


@pytest.mark.parametrize("case", sorted(EDGE_CASES))
def test_edge_cases_of_text_do_not_matter(case):
    # The rule reads only the URL: any text, empty or huge, is kept for an unlisted URL.
    assert UrlBlocklist()(doc(EDGE_CASES[case], url="https://example.org/")).keep


def test_very_long_url():
    assert verdict_for("https://" + "a." * 5000 + "pornhub.com/" + "x" * 100_000).reason == (
        "url_blocklist.blocked_domain"
    )


def test_pickle_holds_the_path_not_the_list(tmp_path):
    flt = UrlBlocklist()
    flt(doc("", url="https://example.org/"))
    assert len(pickle.dumps(flt)) < 200
    domains_file = tmp_path / "domains.txt"
    domains_file.write_text("example.org\n", encoding="utf-8")
    clone = pickle.loads(pickle.dumps(UrlBlocklist(domains_file=str(domains_file))))
    assert clone(doc("", url="https://www.example.org/")).reason == "url_blocklist.blocked_domain"
    assert blocked_domains(str(domains_file)) is blocked_domains(str(domains_file))
