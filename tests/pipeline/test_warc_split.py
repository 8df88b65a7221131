"""Reading one WARC as byte ranges gives every record exactly once, in order."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from pipeline.inputs import file_size, open_archive
from pipeline.warc_reader import iter_records
from pipeline.warc_split import byte_ranges, iter_range
from tests.conftest import WARC_DIR

PER_RECORD = ["aut_IAH-20080430204825-heritrix.warc.gz", "pywb_iana.warc.gz",
              "ukwa_gov.uk_BL-20140325121225068.warc.gz", "resiliparse_CC-MAIN-2020-34_sample.warc.gz"]


@pytest.fixture(scope="module")
def big_warc(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real gzip-per-record crawls concatenated: still a valid gzip-per-record WARC (4.3 MB)."""
    path = tmp_path_factory.mktemp("split") / "joined.warc.gz"
    path.write_bytes(b"".join((WARC_DIR / name).read_bytes() for name in PER_RECORD))
    return path


def ids(records) -> list[str]:
    return [r.record_id for r in records]


@pytest.mark.parametrize("range_bytes", [150_000, 1_000_000, 3_333_333])
def test_ranges_partition_the_records(big_warc: Path, range_bytes: int) -> None:
    whole = list(iter_records(lambda: big_warc.open("rb"), str(big_warc), 5_000_000))
    opener = functools.partial(open_archive, str(big_warc))
    ranges = byte_ranges(opener, file_size(str(big_warc)), range_bytes)
    assert len(ranges) > 1 and ranges[0][0] == 0 and ranges[-1][1] == big_warc.stat().st_size
    pieces = [r for start, end in ranges for r in iter_range(opener, str(big_warc), start, end, 5_000_000)]
    assert ids(pieces) == ids(whole)
    assert [r.offset for r in pieces] == [r.offset for r in whole]
    assert [r.payload for r in pieces] == [r.payload for r in whole]


@pytest.mark.parametrize("name", ["copycat_clueweb09-sample.warc.gz", "copycat_commoncrawl-2008_1213893279526_0.arc",
                                  "copycat_wayback-topic-02.warc.gz"])
def test_files_that_cannot_be_split_stay_whole(name: str) -> None:
    path = str(WARC_DIR / name)
    opener = functools.partial(open_archive, path)
    if name == "copycat_wayback-topic-02.warc.gz":  # splittable, but smaller than the range size
        assert byte_ranges(opener, file_size(path), 64_000_000) == [(0, None)]
    else:
        assert byte_ranges(opener, file_size(path), 10_000) == [(0, None)]


def test_a_first_record_larger_than_the_probe_step_still_splits(tmp_path: Path) -> None:
    # The per-record probe inflated only 64 KiB of the first member: a WARC opening with a larger
    # page (benchmarks/bench_warc.py's real pages do) was read as one range, by one worker.
    import io

    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    path = tmp_path / "big-first.warc.gz"
    with path.open("wb") as out:
        writer = WARCWriter(out, gzip=True)
        for i, size in enumerate([300_000, 2_000, 2_000]):
            body = b"<html><body>" + bytes(f"page {i} ", "ascii") * (size // 7) + b"</body></html>"
            headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html")], protocol="HTTP/1.1")
            writer.write_record(writer.create_warc_record(f"https://example.org/{i}", "response",
                                                          payload=io.BytesIO(body), http_headers=headers))
    opener = functools.partial(open_archive, str(path))
    ranges = byte_ranges(opener, file_size(str(path)), 1_000)
    assert len(ranges) > 1
    pieces = [r for start, end in ranges for r in iter_range(opener, str(path), start, end, 5_000_000)]
    assert ids(pieces) == ids(iter_records(lambda: path.open("rb"), str(path), 5_000_000))
