"""Issue 17, item 2: no spelling of a flag reaches refinery's own --output, --overwrite or --input.

argparse expanded abbreviations, so a DAG trigger's runner_options entry `--out=/x` passed the
reserved-flag check and was read by `refinery run` as `--output=/x`. Now no parser expands them,
the CLI refuses a Beam flag that abbreviates one of its own, and the DAG refuses every prefix.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from airflow_dags.refinery_cli import RESERVED_FLAGS, check_runner_options
from pipeline import cli
from tests.conftest import REPO

REFUSED = ["--out=/x", "--ov", "--inp=gs://elsewhere/*.warc.gz", "--output=/x", "--overwrite", "--outp",
           "--conf=other.yaml", "--se=stages=[]", "--base=https://evil/", "--runner=DataflowRunner", "--help",
           "--base-url=https://evil/", "output=/x", "-v", "--=/x"]


@pytest.mark.parametrize("entry", REFUSED)
def test_the_dag_refuses_refinery_flags_in_every_spelling(entry: str) -> None:
    with pytest.raises(ValueError, match=re.escape(f"runner_options entry {entry!r}")):
        check_runner_options(["--temp_location=/tmp/beam", entry])


def test_beam_options_pass_and_an_abbreviation_is_named() -> None:
    lines = [line.strip() for path in sorted((REPO / "configs" / "runners").glob("*.args"))
             for line in path.read_text().splitlines()]
    shipped = [line for line in lines if line.startswith("--") and not line.startswith("--runner=")]
    assert len(shipped) > 10
    check_runner_options(shipped + ["--direct_num_workers=2", "--save_main_session"])
    with pytest.raises(ValueError, match="--out abbreviates refinery's own --output;"):
        check_runner_options([*shipped, "--out=/x"])
    with pytest.raises(ValueError, match="--o abbreviates refinery's own --output and --overwrite;"):
        check_runner_options(["--o"])


def test_every_flag_of_refinery_run_is_reserved() -> None:
    subcommands = next(a for a in cli._parser()._actions if isinstance(a, argparse._SubParsersAction))
    run_flags = {flag for action in subcommands.choices["run"]._actions for flag in action.option_strings
                 if flag.startswith("--")}
    assert run_flags <= set(RESERVED_FLAGS)


@pytest.mark.parametrize("flag", ["--out", "--ov", "--inp", "--conf"])
def test_the_cli_refuses_an_abbreviated_flag_instead_of_expanding_it(
        flag: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    elsewhere = tmp_path / "elsewhere"
    argv = ["run", "--input", str(tmp_path / "missing.warc.gz"), "--output", str(tmp_path / "out"),
            f"{flag}={elsewhere}"]
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert f"unrecognized arguments: {flag}={elsewhere}" in err and "never abbreviated" in err
    assert not elsewhere.exists()


@pytest.mark.parametrize("command", sorted(cli.DELEGATED) + ["run", "estimate", "demo", "train-quality"])
def test_no_parser_expands_abbreviations(command: str, monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[argparse.ArgumentParser] = []
    init = argparse.ArgumentParser.__init__

    def recording_init(self: argparse.ArgumentParser, *args, **kwargs) -> None:
        init(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(argparse.ArgumentParser, "__init__", recording_init)
    try:
        cli.main([command, "--help"])
    except SystemExit as exc:
        assert exc.code == 0
    assert made and all(p.allow_abbrev is False for p in made), [p.prog for p in made if p.allow_abbrev]
