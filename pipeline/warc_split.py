"""Splitting one WARC file into byte ranges that workers read independently.

A CommonCrawl WARC is ~1 GB of gzip members, one per record. Reading it in one piece leaves all
but one worker idle; shuffling its raw records to spread them moves every byte of HTML through
the shuffle. Instead a file is cut into ranges: a range's reader seeks to the first gzip member
that starts at or after its start and reads the records that *start* before its end, so every
record belongs to exactly one range. Files that are not gzip-per-record (plain WARC, whole-file
gzip, ARC) stay one range.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from typing import BinaryIO

from pipeline.warc_reader import DEFAULT_ENGINE, Engine, RawRecord, iter_records, read_warc_members

_GZIP_MAGIC = b"\x1f\x8b\x08"
_PROBE = 1 << 20  # bytes read to find a member boundary or to tell per-record from whole-file gzip

RangeOpener = Callable[[int], BinaryIO]  # start offset -> a stream positioned there


def byte_ranges(open_at: RangeOpener, size: int | None, range_bytes: int) -> list[tuple[int, int | None]]:
    """``[(start, end), ...]`` covering the file; one ``(0, None)`` range when it cannot be split."""
    if not range_bytes or size is None or size <= range_bytes or not _is_member_per_record(open_at):
        return [(0, None)]
    starts = list(range(0, size, range_bytes))
    return [(s, min(s + range_bytes, size)) for s in starts]


def _is_member_per_record(open_at: RangeOpener) -> bool:
    """True when the file's first gzip member ends early and another member follows it."""
    with open_at(0) as stream:
        head = stream.read(_PROBE)
    if not head.startswith(_GZIP_MAGIC):
        return False
    inflater = zlib.decompressobj(wbits=31)
    try:
        first = inflater.decompress(head, 1 << 16)
        # A first record of more than 64 KiB (a large page) does not end within that much output:
        # inflate on, in bounded steps, to the end of its member or of the probe.
        while first.startswith(b"WARC/") and not inflater.eof and inflater.unconsumed_tail:
            inflater.decompress(inflater.unconsumed_tail, 1 << 20)
    except zlib.error:
        return False
    return first.startswith(b"WARC/") and inflater.eof and inflater.unused_data.startswith(_GZIP_MAGIC)


def iter_range(
    open_at: RangeOpener, warc_file: str, start: int, end: int | None, max_payload_bytes: int,
    engine: Engine = DEFAULT_ENGINE,
) -> Iterator[RawRecord]:
    """The records of ``warc_file`` whose gzip member starts within ``[start, end)``."""
    if end is None:
        yield from iter_records(lambda: open_at(0), warc_file, max_payload_bytes, engine)
        return
    first = start if start == 0 else _next_member(open_at, start, end)
    if first is None:
        return
    for record in read_warc_members(lambda: open_at(first), warc_file, max_payload_bytes, first, engine):
        if record.offset >= end:
            return
        yield record


def _next_member(open_at: RangeOpener, start: int, end: int) -> int | None:
    """Offset of the first gzip member at or after ``start`` that holds a WARC record, if before ``end``."""
    position = start
    while position < end:
        with open_at(position) as stream:
            window = stream.read(_PROBE + len(_GZIP_MAGIC))
        if not window:
            return None
        index = window.find(_GZIP_MAGIC)
        while index != -1 and position + index < end:
            if _starts_warc_member(window[index:]):
                return position + index
            index = window.find(_GZIP_MAGIC, index + 1)
        position += _PROBE
    return None


def _starts_warc_member(data: bytes) -> bool:
    try:
        return zlib.decompressobj(wbits=31).decompress(data, 16).startswith(b"WARC/")
    except zlib.error:
        return False

