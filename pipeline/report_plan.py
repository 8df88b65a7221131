"""The token-budget planner: for a model size, what each candidate budget costs and what it repeats.

Three budgets are set side by side for the target model size N:

* Chinchilla-optimal, ~20 tokens per parameter (Hoffmann et al. 2022, Table 3);
* LLaMA-1's choice, 1.0T tokens for 7B/13B and 1.4T for 33B/65B (Touvron et al. 2023, sec. 2.1);
* the budget the mixture asks for (``token_budget`` in mixture.json).

Each gets its training compute, C = 6·N·D FLOPs (Kaplan et al. 2020, sec. 2.1: 2 FLOPs per
parameter per token forward, 4 backward), and the GPU-hours that compute takes at a stated peak and
model FLOPs utilization: hours = C / (peak · MFU) / 3600. The peak defaults to an H100 SXM's dense
BF16 989 TFLOP/s (NVIDIA H100 datasheet; the 1,979 figure assumes 2:4 sparsity) and the MFU to 40%,
about what well-tuned dense LLM training reaches (PaLM reports 46.2%, Chowdhery et al. 2022,
Table 3); both are stated on the page and set with ``--peak-tflops`` / ``--mfu``. The 6·N·D count
leaves out attention scores, as Chinchilla's own planning does; ``trainer.mfu`` counts them for a
measured run.

Each budget also implies how often every source is repeated: a source with weight w and T tokens
is read D·w / T times. LLaMA repeats Wikipedia and books ~2.4 times; past ~4 epochs repeated data
is worth much less than fresh (Muennighoff et al. 2023), so those cells are flagged against the
recipe's ``max_epochs``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pipeline.mix import CHINCHILLA_TOKENS_PER_PARAM, scaling_numbers

H100_BF16_DENSE_TFLOPS = 989.0  # NVIDIA H100 SXM5 datasheet, dense BF16 tensor core peak
DEFAULT_MFU = 0.40  # an assumption, stated on the page; PaLM 540B reached 46.2%
FLOPS_PER_PARAM_TOKEN = 6  # Kaplan et al. 2020: forward 2, backward 4


class PlanError(ValueError):
    """A model size, MFU or peak that cannot make a plan; the message names the value."""


def plan(model_params: float, token_budget: int | None, sources: Sequence[dict[str, Any]], *,
         max_epochs: float | None = None, mfu: float = DEFAULT_MFU,
         peak_tflops: float = H100_BF16_DENSE_TFLOPS) -> dict[str, Any]:
    """The planner's rows; ``sources`` are mixture rows with ``name``, ``weight`` and ``tokens``."""
    if not model_params > 0:
        raise PlanError(f"model size must be a positive number of parameters, got {model_params!r}")
    if not 0 < mfu <= 1:
        raise PlanError(f"MFU must be in (0, 1], got {mfu!r}")
    if not peak_tflops > 0:
        raise PlanError(f"peak TFLOP/s must be positive, got {peak_tflops!r}")
    scaling = scaling_numbers(model_params, token_budget or 1)
    budgets = [(f"Chinchilla-optimal ({CHINCHILLA_TOKENS_PER_PARAM:g} tokens/parameter)", scaling["chinchilla_tokens"]),
               ("LLaMA-1's choice (Touvron et al. 2023)", scaling["llama_tokens"])]
    if token_budget:
        budgets.append(("this mixture's budget", float(token_budget)))
    used = [s for s in sources if s.get("weight", 0) > 0]
    rows = []
    for label, tokens in budgets:
        flops = FLOPS_PER_PARAM_TOKEN * model_params * tokens
        epochs = {s["name"]: tokens * s["weight"] / s["tokens"] if s["tokens"] else None for s in used}
        rows.append({"budget": label, "tokens": tokens, "tokens_per_param": tokens / model_params,
                     "flops": flops, "gpu_hours": flops / (peak_tflops * 1e12 * mfu) / 3600,
                     "epochs": epochs})
    return {"model_params": model_params, "mfu": mfu, "peak_tflops": peak_tflops, "max_epochs": max_epochs,
            "sources": [s["name"] for s in used], "rows": rows}
