"""The archive reader on real crawls and their quirks, and on archives we break on purpose."""

from __future__ import annotations

import gzip
from collections import Counter
from pathlib import Path

import pytest

from pipeline.warc_reader import CorruptArchive, iter_records
from tests.conftest import WARC_DIR

# Record counts per file, from the files' SOURCES.md (counted independently with warcio and a
# length-based ARC reader), plus the WET/WAT companions.
EXPECTED = {
    "resiliparse_CC-MAIN-2020-34_sample.warc.gz": {"warcinfo": 1, "request": 17, "response": 16, "metadata": 16},
    "resiliparse_clueweb09-ja_quirk.warc.gz": {"warcinfo": 1, "response": 29},
    "whirlwind_CC-MAIN-2024-22.warc.gz": {"warcinfo": 1, "request": 1, "response": 1, "metadata": 1},
    "whirlwind_CC-MAIN-2024-22.warc.wet.gz": {"warcinfo": 1, "conversion": 1},
    "whirlwind_CC-MAIN-2024-22.warc.wat.gz": {"warcinfo": 1, "metadata": 1},
    "aut_IAH-20080430204825-heritrix.warc.gz": {"warcinfo": 1, "request": 261, "response": 299, "metadata": 261},
    "pywb_iana.warc.gz": {"warcinfo": 1, "request": 171, "response": 48, "revisit": 123},
    "ukwa_gov.uk_BL-20140325122341434_revisits.warc.gz": {"response": 10, "revisit": 55, "request": 62,
                                                          "metadata": 62, "warcinfo": 1},
    "copycat_wayback-topic-02.warc.gz": {"warcinfo": 1, "response": 128},
    "copycat_clueweb09-sample.warc.gz": {"warcinfo": 1, "response": 23},
    "copycat_clueweb12-sample.warc.gz": {"warcinfo": 1, "response": 3},
    # 146 ARC records: the filedesc header becomes a warcinfo record.
    "copycat_commoncrawl-2008_1213893279526_0.arc": {"warcinfo": 1, "response": 145},
}


def read_all(path: Path, max_payload: int = 5_000_000):
    return list(iter_records(lambda: path.open("rb"), path.name, max_payload))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_record_of_real_files(name: str) -> None:
    records = read_all(WARC_DIR / name)
    assert Counter(r.record_type for r in records) == EXPECTED[name]
    ids = [r.record_id for r in records]
    assert len(set(ids)) == len(ids), "record ids must be unique (no record read twice)"


def test_whole_file_gzip_is_read_once_in_order() -> None:
    records = read_all(WARC_DIR / "copycat_clueweb09-sample.warc.gz")
    urls = [r.url for r in records if r.record_type == "response"]
    assert len(urls) == len(set(urls)) == 23
    assert all(r.payload and b"<" in r.payload[:2000] for r in records if r.record_type == "response")


def test_arc_ids_are_stable_and_bodies_decoded(tmp_path: Path) -> None:
    arc = "copycat_commoncrawl-2008_1213893279526_0.arc"
    # The same file under another directory (another machine, mount or bucket) gives the same ids:
    # a CI checkout at another path once moved the negatives a hash-keyed sample picked.
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / arc).write_bytes((WARC_DIR / arc).read_bytes())
    first, second = ([*iter_records(lambda: path.open("rb"), str(path), 5_000_000)]
                     for path in (WARC_DIR / arc, tmp_path / "elsewhere" / arc))
    assert [r.record_id for r in first] == [r.record_id for r in second]
    assert all(r.record_id.startswith("<urn:refinery:") for r in first)
    cine = next(r for r in first if r.url == "http://cineciudad.com/pelicula/index/502")
    # Stored with Transfer-Encoding: chunked and Content-Encoding: gzip; we get the decoded page.
    assert cine.payload is not None and cine.payload.lstrip().startswith(b"<!DOCTYPE html")
    assert cine.http_status == 200 and cine.date == "2008-05-09T19:02:41Z"


def test_records_without_http_headers_keep_their_payload() -> None:
    records = [r for r in read_all(WARC_DIR / "copycat_wayback-topic-02.warc.gz") if r.record_type == "response"]
    assert all(r.http_status is None for r in records)
    assert sum(1 for r in records if r.payload and b"<html" in r.payload.lower()) >= 120


def test_wget_angle_bracket_uris_are_unwrapped() -> None:
    records = read_all(WARC_DIR / "dolma_wget_sample-0000.warc.gz")
    urls = [r.url for r in records if r.record_type == "response"]
    assert urls and all(u.startswith("http") and not u.startswith("<") for u in urls)


def test_oversized_payloads_are_flagged_not_buffered() -> None:
    records = read_all(WARC_DIR / "pywb_iana.warc.gz", max_payload=1000)
    big = [r for r in records if r.oversized]
    assert big and all(r.payload is None for r in big)
    assert len(records) == 343


def test_truncated_file_reports_where_it_broke(tmp_path: Path) -> None:
    data = (WARC_DIR / "resiliparse_CC-MAIN-2020-34_sample.warc.gz").read_bytes()
    broken = tmp_path / "truncated.warc.gz"
    broken.write_bytes(data[: len(data) // 2])
    seen = []
    with pytest.raises(CorruptArchive) as err:
        for record in iter_records(lambda: broken.open("rb"), broken.name, 5_000_000):
            seen.append(record)
    assert seen, "records before the break are still delivered"
    assert err.value.warc_file == "truncated.warc.gz" and err.value.offset >= 0


def test_garbage_between_records_is_skipped_and_reported(tmp_path: Path) -> None:
    plain = gzip.decompress((WARC_DIR / "whirlwind_CC-MAIN-2024-22.warc.gz").read_bytes())
    cut = plain.index(b"WARC/1.0", 10)
    damaged = tmp_path / "damaged.warc"
    damaged.write_bytes(plain[:cut] + b"this line is not a WARC header\r\n" + plain[cut:])
    records = read_all(damaged)
    types = Counter(r.record_type for r in records)
    assert types["corrupt"] == 1
    assert types["response"] == 1 and types["request"] == 1
