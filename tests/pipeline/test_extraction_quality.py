"""The extraction gate: mean token-level F1 against the ScrapingHub benchmark's gold article bodies."""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter

import pytest

from filters.html import ExtractOptions, page_text
from tests.conftest import SHARED_DATA

pytestmark = pytest.mark.integration

AEB = SHARED_DATA / "html_extraction" / "scrapinghub_article_extraction_benchmark"
_TOKEN = re.compile(r"\w+", re.UNICODE)


def token_f1(predicted: str, gold: str) -> float:
    """Bag-of-tokens F1, as the benchmark's own evaluation scores an article body."""
    pred, truth = Counter(_TOKEN.findall(predicted.lower())), Counter(_TOKEN.findall(gold.lower()))
    overlap = sum((pred & truth).values())
    if not pred or not truth or not overlap:
        return float(not pred and not truth)
    precision, recall = overlap / sum(pred.values()), overlap / sum(truth.values())
    return 2 * precision * recall / (precision + recall)


def test_token_f1_helper() -> None:
    assert token_f1("a b c", "a b c") == 1.0
    assert token_f1("", "a") == 0.0
    assert token_f1("a b", "a c") == pytest.approx(0.5)


def test_mean_token_f1_on_aeb_is_at_least_090() -> None:
    truth = json.loads((AEB / "ground-truth.json").read_text())
    assert len(truth) == 181
    scores = []
    for key, gold in sorted(truth.items()):
        html = gzip.decompress((AEB / "html" / f"{key}.html.gz").read_bytes())
        text, _ = page_text(html, "text/html", gold["url"], ExtractOptions())
        scores.append(token_f1(text, gold["articleBody"]))
    mean = sum(scores) / len(scores)
    print(f"AEB mean token F1 over {len(scores)} pages: {mean:.3f}")
    assert mean >= 0.90
