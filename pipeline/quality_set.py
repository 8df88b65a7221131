"""``refinery build-quality-set``: the LLaMA classifier's training set, built in Beam.

LLaMA's quality classifier tells pages used as references in Wikipedia from random pages
(Touvron et al. 2023, 2.1). Given our documents and a list of reference URLs, the positives are
the documents whose URL is in the list and the negatives an equally large random sample of the
rest. The reference list of a real Wikipedia dump has tens of millions of URLs, so matching is a
join (CoGroupByKey on the normalized URL), not a set in memory; sampling is a deterministic hash
of the id against a rate computed from the two counts, so a re-run picks the same pages.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from filters import Document
from pipeline.output_dir import OutputDir
from pipeline.run import pipeline_options

log = logging.getLogger(__name__)

POSITIVE, NEGATIVE = "positive", "negative"


def normalize_url(url: str) -> str:
    """The form both sides are matched in: case-folded host, no fragment, no default port or trailing slash."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return url.strip()
    host = (parts.hostname or "").lower()
    if host.startswith("www."):
        host = host[4:]
    port = parts.port if parts.port not in (None, 80, 443) else None
    netloc = f"{host}:{port}" if port else host
    path = parts.path.rstrip("/") or ""
    return urlunsplit(("", netloc, path, parts.query, ""))


def _sample_rate(positives: int, others: int) -> float:
    return 1.0 if others <= positives else positives / others


def _selected(doc_id: str, rate: float) -> bool:
    digest = int.from_bytes(hashlib.sha1(doc_id.encode("utf-8")).digest()[:8], "big")
    return digest < rate * 2**64


def _read_documents(path: str) -> Iterator[Document]:
    for batch in pq.ParquetFile(FileSystems.open(path)).iter_batches(batch_size=1024, columns=["id", "url", "text"]):
        for row in batch.to_pylist():
            yield Document(id=row["id"], url=row["url"] or "", text=row["text"])


def _split_match(element: tuple[str, dict[str, list[Any]]]):
    _, joined = element
    is_reference = bool(joined["ref"])
    for doc in joined["doc"]:
        yield beam.pvalue.TaggedOutput(POSITIVE if is_reference else "others", doc)


def _to_json(doc: Document) -> str:
    return json.dumps({"id": doc.id, "url": doc.url, "text": doc.text}, ensure_ascii=False)


def _documents_glob(spec: str) -> str:
    """A run directory stands for its kept documents; a folder for the Parquet files in it."""
    if spec.endswith(".parquet") or any(c in spec for c in "*?["):
        return spec
    documents = FileSystems.join(spec, "documents")
    return FileSystems.join(documents if FileSystems.exists(documents) else spec, "*.parquet")


def build_quality_set(references: str, inputs: Sequence[str], output: str, beam_args: Sequence[str] = ()) -> dict:
    """Write ``positive*.jsonl`` and ``negative*.jsonl`` under ``output``; returns their counts."""
    from pipeline.inputs import resolve_inputs

    out = OutputDir(output)
    files = resolve_inputs([_documents_glob(i) for i in inputs], suffixes=(".parquet",))
    if not FileSystems.exists(references):
        raise FileNotFoundError(f"{references}: reference URL list not found")
    out.prepare({"references": references, "inputs": files}, overwrite=True)
    with beam.Pipeline(options=pipeline_options(beam_args)) as p:
        docs = (p | "ListDocuments" >> beam.Create(files) | "Reshuffle" >> beam.Reshuffle()
                | "ReadDocuments" >> beam.FlatMap(_read_documents))
        refs = (p | "ReadReferences" >> beam.io.ReadFromText(references)
                | "RefKeys" >> beam.Map(lambda url: (normalize_url(url), True)))
        split = (
            {"doc": docs | "DocKeys" >> beam.Map(lambda d: (normalize_url(d.url), d)), "ref": refs}
            | "MatchUrls" >> beam.CoGroupByKey()
            | "Split" >> beam.FlatMap(_split_match).with_outputs(POSITIVE, "others")
        )
        positives, others = split[POSITIVE], split["others"]
        n_pos = positives | "CountPositives" >> beam.combiners.Count.Globally()
        n_other = others | "CountOthers" >> beam.combiners.Count.Globally()
        negatives = others | "SampleNegatives" >> beam.Filter(
            lambda d, pos, oth: _selected(d.id, _sample_rate(pos, oth)),
            pos=beam.pvalue.AsSingleton(n_pos), oth=beam.pvalue.AsSingleton(n_other),
        )
        for name, pcoll in ((POSITIVE, positives), (NEGATIVE, negatives)):
            _ = (pcoll | f"{name.title()}Json" >> beam.Map(_to_json)
                 | f"Write{name.title()}" >> beam.io.WriteToText(out.path(name), file_name_suffix=".jsonl"))
    counts = {name: sum(1 for _ in out.read_json_lines(f"{name}*.jsonl")) for name in (POSITIVE, NEGATIVE)}
    out.finish(counts)
    if counts[POSITIVE] == 0:
        log.warning("no document URL matched the reference list; check that the lists use the same URLs")
    return counts
