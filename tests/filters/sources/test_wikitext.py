"""WikitextCleaner on hand-written wikitext: one test per kind of markup it must remove or keep."""

from __future__ import annotations

import pytest

from filters.wikitext import WikitextCleaner, tidy, wikitext_to_text


def test_links_keep_their_visible_text():
    text = wikitext_to_text("The [[Seine]] flows through [[Paris|the capital]] to [[Le Havre]]s.")
    assert text == "The Seine flows through the capital to Le Havres."


def test_external_links_keep_their_label_and_bare_urls_go():
    text = wikitext_to_text("See [https://example.org the harbour site] or https://example.org/raw for more.")
    assert text == "See the harbour site or for more."
    assert wikitext_to_text("Data at [https://example.org/tides].") == "Data at."


def test_templates_comments_and_references_are_removed():
    wikitext = ("{{Infobox river|name=Seine|length=777}}The Seine<ref>{{cite book|title=Rivers}}</ref> "
                "is a river<!-- check the length -->.<ref name=\"a\"/>")
    assert wikitext_to_text(wikitext) == "The Seine is a river."


def test_files_categories_and_interlanguage_links_are_removed():
    wikitext = ("[[File:Seine.jpg|thumb|The Seine at [[Paris]]]]The Seine is long."
                "[[Image:Map.png|left]]\n[[Category:Rivers of France]]\n[[de:Seine]]")
    assert wikitext_to_text(wikitext) == "The Seine is long."


def test_visible_category_link_with_leading_colon_is_kept():
    assert wikitext_to_text("See [[:Category:Rivers]].") == "See Category:Rivers."


def test_localized_namespaces_come_from_the_dump():
    wikitext = "[[Datei:Seine.jpg|mini|Die Seine]]Die Seine fließt.[[Kategorie:Fluss]]"
    assert WikitextCleaner(namespaces=("Datei", "Kategorie"))(wikitext) == "Die Seine fließt."
    assert "Die Seine" in WikitextCleaner()(wikitext).split("Die Seine fließt.")[0]


def test_tables_are_removed_with_their_cells():
    wikitext = "Before.\n{| class=\"wikitable\"\n! Year !! Flow\n|-\n| 1910 || 2400\n|}\nAfter."
    assert wikitext_to_text(wikitext) == "Before.\n\nAfter."


def test_bold_and_italics_keep_their_text():
    assert wikitext_to_text("'''Paris''' is the capital of ''France''.") == "Paris is the capital of France."


def test_unclosed_italics_do_not_swallow_the_following_sections():
    # mwparserfromhell alone nests the rest of the article inside an unclosed '' tag, which hid
    # the headings from the section rules; MediaWiki closes it at the line end.
    wikitext = "He wrote ''Odes in 1820.\n\n== Life ==\nBorn in Rome.\n\n== References ==\n* Smith, 1990."
    assert wikitext_to_text(wikitext) == "He wrote Odes in 1820.\n\nLife\nBorn in Rome."


def test_back_matter_sections_are_dropped_with_their_subsections():
    wikitext = ("Intro text.\n== History ==\nOld town.\n== See also ==\n* [[Rouen]]\n=== Maps ===\nA map.\n"
                "== External links ==\n* [https://example.org Site]")
    assert wikitext_to_text(wikitext) == "Intro text.\n\nHistory\nOld town."


def test_a_subsection_named_like_back_matter_ends_at_the_next_heading_of_its_level():
    wikitext = "== Works ==\nPoems.\n=== Notes ===\nA note.\n=== Prose ===\nNovels."
    assert wikitext_to_text(wikitext) == "Works\nPoems.\n\nProse\nNovels."


def test_list_items_become_lines():
    assert wikitext_to_text("Rivers:\n* Seine\n* Loire\n# Rhône") == "Rivers:\nSeine\nLoire\nRhône"


def test_entities_are_decoded_and_magic_words_removed():
    assert wikitext_to_text("__NOTOC__Fish &amp; chips&nbsp;here.") == "Fish & chips here."


def test_tidy_removes_what_removed_templates_leave_behind():
    assert tidy("Victor Hugo ( ; 26 February 1802 ) was a writer .") == "Victor Hugo (26 February 1802) was a writer."
    assert tidy("born () in Paris") == "born in Paris"


@pytest.mark.parametrize("wikitext", ["", "{{stub}}", "[[Category:Empty]]"])
def test_markup_only_articles_clean_to_nothing(wikitext: str):
    assert wikitext_to_text(wikitext) == ""
