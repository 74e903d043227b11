"""Writing a run's results: each file complete or absent, never half-written.

Every file is written under a temporary name in the target folder and renamed into place;
summary.json goes last, so its presence means the run's files are all there.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pyarrow.parquet as pq

from netsim.scenario import scenario_yaml
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


def write_results(result: RunResult, out: Path) -> None:
    """summary.json, recipients.parquet, timeseries.parquet and scenario.yaml in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").unlink(missing_ok=True)   # the old set is no longer complete
    write_text(out / "scenario.yaml", scenario_yaml(result.scenario))
    _atomic_write(out / "recipients.parquet",
                  lambda tmp: pq.write_table(result.recipients, tmp))
    _atomic_write(out / "timeseries.parquet",
                  lambda tmp: pq.write_table(result.timeseries, tmp))
    write_text(out / "summary.json", json.dumps(result.summary, indent=2) + "\n")
