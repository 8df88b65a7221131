"""The LLaMA-style quality classifier, trained for real on ../shared/data, and its text readers.

Positives: WikiText-2 articles, Project Gutenberg books and the Mona Lisa page text. Negatives:
pages extracted with warcio + trafilatura from the crawl WARCs (the spam-heavy CC-MAIN-2020-34
excerpt, archive.org, gov.uk, iana.org, wget and Wayback crawls; the Wikipedia captures are left
out, they are positives by nature) plus Dolma's Common Crawl samples. One WikiText article and
the darknet scam page are held out of training, to check the scores on unseen texts.
"""

from __future__ import annotations

import gzip
import json
import logging
import math
import pickle
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import trafilatura
from warcio.archiveiterator import ArchiveIterator

from filters.document import Document
from filters.quality_classifier import (
    QualityClassifier,
    normalize_text,
    precision_recall,
    rank_auc,
    train_quality_classifier,
)
from filters.text_sources import chunk_plain_text, read_texts

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
QUALITY = DATA / "quality"
GUTENBERG = QUALITY / "positive" / "gutenberg"
ENGLISH_BOOKS = ["pg972_", "pg3261_", "pg9198_", "pg6527_", "pg12200_", "sentencepiece_botchan_en"]
NEGATIVE_WARC_SKIP = ("copycat_clueweb", "ukwa_wikipedia", "whirlwind")  # unreadable / Wikipedia

# Measured with these settings: held-out AUC 0.946-0.966 over seeds 0-3 (134 held-out texts),
# precision 0.70-0.77 and recall 0.97-1.0 at 0.5; the unseen wiki paragraph ~0.67, the scam page ~0.003.
AUC_FLOOR = 0.85
TRAIN = dict(seed=0, epoch=10, dim=16, bucket=50_000, holdout_fraction=0.2)


def _wikitext_articles(path: Path) -> list[str]:
    """WikiText-2 raw split into articles, its tokenisation undone (`` @-@ `` -> ``-``, `` , ``)."""
    raw = path.read_text(encoding="utf-8")
    parts = re.split(r"^ = [^=].*? = \n", raw, flags=re.M)
    articles = []
    for body in parts[1:]:
        body = re.sub(r" @(.)@ ", r"\1", body)
        body = re.sub(r" ([.,;:!?)'])", r"\1", body).replace("( ", "(")
        articles.append(body.replace("\n", "\n\n"))
    return articles


def _crawl_texts(warc_dir: Path) -> list[str]:
    texts = []
    logging.getLogger("trafilatura").setLevel(logging.ERROR)
    for path in sorted(warc_dir.glob("*.warc.gz")):
        if path.name.startswith(NEGATIVE_WARC_SKIP):
            continue
        with path.open("rb") as handle:
            for record in ArchiveIterator(handle):
                if record.rec_type != "response":
                    continue
                body = record.content_stream().read()
                head = body[:4096].lower()
                if b"<html" not in head and b"<!doctype html" not in head:
                    continue
                text = trafilatura.extract(body, fast=True)
                if text and len(text) >= 200:
                    texts.append(text)
    return texts


@pytest.fixture(scope="session")
def corpus() -> dict[str, list[str]]:
    """Training texts and the two held-out texts (extraction takes ~10 s, once per session)."""
    articles = _wikitext_articles(QUALITY / "positive" / "wikipedia" / "wikitext-2-raw-v1_wiki.test.raw")
    positives = [chunk for article in articles[:-1] for chunk in chunk_plain_text(article)]
    for book in sorted(GUTENBERG.glob("*.txt")):
        if book.name.startswith(tuple(ENGLISH_BOOKS)):
            positives.extend(read_texts(book))
    positives.extend(read_texts(QUALITY / "positive" / "wikipedia" / "Mona_Lisa.txt"))
    negatives = _crawl_texts(DATA / "warc") + list(read_texts(QUALITY / "cc_text_samples"))
    scam = trafilatura.extract((QUALITY / "negative" / "trafilatura_scam.html").read_text(encoding="utf-8"))
    held_out_wiki = next(chunk_plain_text(articles[-1]))
    return {"positives": positives, "negatives": negatives, "wiki": [held_out_wiki], "spam": [scam]}


@pytest.fixture(scope="session")
def trained(corpus, tmp_path_factory):
    output = tmp_path_factory.mktemp("quality") / "quality.bin"
    report = train_quality_classifier(corpus["positives"], corpus["negatives"], output, **TRAIN)
    return report, QualityClassifier(model_path=str(output))


def test_corpus_is_real_and_sizeable(corpus):
    assert len(corpus["positives"]) > 1_000
    assert len(corpus["negatives"]) > 250
    assert len(corpus["spam"][0]) > 1_000 and "onion" in corpus["spam"][0].lower()


def test_held_out_auc_and_counts(trained):
    report, _ = trained
    assert report.auc >= AUC_FLOOR, report
    assert report.recall >= 0.8 and report.precision >= 0.6, report
    assert report.n_train_positive == report.n_train_negative  # balanced
    assert report.n_holdout_positive == report.n_holdout_negative > 50
    assert report.n_dropped_for_balance > 0
    assert json.loads(json.dumps(report.as_dict()))["auc"] == report.auc


def test_unseen_wikipedia_paragraph_beats_unseen_spam_page(trained, corpus):
    _, flt = trained
    wiki, spam = flt.score(corpus["wiki"][0]), flt.score(corpus["spam"][0])
    assert wiki > spam + 0.3, (wiki, spam)
    kept = flt(Document(id="w", text=corpus["wiki"][0]))
    assert kept.keep and kept.updates["quality_score"] == pytest.approx(wiki)
    dropped = flt(Document(id="s", text=corpus["spam"][0]))
    assert (dropped.keep, dropped.reason) == (False, "quality_classifier.low_score")
    assert dropped.updates["quality_score"] == pytest.approx(spam)


def test_training_is_deterministic_for_a_seed(trained, corpus, tmp_path):
    report, flt = trained
    again = train_quality_classifier(corpus["positives"], corpus["negatives"], tmp_path / "again.bin", **TRAIN)
    assert (again.auc, again.precision, again.recall) == (report.auc, report.precision, report.recall)
    twin = QualityClassifier(model_path=str(tmp_path / "again.bin"))
    for text in corpus["wiki"] + corpus["spam"] + corpus["negatives"][:5]:
        assert twin.score(text) == flt.score(text)
    # The same texts in another order (as a Beam job's files arrive) give the same model and split.
    shuffled = train_quality_classifier(corpus["positives"][::-1], corpus["negatives"][::-1],
                                        tmp_path / "shuffled.bin", **TRAIN)
    assert (shuffled.auc, shuffled.precision, shuffled.recall) == (report.auc, report.precision, report.recall)


def test_empty_text_is_dropped_with_a_reason(trained):
    _, flt = trained
    verdict = flt(Document(id="e", text=" \r\n\t "))
    assert (verdict.keep, verdict.reason, verdict.updates) == (
        False,
        "quality_classifier.empty_text",
        {"quality_score": None},
    )


def test_filter_pickles_small_and_checks_its_label(trained, corpus):
    _, flt = trained
    flt.score("warm the cache")
    clone = pickle.loads(pickle.dumps(flt))
    assert len(pickle.dumps(flt)) < 1_000
    assert clone.score(corpus["wiki"][0]) == flt.score(corpus["wiki"][0])
    with pytest.raises(ValueError, match="has no label '__label__hq'"):
        QualityClassifier(model_path=flt.model_path, positive_label="__label__hq").score("some text")
    with pytest.raises(ValueError, match="min_score"):
        QualityClassifier(model_path=flt.model_path, min_score=-0.1)


def test_training_rejects_unusable_input(tmp_path):
    with pytest.raises(ValueError, match="at least 2 non-empty positive"):
        train_quality_classifier(["a good text", "   "], ["spam", "more spam"], tmp_path / "m.bin")
    with pytest.raises(ValueError, match="holdout_fraction"):
        train_quality_classifier(["a", "b"], ["c", "d"], tmp_path / "m.bin", holdout_fraction=1.0)


def test_normalize_text_is_one_lowercase_line_cut_at_a_word():
    text = "First LINE\r\nsecond\tline\n\n  Third\u2028line  "
    assert normalize_text(text) == "first line second line third line"
    assert normalize_text(normalize_text(text)) == normalize_text(text)
    assert normalize_text("alpha beta gamma", max_chars=12) == "alpha beta"
    assert normalize_text("abcdefghij", max_chars=4) == "abcd"
    assert normalize_text("\n \t") == ""


def test_rank_auc_against_hand_computed_values():
    # pairs (pos, neg): (0.35 > 0.1), (0.35 < 0.4), (0.8 > 0.1), (0.8 > 0.4) -> 3 of 4
    assert rank_auc([0.1, 0.4, 0.35, 0.8], [False, False, True, True]) == pytest.approx(0.75)
    assert rank_auc([0.9, 0.8, 0.1], [True, True, False]) == 1.0
    assert rank_auc([0.1, 0.9], [True, False]) == 0.0
    assert rank_auc([0.5, 0.5, 0.5], [True, False, False]) == pytest.approx(0.5)  # ties count half
    assert rank_auc([0.5, 0.7, 0.5], [True, True, False]) == pytest.approx(0.75)
    assert math.isnan(rank_auc([0.2, 0.3], [True, True]))
    with pytest.raises(ValueError):
        rank_auc([0.1], [True, False])


def test_precision_recall_at_threshold():
    assert precision_recall([0.9, 0.6, 0.4, 0.7], [True, False, True, False], 0.5) == (1 / 3, 1 / 2)
    precision, recall = precision_recall([0.1, 0.2], [True, False], 0.5)
    assert math.isnan(precision) and recall == 0.0


def test_read_texts_chunks_books_without_gutenberg_boilerplate():
    chunks = list(read_texts(GUTENBERG / "pg972_The-Devils-Dictionary.txt", chunk_words=300))
    lengths = sorted(len(c.split()) for c in chunks)
    assert len(chunks) > 100
    assert 300 <= lengths[len(lengths) // 2] < 600
    assert max(lengths) < 900 and all(lengths)
    assert not any("START OF THIS PROJECT GUTENBERG" in c or "END OF THIS PROJECT" in c for c in chunks)
    assert not chunks[0].startswith("\ufeff")


def test_chunk_plain_text_splits_long_paragraphs_and_keeps_order():
    text = "one two three\n\nfour five\r\n\r\n" + " ".join(f"w{i}" for i in range(7))
    assert list(chunk_plain_text(text, chunk_words=3)) == [
        "one two three",
        "four five",
        "w0 w1 w2",
        "w3 w4 w5",
        "w6",
    ]


def test_read_texts_jsonl_parquet_and_directories(tmp_path, caplog):
    real = [json.loads(line)["text"] for line in gzip.open(QUALITY / "cc_text_samples" / "dolma_cc_en_head-0091.jsonl.gz", "rt")]
    assert list(read_texts(QUALITY / "cc_text_samples" / "dolma_cc_en_head-0091.jsonl.gz")) == real

    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    with gzip.open(folder / "a.jsonl.gz", "wt", encoding="utf-8") as handle:
        handle.write(json.dumps({"text": real[0]}) + "\n{not json\n" + json.dumps({"body": "x"}) + "\n\n")
    table = pa.table({"id": [str(i) for i in range(2500)], "text": [real[i % len(real)] for i in range(2500)]})
    pq.write_table(table, folder / "sub" / "b.parquet", row_group_size=1000)
    (folder / "notes.md").write_text("not a training file")

    with caplog.at_level(logging.WARNING):
        texts = list(read_texts(folder))
    assert texts[0] == real[0]
    assert texts[1:] == table.column("text").to_pylist()
    assert "not JSON" in caplog.text and "no string field 'text'" in caplog.text and "['body']" in caplog.text

    with pytest.raises(ValueError, match="unsupported file type"):
        list(read_texts(folder / "notes.md"))
    with pytest.raises(FileNotFoundError):
        list(read_texts(tmp_path / "missing"))
    with pytest.raises(ValueError, match="no column 'content'"):
        list(read_texts(folder / "sub" / "b.parquet", text_field="content"))
