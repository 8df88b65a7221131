"""Sampling from a trained decoder with a key/value cache: ``refinery generate``.

Decoding runs in two phases over a :class:`~trainer.kv_cache.RollingKVCache`: the prompts are
pre-filled in chunks of W tokens (W = the sliding window; the whole prompt when there is none), so a
prompt of any length costs memory for W keys per layer and a (W, 2W) attention score block per
chunk; then one token per step is fed back.

Batching: prompts of different lengths are left-padded (see ``trainer.kv_cache``). Left rather than
right padding because every row's next token then sits in the same column: one decoding step feeds one
column for the whole batch, the rolling buffer writes one slot index for every row, and each row's
rotary positions are its column minus its padding, so a padded row computes what it would compute
alone. Right padding would leave rows at different columns and need per-row slot bookkeeping.

Sampling: temperature 0 is greedy (argmax); otherwise the softmax of logits / temperature, truncated
to the smallest set of tokens whose probability reaches ``top_p`` (nucleus sampling, Holtzman et al.
2020). A row stops at the tokenizer's EOS, which is not returned. Sampled (non-greedy) tokens depend on
the batch they are drawn in, since all rows share one seeded generator; greedy tokens do not.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from tqdm import tqdm

from trainer.kv_cache import RollingKVCache
from trainer.load import LoadError, add_checkpoint_arguments, load_trained
from trainer.model import Transformer


class GenerateError(ValueError):
    """A request that cannot be decoded as given (checked before any compute)."""


def check_request(
    model: Transformer,
    prompts: Sequence[Sequence[int]],
    max_new_tokens: int,
    temperature: float,
    top_p: float,
) -> None:
    """Every user mistake the decoding loop would otherwise hit half-way, as one clear message."""
    cfg = model.cfg
    if not prompts:
        raise GenerateError("no prompt given")
    if max_new_tokens <= 0:
        raise GenerateError(f"max_new_tokens must be positive, got {max_new_tokens}")
    if not temperature >= 0:
        raise GenerateError(f"temperature must be >= 0, got {temperature}")
    if not 0 < top_p <= 1:
        raise GenerateError(f"top_p must be in (0, 1], got {top_p}")
    for i, prompt in enumerate(prompts):
        if not prompt:
            raise GenerateError(f"prompt {i} is empty (no tokens)")
        bad = [t for t in prompt if not 0 <= t < cfg.vocab_size]
        if bad:
            raise GenerateError(f"prompt {i} has token ids outside [0, {cfg.vocab_size}): {bad[:5]}")
        if cfg.sliding_window is None:
            if len(prompt) > cfg.max_seq_len:
                raise GenerateError(
                    f"prompt {i} has {len(prompt)} tokens, longer than the model's context of "
                    f"{cfg.max_seq_len} (it has no sliding window, so it cannot see past that)"
                )
            if len(prompt) + max_new_tokens > cfg.max_seq_len:
                raise GenerateError(
                    f"prompt {i} ({len(prompt)} tokens) + max_new_tokens ({max_new_tokens}) exceeds the "
                    f"model's context of {cfg.max_seq_len}; lower --max-new-tokens"
                )


def next_tokens(
    logits: torch.Tensor, temperature: float, top_p: float, generator: torch.Generator | None
) -> torch.Tensor:
    """Token ids (B,) from last-position logits (B, V)."""
    if temperature == 0:
        return logits.argmax(dim=-1)  # (B,)
    probs = F.softmax(logits / temperature, dim=-1)  # (B, V)
    if top_p < 1:
        sorted_p, order = probs.sort(dim=-1, descending=True)  # (B, V) each
        before = sorted_p.cumsum(dim=-1) - sorted_p  # (B, V) mass of the more likely tokens
        sorted_p = sorted_p.masked_fill(before >= top_p, 0.0)  # the top token always survives
        pick = torch.multinomial(sorted_p, 1, generator=generator)  # (B, 1) index into the sorted order
        return order.gather(-1, pick).squeeze(-1)  # (B,)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)  # (B,)


@torch.no_grad()
def generate(
    model: Transformer,
    prompts: Sequence[Sequence[int]],
    *,
    max_new_tokens: int = 64,
    temperature: float = 0.0,
    top_p: float = 1.0,
    seed: int = 0,
    eos_id: int | None = None,
    progress: bool = False,
    cache_out: list[RollingKVCache] | None = None,
) -> list[list[int]]:
    """New token ids for each prompt (token ids, no padding), at most ``max_new_tokens`` each.

    ``cache_out``, if given, receives the cache used (tests inspect its size).
    """
    check_request(model, prompts, max_new_tokens, temperature, top_p)
    cfg = model.cfg
    param = next(model.parameters())
    device, dtype = param.device, param.dtype
    width = max(len(p) for p in prompts)
    pad = [width - len(p) for p in prompts]
    filler = 0  # any valid id: filler columns are masked and never attended by a real token
    rows = [[filler] * n + list(p) for n, p in zip(pad, prompts)]
    tokens = torch.tensor(rows, dtype=torch.long, device=device)  # (B, L)
    cache = RollingKVCache(cfg, pad=pad, total_len=width + max_new_tokens, device=device, dtype=dtype)
    if cache_out is not None:
        cache_out.append(cache)
    chunk = cfg.sliding_window or width
    generator = None
    if temperature > 0:
        generator = torch.Generator(device=device)
        generator.manual_seed(seed)

    logits = torch.empty(0)
    for start in range(0, width, chunk):
        logits = model(tokens[:, start : start + chunk], cache=cache, last_only=True)  # (B, 1, V)
    batch = len(prompts)
    out = torch.empty(batch, 0, dtype=torch.long, device=device)  # (B, n)
    done = torch.zeros(batch, dtype=torch.bool, device=device)  # (B,)
    for step in tqdm(range(max_new_tokens), disable=not progress, desc="generate", unit="tok"):
        new = next_tokens(logits[:, -1], temperature, top_p, generator)  # (B,)
        new = new.masked_fill(done, filler)
        out = torch.cat((out, new[:, None]), dim=1)  # (B, n + 1)
        if eos_id is not None:
            done |= new == eos_id
        if step == max_new_tokens - 1 or bool(done.all()):
            break
        logits = model(new[:, None], cache=cache, last_only=True)  # (B, 1, V)
    return [_until_eos(row, eos_id) for row in out.tolist()]


def _until_eos(row: list[int], eos_id: int | None) -> list[int]:
    return row[: row.index(eos_id)] if eos_id is not None and eos_id in row else row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="refinery generate", description="Sample continuations of prompts from a trained checkpoint.",
        allow_abbrev=False,
    )
    add_checkpoint_arguments(parser)
    parser.add_argument("--prompt", action="append", required=True, help="prompt text; repeat for a batch")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--temperature", type=float, default=0.8, help="0 = greedy")
    parser.add_argument("--top-p", type=float, default=0.95, help="nucleus sampling mass; 1 = off")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bos", action="store_true", help="start each prompt with the tokenizer's BOS id")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        loaded = load_trained(args.ckpt, tokenizer=args.tokenizer, device=args.device)
        sp = loaded.tokenizer
        if args.bos and sp.bos_id() < 0:
            raise GenerateError(f"{loaded.tokenizer_path}: tokenizer has no BOS id, drop --bos")
        prefix = [sp.bos_id()] if args.bos else []
        prompts = [prefix + sp.encode(text) for text in args.prompt]
        eos = sp.eos_id() if sp.eos_id() >= 0 else None
        outputs = generate(
            loaded.model, prompts, max_new_tokens=args.max_new_tokens, temperature=args.temperature,
            top_p=args.top_p, seed=args.seed, eos_id=eos, progress=sys.stderr.isatty(),
        )  # fmt: skip
    except (LoadError, GenerateError) as exc:
        print(f"refinery generate: error: {exc}", file=sys.stderr)
        return 2
    for i, (text, new) in enumerate(zip(args.prompt, outputs)):
        if len(outputs) > 1:
            print(f"=== {i}")
        print(text + _continuation(sp, prompts[i], new))
    return 0


def _continuation(sp, prompt: list[int], new: list[int]) -> str:
    """The text the new tokens add: decoding them alone would drop a leading space (sentencepiece strips
    the dummy prefix) and split characters whose bytes straddle the prompt boundary."""
    whole = sp.decode(prompt + new)
    head = sp.decode(prompt)
    return whole[len(head) :] if whole.startswith(head) else sp.decode(new)


if __name__ == "__main__":
    sys.exit(main())
