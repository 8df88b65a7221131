"""The funnel: where every record went, per file, per stage and per reason.

Every stage's drops, the reader's skips and the final kept documents become ``((file, stage,
reason), n)`` pairs, summed with CombinePerKey and written as JSON lines. Beam counters would do
for a dashboard, but not every runner reports them (Dask does not), so stats.json is built from
this data output instead, which every runner writes the same way. Per file, the reader's
``records`` must equal kept plus every reason: :func:`summarize` checks that.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import apache_beam as beam

from pipeline.stage import Dropped

COUNTS = "counts"
ERRORS = "errors"
READ_STAGE = "ReadWarc"
RECORDS = "records"
OUTPUT_STAGE = "Output"
KEPT_REASON = "kept"

CountKey = tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class FileError:
    """A file that could not be read to its end: where it broke and why."""

    warc_file: str
    offset: int
    message: str


def count_key(warc_file: str, stage: str, reason: str) -> CountKey:
    return (warc_file, stage, reason)


INPUT_FILE_META = "input_file"


def input_file(doc: Any) -> str:
    """The file of this run a document came from: its ``warc_file``, unless a reader of already
    extracted documents recorded the input it read (``warc_file`` then keeps the provenance)."""
    return doc.meta.get(INPUT_FILE_META) or doc.warc_file


def dropped_count(dropped: Dropped) -> tuple[CountKey, int]:
    return count_key(input_file(dropped.doc), dropped.stage, dropped.reason), 1


def kept_count(doc: Any) -> tuple[CountKey, int]:
    return count_key(input_file(doc), OUTPUT_STAGE, KEPT_REASON), 1


def count_to_json(item: tuple[CountKey, int]) -> str:
    (warc_file, stage, reason), n = item
    return json.dumps({"file": warc_file, "stage": stage, "reason": reason, "n": n}, sort_keys=True)


def error_to_json(error: FileError) -> str:
    return json.dumps(asdict(error), sort_keys=True)


class SumCounts(beam.PTransform):
    """Flatten any number of count PCollections and sum them per key."""

    def expand(self, pcolls):
        return pcolls | "Flatten" >> beam.Flatten() | "Sum" >> beam.CombinePerKey(sum)


def summarize(
    rows: Iterable[dict[str, Any]], errors: Iterable[dict[str, Any]], stage_order: Sequence[str]
) -> dict[str, Any]:
    """stats.json's body from the summed counts: the funnel by stage, and the accounting by file."""
    by_file: dict[str, dict[str, Any]] = defaultdict(lambda: {"records": 0, "kept": 0, "dropped": {}})
    by_stage: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in rows:
        entry = by_file[row["file"]]
        if row["reason"] == RECORDS:
            entry["records"] += row["n"]
        elif row["stage"] == OUTPUT_STAGE:
            entry["kept"] += row["n"]
        else:
            entry["dropped"][row["reason"]] = entry["dropped"].get(row["reason"], 0) + row["n"]
            by_stage[row["stage"]][row["reason"]] += row["n"]
    error_list = sorted(errors, key=lambda e: e["warc_file"])
    for error in error_list:
        by_file[error["warc_file"]].setdefault("errors", []).append(
            {"offset": error["offset"], "message": error["message"]}
        )
    for entry in by_file.values():
        entry["accounted"] = entry["records"] == entry["kept"] + sum(entry["dropped"].values())
        entry["dropped"] = dict(sorted(entry["dropped"].items()))

    records = sum(e["records"] for e in by_file.values())
    kept = sum(e["kept"] for e in by_file.values())
    funnel = []
    remaining = records
    for stage in list(stage_order) + sorted(set(by_stage) - set(stage_order)):
        reasons = dict(sorted(by_stage[stage].items()))
        dropped = sum(reasons.values())
        funnel.append({"stage": stage, "in": remaining, "dropped": dropped, "out": remaining - dropped,
                       "reasons": reasons})
        remaining -= dropped
    return {
        "totals": {
            "files": len(by_file),
            "records": records,
            "kept": kept,
            "dropped": records - kept,
            "failed_files": len({e["warc_file"] for e in error_list}),
        },
        "funnel": funnel,
        "accounting_ok": all(e["accounted"] for e in by_file.values()),
        "files": dict(sorted(by_file.items())),
    }
