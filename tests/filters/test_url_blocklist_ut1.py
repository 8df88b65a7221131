"""UT1 blacklist categories for url_blocklist, on a hand-written fixture in UT1's layout (tests/fixtures/ut1)."""

import io
import logging
import pickle
import tarfile
from pathlib import Path

import pytest

from filters.config import ConfigError, from_dict
from filters.url_blocklist import UrlBlocklist, ut1_category_names, ut1_domains
from tests.filters.rule_samples import ENGLISH_PROSE, doc

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "ut1" / "blacklists"


@pytest.fixture(scope="module")
def tarball(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The fixture packed as UT1 ships it: blacklists.tar.gz with a top blacklists/ folder and a category alias link."""
    path = tmp_path_factory.mktemp("ut1") / "blacklists.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        tar.add(FIXTURE, arcname="blacklists")
        link = tarfile.TarInfo("blacklists/aggressive")
        link.type, link.linkname = tarfile.SYMTYPE, "agressif"
        tar.addfile(link)
    return str(path)


def verdict(url: str, **config) -> str:
    result = UrlBlocklist(**config)(doc(ENGLISH_PROSE, url=url))
    return "keep" if result.keep else result.reason


@pytest.mark.parametrize("source", ["folder", "tarball"])
def test_chosen_categories_block_their_domains_and_subdomains(source, tarball):
    ut1 = str(FIXTURE) if source == "folder" else tarball
    config = {"ut1": ut1, "ut1_categories": ("adult", "phishing")}
    assert verdict("https://www.adult-example.com/x", **config) == "url_blocklist.blocked_domain"
    assert verdict("http://big-adult.example/", **config) == "url_blocklist.blocked_domain"  # listed in capitals
    assert verdict("https://login-verify.example/", **config) == "url_blocklist.blocked_domain"
    assert verdict("https://bücher.example/", **config) == "url_blocklist.blocked_domain"  # listed as xn--
    assert verdict("https://hate-forum.example/", **config) == "keep"  # agressif was not chosen
    assert verdict("https://example.com/news", **config) == "keep"
    # The shipped list still applies next to UT1.
    assert verdict("https://pornhub.com/", **config) == "url_blocklist.blocked_domain"


def test_a_category_alias_link_in_the_tarball_is_followed(tarball):
    assert verdict("https://hate-forum.example/", ut1=tarball, ut1_categories=["aggressive"]) == (
        "url_blocklist.blocked_domain")
    assert "aggressive" in ut1_category_names(tarball)


def test_folder_and_tarball_give_the_same_domains(tarball):
    categories = ("adult", "agressif", "phishing")
    folder = ut1_domains(str(FIXTURE), categories)
    assert folder == ut1_domains(tarball, categories)
    assert folder == {"adult-example.com", "nsfw.example.org", "big-adult.example", "hate-forum.example",
                      "violent.example.net", "login-verify.example", "xn--bcher-kva.example"}


def test_a_line_that_is_not_a_domain_is_skipped_and_counted(tarball, caplog):
    ut1_domains.cache_clear()
    with caplog.at_level(logging.WARNING, logger="filters.url_blocklist"):
        domains = ut1_domains(tarball, ("phishing",))
    assert "bank-secure.example" not in domains and "login-verify.example" in domains
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "phishing/domains: skipped 1 line(s)" in warnings[0]
    assert "bank-secure.example/login.php" in warnings[0]


def test_urls_files_are_not_read(tarball):
    # adult/urls lists a page of a domain that adult/domains does not hold under that name.
    assert "adult-example.com/gallery/1.html" not in ut1_domains(tarball, ("adult",))


def test_config_mistakes_are_one_line_errors(tmp_path, tarball):
    with pytest.raises(ConfigError, match="ut1_categories is set but ut1"):
        from_dict(UrlBlocklist, {"ut1_categories": ["adult"]})
    with pytest.raises(ConfigError, match="name the categories"):
        from_dict(UrlBlocklist, {"ut1": str(FIXTURE)})
    with pytest.raises(ConfigError, match="no such file or folder"):
        from_dict(UrlBlocklist, {"ut1": str(tmp_path / "missing.tar.gz"), "ut1_categories": ["adult"]})
    with pytest.raises(ConfigError, match=r"no category 'gambling' .*\(has: adult, agressif, phishing\)"):
        from_dict(UrlBlocklist, {"ut1": str(FIXTURE), "ut1_categories": ["gambling"]})
    # A tarball's categories are only known once it is read: in setup(), before the first document.
    flt = UrlBlocklist(ut1=tarball, ut1_categories=("gambling",))
    with pytest.raises(ConfigError, match=r"no UT1 category 'gambling' \(has: adult, aggressive, agressif, phishing\)"):
        flt.setup()
    broken = tmp_path / "blacklists.tar.gz"
    broken.write_bytes(b"not a tarball")
    with pytest.raises(ConfigError, match="cannot read UT1 blacklist tarball"):
        UrlBlocklist(ut1=str(broken), ut1_categories=("adult",)).setup()


def test_pickle_holds_names_not_domains(tarball):
    flt = UrlBlocklist(ut1=tarball, ut1_categories=("adult",))
    flt.setup()
    clone = pickle.loads(pickle.dumps(flt))
    assert len(pickle.dumps(flt)) < 300 and clone == flt
    assert not clone(doc("", url="https://nsfw.example.org/")).keep


def test_a_tarball_without_the_top_folder_is_read_too(tmp_path):
    path = tmp_path / "flat.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        data = b"flat.example\n"
        member = tarfile.TarInfo("adult/domains")
        member.size = len(data)
        tar.addfile(member, io.BytesIO(data))
    assert ut1_domains(str(path), ("adult",)) == {"flat.example"}
