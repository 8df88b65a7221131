"""ReadGutenberg + the gutenberg config's book-level MinHash dedup on the real edition groups."""

from __future__ import annotations

import gzip

import apache_beam as beam

from pipeline.config import load_config
from pipeline.dedup import MinHashDedup
from pipeline.funnel import COUNTS, ERRORS
from pipeline.readers import build_reader
from pipeline.sources.gutenberg import GutenbergOptions, book_id, read_gutenberg
from pipeline.stage import DROPPED, KEPT
from tests.pipeline.sources.harness import REPO, SHARED_DATA, run_reader

EDITIONS = SHARED_DATA / "dedup" / "gutenberg_edition_groups"
CONFIG = REPO / "configs" / "sources" / "gutenberg.yaml"


class _ReadAndDedup(beam.PTransform):
    """The config's reader (through the registry) and its dedup stage, under the reader contract."""

    def __init__(self, cfg) -> None:
        super().__init__()
        self._cfg = cfg

    def expand(self, paths):
        reader, _ = build_reader(self._cfg)
        read = paths | "Read" >> reader
        dedup = read[KEPT] | "Dedup" >> MinHashDedup(self._cfg.dedup)
        return {KEPT: dedup[KEPT], DROPPED: (read[DROPPED], dedup[DROPPED]) | beam.Flatten(),
                COUNTS: read[COUNTS], ERRORS: read[ERRORS]}


def test_one_book_per_work_survives_the_90_percent_dedup(tmp_path):
    cfg = load_config(CONFIG)
    assert cfg.stages == ("minhash_dedup",) and cfg.dedup.threshold == 0.9
    files = sorted(str(p) for p in EDITIONS.glob("*.txt"))
    output = run_reader(_ReadAndDedup(cfg), files, tmp_path)
    output.check_accounting()
    assert output.records() == 11
    works = sorted(d.meta["ebook_number"] for d in output.kept)
    assert works == ["12200", "3261", "9198", "972"]  # groups.tsv: four works, 11 files
    assert set(output.drop_reasons().values()) == {"minhash_dedup.near_duplicate"}


def test_books_are_stripped_and_described(tmp_path):
    latin1 = EDITIONS / "pg12200__12200-8.txt"
    packed = tmp_path / "pg12200__12200-0.txt.gz"
    packed.write_bytes(gzip.compress((EDITIONS / "pg12200__12200-0.txt").read_bytes()))
    output = run_reader(read_gutenberg(GutenbergOptions()), [str(latin1), str(packed)], tmp_path / "out")
    output.check_accounting()
    books = output.by_id()
    assert sorted(books) == ["gutenberg:pg12200__12200-0", "gutenberg:pg12200__12200-8"]
    for doc in books.values():
        assert doc.text.upper().startswith("DELSARTE SYSTEM OF ORATORY")
        assert "PROJECT GUTENBERG" not in doc.text.upper()
        assert (doc.lang, doc.source, doc.url) == ("en", "books", "https://www.gutenberg.org/ebooks/12200")
    assert books["gutenberg:pg12200__12200-8"].meta["encoding"] == "latin-1"
    assert books["gutenberg:pg12200__12200-0"].meta["encoding"] == "utf-8-sig"


def test_unmarked_text_is_kept_unless_markers_are_required(tmp_path):
    plain = tmp_path / "notes.txt"
    plain.write_text("A plain text without any Gutenberg marker.\n")
    empty = tmp_path / "empty.txt"
    empty.write_text("*** START OF THE PROJECT GUTENBERG EBOOK X ***\n\n*** END OF THE PROJECT GUTENBERG EBOOK X ***\n")
    lenient = run_reader(read_gutenberg(GutenbergOptions()), [str(plain), str(empty)], tmp_path / "a")
    lenient.check_accounting()
    assert [d.id for d in lenient.kept] == ["gutenberg:notes"]
    assert lenient.drop_reasons() == {"gutenberg:empty": "gutenberg.empty"}
    strict = run_reader(read_gutenberg(GutenbergOptions(require_markers=True)), [str(plain)], tmp_path / "b")
    assert strict.drop_reasons() == {"gutenberg:notes": "gutenberg.no_markers"}


def test_book_ids_come_from_file_names():
    assert book_id("/data/pg972__old_dvldc10.txt") == "pg972__old_dvldc10"
    assert book_id("gs://bucket/books/12200-0.txt.gz") == "12200-0"
