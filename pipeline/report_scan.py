"""One streaming pass over a run's kept and dropped documents: tokens, lengths, domains, samples.

Everything the report says per document comes from here, so the texts are read once and never held
whole: each record batch is encoded (when a tokenizer is known) and folded into counters. Tokens are
counted as the shards count them: the pieces plus the separators a shard writes per document (EOS,
and BOS when the tokenizer has one), and an empty text counts 0, as Tokenize skips it.

The tokenizer is the run's own (``shards/tokenizer.model``) or, for a curated run that was tokenized
as a second run, that run's: so the drops of curation get tokens too, and the overview can say where
the tokens were lost.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import sentencepiece as spm
from tqdm import tqdm

from pipeline.run_stats import DOCUMENTS_DIR, REJECTS_DIR, RunStats

SAMPLE_CHARS = 1500
KEPT_SAMPLES_PER_REASON = 3  # kept documents shown per run, as a multiple of --samples
NO_DOMAIN = "(no url)"
TOP_DOMAINS = 15


def domain(url: str | None) -> str:
    """The host of ``url`` without a leading ``www.``; documents without a URL share one bucket."""
    if not url:
        return NO_DOMAIN
    host = urlsplit(url).hostname or ""
    return (host.removeprefix("www.")) or NO_DOMAIN


def cut(text: str | None) -> str:
    text = text or ""
    return text if len(text) <= SAMPLE_CHARS else text[:SAMPLE_CHARS] + " …"


@dataclass
class Scan:
    """What one pass found; ``tokens`` fields are None when no tokenizer was known."""

    kept_lengths: list[int] = field(default_factory=list)
    reason_tokens: dict[tuple[str, str], int] | None = None
    domains: dict[str, dict[str, Counter]] = field(default_factory=lambda: {"kept": Counter(), "dropped": Counter()})
    domain_tokens: dict[str, Counter] = field(default_factory=lambda: {"kept": Counter(), "dropped": Counter()})
    kept_samples: list[dict[str, Any]] = field(default_factory=list)
    rejected_samples: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    kept_tokens: int | None = None

    def top_domains(self, n: int = TOP_DOMAINS) -> list[dict[str, Any]]:
        """The ``n`` domains with the most documents, kept and dropped together."""
        both = self.domains["kept"] + self.domains["dropped"]
        return [{"domain": d, "kept": self.domains["kept"][d], "dropped": self.domains["dropped"][d],
                 "kept_tokens": self.domain_tokens["kept"][d] if self.kept_tokens is not None else None,
                 "dropped_tokens": self.domain_tokens["dropped"][d] if self.reason_tokens is not None else None}
                for d, _ in both.most_common(n)]


class _Counter:
    """Tokens per text with the shards' separators; a no-op without a tokenizer."""

    def __init__(self, tokenizer: Path | None, bos: bool) -> None:
        self.processor = spm.SentencePieceProcessor(model_file=str(tokenizer)) if tokenizer else None
        self.separators = 1 + bos

    def __call__(self, texts: list[str]) -> list[int] | None:
        if self.processor is None:
            return None
        return [len(ids) + self.separators if ids else 0 for ids in self.processor.encode(texts)]


def scan_run(run: RunStats, tokenizer: Path | None, bos: bool, samples_per_reason: int) -> Scan:
    """Stream documents/ and rejects/ once each; see the module docstring."""
    scan = Scan()
    count = _Counter(tokenizer, bos)
    source = run.stats.get("run", {}).get("source") or run.path.name
    fields = ["id", "url", "lang", "quality_score", "text"]
    kept_tokens = 0
    for batch in run.batches(DOCUMENTS_DIR, fields):
        rows = batch.to_pylist()
        tokens = count([r.get("text") or "" for r in rows])
        for i, row in enumerate(rows):
            host = domain(row.get("url"))
            scan.domains["kept"][host] += 1
            if tokens is not None:
                scan.kept_lengths.append(tokens[i])
                scan.domain_tokens["kept"][host] += tokens[i]
                kept_tokens += tokens[i]
            if len(scan.kept_samples) < samples_per_reason * KEPT_SAMPLES_PER_REASON:
                scan.kept_samples.append(_sample(row, source, "kept", host, tokens[i] if tokens else None))
    scan.kept_tokens = kept_tokens if count.processor else None
    reason_tokens: dict[tuple[str, str], int] = defaultdict(int)
    batches = run.batches(REJECTS_DIR, ["stage", "reason", *fields])
    for batch in tqdm(batches, desc=f"rejects of {run.path.name}", unit="batch", leave=False):
        rows = batch.to_pylist()
        tokens = count([r.get("text") or "" for r in rows])
        for i, row in enumerate(rows):
            host = domain(row.get("url"))
            scan.domains["dropped"][host] += 1
            if tokens is not None:
                reason_tokens[(row["stage"], row["reason"])] += tokens[i]
                scan.domain_tokens["dropped"][host] += tokens[i]
            key = f"{row['stage']} / {row['reason']}"
            if len(scan.rejected_samples[key]) < samples_per_reason:
                scan.rejected_samples[key].append(_sample(row, source, row["reason"], host,
                                                          tokens[i] if tokens else None))
    scan.reason_tokens = dict(reason_tokens) if count.processor and run.has_rejects else None
    return scan


def _sample(row: dict[str, Any], source: str, reason: str, host: str, tokens: int | None) -> dict[str, Any]:
    return {"id": row.get("id"), "url": row.get("url"), "lang": row.get("lang"),
            "quality_score": row.get("quality_score"), "source": source, "reason": reason, "domain": host,
            "tokens": tokens, "text": cut(row.get("text"))}


def length_summary(lengths: list[int]) -> dict[str, Any] | None:
    """Quantiles and a log-spaced histogram of document lengths in tokens (fitted to the data)."""
    values = np.asarray([v for v in lengths if v > 0], dtype=float)
    if not values.size:
        return None
    low, high = float(values.min()), float(values.max())
    edges = np.geomspace(low, high * 1.0001, 16) if high > low else np.array([low, low + 1.0])
    counts, _ = np.histogram(values, bins=edges)
    quantiles = {f"p{q}": float(np.percentile(values, q)) for q in (10, 50, 90)}
    return {"documents": int(values.size), "min": low, "max": high, "mean": float(values.mean()), **quantiles,
            "edges": edges.tolist(), "counts": counts.tolist()}
