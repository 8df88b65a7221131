"""ReadC4 on fixture JSON lines, and the c4 config's C4 rules applied to what it reads."""

from __future__ import annotations

import gzip

from filters.c4 import C4
from pipeline.sources.c4 import C4Options, c4_timestamp, read_c4
from tests.pipeline.sources.harness import FIXTURES, run_reader

LINES = FIXTURES / "c4" / "c4-train.00000-of-00002.json"


def test_lines_become_documents_and_bad_lines_are_counted(tmp_path):
    packed = tmp_path / "c4-train.00001-of-00002.json.gz"
    packed.write_bytes(gzip.compress(LINES.read_bytes()))
    output = run_reader(read_c4(C4Options()), [str(LINES), str(packed)], tmp_path / "out")
    output.check_accounting()
    assert output.records(str(LINES)) == 4 and output.records(str(packed)) == 4
    assert output.skipped() == {"c4.bad_record": 4}
    docs = output.by_id()
    assert sorted(docs) == ["c4:c4-train.00000-of-00002:1", "c4:c4-train.00000-of-00002:2",
                            "c4:c4-train.00001-of-00002:1", "c4:c4-train.00001-of-00002:2"]
    first = docs["c4:c4-train.00000-of-00002:1"]
    assert (first.url, first.timestamp, first.lang, first.source) == (
        "https://example.org/harbour/log", "2019-04-25T12:57:54Z", "en", "c4")
    assert docs["c4:c4-train.00000-of-00002:2"].timestamp == "2019-04-19T03:11:02Z"
    # The fixture pages are written to pass the C4 rules the c4 config applies next.
    assert all(C4()(doc).keep for doc in output.kept)


def test_timestamps():
    assert c4_timestamp("2019-04-25 12:57:54.123") == "2019-04-25T12:57:54Z"
    assert c4_timestamp(None) == ""
