"""Training-step throughput and MFU of ``trainer.model.Transformer``: forward + backward + AdamW step.

    python benchmarks/train.py --model tiny --device cpu
    python benchmarks/train.py --model mistral-7b --device cuda --batch-size 1 --seq-len 8192

Random tokens (throughput does not depend on the data), a burn-in of untimed steps (allocator warm-up,
compile, kernel selection), and a device synchronize before the clock starts and stops, as nanoGPT's
bench.py does. On CPU it also times a plain PyTorch version of the same architecture (``PlainDecoder``:
K/V repeated per head, softmax attention written out, RoPE recomputed every call) on the same
batches, after checking that both produce the same logits from the same weights, and prints the ratio.

MFU needs a peak: for known GPUs the bf16 dense datasheet figure; on CPU, where no such figure is at hand,
the float32 matmul rate measured on this machine in the same run, so CPU "MFU" reads as the fraction of
achievable matmul throughput. ``--peak-flops`` overrides either.
"""

from __future__ import annotations

import argparse
import math
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from filters.config import ConfigError, load_yaml
from trainer.config import ModelConfig
from trainer.mfu import flops_per_token, mfu
from trainer.model import Transformer

MODEL_CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "model"

# Dense (no sparsity) bf16 tensor-core peaks from NVIDIA's datasheets, FLOP/s per GPU.
GPU_PEAK_BF16 = {
    "H100 SXM": 989e12,  # H100 SXM5 datasheet
    "H100 PCIe": 756e12,  # H100 PCIe datasheet
    "H100": 989e12,
    "A100": 312e12,  # A100 datasheet (SXM and PCIe)
    "L4": 121e12,  # L4 datasheet
}


# ------------------------------------------------------------------------------------------------------
# The plain reference: the same architecture and parameter names, written without any of the model's
# choices (no SDPA, no GQA kernel, no cached rotary tables), so the ratio measures what those buy.


class PlainRMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps, self.weight = eps, nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))


class PlainAttention(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.wq = nn.Linear(cfg.dim, cfg.n_heads * cfg.head_dim, bias=False)
        self.wk = nn.Linear(cfg.dim, cfg.kv_heads * cfg.head_dim, bias=False)
        self.wv = nn.Linear(cfg.dim, cfg.kv_heads * cfg.head_dim, bias=False)
        self.wo = nn.Linear(cfg.n_heads * cfg.head_dim, cfg.dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cfg, (B, T, _) = self.cfg, x.shape
        q = self.wq(x).view(B, T, cfg.n_heads, cfg.head_dim).transpose(1, 2)  # (B, H, T, hd)
        k = self.wk(x).view(B, T, cfg.kv_heads, cfg.head_dim).transpose(1, 2)  # (B, KV, T, hd)
        v = self.wv(x).view(B, T, cfg.kv_heads, cfg.head_dim).transpose(1, 2)  # (B, KV, T, hd)
        channels = torch.arange(0, cfg.head_dim, 2, device=x.device).float()
        inv_freq = 1.0 / (cfg.rope_theta ** (channels / cfg.head_dim))
        angles = torch.outer(torch.arange(T, device=x.device).float(), inv_freq)  # (T, hd/2)
        cos, sin = torch.cat((angles, angles), -1).cos(), torch.cat((angles, angles), -1).sin()  # (T, hd)
        half = cfg.head_dim // 2
        q = q * cos + torch.cat((-q[..., half:], q[..., :half]), -1) * sin
        k = k * cos + torch.cat((-k[..., half:], k[..., :half]), -1) * sin
        rep = cfg.n_heads // cfg.kv_heads
        k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)  # (B, H, T, hd)
        scores = q @ k.transpose(-2, -1) / math.sqrt(cfg.head_dim)  # (B, H, T, T)
        i = torch.arange(T, device=x.device)
        allowed = i[None, :] <= i[:, None]
        if cfg.sliding_window is not None:
            allowed &= i[:, None] - i[None, :] < cfg.sliding_window
        y = F.softmax(scores.masked_fill(~allowed, float("-inf")), dim=-1) @ v  # (B, H, T, hd)
        return self.wo(y.transpose(1, 2).reshape(B, T, -1))


class PlainFeedForward(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.w1 = nn.Linear(cfg.dim, cfg.ffn_hidden, bias=False)
        self.w3 = nn.Linear(cfg.dim, cfg.ffn_hidden, bias=False)
        self.w2 = nn.Linear(cfg.ffn_hidden, cfg.dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class PlainBlock(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.attention_norm, self.attention = PlainRMSNorm(cfg.dim, cfg.norm_eps), PlainAttention(cfg)
        self.ffn_norm, self.feed_forward = PlainRMSNorm(cfg.dim, cfg.norm_eps), PlainFeedForward(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.attention_norm(x))
        return x + self.feed_forward(self.ffn_norm(x))


class PlainDecoder(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.tok_embeddings = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.layers = nn.ModuleList(PlainBlock(cfg) for _ in range(cfg.n_layers))
        self.norm = PlainRMSNorm(cfg.dim, cfg.norm_eps)
        self.output = nn.Linear(cfg.dim, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.output.weight = self.tok_embeddings.weight

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h = self.tok_embeddings(tokens)
        for layer in self.layers:
            h = layer(h)
        return self.output(self.norm(h)).float()


# ------------------------------------------------------------------------------------------------------


def resolve_config(name_or_path: str) -> ModelConfig:
    path = Path(name_or_path)
    if not path.suffix:
        path = MODEL_CONFIGS / f"{name_or_path}.yaml"
    return load_yaml(ModelConfig, path)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class TrainingStep:
    """One model with its own AdamW: next-token loss, backward, optimizer step."""

    def __init__(self, model: nn.Module, device: torch.device, autocast: bool) -> None:
        self.model, self.device, self.autocast = model, device, autocast
        self.opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.1)

    def __call__(self, tokens: torch.Tensor) -> None:
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            logits = self.model(tokens[:, :-1])
        loss = F.cross_entropy(logits.flatten(0, 1), tokens[:, 1:].flatten())
        loss.backward()
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)


def time_interleaved(
    steps: list[TrainingStep], batches: list[torch.Tensor], warmup: int, device: torch.device
) -> list[float]:
    """Median seconds per step of each implementation, timing them in alternation.

    Alternating step by step (rather than one implementation after the other) exposes both to the same
    load on a shared machine; the median discards the steps that another process interrupted.
    """
    for step in steps:
        for tokens in batches[:warmup]:
            step(tokens)
    times: list[list[float]] = [[] for _ in steps]
    for tokens in batches[warmup:]:
        for i, step in enumerate(steps):
            sync(device)
            start = time.perf_counter()
            step(tokens)
            sync(device)
            times[i].append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


def measured_matmul_flops(device: torch.device, n: int = 1024, repeats: int = 20) -> float:
    """Best-of dense float32 matmul rate: what this machine can actually do, as a CPU 'peak'."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    best = float("inf")
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        a @ b
        sync(device)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def peak_flops(device: torch.device, override: float | None) -> tuple[float, str]:
    if override is not None:
        return override, "--peak-flops"
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for key, value in GPU_PEAK_BF16.items():
            if key in name:
                return value, f"{key} bf16 datasheet"
        raise SystemExit(f"error: no known peak for GPU '{name}'; pass --peak-flops")
    return measured_matmul_flops(device), "measured fp32 matmul"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="tiny", help="name under configs/model/ or a YAML path")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=None, help="default: the config's max_seq_len")
    parser.add_argument("--steps", type=int, default=10, help="timed steps")
    parser.add_argument("--warmup", type=int, default=3, help="untimed burn-in steps")
    parser.add_argument("--peak-flops", type=float, default=None, help="hardware peak FLOP/s")
    parser.add_argument("--compile", action="store_true", help="torch.compile each block")
    parser.add_argument("--no-reference", action="store_true", help="skip the plain reference on CPU")
    args = parser.parse_args(argv)
    try:
        cfg = resolve_config(args.model)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    device = torch.device(args.device)
    seq_len = args.seq_len or cfg.max_seq_len
    if seq_len > cfg.max_seq_len:
        print(f"error: --seq-len {seq_len} exceeds max_seq_len {cfg.max_seq_len}", file=sys.stderr)
        return 2
    autocast = device.type == "cuda"

    torch.manual_seed(0)
    # seq_len + 1 tokens per row: inputs are the first seq_len, targets the last seq_len.
    shape = (args.batch_size, seq_len + 1)
    n_batches = args.warmup + args.steps
    batches = [torch.randint(0, cfg.vocab_size, shape, device=device) for _ in range(n_batches)]
    peak, peak_source = peak_flops(device, args.peak_flops)

    model = Transformer(cfg).to(device)
    if args.compile:
        for block in model.layers:
            block.compile()
    runs: list[tuple[str, nn.Module]] = [("trainer.model", model)]
    if device.type == "cpu" and not args.no_reference:
        plain = PlainDecoder(cfg).to(device)
        plain.load_state_dict(model.state_dict())
        with torch.no_grad():
            diff = (plain(batches[0][:, :-1]) - model(batches[0][:, :-1])).abs().max().item()
        if diff > 1e-4:
            raise SystemExit(f"error: plain reference differs from the model by {diff:.2e}")
        runs.append(("plain reference", plain))

    tokens_per_step = args.batch_size * seq_len
    per_token = flops_per_token(cfg, seq_len)
    print(f"# {platform.node()} | {platform.processor() or platform.machine()} | torch {torch.__version__} | "
          f"{torch.get_num_threads()} threads | device {device}")
    print(f"# model {args.model}: {model.num_params():,} params, batch {args.batch_size} x seq {seq_len}, "
          f"window {cfg.sliding_window}, {per_token / 1e6:.2f} MFLOP/token, "
          f"peak {peak / 1e12:.3f} TFLOP/s ({peak_source})")
    print(f"# {args.warmup} burn-in + {args.steps} timed steps; median step time, implementations alternated")
    header = (
        f"{'implementation':<18}{'ms/step':>10}{'tokens/s':>12}"
        f"{'TFLOP/s':>10}{'MFU':>8}{'rel. tok/s':>12}"
    )
    print(header)
    print("-" * len(header))
    steps = [TrainingStep(module, device, autocast) for _, module in runs]
    seconds = time_interleaved(steps, batches, args.warmup, device)
    throughput = [tokens_per_step / sec for sec in seconds]
    for (name, _), sec, tps in zip(runs, seconds, throughput):
        print(f"{name:<18}{sec * 1e3:>10.1f}{tps:>12,.0f}{tps * per_token / 1e12:>10.4f}"
              f"{mfu(tps, cfg, seq_len, peak):>8.1%}{tps / throughput[0]:>11.2f}x")
    if len(throughput) == 2:
        print(f"trainer.model / plain reference tokens/s: {throughput[0] / throughput[1]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
