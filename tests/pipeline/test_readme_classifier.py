"""README's "The quality classifier" bash block runs as written on the demo's inputs (issue 19).

The block is read from README.md, not copied here, so the test fails when the commands break or
drift from the code: wiki-references on the demo's Wikipedia dump, the crawl's curation,
build-quality-set, train-quality and a `refinery run` with the quality_classifier stage. Only the
demo's inputs are written (its own WARC and source-sample writers; the whole demo is slow), in a
fresh directory laid out as `make demo` leaves it, and each command goes through `pipeline.cli.main`
as a shell would hand it over: continuations joined, comments dropped, globs expanded.

What the classifier keeps is not asserted: on the demo it is at chance, and the demo WARC's record
ids, by which the negatives are sampled, are random (README says so). The stage must run, account
for every document and keep only scored ones above its threshold.
"""

from __future__ import annotations

import glob
import json
import re
import shlex
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.cli import main
from pipeline.demo import write_demo_warc
from pipeline.demo_corpus import demo_pages
from pipeline.demo_sources import write_source_samples

pytestmark = pytest.mark.integration

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = "### The quality classifier"
PROGRAM = ".venv/bin/refinery"


def readme_block() -> str:
    """The one ```bash block of README's classifier section (up to the next ## or ### heading; a
    single # is a comment in the block)."""
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n{SECTION}\n")
    end = re.compile(r"^#{2,3} ", re.MULTILINE).search(text, start + len(SECTION) + 2)
    section = text[start:end.start() if end else None]
    blocks = re.findall(r"^```bash\n(.*?)^```$", section, re.MULTILINE | re.DOTALL)
    assert len(blocks) == 1, f"{SECTION} should hold one ```bash block, found {len(blocks)}"
    return blocks[0]


def block_commands(block: str) -> list[list[str]]:
    """Each command's argv after the program name, as bash would split it (globs not yet expanded)."""
    commands = []
    for line in block.replace("\\\n", " ").splitlines():
        argv = shlex.split(line, comments=True)
        if argv:
            assert argv[0] == PROGRAM, f"README runs {argv[0]!r}, expected {PROGRAM}: {line}"
            commands.append(argv[1:])
    return commands


def expand_globs(argv: list[str]) -> list[str]:
    """bash's expansion: a pattern that matches becomes its sorted matches, one that does not stays.

    The quoted ``'stages=[quality_classifier]'`` has lost its quotes by now, but it matches no file.
    """
    out: list[str] = []
    for arg in argv:
        matches = sorted(glob.glob(arg)) if any(c in arg for c in "*?[") else []
        out.extend(matches or [arg])
    return out


def _option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_the_readme_block_is_the_llama_flow() -> None:
    names = [argv[0] for argv in block_commands(readme_block())]
    assert names == ["wiki-references", "run", "build-quality-set", "train-quality", "run"]


def test_the_readme_block_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The demo's inputs where `make demo` writes them (run_demo's step 1), and nothing else.
    write_demo_warc(tmp_path / "demo-output" / "input" / "demo-crawl.warc.gz", demo_pages())
    write_source_samples(tmp_path / "demo-output" / "input" / "sources")
    monkeypatch.chdir(tmp_path)

    commands = block_commands(readme_block())
    for argv in commands:
        assert main(expand_globs(argv)) == 0, shlex.join(argv)

    scored = Path(_option(commands[-1], "--output"))
    stats = json.loads((scored / "stats.json").read_text())
    stages = {s["stage"]: s for s in stats["funnel"]}
    assert "QualityClassifier" in stages, f"the last run has no classifier stage: {list(stages)}"
    stage = stages["QualityClassifier"]
    curated = json.loads((Path(_option(commands[-1], "--input")).parent / "stats.json").read_text())
    assert stage["in"] == curated["totals"]["kept"] > 0, "every curated document is scored"
    assert set(stage["reasons"]) <= {"quality_classifier.low_score"}
    assert stage["in"] == stage["out"] + stage["dropped"]
    assert stage["dropped"] == sum(stage["reasons"].values())
    assert stats["accounting_ok"] and stats["totals"]["kept"] == stage["out"]
    kept = pq.read_table(scored / "documents").to_pylist() if stage["out"] else []
    assert len(kept) == stage["out"] and all(d["quality_score"] >= 0.5 for d in kept)  # LLaMA's min_score
