"""Multiple-choice accuracy by log-likelihood, few-shot: ``refinery eval-mc``.

Why. FineWeb and DCLM rank curation recipes by how their proxy models do on small benchmarks
(HellaSwag, ARC, MMLU, ...), scored without generation: the model reads the question and each answer
choice, and the choice it finds most likely is its answer. Held-out loss says how well a model fits
text like its own data; this says whether what it learned helps on tasks someone else wrote. Users
bring the tasks as files; none ship here but a tiny test fixture.

The task format and few-shot examples: :mod:`trainer.mc_tasks`.

Which tokens. The prompt (examples and context) is encoded as one text and each choice as another,
and the ids are concatenated. Sentencepiece splits on whitespace before merging and its dummy prefix
turns the choice's start into "▁", so these are the ids of ``prompt + " " + choice`` encoded whole,
and the prompt's ids are the same for every choice, so the choices differ only in their own tokens.
No BOS is prepended (as ``refinery generate`` by default): the trainer reads documents joined by EOS.
A prompt longer than the training context loses its oldest tokens (the examples first).

The scores. A choice's log-likelihood is the sum of the log-probabilities of its tokens given
everything before them. ``acc`` takes the highest sum; ``acc_norm`` divides each sum by the choice's
UTF-8 bytes first, because a longer answer has more tokens to pay for and the raw sum favours short
choices (the length normalization of the lm-evaluation-harness ``acc_norm``, per byte here so it
does not depend on the tokenizer). ``*_stderr`` is the binomial standard error, sqrt(p(1-p)/n).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

import sentencepiece as spm
import torch
import torch.nn.functional as F
from torch import nn

from trainer.load import LoadError, add_checkpoint_arguments, dump_json, load_trained, train_setting
from trainer.mc_tasks import (  # noqa: F401  (re-exported: the format's names, where eval-mc's users look)
    DEFAULT_SHOTS,
    SHOT_SEPARATOR,
    Item,
    MCError,
    add_task_arguments,
    read_task_files,
    read_tasks,
    split_shots,
)


def choice_tokens(
    sp: spm.SentencePieceProcessor, prompt: str, choice: str, max_len: int
) -> tuple[list[int], int]:
    """The ids the model reads for one choice, and how many of the last ones are the choice's.

    ``max_len`` is the most ids one forward pass may hold; the prompt is cut from the left to fit.
    """
    context = sp.encode(prompt.rstrip())
    continuation = sp.encode(choice.strip())
    if not continuation:
        raise MCError(f"choice {choice!r} encodes to no tokens")
    if len(continuation) >= max_len:
        raise MCError(f"choice {choice[:40]!r} is {len(continuation)} tokens, the context holds {max_len}")
    keep = max_len - len(continuation)
    if not context:  # nothing to condition the first choice token on: the model needs one id to start
        raise MCError(f"empty context for choice {choice[:40]!r}")
    return context[-keep:] + continuation, len(continuation)


@torch.no_grad()
def choice_loglikelihoods(model: nn.Module, sequences: list[tuple[list[int], int]]) -> list[float]:
    """Sum of log p(choice token | all before it) for each (ids, n_choice) pair, in one batch.

    Rows are right-padded: the model is causal, so the padding after a row's last id changes none of
    the logits that are read.
    """
    device = next(model.parameters()).device
    width = max(len(ids) for ids, _ in sequences)
    batch = torch.zeros(len(sequences), width, dtype=torch.long)
    for row, (ids, _) in enumerate(sequences):
        batch[row, : len(ids)] = torch.tensor(ids)
    logprobs = F.log_softmax(model(batch.to(device)).float(), dim=-1)  # (B, T, V)
    out = []
    for row, (ids, n) in enumerate(sequences):
        targets = torch.tensor(ids[-n:], device=device)  # (n,)
        positions = torch.arange(len(ids) - n - 1, len(ids) - 1, device=device)  # logits predicting them
        out.append(float(logprobs[row, positions, targets].double().sum()))
    return out


def _accuracy(hits: int, n: int) -> tuple[float, float]:
    p = hits / n
    return p, math.sqrt(p * (1 - p) / n)


def score_items(
    model: nn.Module,
    sp: spm.SentencePieceProcessor,
    items: list[Item],
    prefix: str,
    max_len: int,
    source: str | Path = "<items>",
) -> dict[str, Any]:
    """acc, acc_norm (with standard errors) and per-item log-likelihoods of ``items`` after ``prefix``;
    ``source`` is the task file, for messages."""
    rows = []
    hits = hits_norm = 0
    for item in items:
        try:
            sequences = [choice_tokens(sp, prefix + item.context, c, max_len) for c in item.choices]
        except MCError as exc:
            raise MCError(f"{source}:{item.line}: {exc}") from None
        ll = choice_loglikelihoods(model, sequences)
        sizes = [len(c.strip().encode("utf-8")) for c in item.choices]
        pred = max(range(len(ll)), key=lambda i: ll[i])
        pred_norm = max(range(len(ll)), key=lambda i: ll[i] / sizes[i])
        hits += pred == item.answer
        hits_norm += pred_norm == item.answer
        rows.append({"id": item.id, "line": item.line, "answer": item.answer, "pred": pred,
                     "pred_norm": pred_norm, "loglikelihoods": ll, "choice_bytes": sizes})  # fmt: skip
    acc, acc_se = _accuracy(hits, len(items))
    acc_norm, norm_se = _accuracy(hits_norm, len(items))
    return {"items": len(items), "acc": acc, "acc_stderr": acc_se, "acc_norm": acc_norm,
            "acc_norm_stderr": norm_se, "per_item": rows}  # fmt: skip


def evaluate_mc(
    ckpt: str | Path,
    tasks: list[str | Path],
    *,
    shots: int = DEFAULT_SHOTS,
    tokenizer: str | Path | None = None,
    device: str = "cpu",
) -> dict[str, Any]:
    """The report ``refinery eval-mc`` writes; every task file is read and checked before the model loads."""
    parsed = read_task_files(tasks, shots)
    loaded = load_trained(ckpt, tokenizer=tokenizer, device=device)
    max_len = min(
        int(train_setting(loaded.meta, "seq_len", loaded.config.max_seq_len)), loaded.config.max_seq_len
    )
    results = {}
    for name, (prefix, items) in parsed.items():
        results[name] = score_items(loaded.model, loaded.tokenizer, items, prefix, max_len, source=name)
    return {
        "checkpoint": str(loaded.checkpoint),
        "step": loaded.step,
        "tokenizer": str(loaded.tokenizer_path),
        "tokenizer_sha256": loaded.tokenizer_sha256,
        "shots": shots,
        "max_tokens": max_len,
        "tasks": results,
    }


def format_table(report: dict[str, Any]) -> str:
    """One line per task: items scored, acc and acc_norm with their standard errors."""
    width = max(len("task"), *(len(Path(name).name) for name in report["tasks"]))
    lines = [f"{'task':<{width}}  {'items':>6}  {'acc':>15}  {'acc_norm':>15}"]
    for name, r in report["tasks"].items():
        lines.append(f"{Path(name).name:<{width}}  {r['items']:>6}  {r['acc']:.4f} ± {r['acc_stderr']:.4f}  "
                     f"{r['acc_norm']:.4f} ± {r['acc_norm_stderr']:.4f}")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``refinery eval-mc``: 0 report written, 2 a bad task file, checkpoint or flag (one line)."""
    parser = argparse.ArgumentParser(
        prog="refinery eval-mc", allow_abbrev=False,
        description="Few-shot multiple-choice accuracy (acc, acc_norm) of a checkpoint by log-likelihood.",
    )  # fmt: skip
    add_checkpoint_arguments(parser)
    add_task_arguments(parser)
    parser.add_argument("--out", type=Path, help="JSON report (default: <ckpt>/eval-mc-step-<step>.json)")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        report = evaluate_mc(
            args.ckpt, args.tasks, shots=args.shots, tokenizer=args.tokenizer, device=args.device
        )
        out = args.out or args.ckpt / f"eval-mc-step-{report['step']:08d}.json"
        dump_json(out, report)
    except (MCError, LoadError, OSError) as exc:
        print(f"refinery eval-mc: error: {exc}", file=sys.stderr)
        return 2
    print(format_table(report))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
