"""How the DAGs reach the pipeline: the ``refinery`` executable of the pipeline's own venv.

Airflow and Beam pin different versions of the same libraries, so they live in separate venvs
and the DAG never imports the pipeline; it runs the CLI with an argument list (never a shell
string) built from validated params. This module has no Airflow imports, so it stays cheap to
import at DAG-parse time.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import re
import subprocess
import urllib.request
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parent.parent
ENV_VAR = "REFINERY_EXECUTABLE"
DEFAULT_EXECUTABLE = REPO / ".venv" / "bin" / "refinery"
COMMONCRAWL_BASE_URL = "https://data.commoncrawl.org/"
# `refinery run`'s own flags, and --runner (a DAG param): runner_options may not pass them in any
# spelling. The CLI expands no abbreviations and refuses a Beam flag that abbreviates one of its
# own; refusing prefixes here too fails a bad trigger before any batch starts.
RESERVED_FLAGS = ("--input", "--output", "--config", "--set", "--overwrite", "--limit", "--base-url",
                  "--runner", "--verbose", "--help")
# What runner_options may hold: one Beam pipeline option per entry, --name or --name=value (Beam's
# names are snake_case; refinery's own use dashes). Beam's full list is not checked: it lives in the
# pipeline's venv and grows with each runner's plugins (Dask, Flink).
BEAM_OPTION = re.compile(r"--[A-Za-z0-9_]+(=.*)?", re.DOTALL)


def check_runner_options(options: Sequence[str]) -> None:
    """Raise ValueError naming the first entry that is not a Beam option, or that refinery would read."""
    for entry in options:
        if not BEAM_OPTION.fullmatch(entry):
            raise ValueError(f"runner_options entry {entry!r}: not a Beam option (--name or --name=value)")
        name = entry.split("=", 1)[0]
        if name in RESERVED_FLAGS:
            raise ValueError(f"runner_options entry {entry!r}: {name} is refinery's own flag; "
                             "use the DAG's params (output_root, config, overrides, runner) instead")
        clashes = [flag for flag in RESERVED_FLAGS if flag.startswith(name)]
        if clashes:
            raise ValueError(f"runner_options entry {entry!r}: {name} abbreviates refinery's own "
                             f"{' and '.join(clashes)}; runner_options may hold Beam options only")


def resolve_executable(explicit: str | None = None, variable: str | None = None) -> str:
    """The param wins, then the Airflow Variable, then $REFINERY_EXECUTABLE, then the repo's .venv."""
    for candidate in (explicit, variable, os.environ.get(ENV_VAR)):
        if candidate:
            return candidate
    return str(DEFAULT_EXECUTABLE)


def subcommands(executable: str) -> set[str]:
    """The subcommands ``refinery --help`` lists: argparse indents them by four spaces, options by two."""
    result = subprocess.run([executable, "--help"], capture_output=True, text=True, timeout=120, check=False)
    return set(re.findall(r"(?m)^    ([a-z][a-z0-9-]*)(?=\s|$)", result.stdout))


EXIT_USAGE = 2  # refinery's exit code for a mistake in what it was asked to do


class RefineryUsageError(RuntimeError):
    """refinery exited 2: the request itself is wrong (a bad flag, an output made from other
    inputs or config), so running it again cannot help; the DAG fails the task without retries."""


def missing_subcommands(executable: str, needed: Sequence[str]) -> list[str]:
    """The subcommands a DAG needs that this refinery lacks: a stale install is a failed
    ``validate``, never a step skipped halfway through the chain."""
    have = subcommands(executable)
    return [name for name in needed if name not in have]


def run_cli(executable: str, args: Sequence[str], *, launcher: Sequence[str] = ()) -> str:
    """Run ``refinery ARGS`` (behind ``launcher``, e.g. torchrun) and stream its output into the
    task log; raise on a non-zero exit."""
    command = [*launcher, executable, *args]
    log.info("running: %s", " ".join(command))
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        log.info("refinery: %s", line.rstrip())
    code = proc.wait()
    if code != 0:
        error = RefineryUsageError if code == EXIT_USAGE else RuntimeError
        raise error(f"refinery {args[0]} exited {code}: {''.join(lines[-5:]).strip()}")
    return "".join(lines)


def manifest_location(dump_id: str, manifest: str, base_url: str) -> str:
    """An explicit manifest wins; otherwise the dump's own warc.paths.gz under ``base_url``."""
    if manifest:
        return manifest
    base = base_url if base_url.endswith("/") else base_url + "/"
    return f"{base}crawl-data/{dump_id}/warc.paths.gz"


def read_manifest(location: str) -> list[str]:
    """The entries of a warc.paths[.gz] manifest at a local path, file:// or http(s):// URL."""
    if location.startswith(("http://", "https://")):
        with urllib.request.urlopen(location, timeout=120) as response:  # noqa: S310 - scheme checked
            data = response.read()
    else:
        data = Path(location.removeprefix("file://")).read_bytes()
    if location.endswith(".gz"):
        data = gzip.decompress(data)
    return [line.strip() for line in data.decode("utf-8").splitlines() if line.strip() and not line.startswith("#")]


def absolute(entry: str, base_url: str) -> str:
    """A manifest entry as the pipeline reads it: relative entries are joined to the base URL."""
    if "://" in entry or entry.startswith("/"):
        return entry
    base = base_url if base_url.endswith("/") else base_url + "/"
    return base + entry


def sample(entries: Sequence[str], num_files: int, how: str) -> list[str]:
    """``num_files`` of the dump (0 = all): the first ones, or evenly spread over the listing.

    Spread is deterministic, so a re-run picks the same files and finds its batches complete.
    """
    if not num_files or num_files >= len(entries):
        return list(entries)
    if how == "first":
        return list(entries[:num_files])
    step = len(entries) / num_files
    return [entries[int(i * step)] for i in range(num_files)]


def batches(entries: Sequence[str], batch_size: int) -> list[list[str]]:
    return [list(entries[i:i + batch_size]) for i in range(0, len(entries), batch_size)]


def is_local(path: str) -> bool:
    return "://" not in path or path.startswith("file://")




def run_id(request: object) -> str:
    """A run directory's name from what it is made of (inputs, config, tokenizer): the same request
    lands in the same finished run, which refinery then skips; any change makes a new run."""
    blob = json.dumps(request, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return "r-" + hashlib.sha256(blob).hexdigest()[:16]


def fingerprint(path: str) -> object:
    """A local file by size and sha256 (a tokenizer or config edited in place is another request);
    a remote one by its path only."""
    local = Path(path.removeprefix("file://"))
    if is_local(path) and local.is_file():
        return [path, hashlib.sha256(local.read_bytes()).hexdigest()]
    return path


def read_json(location: str) -> object:
    """JSON at a local path, file:// or http(s):// URL (CommonCrawl's collinfo.json)."""
    if location.startswith(("http://", "https://")):
        with urllib.request.urlopen(location, timeout=120) as response:  # noqa: S310 - scheme checked
            data = response.read()
    else:
        data = Path(location.removeprefix("file://")).read_bytes()
    return json.loads(data)


DUMP_ID = re.compile(r"CC-MAIN-\d{4}-\d{2}")


def crawl_ids(index: object, location: str) -> list[str]:
    """The weekly-style dump ids (CC-MAIN-YYYY-WW) in CommonCrawl's crawl index, oldest first."""
    if not isinstance(index, list) or not all(isinstance(e, dict) for e in index):
        raise ValueError(f"{location}: not a crawl index (a JSON list of {{\"id\": \"CC-MAIN-...\"}} entries)")
    ids = sorted({str(e.get("id", "")) for e in index if DUMP_ID.fullmatch(str(e.get("id", "")))})
    if not ids:
        raise ValueError(f"{location}: the crawl index lists no CC-MAIN-YYYY-WW dump")
    return ids


def torchrun(executable: str, nnodes: int, nproc_per_node: int, rdzv_endpoint: str, job_id: str) -> list[str]:
    """The launcher for ``refinery pretrain``: the torchrun beside the refinery executable, one
    process per GPU (or CPU worker, gloo); several nodes meet at ``rdzv_endpoint`` (host:port)."""
    launcher = [str(Path(executable).with_name("torchrun")), "--nnodes", str(nnodes),
                "--nproc_per_node", str(nproc_per_node)]
    if nnodes > 1:
        launcher += ["--rdzv_backend", "c10d", "--rdzv_endpoint", rdzv_endpoint, "--rdzv_id", job_id]
    else:
        launcher += ["--standalone"]
    return [*launcher, "--no-python"]
