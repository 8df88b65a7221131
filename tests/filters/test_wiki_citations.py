"""filters.wiki_citations: what counts as a reference in wikitext, each kind once."""

from __future__ import annotations

from filters.wiki_citations import ARCHIVE_URL, CITE_URL, EXTERNAL_LINK, REF_LINK, Citation, cited_urls

ARTICLE = """'''Bees''' make honey.<ref name=a>{{cite web |url=http://bees.example/honey |title=Honey
 |archive-url=https://web.archive.org/web/2010/http://bees.example/honey |archive-date=2010}}</ref>
Hives<ref>See [http://hives.example/a the hive page] and http://hives.example/b.</ref><ref name=a/>
<!-- <ref>http://hidden.example/commented-out</ref> -->
{{Infobox insect |website=http://official.example}}
== Further reading ==
* {{Cite_book |chapter-url=//books.example/ch1 |url={{Google books|id=X1}} |title=Bees}}
* {{citation |url= |title=No address}}
== External links ==
* [http://links.example/bees Bees at links.example]
"""


def test_references_and_citation_templates_are_cited_urls() -> None:
    assert cited_urls(ARTICLE) == [
        Citation("http://bees.example/honey", CITE_URL),
        Citation("https://web.archive.org/web/2010/http://bees.example/honey", ARCHIVE_URL),
        Citation("//books.example/ch1", CITE_URL),
        # A template in url= cannot be evaluated: returned as written, for the caller to count.
        Citation("{{Google books|id=X1}}", CITE_URL),
        Citation("http://hives.example/a", REF_LINK),
        Citation("http://hives.example/b", REF_LINK),
    ]


def test_all_links_adds_every_external_link_once() -> None:
    citations = cited_urls(ARTICLE, all_links=True)
    extra = [c for c in citations if c.kind == EXTERNAL_LINK]
    assert sorted(c.url for c in extra) == ["http://links.example/bees", "http://official.example"]
    assert len({c.url for c in citations}) == len(citations)


def test_an_article_without_references_cites_nothing() -> None:
    assert cited_urls("Plain text with a [[link]] and {{cite web |title=no url}}.") == []
