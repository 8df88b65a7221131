"""``refinery build-quality-set``: the LLaMA classifier's training set, built in Beam.

LLaMA's quality classifier tells pages used as references in Wikipedia from random pages
(Touvron et al. 2023, 2.1). Given our documents and a list of reference URLs (``refinery
wiki-references`` makes one from a dump), the positives are the documents whose URL is in the
list and the negatives an equally large random sample of the rest. The reference list of a real
Wikipedia dump has tens of millions of URLs, so matching is a join (CoGroupByKey on
:func:`filters.urls.match_key`, the one normalization both sides go through), not a set in
memory; sampling is a deterministic hash of the id against a rate computed from the two counts,
so a re-run picks the same pages.

``match="domain"`` is a documented alternative, not LLaMA's recipe: a page is positive when its
host is a host the references cite. It is for crawls that hold few of the cited pages themselves
(a small crawl, or one of another year than the dump), where URL matching finds almost nothing.

The join is reported, since a classifier trained on a handful of positives is noise: how many
distinct references there are, how many matched a document, how many documents matched, and by
domain (``matches_by_domain.tsv``). Fewer positives than ``min_positives`` write the set and the
report but no ``_SUCCESS``, and raise :class:`TooFewPositives` with what to do about it.
URLs that name no page (an empty URL, ``mailto:``) are counted by reason on each side.

One site can dominate the positives (on the shared sample archive.org is 91 of 154), and then the
classifier learns that site rather than "the kind of page Wikipedia cites". ``max_per_domain``
caps each domain's positives (see :func:`parse_max_per_domain` for the default and why). The cap
is a GroupByKey by domain that keeps the pages with the smallest stable hash of their URL (id on a
tie), so it holds one domain's group at a time at most, and a re-run, or another runner, or
another order of the input, keeps the same pages. Pages dropped by the cap are neither positives
nor negatives (they are still cited pages); negatives are sampled to match the positives *after*
the cap. What the cap dropped is counted in the report, in total and by domain.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import logging
import math
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from filters import Document
from filters.urls import UnusableUrl, key_domain, match_key
from pipeline.output_dir import OutputDir
from pipeline.run import RunFailed, pipeline_options

log = logging.getLogger(__name__)

POSITIVE, NEGATIVE = "positive", "negative"


MATCHES = ("url", "domain")
COUNTS = "counts"
CAPPED = "capped"
DEFAULT_MIN_POSITIVES = 100  # below this a held-out AUC is too wide to tell a classifier from noise
DEFAULT_MAX_PER_DOMAIN = "20%"  # see parse_max_per_domain


class TooFewPositives(RunFailed):
    """The join found fewer positives than asked for; the set and report are written, no _SUCCESS."""


def normalize_url(url: str) -> str:
    """The join key of a URL (:func:`filters.urls.match_key`); "" for a URL that names no page."""
    try:
        return match_key(url)
    except UnusableUrl:
        return ""


def _join_key(url: str, match: str, side: str) -> Iterator[Any]:
    """(key, url) for the join, or a counted reason when the URL names no page."""
    try:
        key = match_key(url)
    except UnusableUrl as refused:
        yield beam.pvalue.TaggedOutput(COUNTS, f"{side}.{refused.reason}")
        return
    yield key_domain(key) if match == "domain" else key


def parse_max_per_domain(spec: str | int) -> str:
    """Validate a per-domain cap: ``N`` positives, ``P%`` of the matched positives, or 0 for none.

    The default, 20% of the matches, is relative because the positive pool's size spans orders of
    magnitude (154 pages on the shared sample, millions from a full dump against a full crawl): any
    one absolute number is either no cap at the large end or guts the set at the small end. A fifth
    means no site keeps more than a fifth of what the join found, while a domain the references
    cite often still counts more than a rare one (a cap is not a per-domain quota). Returns
    the spec normalized ("20%", "500", "0"); raises ValueError on anything else.
    """
    text = str(spec).strip()
    number = text.removesuffix("%")
    try:
        value = float(number) if text.endswith("%") else int(number)
    except ValueError:
        raise ValueError(f"--max-per-domain {spec!r}: expected a count (500), a percentage (20%) or 0") from None
    if not value >= 0 or (text.endswith("%") and value > 100):  # "not >=" also refuses nan
        raise ValueError(f"--max-per-domain {spec!r}: must be 0 (no cap), a count, or a percentage up to 100%")
    return f"{number}%" if text.endswith("%") else str(value)


def domain_cap(spec: str, matched: int) -> int | None:
    """The per-domain cap for ``matched`` positives found by the join; None when there is no cap.

    A percentage rounds down but never below one page, so a small set keeps one page per domain.
    """
    spec = parse_max_per_domain(spec)
    if spec.endswith("%"):
        percent = float(spec[:-1])
        return None if percent == 0 else max(1, math.floor(matched * percent / 100))
    return int(spec) or None


def _cap_order(doc: Document) -> tuple[bytes, str]:
    """A stable, order-free rank of a page within its domain: the hash of its URL, then its id."""
    return hashlib.sha1(doc.url.encode("utf-8")).digest(), doc.id


def _cap_domain(group: tuple[str, Iterable[Document]], spec: str, matched: int) -> Iterator[Any]:
    """(domain, pages) -> the ``cap`` pages with the smallest :func:`_cap_order`; the rest counted.

    ``heapq.nsmallest`` streams the group, so beyond what the runner holds of the group at most
    ``cap`` pages are kept in memory.
    """
    domain, docs = group
    cap = domain_cap(spec, matched)
    seen = 0

    def ranked() -> Iterator[tuple[tuple[bytes, str], Document]]:
        nonlocal seen
        for doc in docs:
            seen += 1
            yield _cap_order(doc), doc

    kept = list(ranked()) if cap is None else heapq.nsmallest(cap, ranked(), key=lambda pair: pair[0])
    for _, doc in kept:
        yield doc
    if seen > len(kept):
        yield beam.pvalue.TaggedOutput(CAPPED, (domain, seen - len(kept)))


def _sample_rate(positives: int, others: int) -> float:
    return 1.0 if others <= positives else positives / others


def _selected(doc_id: str, rate: float) -> bool:
    digest = int.from_bytes(hashlib.sha1(doc_id.encode("utf-8")).digest()[:8], "big")
    return digest < rate * 2**64


def _read_documents(path: str) -> Iterator[Document]:
    for batch in pq.ParquetFile(FileSystems.open(path)).iter_batches(batch_size=1024, columns=["id", "url", "text"]):
        for row in batch.to_pylist():
            yield Document(id=row["id"], url=row["url"] or "", text=row["text"])


class KeyDocuments(beam.DoFn):
    """Document -> (join key, document); a document whose URL names no page is a random page as is."""

    def __init__(self, match: str) -> None:
        self.match = match

    def process(self, doc: Document) -> Iterator[Any]:
        yield beam.pvalue.TaggedOutput(COUNTS, "documents.read")
        for keyed in _join_key(doc.url, self.match, "documents"):
            if isinstance(keyed, beam.pvalue.TaggedOutput):
                yield keyed
                yield beam.pvalue.TaggedOutput("unkeyed", doc)
            else:
                yield keyed, doc


def _split_match(element: tuple[str, dict[str, list[Any]]]) -> Iterator[Any]:
    key, joined = element
    is_reference = bool(joined["ref"])
    if is_reference:
        yield beam.pvalue.TaggedOutput(COUNTS, "references.distinct")
        if joined["doc"]:
            yield beam.pvalue.TaggedOutput(COUNTS, "references.matched")
    domain = key_domain(key)
    for doc in joined["doc"]:
        if is_reference:
            yield beam.pvalue.TaggedOutput(POSITIVE, (domain, doc))
            yield beam.pvalue.TaggedOutput("domains", domain)
        else:
            yield beam.pvalue.TaggedOutput("others", doc)


def _to_json(doc: Document) -> str:
    return json.dumps({"id": doc.id, "url": doc.url, "text": doc.text}, ensure_ascii=False)


def _documents_glob(spec: str) -> str:
    """A run directory stands for its kept documents; a folder for the Parquet files in it."""
    if spec.endswith(".parquet") or any(c in spec for c in "*?["):
        return spec
    documents = FileSystems.join(spec, "documents")
    return FileSystems.join(documents if FileSystems.exists(documents) else spec, "*.parquet")


def _read_references(p: beam.Pipeline, spec: str) -> beam.PCollection:
    """URLs from a text file (one per line), or the urls-* files of a ``wiki-references`` output."""
    listed = FileSystems.match([FileSystems.join(spec, "urls-*")])[0].metadata_list
    if any(m.path.endswith(".parquet") for m in listed):
        return (p | "ReadReferences" >> beam.io.ReadFromParquet(FileSystems.join(spec, "urls-*.parquet"),
                                                                columns=["url"])
                | "ReferenceUrls" >> beam.Map(lambda row: row["url"] or ""))
    path = FileSystems.join(spec, "urls-*.txt") if listed else spec
    return p | "ReadReferences" >> beam.io.ReadFromText(path)


def build_quality_set(references: str, inputs: Sequence[str], output: str, beam_args: Sequence[str] = (), *,
                      match: str = "url", min_positives: int = 1,
                      max_per_domain: str | int = DEFAULT_MAX_PER_DOMAIN) -> dict:
    """Write ``positive*.jsonl`` and ``negative*.jsonl`` under ``output``; returns the report.

    ``max_per_domain`` caps each domain's positives (:func:`parse_max_per_domain`; 0 for no cap).
    Raises :class:`TooFewPositives` (after writing) when fewer than ``min_positives`` documents are
    left after the cap.
    """
    from pipeline.inputs import resolve_inputs

    if match not in MATCHES:
        raise ValueError(f"--match {match!r}: expected one of {', '.join(MATCHES)}")
    cap_spec = parse_max_per_domain(max_per_domain)
    out = OutputDir(output)
    files = resolve_inputs([_documents_glob(i) for i in inputs], suffixes=(".parquet",))
    if not FileSystems.exists(references):
        raise FileNotFoundError(f"{references}: reference URL list not found")
    out.prepare({"references": references, "inputs": files, "match": match, "max_per_domain": cap_spec},
                overwrite=True)
    with beam.Pipeline(options=pipeline_options(beam_args)) as p:
        docs = (p | "ListDocuments" >> beam.Create(files) | "Reshuffle" >> beam.Reshuffle()
                | "ReadDocuments" >> beam.FlatMap(_read_documents))
        keyed = docs | "DocKeys" >> beam.ParDo(KeyDocuments(match)).with_outputs(COUNTS, "unkeyed", main="keyed")
        refs = (_read_references(p, references)
                | "RefLines" >> beam.Map(str.strip) | "NoBlankLines" >> beam.Filter(bool)
                | "RefKeys" >> beam.FlatMap(_join_key, match, "references").with_outputs(COUNTS, main="keys"))
        ref_keys = refs.keys | "DistinctRefs" >> beam.Distinct() | "RefMarks" >> beam.Map(lambda k: (k, True))
        split = (
            {"doc": keyed.keyed, "ref": ref_keys}
            | "MatchUrls" >> beam.CoGroupByKey()
            | "Split" >> beam.FlatMap(_split_match).with_outputs(POSITIVE, "others", "domains", COUNTS)
        )
        if domain_cap(cap_spec, 1) is None:
            positives = split[POSITIVE] | "Unkey" >> beam.Values()
            capped = p | "NothingCapped" >> beam.Create([])
        else:
            n_matched = split[POSITIVE] | "CountMatched" >> beam.combiners.Count.Globally()
            kept = (split[POSITIVE] | "ByDomain" >> beam.GroupByKey()
                    | "CapPerDomain" >> beam.FlatMap(_cap_domain, cap_spec, beam.pvalue.AsSingleton(n_matched))
                    .with_outputs(CAPPED, main="kept"))
            positives, capped = kept.kept, kept[CAPPED]
        others = (split["others"], keyed.unkeyed) | "AllOthers" >> beam.Flatten()
        n_pos = positives | "CountPositives" >> beam.combiners.Count.Globally()
        n_other = others | "CountOthers" >> beam.combiners.Count.Globally()
        negatives = others | "SampleNegatives" >> beam.Filter(
            lambda d, pos, oth: _selected(d.id, _sample_rate(pos, oth)),
            pos=beam.pvalue.AsSingleton(n_pos), oth=beam.pvalue.AsSingleton(n_other),
        )
        for name, pcoll in ((POSITIVE, positives), (NEGATIVE, negatives)):
            _ = (pcoll | f"{name.title()}Json" >> beam.Map(_to_json)
                 | f"Write{name.title()}" >> beam.io.WriteToText(out.path(name), file_name_suffix=".jsonl"))
        _ = (split["domains"] | "CountPerDomain" >> beam.combiners.Count.PerElement()
             | "DomainLines" >> beam.MapTuple(lambda d, n: f"{d}\t{n}")
             | "WriteDomains" >> beam.io.WriteToText(out.path("_by_domain"), file_name_suffix=".tsv"))
        _ = (capped | "CappedLines" >> beam.MapTuple(lambda d, n: f"{d}\t{n}")
             | "WriteCapped" >> beam.io.WriteToText(out.path("_capped"), file_name_suffix=".tsv"))
        _ = ((keyed[COUNTS], refs[COUNTS], split[COUNTS]) | "AllCounts" >> beam.Flatten()
             | "Count" >> beam.combiners.Count.PerElement() | "CountJson" >> beam.Map(json.dumps)
             | "WriteCounts" >> beam.io.WriteToText(out.path("_counts"), file_name_suffix=".jsonl"))
    report = _report(out, match, cap_spec)
    if report[POSITIVE] < min_positives:
        out.write_json("stats.json", report)
        raise TooFewPositives(_too_few(report, min_positives))
    out.finish(report)
    return report


def _read_tsv_counts(out: OutputDir, pattern: str) -> list[tuple[str, int]]:
    """(name, count) rows of the TSV shards matching ``pattern``, largest count first."""
    rows: list[tuple[str, int]] = []
    for result in FileSystems.match([out.path(pattern)]):
        for meta in result.metadata_list:
            with FileSystems.open(meta.path) as handle:
                for line in handle.read().decode("utf-8").splitlines():
                    name, n = line.rsplit("\t", 1)
                    rows.append((name, int(n)))
    return sorted(rows, key=lambda kv: (-kv[1], kv[0]))


def _report(out: OutputDir, match: str, cap_spec: str) -> dict[str, Any]:
    """Counts of the set, of the join, of the cap and of the skips, and the matches by domain (also a TSV)."""
    counts = dict(tuple(row) for row in out.read_json_lines("_counts*.jsonl"))
    by_domain = _read_tsv_counts(out, "_by_domain*.tsv")
    capped = _read_tsv_counts(out, "_capped*.tsv")
    out.write_text("matches_by_domain.tsv", "".join(f"{d}\t{n}\n" for d, n in by_domain))
    FileSystems.delete([m.path for r in FileSystems.match([out.path("_counts*"), out.path("_by_domain*"),
                                                           out.path("_capped*")])
                        for m in r.metadata_list])
    distinct, matched = counts.get("references.distinct", 0), counts.get("references.matched", 0)
    matched_documents = sum(n for _, n in by_domain)
    cap = domain_cap(cap_spec, matched_documents)
    return {
        POSITIVE: sum(1 for _ in out.read_json_lines(f"{POSITIVE}*.jsonl")),
        NEGATIVE: sum(1 for _ in out.read_json_lines(f"{NEGATIVE}*.jsonl")),
        "match": match,
        "documents": counts.get("documents.read", 0),
        "references": distinct,
        "references_matched": matched,
        "match_rate": matched / distinct if distinct else 0.0,
        "documents_matched": matched_documents,
        "max_per_domain": {"spec": cap_spec, "cap": cap},
        "capped": sum(n for _, n in capped),
        "capped_by_domain": dict(capped),
        "skipped": {k: n for k, n in sorted(counts.items()) if ".url." in k},
        "matches_by_domain": dict(by_domain[:25]),
    }


def _too_few(report: dict[str, Any], min_positives: int) -> str:
    domains = ", ".join(f"{d} {n}" for d, n in list(report["matches_by_domain"].items())[:5]) or "none"
    hint = "" if report["match"] == "domain" else ", or --match domain (any page of a cited site)"
    if report["capped"]:
        hint += (f", or raise --max-per-domain (now {report['max_per_domain']['spec']}, which dropped "
                 f"{report['capped']} matched documents)")
    found = f"only {report[POSITIVE]} of {report['documents']} documents matched"
    if report["capped"]:
        found = (f"only {report[POSITIVE]} positives are left after --max-per-domain dropped {report['capped']}: "
                 f"{report['documents_matched']} of {report['documents']} documents matched")
    return (f"{found} the {report['references']} "
            f"distinct references ({report['references_matched']} references matched; by domain: {domains}); "
            f"--min-positives is {min_positives}. Crawl more of the cited pages (the top domains are in the "
            f"references' stats.json), use more references (more dumps, wiki-references --all-links){hint}, "
            f"or lower --min-positives. The set and the report are in the output, without _SUCCESS")
