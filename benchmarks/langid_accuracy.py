"""Per-language accuracy of the LanguageId step on lingua-py's gold test set, and its throughput.

Data: ../shared/data/langid/lingua_testdata/{sentences,word-pairs,single-words}/<iso639-1>.txt.gz,
one sample per line, gold label = file name (75 languages, ~1,000 samples each). Accuracy is
top-1: the model's best label equals the gold label after mapping lingua's codes to the model's.

Run:  .venv/bin/python benchmarks/langid_accuracy.py [--model PATH] [--limit N]

Label mapping (checked against lid.176's 176 labels): lingua's Norwegian Bokmål ``nb`` is
``no`` in lid.176 (which has ``no`` and ``nn``, no ``nb``); every other lingua code is used as
is. Eight lingua languages have no lid.176 label (lg mi sn st tn ts xh zu): they are listed
but left out of the "supported" macro. lid.176 also has ``sh`` (Serbo-Croatian) beside bs/hr/sr;
a ``sh`` answer for Bosnian counts as wrong here, which is why bs scores low.
"""

from __future__ import annotations

import argparse
import gzip
import platform
import time
from pathlib import Path

from filters.document import Document
from filters.fasttext_model import load_fasttext_model, model_labels
from filters.langid import LanguageId, predict_languages, resolve_lid_model_path

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "langid" / "lingua_testdata"
KINDS = ("sentences", "word-pairs", "single-words")
TOP20 = "en de fr es it pt nl ru pl ja zh ar tr sv cs ko vi id fa uk".split()
LINGUA_TO_MODEL = {"nb": "no"}  # lid.176 labels Bokmål as "no"


def read_samples(kind: str, lang: str, limit: int | None = None) -> list[str]:
    path = DATA / kind / f"{lang}.txt.gz"
    if not path.is_file():
        return []
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        samples = [line.strip() for line in handle if line.strip()]
    return samples[:limit] if limit else samples


def accuracy(samples: list[str], gold: str, model_path: str | None) -> float | None:
    if not samples:
        return None
    predicted = predict_languages(samples, model_path)
    return sum(label == gold for label, _ in predicted) / len(samples)


def macro(table: dict[str, dict[str, float | None]], langs: list[str], kind: str) -> float:
    values = [table[lang][kind] for lang in langs if table[lang][kind] is not None]
    return sum(values) / len(values)


def throughput(
    model_path: str | None, doc_chars: int = 5_000, seconds: float = 3.0
) -> tuple[float, float, int]:
    """LanguageId (docs per wall second, docs per CPU second) on ~5 KB multilingual documents.

    CPU time is reported beside wall time because the benchmark machines are shared: the CPU
    figure is the single-core rate without the noise of other processes.
    """
    pool = [s for lang in TOP20 for s in read_samples("sentences", lang, 300)]
    docs, current = [], []
    for sentence in pool:
        current.append(sentence)
        if sum(len(s) + 1 for s in current) >= doc_chars:
            docs.append(Document(id=str(len(docs)), text="\n".join(current)))
            current = []
    flt = LanguageId(languages=("en",), model_path=model_path)
    for doc in docs[:50]:  # burn-in: model load, caches
        flt(doc)
    done, started, cpu_started = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - started < seconds:
        for doc in docs:
            flt(doc)
        done += len(docs)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    return done / wall, done / cpu, len(docs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="fastText LID model (default: packaged lid.176.ftz)")
    parser.add_argument("--limit", type=int, default=None, help="samples per language and kind")
    args = parser.parse_args()

    model_file = resolve_lid_model_path(args.model)
    labels = model_labels(load_fasttext_model(model_file))
    langs = sorted(p.name.removesuffix(".txt.gz") for p in (DATA / "sentences").glob("*.txt.gz"))
    if not langs:
        raise SystemExit(f"no lingua test data under {DATA}")

    table: dict[str, dict[str, float | None]] = {}
    started = time.perf_counter()
    print(f"{'lang':<6}{'model':<7}{'sentences':>10}{'word-pairs':>12}{'single-words':>14}")
    for lang in langs:
        gold = LINGUA_TO_MODEL.get(lang, lang)
        table[lang] = {kind: accuracy(read_samples(kind, lang, args.limit), gold, args.model) for kind in KINDS}
        cells = "".join(
            f"{'-' if table[lang][k] is None else format(table[lang][k], '.3f'):>{w}}"
            for k, w in zip(KINDS, (10, 12, 14), strict=True)
        )
        print(f"{lang:<6}{gold if gold in labels else '(none)':<7}{cells}")
    elapsed = time.perf_counter() - started

    supported = [lang for lang in langs if LINGUA_TO_MODEL.get(lang, lang) in labels]
    print()
    for title, group in (("macro, 20 languages", TOP20), (f"macro, {len(supported)} supported", supported)):
        cells = "".join(f"{macro(table, group, k):>{w}.3f}" for k, w in zip(KINDS, (10, 12, 14), strict=True))
        print(f"{title:<22}{cells}")
    unsupported = sorted(set(langs) - set(supported))
    print(f"not in the model: {' '.join(unsupported) or '-'}")

    per_wall_s, per_cpu_s, n_docs = throughput(args.model)
    print()
    print(f"model: {model_file}")
    print(f"accuracy pass: {elapsed:.1f} s")
    print(
        f"LanguageId on ~5 KB documents ({n_docs} distinct, one thread): "
        f"{per_cpu_s:,.0f} docs per CPU-second, {per_wall_s:,.0f} docs per wall-second"
    )
    print(f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}")


if __name__ == "__main__":
    main()
