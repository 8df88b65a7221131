"""How many pages each banned-words list drops, per language, on the shared real pages.

The pages: every HTML response in ../shared/data/warc, the ScrapingHub benchmark pages and the
trafilatura evaluation set (../shared/data/html_extraction), extracted once with the default web
config's extraction (trafilatura), then labelled by the default ``langid`` settings (lid.176, texts
under 30 non-space characters left without a language). Each shipped list (the LDNOOBW lists and
refinery's short English list) is run on the pages of its language, matched as
``filters/banned_words.py`` matches: words, or substrings for CJK and Thai, which are run twice, with
every entry and with the default ``min_substring_chars`` (2). It prints, per language, the pages, the pages the
language's list would drop, and the entries behind the drops, most frequent first, so the choice of
default lists can be read off the table. The extracted texts are cached (``--cache``), as extraction
is the slow part (a few minutes on one core).

    .venv/bin/python benchmarks/banned_words_drops.py --cache /tmp/shared-pages.jsonl
"""

from __future__ import annotations

import argparse
import collections
import gzip
import io
import json
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
sys.path.insert(0, str(REPO))

def raw_pages() -> Iterator[tuple[str, str, bytes, str | None]]:
    """(collection, url, body, content type) of every shared HTML page."""
    from filters.html import html_skip_reason
    from pipeline.inputs import resolve_inputs
    from pipeline.warc_reader import iter_records

    for path in resolve_inputs([str(SHARED / "warc" / "*.warc.gz"), str(SHARED / "warc" / "*.arc")]):
        for r in iter_records(lambda p=path: open(p, "rb"), path, 5_000_000):  # noqa: SIM115 (iter_records closes it)
            ctype = (r.http_headers or {}).get("content-type")
            if html_skip_reason(r.record_type, r.http_status, ctype, r.payload) is None and r.payload:
                yield "warc", r.url, r.payload, ctype
    aeb = SHARED / "html_extraction" / "scrapinghub_article_extraction_benchmark"
    truth = json.loads((aeb / "ground-truth.json").read_text(encoding="utf-8"))
    for key in sorted(truth):
        yield "aeb", truth[key]["url"], gzip.decompress((aeb / "html" / f"{key}.html.gz").read_bytes()), "text/html"
    evaluation = SHARED / "html_extraction" / "trafilatura_eval"
    urls = {v["file"]: url for url, v in json.loads((evaluation / "evaldata.json").read_text(encoding="utf-8")).items()}
    with tarfile.open(evaluation / "trafilatura_eval_html.tar.xz", "r:xz") as tar:
        for member in tar:
            name = member.name.removeprefix("html/")
            if member.isfile() and name in urls:
                yield "trafilatura_eval", urls[name], tar.extractfile(member).read(), None


def extracted_pages(cache: Path | None) -> list[dict[str, str]]:
    """{collection, url, text} per page that yields text; read from ``cache`` when it exists."""
    if cache is not None and cache.is_file():
        return [json.loads(line) for line in cache.read_text(encoding="utf-8").splitlines()]
    from filters.html import page_text
    from pipeline.config import load_config

    options = load_config().extract
    pages = []
    for collection, url, body, ctype in raw_pages():
        text, _ = page_text(body, ctype, url, options)
        if text:
            pages.append({"collection": collection, "url": url, "text": text})
    if cache is not None:
        buffer = io.StringIO()
        for page in pages:
            buffer.write(json.dumps(page, ensure_ascii=False) + "\n")
        cache.write_text(buffer.getvalue(), encoding="utf-8")
    return pages


def measure(pages: list[dict[str, str]]) -> dict[str, dict]:
    """Per language: pages, and per list that applies to it the pages dropped and the entries matched."""
    from filters.banned_words import (
        SHIPPED_LISTS,
        SUBSTRING_LANGUAGES,
        BannedWords,
        list_language,
        shipped_lists,
    )
    from filters.document import Document
    from filters.langid import LanguageId

    lid = LanguageId(languages=())
    min_chars = BannedWords().min_substring_chars
    lists = {}
    for tag in SHIPPED_LISTS:
        if list_language(tag) in SUBSTRING_LANGUAGES:
            lists[f"{tag} (all)"] = (list_language(tag), shipped_lists((tag,), 1))
            lists[f"{tag} (>={min_chars} chars)"] = (list_language(tag), shipped_lists((tag,), min_chars))
        else:
            lists[tag] = (list_language(tag), shipped_lists((tag,)))
    table: dict[str, dict] = collections.defaultdict(lambda: {"pages": 0, "lists": {}})
    for page in pages:
        lang = lid(Document(id="", text=page["text"])).updates["lang"]
        row = table[lang or "(none)"]
        row["pages"] += 1
        for label, (language, banned) in lists.items():
            if language != list_language(lang or "en"):  # no language: checked as English, like the stage
                continue
            found = banned.matches(page["text"])
            stats = row["lists"].setdefault(label, {"dropped": 0, "entries": collections.Counter(), "urls": []})
            if found:
                stats["dropped"] += 1
                stats["entries"].update(found)
                stats["urls"].append(f"{page['url']}  {' '.join(sorted(found))}")
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--cache", type=Path, default=None, help="JSONL of extracted pages (written if missing)")
    parser.add_argument("--urls", action="store_true", help="also list the URL of every dropped page")
    args = parser.parse_args(argv)
    pages = extracted_pages(args.cache)
    table = measure(pages)
    print(f"{len(pages)} extracted pages; language by lid.176 (none: under 30 non-space characters, "
          "checked with the English lists)\n")
    print(f"{'lang':<7} {'pages':>5}  {'list':<18} {'dropped':>7} {'share':>6}  entries behind the drops")
    for lang, row in sorted(table.items(), key=lambda kv: -kv[1]["pages"]):
        if not row["lists"]:
            print(f"{lang:<7} {row['pages']:>5}  {'(no list)':<18}")
            continue
        for tag, stats in sorted(row["lists"].items()):
            top = ", ".join(f"{entry} {n}" for entry, n in stats["entries"].most_common(8))
            share = stats["dropped"] / row["pages"]
            print(f"{lang:<7} {row['pages']:>5}  {tag:<18} {stats['dropped']:>7} {share:>6.1%}  {top}")
            if args.urls:
                for url in stats["urls"]:
                    print(f"{'':<35}{url}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
