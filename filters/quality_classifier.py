"""The LLaMA quality classifier: a fastText linear model, "reference-like" pages vs random pages.

LLaMA (Touvron et al. 2023, sec. 2.1) trained "a linear model to classify pages used as references
in Wikipedia v.s. randomly sampled pages, and discarded pages not classified as references".
Here positives and negatives are whatever texts the caller supplies (Wikipedia, books and pages
they cite; random crawl pages), the model is fastText supervised (bag of words + bigrams), and
the score of a document is the model's probability of the positive label.

Texts go through :func:`normalize_text` both when training and when scoring, so the model never
sees a form at prediction time that it did not see in training.
"""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

import fasttext
import numpy as np

from filters.document import Document
from filters.fasttext_model import evict_cached_model, load_fasttext_model, model_labels, to_single_line
from filters.verdict import Verdict

POSITIVE_LABEL = "__label__positive"
NEGATIVE_LABEL = "__label__negative"

DEFAULT_MAX_CHARS = 10_000
"""Only the head of a document is classified: a bag-of-words average over the first ~1,500 words
is stable, and it bounds the cost of a multi-megabyte page. Train and predict share it."""


def normalize_text(text: str, max_chars: int = DEFAULT_MAX_CHARS) -> str:
    """Lowercase, whitespace runs (newlines included) to one space, cut at a word near ``max_chars``.

    Lowercasing merges sentence-initial and inner forms of a word, which a small training set
    cannot afford to learn twice; the cut backs off to the last space so no half word is made up.
    """
    line = to_single_line(text).lower()
    if len(line) > max_chars:
        cut = line.rfind(" ", 0, max_chars + 1)
        line = line[: cut if cut > 0 else max_chars]
    return line


@dataclass(frozen=True)
class QualityReport:
    """What a training run produced and how well it separates the held-out texts.

    ``precision`` and ``recall`` are for the positive class at ``threshold``; ``auc`` is the
    rank-based ROC AUC of the positive-label probability. A metric that is undefined on the
    held-out set (no held-out texts, or none predicted positive) is NaN.
    """

    model_path: str
    n_train_positive: int
    n_train_negative: int
    n_holdout_positive: int
    n_holdout_negative: int
    n_skipped_empty: int
    n_dropped_for_balance: int
    threshold: float
    precision: float
    recall: float
    auc: float
    train_seconds: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def train_quality_classifier(
    positives: Iterable[str],
    negatives: Iterable[str],
    output: Path,
    *,
    seed: int = 0,
    epoch: int = 10,
    lr: float = 0.1,
    word_ngrams: int = 2,
    dim: int = 64,
    bucket: int = 200_000,
    min_count: int = 1,
    holdout_fraction: float = 0.1,
    balance: bool = True,
    threshold: float = 0.5,
    max_chars: int = DEFAULT_MAX_CHARS,
) -> QualityReport:
    """Train the classifier, write it to ``output`` and score it on a stratified held-out split.

    Deterministic for a given ``seed`` whatever order the texts arrive in (a Beam job's output
    files and lines come in no fixed order, and the split used to follow it: the shared-data AUC
    moved by 0.13 between two runs of the same set): the texts are sorted first, then the split,
    the balancing and the line order come from a seeded RNG, and fastText trains with ``thread=1`` (with several threads its lock-free SGD
    updates interleave differently on each run) in a fresh process (see :func:`_train_in_child`).
    ``balance`` downsamples the larger class to the size of the smaller one, so the 0.5 threshold
    is not shifted by the class prior. ``word_ngrams=2`` adds word bigrams, the setting of
    fastText's classification paper (Joulin et al. 2017, Table 1); LLaMA gives no
    hyper-parameters. ``bucket`` is the hashed n-gram table: the model file takes about
    ``4 * dim * (bucket + vocabulary)`` bytes (51 MB at the defaults, 6 MB at dim 16 / 50k).
    All texts are held in memory (normalized and cut to ``max_chars``): a training set is a sample.
    """
    if not 0.0 <= holdout_fraction < 1.0:
        raise ValueError(f"holdout_fraction must be in [0, 1), got {holdout_fraction}")
    rng = random.Random(seed)
    pos, pos_empty = _normalized(positives, max_chars)
    neg, neg_empty = _normalized(negatives, max_chars)
    if len(pos) < 2 or len(neg) < 2:
        raise ValueError(
            f"need at least 2 non-empty positive and 2 negative texts, got {len(pos)} and {len(neg)}"
        )
    dropped = 0
    if balance:
        size = min(len(pos), len(neg))
        dropped = len(pos) + len(neg) - 2 * size
        pos, neg = rng.sample(pos, size), rng.sample(neg, size)
    pos_train, pos_test = _split(pos, holdout_fraction, rng)
    neg_train, neg_test = _split(neg, holdout_fraction, rng)
    lines = [f"{POSITIVE_LABEL} {t}\n" for t in pos_train] + [f"{NEGATIVE_LABEL} {t}\n" for t in neg_train]
    rng.shuffle(lines)  # fastText reads the file in order; class-sorted input would skew SGD

    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    params = {
        "lr": lr,
        "epoch": epoch,
        "wordNgrams": word_ngrams,
        "dim": dim,
        "bucket": bucket,
        "minCount": min_count,
        "loss": "softmax",
        "thread": 1,
        "seed": seed,
        "verbose": 0,
    }
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="quality_train_") as tmp:
        train_file = Path(tmp) / "train.txt"
        train_file.write_text("".join(lines), encoding="utf-8")
        _train_in_child(train_file, output, params)
    seconds = time.perf_counter() - started
    evict_cached_model(output)  # a filter in this process must not keep serving an older file
    model = fasttext.load_model(str(output))

    scores = [positive_probability(model, t, POSITIVE_LABEL) for t in pos_test + neg_test]
    labels = [True] * len(pos_test) + [False] * len(neg_test)
    precision, recall = precision_recall(scores, labels, threshold)
    return QualityReport(
        model_path=str(output),
        n_train_positive=len(pos_train),
        n_train_negative=len(neg_train),
        n_holdout_positive=len(pos_test),
        n_holdout_negative=len(neg_test),
        n_skipped_empty=pos_empty + neg_empty,
        n_dropped_for_balance=dropped,
        threshold=threshold,
        precision=precision,
        recall=recall,
        auc=rank_auc(scores, labels),
        train_seconds=seconds,
    )


_CHILD_PROGRAM = """
import json, sys
import fasttext
job = json.loads(sys.stdin.read())
model = fasttext.train_supervised(input=job["input"], **job["params"])
model.save_model(job["output"])
"""

_CHILD_MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "16384"}


def _train_in_child(train_file: Path, output: Path, params: dict[str, Any]) -> None:
    """Run ``fasttext.train_supervised`` in a fresh interpreter; raise with its stderr on failure.

    Why a child process: the numpy-2 fastText build we use (``fasttext-numpy2-wheel``, fastText
    after 0.9.2) allocates the input embedding matrix without zeroing it, and its random init
    with ``thread=1`` fills only the first tenth of the rows (valgrind: uninitialised reads in
    ``SoftmaxLoss::computeOutput`` from ``FastText::createRandomMatrix``). The other rows are
    whatever the heap held: in a long-lived process, training gave different models for the same
    seed and sometimes failed with "Encountered NaN". A fresh process whose large allocations are
    forced onto new mmap pages (glibc ``MALLOC_MMAP_THRESHOLD_``) gets those rows as zeros, every
    time, so training is reproducible; a fastText abort also cannot take the caller down.
    """
    job = json.dumps({"input": str(train_file), "output": str(output), "params": params})
    env = {**os.environ, **_CHILD_MALLOC_ENV}
    result = subprocess.run(
        [sys.executable, "-c", _CHILD_PROGRAM], input=job, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0 or not output.is_file():
        tail = "\n".join(result.stderr.strip().splitlines()[-5:])
        raise RuntimeError(f"fastText training failed (exit code {result.returncode}): {tail}")


def positive_probability(model: fasttext.FastText._FastText, normalized: str, positive_label: str) -> float:
    """The model's probability of ``positive_label`` for an already normalized text."""
    labels, probs = model.predict(normalized, k=-1)
    for label, prob in zip(labels, probs, strict=True):
        if label == positive_label:
            return min(float(prob), 1.0)
    return 0.0  # fastText omits labels whose probability underflows to zero


def rank_auc(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """ROC AUC as the Mann-Whitney statistic: P(score of a positive > score of a negative).

    Tied scores get their average rank, so a tie counts one half. NaN without both classes.
    """
    if len(scores) != len(labels):
        raise ValueError(f"{len(scores)} scores but {len(labels)} labels")
    y = np.asarray(labels, dtype=bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return math.nan
    values = np.asarray(scores, dtype=np.float64)
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    # average 1-based rank of each distinct value: ranks before it + (count + 1) / 2
    starts = np.cumsum(counts) - counts
    average_rank = starts + (counts + 1) / 2.0
    pos_rank_sum = float(average_rank[inverse][y].sum())
    return (pos_rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def precision_recall(scores: Sequence[float], labels: Sequence[bool], threshold: float) -> tuple[float, float]:
    """Precision and recall of "score >= threshold" for the positive class (NaN when undefined)."""
    predicted = [s >= threshold for s in scores]
    true_pos = sum(p and y for p, y in zip(predicted, labels, strict=True))
    n_predicted, n_actual = sum(predicted), sum(bool(y) for y in labels)
    precision = true_pos / n_predicted if n_predicted else math.nan
    recall = true_pos / n_actual if n_actual else math.nan
    return precision, recall


@dataclass(frozen=True)
class QualityClassifier:
    """Keep documents the trained classifier scores as reference-like; records ``quality_score``.

    Holds only configuration, so pickling it (Beam ships filters to workers) stays small; the
    model is loaded on the first call, or by :meth:`setup`, and cached per path in the process.
    """

    name: ClassVar[str] = "quality_classifier"

    model_path: str
    min_score: float = 0.5
    """Minimum positive-label probability. 0.5 is LLaMA's rule, "discarded pages not classified
    as references" (Touvron et al. 2023, sec. 2.1): with two labels, classified = p >= 0.5. DCLM
    instead keeps the top 10% by score (Li et al. 2024, model-based filtering), a per-corpus cut."""
    positive_label: str = POSITIVE_LABEL
    """The label whose probability is the score. A foreign model (DCLM's uses ``__label__hq``) also
    expects its own preprocessing; this module lowercases, so it fits the models trained here."""
    max_chars: int = DEFAULT_MAX_CHARS
    """Must equal the ``max_chars`` the model was trained with."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_score <= 1.0:
            raise ValueError(f"min_score must be in [0, 1], got {self.min_score}")
        if self.max_chars < 1:
            raise ValueError(f"max_chars must be >= 1, got {self.max_chars}")

    def setup(self) -> None:
        """Load the model now and check it has ``positive_label`` (for ``DoFn.setup``)."""
        _check_positive_label(self.model_path, self.positive_label)

    def score(self, text: str) -> float | None:
        """Positive-label probability of ``text``; None when nothing is left after normalizing."""
        normalized = normalize_text(text, self.max_chars)
        if not normalized:
            return None
        self.setup()
        return positive_probability(load_fasttext_model(self.model_path), normalized, self.positive_label)

    def __call__(self, doc: Document) -> Verdict:
        score = self.score(doc.text)
        if score is None:
            return Verdict.drop(f"{self.name}.empty_text", quality_score=None)
        if score < self.min_score:
            return Verdict.drop(f"{self.name}.low_score", quality_score=score)
        return Verdict.keep_with(quality_score=score)


@lru_cache(maxsize=64)
def _check_positive_label(model_path: str, positive_label: str) -> None:
    """Fail on a label the model lacks: every score would be 0 and every document dropped."""
    labels = model_labels(load_fasttext_model(model_path))
    if positive_label.removeprefix("__label__") not in labels:
        raise ValueError(
            f"quality_classifier: {model_path} has no label {positive_label!r} (its labels: {sorted(labels)})"
        )


def _normalized(texts: Iterable[str], max_chars: int) -> tuple[list[str], int]:
    """The non-empty normalized texts, sorted (so that their arrival order cannot matter), and how
    many were empty."""
    kept, empty = [], 0
    for text in texts:
        line = normalize_text(text, max_chars)
        if line:
            kept.append(line)
        else:
            empty += 1
    return sorted(kept), empty


def _split(items: list[str], fraction: float, rng: random.Random) -> tuple[list[str], list[str]]:
    """(train, holdout): a shuffled copy cut so at least one item stays on each side."""
    shuffled = items[:]
    rng.shuffle(shuffled)
    n_holdout = min(len(shuffled) - 1, math.ceil(fraction * len(shuffled))) if fraction > 0 else 0
    return shuffled[n_holdout:], shuffled[:n_holdout]
