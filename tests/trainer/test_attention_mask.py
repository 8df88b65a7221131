"""The attention mask under ``torch.compile``: built once per shape, never inside a compiled block.

Dynamo ignores ``functools.lru_cache`` and traces the builder into the graph, and it replays a traced
function's Python side effects on every call: so a counter inside the builder counts real rebuilds,
and with the mask fetched inside the blocks these tests counted one build per layer per forward (6
for 2 layers x 3 forwards) with no graph break to show for it. Compiled with "aot_eager" (Dynamo and
the autograd split, no kernel generation), which traces exactly what inductor would receive.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch
import torch._dynamo
import torch.nn.attention.flex_attention as flex_module
import torch.nn.functional as F

import trainer.model as model_module
from trainer.config import ModelConfig
from trainer.model import Block, Transformer, attention_mask, band_mask
from trainer.parallelize import parallelize

CFG = ModelConfig(
    dim=64, n_layers=2, n_heads=4, n_kv_heads=2, ffn_hidden=176, vocab_size=256, max_seq_len=64, sliding_window=16
)


@pytest.fixture(autouse=True)
def fresh_compile_state() -> Iterator[None]:
    """Empty mask caches and Dynamo caches, so each test sees the first build and the first trace."""
    model_module._band_bias.cache_clear()
    model_module._sliding_block_mask.cache_clear()
    torch._dynamo.reset()
    yield
    model_module._band_bias.cache_clear()
    model_module._sliding_block_mask.cache_clear()
    torch._dynamo.reset()


def counting(fn: Callable[..., Any], calls: list[int]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return fn(*args, **kwargs)

    return wrapper


def test_band_mask_is_built_once_across_compiled_training_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    monkeypatch.setattr(model_module, "band_mask", counting(band_mask, calls))
    torch.manual_seed(0)
    model = parallelize(Transformer(CFG), "cpu", compile=True, compile_backend="aot_eager")
    tokens = torch.randint(0, CFG.vocab_size, (2, 33))  # T = 32 > window 16: the band path
    torch._dynamo.utils.counters.clear()
    for _ in range(3):
        logits = model(tokens[:, :-1])
        F.cross_entropy(logits.flatten(0, 1), tokens[:, 1:].flatten()).backward()
    assert len(calls) == 1, f"band mask built {len(calls)} times over 3 steps of 2 compiled blocks"
    assert sum(torch._dynamo.utils.counters["graph_break"].values()) == 0


def test_flex_block_mask_is_built_once_and_a_block_compiles_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """The GPU path, forced on CPU (forward only: FlexAttention has no CPU backward in torch 2.13)."""
    calls: list[int] = []
    monkeypatch.setattr(flex_module, "create_block_mask", counting(flex_module.create_block_mask, calls))
    monkeypatch.setattr(model_module, "attention_backend", lambda device, seq_len, window: "flex")
    torch.manual_seed(0)
    model = Transformer(CFG)
    tokens = torch.randint(0, CFG.vocab_size, (2, 32))
    with torch.no_grad():
        reference = model(tokens)  # eager flex: builds the mask
    for block in model.layers:
        block.compile(backend="aot_eager")
    with torch.no_grad():
        for _ in range(3):
            torch.testing.assert_close(model(tokens), reference, rtol=1e-5, atol=1e-5)
    assert len(calls) == 1, f"block mask built {len(calls)} times: once eagerly, then inside the blocks"

    block = Block(CFG)  # explain traces a module of its own; the compiled ones are wrapped already
    x = torch.randn(2, 32, CFG.dim)
    cos, sin = model.rotary(None, 32)
    mask = attention_mask(32, CFG.sliding_window, x.device)
    torch._dynamo.reset()
    with torch.no_grad():
        explained = torch._dynamo.explain(block)(x, cos, sin, mask=mask)
    assert (explained.graph_count, explained.graph_break_count) == (1, 0), explained.break_reasons


def test_a_mask_fetched_inside_compiled_code_is_a_visible_graph_break() -> None:
    """A block called without its mask fetches it itself: a graph break, never a silent rebuild per call."""
    torch.manual_seed(0)
    model = Transformer(CFG)
    block = model.layers[0]
    x = torch.randn(2, 32, CFG.dim)
    cos, sin = model.rotary(None, 32)
    explained = torch._dynamo.explain(block)(x, cos, sin)
    assert explained.graph_break_count >= 1
    assert any("attention_mask" in str(reason.reason) for reason in explained.break_reasons)
    mask = attention_mask(32, CFG.sliding_window, x.device)
    torch.testing.assert_close(block(x, cos, sin), block(x, cos, sin, mask=mask))
