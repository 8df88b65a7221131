"""benchmarks/gpu_check.py must not rot between GPU leases: its CPU smoke run passes, end to end.

The script runs as the GPU session will run it, a file in its own process, but with the packages the
GPU machine lacks made unimportable, so an import that would kill the lease fails here first.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "gpu_check.py"

# Installed here for the pipeline, absent on the GPU machine (torch, numpy, pyyaml, sentencepiece only).
ABSENT_ON_GPU_MACHINE = [
    "apache_beam", "pyarrow", "pandas", "tqdm", "warcio", "trafilatura", "resiliparse", "fastwarc",
    "fasttext", "datasketch", "mwparserfromhell", "w3lib", "transformers", "safetensors",
]

# None in sys.modules is how Python spells "not installed": import raises ModuleNotFoundError and
# importlib.util.find_spec (which torch._dynamo uses to probe optional packages) answers None.
RUN_WITHOUT = """\
import runpy, sys
for name in sys.argv[1].split(","):
    sys.modules[name] = None
sys.argv = sys.argv[2:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""

SECTIONS = [
    "graph_breaks", "flex_attention", "losses", "fsdp2",
    "throughput llama-7b-block no-ac", "throughput llama-1b no-ac",
    "throughput llama-7b-block ac", "throughput llama-1b ac",
]


def load_script(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "gpu_check", module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.timeout(120)
def test_cpu_smoke_run_passes_every_section_without_pipeline_packages(tmp_path: Path) -> None:
    out = tmp_path / "gpu.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", RUN_WITHOUT, ",".join(ABSENT_ON_GPU_MACHINE), str(SCRIPT),
         "--device", "cpu", "--tiny", "--json", str(out)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=110, check=False,
    )
    wall = time.perf_counter() - started
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(out.read_text())
    sections = result["sections"]
    assert list(sections) == SECTIONS
    for name, section in sections.items():
        assert section["status"] == "pass", (name, section["error"], section["traceback"])
        assert section["checks"], name
    assert result["summary"] == {**result["summary"], "passed": len(SECTIONS), "failed": 0, "skipped": 0}
    assert wall < 60, f"the smoke run took {wall:.0f} s"

    checks = {(s, c["name"]): c for s, sec in sections.items() for c in sec["checks"]}
    # FlexAttention runs forward on CPU; its backward is skipped with the reason, never silently.
    flex = {name: c["status"] for (s, name), c in checks.items() if s == "flex_attention"}
    assert flex == {
        "flex T=128 W=40 fwd fp32": "pass",
        "flex T=128 W=40 bwd fp32": "skipped: FlexAttention has no CPU backward in this torch",
        "flex T=128 W=40 fwd bf16": "pass",
        "flex T=128 W=40 bwd bf16": "skipped: FlexAttention has no CPU backward in this torch",
    }
    every_other = [c["status"] for (s, _), c in checks.items() if s != "flex_attention"]
    assert set(every_other) == {"pass"}
    # The window binds in the proxy run (band mask on CPU), and its one build was counted.
    builds = checks[("losses", "mask builds (band), 60 steps")]
    assert (builds["detail"]["band_mask"], builds["detail"]["block_mask"]) == (1, 0)
    for name in ("fp32", "bf16", "bf16+compile"):
        losses = checks[("losses", f"loss falls: {name}")]["detail"]["losses"]
        assert len(losses) == 20 and losses[-1] < 0.7 * losses[0]
    assert checks[("fsdp2", "FSDP2 gloo world 1 fp32 vs unsharded")]["detail"]["sharded"] is True
    for name in SECTIONS[4:]:
        (row,) = sections[name]["checks"]
        assert row["detail"]["tokens_per_s"] > 0 and 0 < row["detail"]["mfu"] < 1
    assert "cpu" in proc.stdout and "8 passed, 0 failed" in proc.stdout


def test_a_failing_erroring_or_overrunning_section_is_a_row_and_the_run_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gpu_check = load_script(monkeypatch)
    cpu = gpu_check.torch.device("cpu")

    def failing(out: object) -> None:
        out.add("agrees", False, 0.3, "<= 0.05")

    def raising(out: object) -> None:
        out.add("first", True, 1)
        raise RuntimeError("CUDA out of memory")

    def hanging(out: object) -> None:
        time.sleep(5)

    failed = gpu_check.run_section("f", 10, failing, cpu)
    errored = gpu_check.run_section("e", 10, raising, cpu)
    started = time.perf_counter()
    overran = gpu_check.run_section("h", 1, hanging, cpu)
    assert time.perf_counter() - started < 3
    assert failed.status == "fail" and failed.checks[0].status == "fail"
    assert errored.status == "error: RuntimeError: CUDA out of memory"
    assert [c.name for c in errored.checks] == ["first"]  # what was measured before the error is kept
    assert overran.status == "error: timeout"


@pytest.mark.parametrize("window, passes", [(40, True), (41, False)])
def test_attention_comparison_with_gradients_passes_the_right_window_only(
    monkeypatch: pytest.MonkeyPatch, window: int, passes: bool
) -> None:
    """The GPU rows compare gradients too; on CPU the trainer's band kernel stands in for flex, and a
    kernel whose window is one key too wide must fail both the forward and the backward rows."""
    gpu_check = load_script(monkeypatch)
    torch = gpu_check.torch
    torch.manual_seed(0)
    base = [torch.randn(1, n, 128, 16) for n in (4, 2, 2)]  # q (B, H, T, hd); k, v (B, KV, T, hd)
    reference = gpu_check.band_reference(128, 40, torch.device("cpu"))

    def kernel(q: object, k: object, v: object) -> object:
        return gpu_check.attend(q, k, v, window)

    out = gpu_check.Section("attention")
    for dtype in (torch.float32, torch.bfloat16):
        gpu_check.compare_attention(out, "band", kernel, reference, base, dtype, with_grad=True)
    assert [c.name for c in out.checks] == [
        "band fwd fp32", "band bwd fp32 (dq, dk, dv)", "band fwd bf16", "band bwd bf16 (dq, dk, dv)"
    ]
    assert {c.status for c in out.checks} == ({"pass"} if passes else {"fail"})
