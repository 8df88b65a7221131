"""Streaming records out of WARC and ARC files, whatever their compression and quirks.

Two engines read the same files into the same records:

* **fastwarc** (the default when installed) frames gzip-per-record and plain WARC files: its
  native gzip and header parsing read about twice as fast as warcio. The HTTP part of each record
  still goes through the same code as warcio's records (``_payload``), so headers and decoded
  bodies are identical by construction. fastwarc is strict: on anything it refuses or that would
  come out differently (whole-file gzip, a truncated or corrupt tail, garbage between records, an
  odd header), the file is re-read with warcio from the start and the records already delivered
  are skipped, so the records and the offset where a file broke are exactly warcio's.
* **warcio** reads everything else, and is the reference the fastwarc path is tested against.

warcio does the parsing there, but real crawls break it in two ways that this module works around:

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
from typing import BinaryIO, Literal

from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed
from warcio.recordloader import ArcWarcRecord, ArcWarcRecordLoader
from warcio.statusandheaders import StatusAndHeadersParser, StatusAndHeadersParserException

try:
    from fastwarc.stream_io import GzipReader
    from fastwarc.warc import ArchiveIterator as FastArchiveIterator
    from fastwarc.warc import WarcRecord as FastRecord
except ImportError:  # fastwarc is optional: warcio reads everything without it
    FastArchiveIterator = None

log = logging.getLogger(__name__)

Engine = Literal["fastwarc", "warcio"]
DEFAULT_ENGINE: Engine = "fastwarc" if FastArchiveIterator is not None else "warcio"

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


def iter_records(
    open_file: Opener, warc_file: str, max_payload_bytes: int, engine: Engine = DEFAULT_ENGINE
) -> Iterator[RawRecord]:
    """Yield every record of one WARC or ARC file, then stop; raise CorruptArchive past a bad spot.

    ``open_file`` must return a fresh binary stream each time it is called: the whole-file-gzip
    fallback and the fastwarc-to-warcio fallback reopen the file. Both engines yield the same
    records; ``engine`` exists so tests and the benchmark can compare them.
    """
    if engine == "warcio":
        yield from _iter_records_warcio(open_file, warc_file, max_payload_bytes)
        return
    yielded = 0
    try:
        for record in _iter_records_fastwarc(open_file, warc_file, max_payload_bytes):
            yielded += 1
            yield record
        return
    except _Refused as refusal:
        level = logging.INFO if yielded else logging.DEBUG  # ARC and whole-file gzip are refused at once
        log.log(level, "%s: fastwarc stopped after %d records (%s); reading it with warcio", warc_file, yielded, refusal)
    yield from _skip(_iter_records_warcio(open_file, warc_file, max_payload_bytes), yielded)


def read_warc_members(
    open_stream: Opener, warc_file: str, max_payload_bytes: int, base_offset: int = 0,
    engine: Engine = DEFAULT_ENGINE,
) -> Iterator[RawRecord]:
    """Gzip-per-record WARC records from the stream ``open_stream`` returns, which starts at a member boundary.

    ``base_offset`` is where the stream starts in the file, so offsets stay absolute when a
    reader starts mid-file (see warc_split). A record warcio cannot parse ends the file's reading.
    ``open_stream`` is called again (from the same boundary) if fastwarc refuses the stream.
    """
    yielded = 0
    if engine == "fastwarc":
        try:
            with open_stream() as stream:
                source = GzipReader(_tellable(stream))
                for record in _fastwarc_records(source, warc_file, max_payload_bytes, "gzip", base_offset):
                    yielded += 1
                    yield record
            return
        except _Refused as refusal:
            log.info("%s: fastwarc stopped after %d records from offset %d (%s); reading on with warcio",
                     warc_file, yielded, base_offset, refusal)
    with open_stream() as stream:
        yield from _skip(_read_warc_members_warcio(stream, warc_file, max_payload_bytes, base_offset), yielded)


def _skip(records: Iterator[RawRecord], count: int) -> Iterator[RawRecord]:
    """``records`` without its first ``count``: those the fastwarc path already delivered."""
    for i, record in enumerate(records):
        if i >= count:
            yield record


class _Refused(Exception):
    """fastwarc cannot read the rest of a file exactly as warcio would; the message says why."""


_Framing = Literal["gzip", "plain"]
_WARC_VERSIONS = tuple(ArcWarcRecordLoader.WARC_TYPES)


def _iter_records_fastwarc(open_file: Opener, warc_file: str, max_payload_bytes: int) -> Iterator[RawRecord]:
    """A gzip-per-record or plain WARC read by fastwarc; raises _Refused on anything else.

    Whole-file gzip is not detected up front: fastwarc reads its first record like warcio does,
    and the second one fails the one-record-per-member check in _check_framing.
    """
    with open_file() as raw:
        stream = raw if hasattr(raw, "peek") else io.BufferedReader(raw, _CHUNK)
        kind = _sniff(stream.peek(4096)[:4096])
        source = _tellable(stream)
        if kind == "warc.gz":
            yield from _fastwarc_records(GzipReader(source), warc_file, max_payload_bytes, "gzip")
        elif kind == "warc":
            yield from _fastwarc_records(source, warc_file, max_payload_bytes, "plain")
        else:
            raise _Refused(f"{kind} files are read by warcio")


class _CountingReader:
    """read() and tell() over a stream that cannot tell its position (an HTTP response).

    fastwarc asks for the position once, at the start, and counts from there; a plain
    BufferedReader over a socket answers that question with UnsupportedOperation.
    """

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._position = 0

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self._position += len(data)
        return data

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        raise io.UnsupportedOperation("seek")

    def close(self) -> None:
        """The caller owns the stream and closes it."""


def _tellable(stream: BinaryIO) -> BinaryIO | _CountingReader:
    try:
        stream.tell()
        return stream
    except (OSError, ValueError):
        return _CountingReader(stream)


def _fastwarc_records(
    source: BinaryIO | GzipReader, warc_file: str, max_payload_bytes: int, framing: _Framing, base_offset: int = 0
) -> Iterator[RawRecord]:
    """RawRecords from fastwarc, each checked to be what the warcio path would produce.

    ``source`` is a GzipReader for gzip-per-record files (so member boundaries can be checked)
    and the plain stream otherwise; ``base_offset`` is where that stream starts in the file.
    """
    # stream_detect=False: fastwarc would otherwise also open zstd/lz4/brotli files, which the
    # warcio path reports as unframed bytes.
    records = FastArchiveIterator(source, parse_http=False, stream_detect=False, max_header_len=_MAX_LINE)
    shift: int | None = None
    previous = -1
    try:
        for record in records:
            _check_framing(record, source if framing == "gzip" else None, previous)
            _check_headers(record)
            previous = record.stream_pos
            # Absolute on a seekable stream, relative to its start otherwise (HTTP ranges).
            if shift is None:
                shift = 0 if record.stream_pos == base_offset else base_offset
            yield _fast_to_raw(record, warc_file, shift + record.stream_pos, max_payload_bytes, framing)
    except OSError as exc:  # fastwarc's one error type: bad gzip, bad header, short read
        raise _Refused(f"{type(exc).__name__}: {exc}") from None


def _check_framing(record: FastRecord, gzip_reader: GzipReader | None, previous: int) -> None:
    """Offsets must increase, and in a gzip file each record must start its own gzip member.

    warcio stops with "non-chunked gzip" on a member holding a second record (whole-file gzip),
    where fastwarc reads on with an offset that is not a member start.
    """
    if record.stream_pos <= previous:
        raise _Refused(f"record at offset {record.stream_pos} does not follow the one at {previous}")
    if gzip_reader is not None and gzip_reader.frame_start_position() != record.stream_pos:
        raise _Refused(f"record at offset {record.stream_pos} does not start a gzip member")


def _check_headers(record: FastRecord) -> None:
    """Refuse the header blocks that warcio reads differently from fastwarc."""
    headers = record.headers
    if not (headers.status_line or "").upper().startswith(_WARC_VERSIONS):
        raise _Refused(f"WARC version {headers.status_line!r}")
    if not headers.get("WARC-Type"):
        raise _Refused("record without WARC-Type")
    length = headers.get("Content-Length")
    try:
        valid = length is not None and int(length) == record.content_length >= 0
    except ValueError:
        valid = False
    if not valid:  # warcio reads an unparsable length as 0, a missing one as "to the member's end"
        raise _Refused(f"Content-Length {length!r}")
    if len(headers.get_multiple("WARC-Target-URI")) > 1:  # warcio rewrites the last, reads the first
        raise _Refused("several WARC-Target-URI headers")


def _fast_to_raw(record: FastRecord, warc_file: str, offset: int, limit: int, framing: _Framing) -> RawRecord:
    """The RawRecord the warcio path builds for this record (_iter_warc or _iter_framed_warc)."""
    if framing == "plain" and record.content_length > limit:
        _check_complete(record, _drain_all(record.reader))
        return _framed_oversized(record, warc_file, offset)
    rec_type = _warc_header(record, "WARC-Type")
    http = _payload(rec_type, record.reader, limit)
    _drain_all(record.reader)
    _check_complete(record, record.reader.tell())
    return RawRecord(
        warc_file=warc_file,
        offset=offset,
        record_type=rec_type,
        record_id=_warc_header(record, "WARC-Record-ID").strip() or _derived_id(warc_file, offset),
        url=_clean_uri(_warcio_target_uri(_warc_header(record, "WARC-Target-URI"))),
        date=_clean_date(_warc_header(record, "WARC-Date")),
        http_status=http.status,
        http_headers=http.headers,
        payload=http.payload,
        oversized=http.oversized,
    )


def _framed_oversized(record: FastRecord, warc_file: str, offset: int) -> RawRecord:
    """What _iter_framed_warc yields for a record over the cap: its raw header values, no body."""
    def header(name: str) -> str:
        return (record.headers.get_bytes(name.encode()) or b"").strip().decode("utf-8", "replace")

    return RawRecord(warc_file, offset, header("WARC-Type") or "response",
                     header("WARC-Record-ID") or _derived_id(warc_file, offset),
                     header("WARC-Target-URI"), _clean_date(header("WARC-Date")), None, None, oversized=True)


def _check_complete(record: FastRecord, block_bytes: int) -> None:
    """A block shorter than its Content-Length is a truncated file: warcio says where it broke."""
    if block_bytes < record.content_length:
        raise _Refused(f"record truncated ({block_bytes} of {record.content_length} bytes)")


def _warc_header(record: FastRecord, name: str) -> str:
    """A WARC header value decoded as warcio does: UTF-8, else Latin-1."""
    value = (record.headers.get_bytes(name.encode()) or b"").strip()
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("iso-8859-1")


def _warcio_target_uri(value: str) -> str:
    """WARC-Target-URI as warcio's loader rewrites it: wget's <angle brackets> off, spaces as %20."""
    if value.startswith("<") and value.endswith(">"):
        value = value[1:-1]
    return value.replace(" ", "%20")


def _iter_records_warcio(open_file: Opener, warc_file: str, max_payload_bytes: int) -> Iterator[RawRecord]:
    """The reference reader: warcio for gzip-per-record WARC, our own framing for everything else."""
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


def _read_warc_members_warcio(
    stream: BinaryIO, warc_file: str, max_payload_bytes: int, base_offset: int = 0
) -> Iterator[RawRecord]:
    """The reference reader of read_warc_members: warcio over gzip members."""
    try:
        yield from _iter_warc(stream, warc_file, max_payload_bytes, base_offset)
    except ArchiveLoadFailed as exc:
        raise CorruptArchive(warc_file, base_offset + _safe_tell(stream), " ".join(str(exc).split())) from None


def _iter_warc(stream: BinaryIO, warc_file: str, max_payload_bytes: int, base_offset: int = 0) -> Iterator[RawRecord]:
    iterator = ArchiveIterator(stream, arc2warc=True, no_record_parse=True)
    shift: int | None = None
    try:
        for record in iterator:
            payload = _payload(record.rec_type, record.raw_stream, max_payload_bytes)
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
    uncompressed stream. Bytes skipped while resyncing are reported as a ``corrupt`` record; a file
    that is nothing but such bytes (random data, an HTML error page) is then a CorruptArchive too.
    """
    loader = ArcWarcRecordLoader(arc2warc=True)
    offset = 0
    framed = False  # whether any WARC header line has been seen
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
                if not framed:  # nothing but unframed bytes: a broken file, not a record of junk
                    raise CorruptArchive(warc_file, start, f"no WARC record in its {offset - start} bytes")
                return
            start = offset - len(line)
        framed = True
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
        yield _to_raw(record, warc_file, start, _payload(record.rec_type, record.raw_stream, max_payload_bytes))


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
            http = _payload(record.rec_type, record.raw_stream, max_payload_bytes)
            yield _to_raw(record, warc_file, offset, http, arc=True)
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


def _payload(rec_type: str | None, block_stream: BinaryIO, limit: int) -> _Http:
    """Status, headers and decoded body of a response block (records are loaded unparsed).

    warcio parses HTTP headers itself only by assuming they are there; on records stored without
    them (Wayback exports) it eats the first lines of the HTML as "headers". So we read the block
    and parse headers only when it starts with an HTTP status line, then let warcio undo chunked
    and gzip/deflate/brotli encodings. ``block_stream`` is the record block (warcio's raw_stream
    or fastwarc's record reader): both engines share this function, so their payloads agree.
    """
    if rec_type != "response":
        return _Http()
    block = block_stream.read(limit + 1)
    if len(block) > limit:
        _drain_all(block_stream)
        return _Http(oversized=True)
    if not block.startswith(b"HTTP/"):
        return _Http(payload=block, block_bytes=len(block))
    buffer = io.BytesIO(block)
    try:
        parsed = StatusAndHeadersParser(_HTTP_PROTOCOLS, verify=False).parse(buffer)
    except (StatusAndHeadersParserException, EOFError, ValueError):
        return _Http(payload=block, block_bytes=len(block))
    # content_stream() looks only at the HTTP headers and the stream, so the rest can stay empty.
    decoded = ArcWarcRecord("warc", rec_type, None, buffer, parsed, None, None)
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
    url = _clean_uri(headers.get_header("WARC-Target-URI") or "")
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


def _clean_uri(url: str) -> str:
    url = url.strip()
    if url.startswith("<") and url.endswith(">"):  # wget writes <https://...>
        url = url[1:-1]
    return url


def _drain_all(stream: BinaryIO) -> int:
    total = 0
    while chunk := stream.read(_CHUNK):
        total += len(chunk)
    return total


def _derived_id(warc_file: str, offset: int) -> str:
    """An id for a record without WARC-Record-ID (ARC files, some crawlers): file name and offset.

    The file's name, not its path: the same archive read from another machine, mount or bucket
    must give the same ids, or every id-keyed choice downstream (samples, splits) moves with it.
    """
    name = warc_file.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    digest = hashlib.sha1(f"{name}:{offset}".encode()).hexdigest()
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
