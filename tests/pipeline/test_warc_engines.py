"""fastwarc and warcio read every archive into the same records, field by field.

The warcio path is the reference (it is what the per-file accounting was built and checked on);
the fastwarc path must reproduce it exactly, falling back to warcio where fastwarc refuses a file
or would read it differently. Each case compares the two whole sequences, including where and
how a broken file stops.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import io
from pathlib import Path

import pytest

from pipeline.inputs import file_size, open_archive
from pipeline.warc_reader import DEFAULT_ENGINE, CorruptArchive, RawRecord, iter_records
from pipeline.warc_split import byte_ranges, iter_range
from tests.conftest import WARC_DIR
from tests.pipeline.test_inputs import served_warcs  # noqa: F401 - a fixture

pytest.importorskip("fastwarc")

ARCHIVES = sorted(p.name for p in WARC_DIR.iterdir() if p.name.endswith((".gz", ".arc", ".warc")))
PER_RECORD = ["aut_IAH-20080430204825-heritrix.warc.gz", "pywb_iana.warc.gz",
              "ukwa_gov.uk_BL-20140325121225068.warc.gz", "resiliparse_CC-MAIN-2020-34_sample.warc.gz"]

Outcome = tuple[list[RawRecord], tuple[str, int] | None]  # the records, then (file, offset) if it broke


def read(path: Path, engine: str, max_payload: int = 5_000_000) -> Outcome:
    records: list[RawRecord] = []
    try:
        for record in iter_records(lambda: path.open("rb"), path.name, max_payload, engine):  # type: ignore[arg-type]
            records.append(record)
    except CorruptArchive as exc:
        return records, (exc.warc_file, exc.offset)
    return records, None


def assert_same(expected: Outcome, actual: Outcome) -> None:
    """Equal records and the same break, with the first differing field named on failure."""
    for i, (want, got) in enumerate(zip(expected[0], actual[0])):
        for f in dataclasses.fields(RawRecord):
            assert getattr(got, f.name) == getattr(want, f.name), f"record {i} at {want.offset}: {f.name}"
    assert len(actual[0]) == len(expected[0])
    assert actual[1] == expected[1]


def test_fastwarc_is_the_default() -> None:
    assert DEFAULT_ENGINE == "fastwarc"


@pytest.mark.parametrize("max_payload", [5_000_000, 1000])
@pytest.mark.parametrize("name", ARCHIVES)
def test_same_records_from_every_shared_file(name: str, max_payload: int) -> None:
    path = WARC_DIR / name
    expected = read(path, "warcio", max_payload)
    assert expected[0], "every shared file has records"
    assert_same(expected, read(path, "fastwarc", max_payload))


@pytest.mark.parametrize("name", ["whirlwind_CC-MAIN-2024-22.warc.gz", "dolma_wget_sample-0000.warc.gz",
                                  "copycat_wayback-topic-02.warc.gz", "pywb_iana.warc.gz"])
@pytest.mark.parametrize("max_payload", [5_000_000, 1000])
def test_same_records_from_plain_warc(tmp_path: Path, name: str, max_payload: int) -> None:
    plain = tmp_path / name.removesuffix(".gz")
    plain.write_bytes(gzip.decompress((WARC_DIR / name).read_bytes()))
    assert_same(read(plain, "warcio", max_payload), read(plain, "fastwarc", max_payload))


def broken_copies(tmp_path: Path) -> list[Path]:
    """Files that break midway in the ways real downloads do, gzipped per record and plain."""
    gz = (WARC_DIR / "resiliparse_CC-MAIN-2020-34_sample.warc.gz").read_bytes()
    plain = gzip.decompress((WARC_DIR / "whirlwind_CC-MAIN-2024-22.warc.gz").read_bytes())
    cut = plain.index(b"WARC/1.0", 10)
    middle = len(gz) // 2
    cases = {
        "truncated.warc.gz": gz[:middle],
        "zeroed.warc.gz": gz[:middle] + b"\0" * 64 + gz[middle + 64:],
        "trailing-garbage.warc.gz": gz + b"not gzip at all\r\n",
        "truncated.warc": plain[: len(plain) // 2],
        "garbage-between.warc": plain[:cut] + b"this line is not a WARC header\r\n" + plain[cut:],
        "trailing-garbage.warc": plain + b"junk\r\n",
        "whole-file.warc.gz": gzip.compress(plain),
    }
    paths = []
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        paths.append(tmp_path / name)
    return paths


def test_broken_files_keep_the_same_records_and_break_at_the_same_offset(tmp_path: Path) -> None:
    for path in broken_copies(tmp_path):
        expected = read(path, "warcio")
        assert_same(expected, read(path, "fastwarc"))


def test_truncated_gzip_still_reports_the_break(tmp_path: Path) -> None:
    truncated = next(p for p in broken_copies(tmp_path) if p.name == "truncated.warc.gz")
    records, broke = read(truncated, "fastwarc")
    assert records and broke is not None and broke[0] == "truncated.warc.gz"


@pytest.mark.parametrize("range_bytes", [150_000, 1_000_000])
def test_byte_ranges_give_the_same_records(tmp_path: Path, range_bytes: int) -> None:
    joined = tmp_path / "joined.warc.gz"
    joined.write_bytes(b"".join((WARC_DIR / name).read_bytes() for name in PER_RECORD))
    opener = functools.partial(open_archive, str(joined))
    ranges = byte_ranges(opener, file_size(str(joined)), range_bytes)
    assert len(ranges) > 1

    def pieces(engine: str) -> Outcome:
        records = [r for s, e in ranges for r in iter_range(opener, str(joined), s, e, 5_000_000, engine)]  # type: ignore[arg-type]
        return records, None

    expected = pieces("warcio")
    assert len(expected[0]) == sum(1 for _ in iter_records(lambda: joined.open("rb"), str(joined), 5_000_000, "warcio"))
    assert_same(expected, pieces("fastwarc"))


def test_same_records_over_http(served_warcs: str) -> None:
    name = "pywb_iana.warc.gz"
    url = served_warcs + name
    whole = list(iter_records(lambda: open_archive(url), name, 5_000_000, "fastwarc"))
    assert_same(read(WARC_DIR / name, "warcio"), (whole, None))


class _Socket(io.RawIOBase):
    """A file read like a socket: no tell, no seek, as open_archive's HTTP range streams."""

    def __init__(self, path: Path, start: int) -> None:
        self._file = path.open("rb")
        self._file.seek(start)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        return self._file.readinto(buffer)

    def close(self) -> None:
        self._file.close()
        super().close()


def test_ranges_over_streams_that_cannot_tell_keep_absolute_offsets(tmp_path: Path) -> None:
    joined = tmp_path / "joined.warc.gz"
    joined.write_bytes(b"".join((WARC_DIR / name).read_bytes() for name in PER_RECORD))
    ranges = byte_ranges(functools.partial(open_archive, str(joined)), file_size(str(joined)), 400_000)

    def socket_at(start: int) -> io.BufferedReader:
        return io.BufferedReader(_Socket(joined, start), 1 << 20)

    pieces = [r for s, e in ranges for r in iter_range(socket_at, "joined", s, e, 5_000_000, "fastwarc")]
    whole = [r for s, e in ranges for r in iter_range(socket_at, "joined", s, e, 5_000_000, "warcio")]
    assert_same((whole, None), (pieces, None))
