"""``refinery wiki-references``: the URLs Wikipedia cites, from a MediaWiki dump, in Beam.

LLaMA's quality classifier is trained on "pages used as references in Wikipedia" (Touvron et al.
2023, 2.1); this job makes that list, for ``build-quality-set`` to join against a crawl. The dump
is read by the Wikipedia source's own parser (pipeline/sources/wikipedia.py: bz2 streamed,
one page in memory, articles only, redirects skipped), the articles are spread over workers by a
Reshuffle, and each is parsed for its citations (filters/wiki_citations.py). URLs are normalized
by filters.urls, so the list is deduplicated in the form the join will use.

Output directory::

    urls-*.txt | urls-*.parquet   one line / row per distinct cited page (Parquet: url, key,
                                  domain, articles citing it, kinds of citation)
    domains-*.tsv                 domain, distinct URLs, citing articles
    stats.json                    what was read, found and skipped, by reason; the top domains
    _SUCCESS                      written last

Skips are counted, never silent: ``wikipedia.not_article``, ``wikipedia.redirect``,
``wikipedia.no_text``, ``wiki_references.unparseable`` (mwparserfromhell gave up), and per URL
``url.empty``/``url.not_http``/``url.bad_host`` (a ``{{Google books}}`` template in ``url=``,
``mailto:``). A dump that breaks midway keeps the pages read before the break, is counted as
``dump.broken`` and makes the command exit 1 without ``_SUCCESS``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterator, Sequence
from typing import Any
from xml.etree.ElementTree import ParseError

import apache_beam as beam
import pyarrow as pa

from filters.urls import UnusableUrl, key_domain, match_key
from filters.wiki_citations import UnparseableWikitext, cited_urls
from pipeline.sources.source_reader import Reject, Skip
from pipeline.sources.wikipedia import ParseDump, WikipediaOptions

log = logging.getLogger(__name__)

COUNTS = "counts"
DUMP_SUFFIXES = (".xml", ".xml.bz2", ".bz2", ".xml.gz", ".xml.xz")
FORMATS = ("text", "parquet")
TOP_DOMAINS = 25
URL_SCHEMA = pa.schema([("url", pa.string()), ("key", pa.string()), ("domain", pa.string()),
                        ("articles", pa.int64()), ("kinds", pa.string())])


class ReferencesFailed(RuntimeError):
    """Outputs were written, but a dump broke: the list is incomplete and gets no _SUCCESS."""


class ReadArticles(beam.DoFn):
    """A dump path -> (article id, wikitext) per article; every other page is a counted skip."""

    def process(self, path: str) -> Iterator[Any]:
        parse = ParseDump("wikipedia", WikipediaOptions())
        try:
            for record in parse(path):
                if isinstance(record, (Skip, Reject)):
                    yield beam.pvalue.TaggedOutput(COUNTS, f"pages.{record.reason}")
                    continue
                doc, _ = record
                yield beam.pvalue.TaggedOutput(COUNTS, "pages.articles")
                yield doc.id, doc.text
        except (ParseError, OSError, EOFError) as exc:  # a truncated bz2 or broken XML: keep what was read
            log.warning("%s: dump broke midway: %s", path, exc)
            yield beam.pvalue.TaggedOutput(COUNTS, "dump.broken")


class CiteUrls(beam.DoFn):
    """(article id, wikitext) -> (match key, (url as written, kind)) per distinct cited page."""

    def __init__(self, all_links: bool) -> None:
        self.all_links = all_links

    def process(self, article: tuple[str, str]) -> Iterator[Any]:
        article_id, wikitext = article
        try:
            citations = cited_urls(wikitext, all_links=self.all_links)
        except UnparseableWikitext as exc:
            log.warning("%s: %s", article_id, exc)
            yield beam.pvalue.TaggedOutput(COUNTS, "wiki_references.unparseable")
            return
        seen: set[str] = set()
        for citation in citations:
            yield beam.pvalue.TaggedOutput(COUNTS, f"citations.{citation.kind}")
            try:
                key = match_key(citation.url)
            except UnusableUrl as refused:
                yield beam.pvalue.TaggedOutput(COUNTS, f"skipped.{refused.reason}")
                continue
            if key not in seen:  # two spellings of one page in one article cite it once
                seen.add(key)
                yield key, (citation.url, citation.kind)


class MergeCitations(beam.CombineFn):
    """One cited page: a representative URL (the smallest spelling), citing articles, kinds."""

    def create_accumulator(self) -> tuple[str | None, int, frozenset[str]]:
        return None, 0, frozenset()

    def add_input(self, acc, element: tuple[str, str]):
        url, kind = element
        return (url if acc[0] is None else min(acc[0], url)), acc[1] + 1, acc[2] | {kind}

    def merge_accumulators(self, accumulators):
        urls = [a[0] for a in accumulators if a[0] is not None]
        return (min(urls) if urls else None, sum(a[1] for a in accumulators),
                frozenset().union(*(a[2] for a in accumulators)))

    def extract_output(self, acc) -> dict[str, Any]:
        return {"url": acc[0], "articles": acc[1], "kinds": ",".join(sorted(acc[2]))}


def _row(element: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    key, merged = element
    return {"url": merged["url"], "key": key, "domain": key_domain(key), "articles": merged["articles"],
            "kinds": merged["kinds"]}


def _sum_pairs(pairs) -> tuple[int, int]:
    pairs = list(pairs)
    return sum(p[0] for p in pairs), sum(p[1] for p in pairs)


def wiki_references(inputs: Sequence[str], output: str, *, all_links: bool = False, fmt: str = "text",
                    overwrite: bool = False, beam_args: Sequence[str] = ()) -> dict[str, Any]:
    """Write the cited-URL list of the dumps under ``output``; returns the stats (also stats.json)."""
    from pipeline.inputs import resolve_inputs
    from pipeline.output_dir import OutputDir
    from pipeline.run import pipeline_options

    if fmt not in FORMATS:
        raise ValueError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    dumps = resolve_inputs(list(inputs), suffixes=DUMP_SUFFIXES)
    out = OutputDir(output)
    with out.claimed():
        out.prepare({"command": "wiki-references", "inputs": dumps, "all_links": all_links, "format": fmt},
                    overwrite=overwrite)
        with beam.Pipeline(options=pipeline_options(beam_args)) as p:
            read = (p | "ListDumps" >> beam.Create(dumps)
                    | "ReadArticles" >> beam.ParDo(ReadArticles()).with_outputs(COUNTS, main="articles"))
            cited = (read.articles | "Reshuffle" >> beam.Reshuffle()
                     | "CiteUrls" >> beam.ParDo(CiteUrls(all_links)).with_outputs(COUNTS, main="urls"))
            rows = (cited.urls | "MergePerUrl" >> beam.CombinePerKey(MergeCitations())
                    | "UrlRows" >> beam.Map(_row))
            if fmt == "parquet":
                _ = rows | "WriteParquet" >> beam.io.WriteToParquet(out.path("urls"), URL_SCHEMA,
                                                                    file_name_suffix=".parquet")
            else:
                _ = (rows | "UrlLines" >> beam.Map(lambda r: r["url"])
                     | "WriteText" >> beam.io.WriteToText(out.path("urls"), file_name_suffix=".txt"))
            domains = (rows | "DomainPairs" >> beam.Map(lambda r: (r["domain"], (1, r["articles"])))
                       | "CountPerDomain" >> beam.CombinePerKey(_sum_pairs))
            _ = (domains | "DomainLines" >> beam.MapTuple(lambda d, n: f"{d}\t{n[0]}\t{n[1]}")
                 | "WriteDomains" >> beam.io.WriteToText(out.path("domains"), file_name_suffix=".tsv"))
            _ = (domains | "TopDomains" >> beam.combiners.Top.Of(TOP_DOMAINS, key=lambda kv: (kv[1][0], kv[0]))
                 | "TopJson" >> beam.Map(lambda top: json.dumps([[d, n[0], n[1]] for d, n in top]))
                 | "WriteTop" >> beam.io.WriteToText(out.path("_top_domains"), shard_name_template=""))
            _ = (
                (rows | "OneUrl" >> beam.Map(lambda _: "urls.distinct"),
                 domains | "OneDomain" >> beam.Map(lambda _: "domains.distinct"),
                 read[COUNTS], cited[COUNTS])
                | "AllCounts" >> beam.Flatten() | "Count" >> beam.combiners.Count.PerElement()
                | "CountJson" >> beam.Map(json.dumps)
                | "WriteCounts" >> beam.io.WriteToText(out.path("_counts"), file_name_suffix=".jsonl")
            )
        stats = _stats(out, len(dumps))
        if stats["counts"].get("dump.broken"):
            out.write_json("stats.json", stats)
            raise ReferencesFailed(f"{stats['counts']['dump.broken']} of {len(dumps)} dump(s) broke midway; "
                                   f"the pages read before each break are in {output} (no _SUCCESS)")
        out.finish(stats)
    return stats


def _stats(out: Any, dumps: int) -> dict[str, Any]:
    from apache_beam.io.filesystems import FileSystems

    counts = dict(sorted(tuple(row) for row in _json_lines(out, "_counts*.jsonl")))
    with FileSystems.open(out.path("_top_domains")) as handle:
        lines = handle.read().decode("utf-8").split("\n")
    top = json.loads(lines[0]) if lines and lines[0] else []
    FileSystems.delete([m.path for r in FileSystems.match([out.path("_counts*"), out.path("_top_domains")])
                        for m in r.metadata_list])
    return {"dumps": dumps, "counts": counts,
            "top_domains": [{"domain": d, "urls": u, "articles": a} for d, u, a in top]}


def _json_lines(out: Any, pattern: str) -> Iterator[Any]:
    from apache_beam.io.filesystems import FileSystems

    for result in FileSystems.match([out.path(pattern)]):
        for meta in result.metadata_list:
            with FileSystems.open(meta.path) as handle:
                for line in handle.read().decode("utf-8").splitlines():
                    if line.strip():
                        yield json.loads(line)


def main(argv: Sequence[str] | None = None) -> int:
    """``refinery wiki-references``: 0 written, 1 a dump broke (partial list, no _SUCCESS), 2 bad input."""
    from pipeline.cli import refuse_abbreviations

    parser = argparse.ArgumentParser(
        prog="refinery wiki-references", allow_abbrev=False,
        description="The URLs cited in Wikipedia articles (LLaMA's quality-classifier positives), from a "
                    "MediaWiki XML dump: normalized, deduplicated, with per-domain counts.",
        epilog="Any other --flags are passed to Beam as pipeline options.")
    parser.add_argument("--input", nargs="+", required=True, metavar="DUMP",
                        help="pages-articles*.xml[.bz2] files, globs or folders")
    parser.add_argument("--output", required=True, help="output directory")
    parser.add_argument("--all-links", action="store_true",
                        help="every external link of an article, not only those in references and citations")
    parser.add_argument("--format", choices=FORMATS, default="text", help="urls-*.txt or urls-*.parquet")
    parser.add_argument("--overwrite", action="store_true", help="replace a complete output")
    args, beam_args = parser.parse_known_args(argv)
    refuse_abbreviations(parser, beam_args)
    from pipeline.inputs import InputError
    from pipeline.output_dir import OutputDirError

    try:
        stats = wiki_references(args.input, args.output, all_links=args.all_links, fmt=args.format,
                                overwrite=args.overwrite, beam_args=beam_args)
    except (InputError, OutputDirError, FileNotFoundError, ValueError) as exc:
        print(f"refinery wiki-references: error: {exc}", file=sys.stderr)
        return 2
    except ReferencesFailed as exc:
        print(f"refinery wiki-references: run failed: {exc}", file=sys.stderr)
        return 1
    counts = stats["counts"]
    skipped = sum(n for k, n in counts.items() if k.startswith("skipped."))
    print(f"{counts.get('pages.articles', 0)} articles -> {counts.get('urls.distinct', 0)} distinct cited URLs "
          f"on {counts.get('domains.distinct', 0)} domains ({skipped} citations skipped); {args.output}/stats.json")
    for row in stats["top_domains"][:10]:
        print(f"  {row['domain']:<32} {row['urls']:>7} URLs  {row['articles']:>7} citations")
    return 0
