"""Writing a run's results: each file complete or absent, never half-written.

Every file is written under a temporary name in the target folder and renamed into place;
summary.json goes last, so its presence means the run's files are all there.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from netsim.scenario import scenario_yaml
from netsim.world.sinks import SAMPLE_EVERY, sampled_ids

if TYPE_CHECKING:
    from netsim.world.run import RunResult


def _atomic_write(path: Path, write: object) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)  # type: ignore[operator]
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str) -> None:
    _atomic_write(path, lambda tmp: Path(tmp).write_text(text, "utf-8"))


RECORD_LEVELS = ("summary", "sample", "full")


def sampled(table: pa.Table, every: int = SAMPLE_EVERY) -> pa.Table:
    """The rows of every ``every``-th message (by id): whole messages, a fixed 1/every share."""
    return table.filter(sampled_ids(table["message_id"].to_numpy(), every))


def write_results(result: RunResult, out: Path, records: str = "full") -> None:
    """summary.json, timeseries.parquet, scenario.yaml and, unless ``records`` is
    ``summary``, recipients.parquet (every recipient, or those of a 1 % sample of messages;
    a run that wrote its rows to a file of its own, ``simulate(recipients_file=...)`` in
    this folder, has it renamed into place). The summary and the hourly series are the
    same at every level."""
    if records not in RECORD_LEVELS:
        raise ValueError(f"records must be one of {RECORD_LEVELS}, not {records!r}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").unlink(missing_ok=True)   # the old set is no longer complete
    write_text(out / "scenario.yaml", scenario_yaml(result.scenario))
    if records == "summary":
        (out / "recipients.parquet").unlink(missing_ok=True)
    elif result.recipients_file is not None:   # written as the rows came to rest
        os.replace(result.recipients_file, out / "recipients.parquet")
        result.recipients_file = out / "recipients.parquet"
    else:
        table = result.recipients if records == "full" else sampled(result.recipients)
        _atomic_write(out / "recipients.parquet", lambda tmp: pq.write_table(table, tmp))
    _atomic_write(out / "timeseries.parquet",
                  lambda tmp: pq.write_table(result.timeseries, tmp))
    write_text(out / "summary.json", json.dumps(result.summary, indent=2) + "\n")
