"""Streaming records out of WARC and ARC files, whatever their compression and quirks.

warcio does the parsing, but real crawls break it in two ways that this module works around:

* **Whole-file gzip** (ClueWeb09/12): warcio expects one gzip member per record and stops after
  the first with "non-chunked gzip". We then reopen the file behind a streaming gzip decoder and
  skip the records already yielded, so nothing is read twice and nothing is lost.
* **ARC files** (CommonCrawl 2008): records are not followed by the blank line warcio wants, so
  we frame them ourselves by the length in the ARC header line and let warcio parse each one.

Nothing here reads a whole file into memory: records stream one at a time, and a payload larger
than the cap is drained in chunks and reported as too large rather than buffered.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed
from warcio.recordloader import ArcWarcRecord, ArcWarcRecordLoader
from warcio.statusandheaders import StatusAndHeadersParser, StatusAndHeadersParserException

log = logging.getLogger(__name__)

_CHUNK = 1 << 20
_MAX_LINE = 1 << 16


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One archive record, reduced to what extraction and accounting need.

    ``payload`` is the HTTP body after chunked and content-encoding decoding, or ``None`` when the
    record was not worth reading (not a response, or over the size cap: see ``oversized``).
    ``http_headers`` is ``None`` for records stored without an HTTP status line and headers
    (Wayback exports do this), which is why callers must sniff the payload.
    """

    warc_file: str
    offset: int
    record_type: str
    record_id: str
    url: str
    date: str
    http_status: int | None
    http_headers: dict[str, str] | None
    payload: bytes | None = None
    oversized: bool = False
    meta: dict[str, str] = field(default_factory=dict)


class CorruptArchive(Exception):
    """The rest of a file cannot be parsed; carries the byte offset where reading stopped."""

    def __init__(self, warc_file: str, offset: int, message: str) -> None:
        super().__init__(f"{warc_file} at offset {offset}: {message}")
        self.warc_file = warc_file
        self.offset = offset


Opener = Callable[[], BinaryIO]


def iter_records(open_file: Opener, warc_file: str, max_payload_bytes: int) -> Iterator[RawRecord]:
    """Yield every record of one WARC or ARC file, then stop; raise CorruptArchive past a bad spot.

    ``open_file`` must return a fresh binary stream each time it is called: the whole-file-gzip
    fallback reopens the file.
    """
    with open_file() as raw:
        stream = raw if hasattr(raw, "peek") else io.BufferedReader(raw, _CHUNK)
        kind = _sniff(stream.peek(4096)[:4096])
        if kind == "arc":
            yield from _iter_arc(stream, warc_file, max_payload_bytes)
            return
        if kind == "arc.gz":
            with gzip.GzipFile(fileobj=stream) as plain:
                yield from _iter_arc(plain, warc_file, max_payload_bytes)
            return
        if kind == "warc":
            # Uncompressed: frame records ourselves, which survives garbage between records.
            yield from _iter_framed_warc(stream, warc_file, max_payload_bytes)
            return
        # Gzipped per record: warcio, whose offsets point at gzip members a reader can seek to.
        yielded = 0
        try:
            for record in _iter_warc(stream, warc_file, max_payload_bytes):
                yielded += 1
                yield record
            return
        except ArchiveLoadFailed as exc:
            problem = " ".join(str(exc).split())
            if "non-chunked gzip" not in problem:
                raise CorruptArchive(warc_file, _safe_tell(stream), problem) from None
    # Whole-file gzip: warcio delivers the first record, then stops. Decompress the whole stream
    # and frame it ourselves, skipping what was already delivered.
    log.info("%s: whole-file gzip; re-reading it through a streaming decompressor", warc_file)
    with open_file() as raw, gzip.GzipFile(fileobj=raw) as plain:
        for i, record in enumerate(_iter_framed_warc(plain, warc_file, max_payload_bytes)):
            if i >= yielded:
                yield record


def read_warc_members(
    stream: BinaryIO, warc_file: str, max_payload_bytes: int, base_offset: int = 0
) -> Iterator[RawRecord]:
    """Gzip-per-record WARC records from ``stream``, which starts at a member boundary.

    ``base_offset`` is where the stream starts in the file, so offsets stay absolute when a
    reader starts mid-file (see warc_split). A record warcio cannot parse ends the file's reading.
    """
    try:
        yield from _iter_warc(stream, warc_file, max_payload_bytes, base_offset)
    except ArchiveLoadFailed as exc:
        raise CorruptArchive(warc_file, base_offset + _safe_tell(stream), " ".join(str(exc).split())) from None


def _iter_warc(stream: BinaryIO, warc_file: str, max_payload_bytes: int, base_offset: int = 0) -> Iterator[RawRecord]:
    iterator = ArchiveIterator(stream, arc2warc=True, no_record_parse=True)
    shift: int | None = None
    try:
        for record in iterator:
            payload = _payload(record, max_payload_bytes)
            if not payload.oversized and payload.block_bytes + _drain_all(record.raw_stream) < (record.length or 0):
                raise EOFError(f"record truncated: fewer than its Content-Length of {record.length} bytes")
            # get_record_offset() reads the record to its end, so the payload must come first. It
            # is absolute on a seekable file and relative to the start on a stream (HTTP ranges).
            offset = iterator.get_record_offset()
            if shift is None:
                shift = 0 if offset == base_offset else base_offset
            yield _to_raw(record, warc_file, shift + offset, payload)
    except (EOFError, OSError, ValueError, gzip.BadGzipFile) as exc:
        raise CorruptArchive(warc_file, base_offset + _safe_tell(stream), f"{type(exc).__name__}: {exc}") from None


def _iter_framed_warc(stream: BinaryIO, warc_file: str, max_payload_bytes: int) -> Iterator[RawRecord]:
    """A lenient WARC reader: header block, Content-Length bytes, then resync on the next WARC/ line.

    For files warcio refuses: ClueWeb09's records end with one newline too few, and a
    whole-file-gzip stream has no per-record members to frame by. Offsets are positions in the
    uncompressed stream. Bytes skipped while resyncing are reported as a ``corrupt`` record.
    """
    loader = ArcWarcRecordLoader(arc2warc=True)
    offset = 0
    while True:
        line = stream.readline(_MAX_LINE)
        if not line:
            return
        start = offset
        offset += len(line)
        if not line.strip():
            continue
        if not line.startswith(b"WARC/"):
            while line and not line.startswith(b"WARC/"):
                line = stream.readline(_MAX_LINE)
                offset += len(line)
            log.warning("%s: skipped %d unframed bytes at offset %d", warc_file, offset - len(line) - start, start)
            yield RawRecord(warc_file, start, "corrupt", _derived_id(warc_file, start), "", "", None, None)
            if not line:
                return
            start = offset - len(line)
        block = [line]
        while True:
            header = stream.readline(_MAX_LINE)
            offset += len(header)
            if not header:
                raise CorruptArchive(warc_file, start, "file ends inside a WARC header")
            block.append(header)
            if not header.strip():
                break
        length = _content_length(block)
        if length is None:
            raise CorruptArchive(warc_file, start, "WARC record without a valid Content-Length")
        if length > max_payload_bytes:
            _drain(stream, length)
            offset += length
            yield RawRecord(warc_file, start, _header(block, b"warc-type") or "response",
                            _header(block, b"warc-record-id") or _derived_id(warc_file, start),
                            _header(block, b"warc-target-uri"), _clean_date(_header(block, b"warc-date")),
                            None, None, oversized=True)
            continue
        body = stream.read(length)
        offset += len(body)
        if len(body) < length:
            raise CorruptArchive(warc_file, start, f"record truncated ({len(body)} of {length} bytes)")
        try:
            record = loader.parse_record_stream(io.BytesIO(b"".join(block) + body), no_record_parse=True)
        except (ArchiveLoadFailed, ValueError) as exc:
            raise CorruptArchive(warc_file, start, f"unparsable WARC record: {exc}") from None
        yield _to_raw(record, warc_file, start, _payload(record, max_payload_bytes))


def _content_length(block: list[bytes]) -> int | None:
    value = _header(block, b"content-length")
    try:
        return int(value) if value else None
    except ValueError:
        return None


def _header(block: list[bytes], name: bytes) -> str:
    for line in block[1:]:
        key, sep, value = line.partition(b":")
        if sep and key.strip().lower() == name:
            return value.strip().decode("utf-8", "replace")
    return ""


def _iter_arc(stream: BinaryIO, warc_file: str, max_payload_bytes: int) -> Iterator[RawRecord]:
    """Frame ARC v1 records by the length in their header line, then let warcio parse each."""
    loader = ArcWarcRecordLoader(arc2warc=True)
    offset = 0
    while True:
        line = stream.readline()
        if not line:
            return
        if not line.strip():  # the blank lines some writers put between records
            offset += len(line)
            continue
        fields = line.split()
        try:
            length = int(fields[-1])
        except (ValueError, IndexError):
            raise CorruptArchive(warc_file, offset, f"bad ARC header line {line[:100]!r}") from None
        if length > max_payload_bytes:
            _drain(stream, length)
            yield RawRecord(
                warc_file, offset, "response", _derived_id(warc_file, offset),
                fields[0].decode("utf-8", "replace"), "", None, None, oversized=True,
            )
        else:
            body = stream.read(length)
            if len(body) < length:
                raise CorruptArchive(warc_file, offset, f"record truncated ({len(body)} of {length} bytes)")
            try:
                record = loader.parse_record_stream(io.BytesIO(line + body), known_format="arc", no_record_parse=True)
            except (ArchiveLoadFailed, ValueError) as exc:
                raise CorruptArchive(warc_file, offset, f"unparsable ARC record: {exc}") from None
            yield _to_raw(record, warc_file, offset, _payload(record, max_payload_bytes), arc=True)
        offset += len(line) + length


_OVERSIZED = object()
_HTTP_PROTOCOLS = ["HTTP/1.0", "HTTP/1.1", "HTTP/2", "HTTP/2.0"]


@dataclass(frozen=True, slots=True)
class _Http:
    payload: bytes | None = None
    oversized: bool = False
    status: int | None = None
    headers: dict[str, str] | None = None
    block_bytes: int = 0  # bytes of the record block consumed, to detect truncated records


def _payload(record: ArcWarcRecord, limit: int) -> _Http:
    """Status, headers and decoded body of a response block (records are loaded unparsed).

    warcio parses HTTP headers itself only by assuming they are there; on records stored without
    them (Wayback exports) it eats the first lines of the HTML as "headers". So we read the block
    and parse headers only when it starts with an HTTP status line, then let warcio undo chunked
    and gzip/deflate/brotli encodings.
    """
    if record.rec_type != "response":
        return _Http()
    block = record.raw_stream.read(limit + 1)
    if len(block) > limit:
        _drain_all(record.raw_stream)
        return _Http(oversized=True)
    if not block.startswith(b"HTTP/"):
        return _Http(payload=block, block_bytes=len(block))
    buffer = io.BytesIO(block)
    try:
        parsed = StatusAndHeadersParser(_HTTP_PROTOCOLS, verify=False).parse(buffer)
    except (StatusAndHeadersParserException, EOFError, ValueError):
        return _Http(payload=block, block_bytes=len(block))
    decoded = ArcWarcRecord(record.format, record.rec_type, record.rec_headers, buffer, parsed,
                            record.content_type, record.length)
    try:
        body = decoded.content_stream().read(limit + 1)
    except (OSError, ValueError, EOFError, zlib.error):
        body = block[buffer.tell():] if buffer.tell() <= len(block) else b""  # undecodable: keep raw bytes
    try:
        status = int(parsed.get_statuscode())
    except (TypeError, ValueError):
        status = None
    headers = {k.lower(): v for k, v in parsed.headers}
    if len(body) > limit:  # a small compressed body that inflates past the cap
        return _Http(oversized=True, status=status, headers=headers)
    return _Http(payload=body, status=status, headers=headers, block_bytes=len(block))


def _to_raw(record: ArcWarcRecord, warc_file: str, offset: int, http: _Http, arc: bool = False) -> RawRecord:
    headers = record.rec_headers
    url = (headers.get_header("WARC-Target-URI") or "").strip()
    if url.startswith("<") and url.endswith(">"):  # wget writes <https://...>
        url = url[1:-1]
    # ARC records have no id of their own (warcio invents a random one); a digest of file and
    # offset is stable across re-runs, which keeps document ids deterministic.
    record_id = "" if arc else (headers.get_header("WARC-Record-ID") or "").strip()
    return RawRecord(
        warc_file=warc_file,
        offset=offset,
        record_type=record.rec_type,
        record_id=record_id or _derived_id(warc_file, offset),
        url=url,
        date=_clean_date(headers.get_header("WARC-Date")),
        http_status=http.status,
        http_headers=http.headers,
        payload=http.payload,
        oversized=http.oversized,
    )


def _drain_all(stream: BinaryIO) -> int:
    total = 0
    while chunk := stream.read(_CHUNK):
        total += len(chunk)
    return total


def _derived_id(warc_file: str, offset: int) -> str:
    digest = hashlib.sha1(f"{warc_file}:{offset}".encode()).hexdigest()
    return f"<urn:refinery:{digest}>"


def _clean_date(value: str | None) -> str:
    value = (value or "").strip()
    return "" if value.lower() in ("", "null", "none") else value


def _sniff(head: bytes) -> str:
    """'arc', 'arc.gz', 'warc.gz' (per record or whole file) or 'warc'."""
    if head.startswith(b"filedesc://"):
        return "arc"
    if head.startswith(b"\x1f\x8b"):
        try:
            start = zlib.decompressobj(wbits=31).decompress(head, 16)
        except zlib.error:
            return "warc"
        return "arc.gz" if start.startswith(b"filedesc://") else "warc.gz"
    return "warc"


def _drain(stream: BinaryIO, length: int) -> None:
    while length > 0:
        chunk = stream.read(min(_CHUNK, length))
        if not chunk:
            return
        length -= len(chunk)


def _safe_tell(stream: BinaryIO) -> int:
    try:
        return stream.tell()
    except (OSError, ValueError, AttributeError):
        return -1
