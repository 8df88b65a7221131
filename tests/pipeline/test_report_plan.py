"""The report's planner, portable paths and eval reader, on numbers worked out by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.report_eval import eval_section, find_eval
from pipeline.report_paths import REPO, Portable
from pipeline.report_plan import PlanError, plan
from pipeline.run_stats import RunStatsError

SOURCES = [{"name": "commoncrawl", "weight": 0.8, "tokens": 2e11}, {"name": "wikipedia", "weight": 0.2, "tokens": 2e10},
           {"name": "unused", "weight": 0.0, "tokens": 5}]


def test_plan_for_a_7b_model() -> None:
    found = plan(7e9, 1_000_000_000_000, SOURCES, max_epochs=4, mfu=0.4, peak_tflops=989)
    chinchilla, llama, asked = found["rows"]
    assert chinchilla["tokens"] == 1.4e11 and chinchilla["tokens_per_param"] == 20
    assert chinchilla["flops"] == pytest.approx(6 * 7e9 * 1.4e11)
    # 5.88e21 FLOPs at 989 TFLOP/s x 40% MFU = 1.486e7 GPU-seconds = 4,129 H100-hours.
    assert chinchilla["gpu_hours"] == pytest.approx(5.88e21 / (989e12 * 0.4) / 3600) == pytest.approx(4128.8, abs=0.5)
    assert llama["tokens"] == 1.0e12 and asked["tokens"] == 1.0e12
    # 1T tokens: commoncrawl 0.8T of its 0.2T = 4 epochs, wikipedia 0.2T of 20B = 10.
    assert asked["epochs"] == {"commoncrawl": pytest.approx(4.0), "wikipedia": pytest.approx(10.0)}
    assert found["sources"] == ["commoncrawl", "wikipedia"]  # weight 0 is not read at any budget


def test_plan_for_a_65b_model_uses_llamas_larger_budget_and_no_asked_row_without_a_budget() -> None:
    rows = plan(65e9, None, [])["rows"]
    assert [r["tokens"] for r in rows] == [1.3e12, 1.4e12]


@pytest.mark.parametrize("kwargs", [{"model_params": 0}, {"model_params": 1e9, "mfu": 1.5},
                                    {"model_params": 1e9, "peak_tflops": -1}])
def test_plan_refuses_impossible_settings(kwargs: dict) -> None:
    params = kwargs.pop("model_params")
    with pytest.raises(PlanError):
        plan(params, 10, [], **kwargs)


def test_portable_paths(tmp_path: Path) -> None:
    report_dir = tmp_path / "out" / "report"
    portable = Portable(report_dir)
    assert portable.path(tmp_path / "out" / "runs" / "cc") == "../runs/cc"
    assert portable.path(REPO / "configs" / "mixture" / "llama1.yaml") == "configs/mixture/llama1.yaml"
    assert portable.path("/nowhere-shared/warcs/a.warc.gz") == "a.warc.gz"
    assert portable.path("runs/cc") == "runs/cc"
    warning = f"source 'books' would be repeated 3.1 times (max_epochs 2.5 in {REPO}/configs/mixture/llama1.yaml)"
    assert portable.text(warning).endswith("(max_epochs 2.5 in configs/mixture/llama1.yaml)")
    kept = "see https://example.org/a/b and 1/2 of stage / reason"
    assert portable.text(kept) == kept
    data = portable.data({"path": str(tmp_path / "x"), "text": "/etc/passwd is a document", "list": [str(REPO)]})
    assert data == {"path": "../../x", "text": "/etc/passwd is a document", "list": ["."]}


def test_eval_section_reads_nan_as_missing_and_refuses_other_files(tmp_path: Path) -> None:
    pretrain = tmp_path / "pretrain"
    pretrain.mkdir()
    good = pretrain / "eval.json"
    # What trainer.evaluate writes for a source it held nothing out of: json.dumps turns nan into NaN.
    good.write_text(json.dumps({"step": 30, "seq_len": 64, "max_windows": 8, "checkpoint": "pretrain",
                                "sources": {"wiki": {"windows": 2, "tokens": 128, "bytes": 500, "loss": 4.0,
                                                     "perplexity": 54.6, "bits_per_byte": 1.48},
                                            "arxiv": {"windows": 0, "tokens": 0, "bytes": 0, "loss": float("nan"),
                                                      "perplexity": float("nan"), "bits_per_byte": float("nan")}},
                                "all": {"windows": 2, "tokens": 128, "bytes": 500, "loss": 4.0, "perplexity": 54.6,
                                        "bits_per_byte": 1.48}}))
    assert find_eval(tmp_path / "mixture.json") == good and find_eval(pretrain / "mixture.json") is None
    found = eval_section(good)
    assert [r["source"] for r in found["rows"]] == ["wiki", "arxiv", "all"]
    assert found["rows"][1]["loss"] is None and found["unscored"] == ["arxiv"]
    bad = tmp_path / "bad.json"
    bad.write_text('{"sources": []}')
    with pytest.raises(RunStatsError, match="not an eval.json"):
        eval_section(bad)
    with pytest.raises(RunStatsError, match="cannot read eval"):
        eval_section(tmp_path / "absent.json")
