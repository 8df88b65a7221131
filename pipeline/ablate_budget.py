"""The ablation's compute budget: how many tokens each proxy run trains on, and how many steps that is.

Why a rule. A proxy trained on a sliver of its compute-optimal tokens is barely past the unigram
stage: its loss tells English from other languages and little else, so every curated arm looks the
same. The default is Chinchilla's ~20 tokens per parameter (Hoffmann et al. 2022, Table 3), counted
over every parameter of the proxy as built with the study's vocabulary, embeddings included, as
FineWeb's and DCLM's ablation scales are. A smaller ``--tokens`` is allowed (tests, smoke runs) and
printed as a warning, with the share of the rule it reaches.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

from filters.config import load_yaml

TOKENS_PER_PARAM = 20


def proxy_params(model: str | Path, vocab_size: int) -> int:
    """Parameters of the proxy built from ``model`` with the tokenizer's vocabulary (on the meta device)."""
    import torch

    from trainer.config import ModelConfig
    from trainer.model import Transformer

    cfg = load_yaml(ModelConfig, model).with_vocab_size(vocab_size)
    with torch.device("meta"):
        built = Transformer(cfg)
    return sum(p.numel() for p in built.parameters())


def default_tokens(params: int) -> int:
    return TOKENS_PER_PARAM * params


def budget_warning(tokens: int, params: int) -> str | None:
    """The line printed when ``tokens`` is under the rule, else None."""
    rule = default_tokens(params)
    if tokens >= rule:
        return None
    return (f"refinery ablate: warning: {tokens:,} training tokens per run is {tokens / params:.3g} tokens per "
            f"parameter for a {params / 1e6:.2f}M-parameter proxy, {tokens / rule:.2%} of the {TOKENS_PER_PARAM} "
            f"per parameter rule ({rule:,}); an undertrained proxy may not tell curated arms apart")


def train_settings(train_config: str | Path, tokens: int, seed: int) -> Any:
    """The run's TrainConfig: the file's settings with the seed and the steps the token budget buys.

    Periodic evaluation and checkpoints are off (the ablation evaluates once, at the end)."""
    from trainer.train_config import TrainConfig

    cfg = load_yaml(TrainConfig, train_config)
    steps = max(1, math.ceil(tokens / cfg.tokens_per_step))
    return dataclasses.replace(cfg, steps=steps, seed=seed, eval_every=0, checkpoint_every=0, progress=False,
                               warmup_steps=min(cfg.warmup_steps, steps))
