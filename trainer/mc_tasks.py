"""Multiple-choice task files: their format, their few-shot split and the flags that name them.

Apart from the scoring (:mod:`trainer.multiple_choice`) because none of this needs torch: ``refinery
ablate`` checks ``--mc-tasks`` files before it trains anything, and builds its ``--help``, without
importing it.

The task format. JSONL, one item a line: ``{"context": str, "choices": [str, ...], "answer": int}``
with an optional ``"id"``; blank lines are skipped. A line that is not such an object, an empty
``choices`` list or an ``answer`` outside it is an :class:`MCError` naming ``file:line``.

Few-shot. The first ``k`` items of the file are the examples, each written as its context, a space and
its correct choice, joined by blank lines before every scored item's context; they are never scored
(an example scored with its own answer in the prompt would be free accuracy). Taking the first ``k``
rather than a random draw keeps the prompt, and so the number, the same on every run and machine.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SHOT_SEPARATOR = "\n\n"
DEFAULT_SHOTS = 0  # zero-shot unless asked: the number then needs no choice of examples


class MCError(ValueError):
    """A task file or request that cannot be scored; the message names the file (and line)."""


@dataclass(frozen=True)
class Item:
    """One question of a task file."""

    context: str
    choices: tuple[str, ...]
    answer: int
    id: str
    line: int
    """1-based line in the file, for messages and the per-item report."""


def _item(raw: Any, where: str, line: int) -> Item:
    """Validate one parsed line; every rejection names ``where`` (``file:line``)."""
    if not isinstance(raw, dict):
        raise MCError(f"{where}: expected a JSON object, got {type(raw).__name__}")
    context, choices, answer = raw.get("context"), raw.get("choices"), raw.get("answer")
    if not isinstance(context, str):
        raise MCError(f"{where}: 'context' must be a string")
    if not isinstance(choices, list) or not choices:
        raise MCError(f"{where}: 'choices' must be a non-empty list of strings")
    if not all(isinstance(c, str) and c.strip() for c in choices):
        raise MCError(f"{where}: every choice must be a non-empty string")
    if not isinstance(answer, int) or isinstance(answer, bool) or not 0 <= answer < len(choices):
        raise MCError(f"{where}: 'answer' must be an integer index in [0, {len(choices)}), got {answer!r}")
    ident = raw.get("id", line)
    return Item(context=context, choices=tuple(choices), answer=answer, id=str(ident), line=line)


def read_tasks(path: str | Path) -> list[Item]:
    """Every item of a JSONL task file, in file order; the first bad line raises :class:`MCError`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MCError(f"{path}: cannot read task file: {exc}") from None
    items = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            raise MCError(f"{where}: not valid JSON: {exc.msg}") from None
        items.append(_item(raw, where, number))
    if not items:
        raise MCError(f"{path}: no items")
    return items


def split_shots(items: list[Item], shots: int, where: str | Path) -> tuple[str, list[Item]]:
    """The few-shot prefix built from the first ``shots`` items, and the items left to score."""
    if shots < 0:
        raise MCError(f"--shots must be >= 0, got {shots}")
    if shots >= len(items):
        raise MCError(f"{where}: {len(items)} items leave none to score after {shots} few-shot examples")
    examples = items[:shots]
    prefix = "".join(f"{ex.context} {ex.choices[ex.answer]}{SHOT_SEPARATOR}" for ex in examples)
    return prefix, items[shots:]


def read_task_files(tasks: list[str | Path], shots: int) -> dict[str, tuple[str, list[Item]]]:
    """Each task file (keyed by its path as given) as its few-shot prefix and the items left to score.

    Separate from :func:`evaluate_mc` so that a caller who scores many checkpoints (``refinery
    ablate --mc-tasks``) can refuse a bad file, or too many shots, before anything is trained.
    """
    return {str(path): split_shots(read_tasks(path), shots, path) for path in tasks}


def add_task_arguments(parser: argparse.ArgumentParser, *, prefix: str = "", required: bool = True) -> None:
    """``--tasks`` and ``--shots``, defined once: ``refinery ablate`` offers them as ``--mc-tasks`` and
    ``--mc-shots`` (``prefix="mc-"``, optional there) with the same format, help and default."""
    parser.add_argument(
        f"--{prefix}tasks",
        type=Path,
        nargs="+",
        required=required,
        metavar="FILE.jsonl",
        help='JSONL task files: {"context": str, "choices": [str, ...], "answer": int}',
    )
    parser.add_argument(
        f"--{prefix}shots",
        type=int,
        default=DEFAULT_SHOTS,
        help="few-shot examples: the first K items (not scored)",
    )
