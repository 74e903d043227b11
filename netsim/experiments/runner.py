"""Running a study: every missing run, on local processes or a Dask cluster, written
atomically, then gathered into runs.parquet and timeseries.parquet.

Each finished run is written as two files under DIR/runs/: its timeseries, then its record
(JSON: labels and the run's summary), the record last, so its presence means the run is
complete. A rerun skips runs
whose row is there and whose scenario is unchanged; a kill loses only the runs in flight.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
from collections.abc import Generator
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from netsim.experiments.metrics import flatten, is_count
from netsim.experiments.study import Plan, RunSpec
from netsim.scenario.load import validate
from netsim.world.results import write_text


class ExecutorError(Exception):
    """The executor cannot be used (e.g. a scheduler that cannot be reached)."""


@dataclass(frozen=True)
class RunOutput:
    run_id: str
    record: dict[str, Any]   # labels, scenario hash and the run's whole summary
    timeseries: bytes        # Arrow IPC stream: picklable and compact


def run_one(spec: RunSpec) -> RunOutput:
    """Simulate one run (in whatever process or machine executes it)."""
    from netsim.world.run import simulate  # the simulator: a worker's, not the parent's

    scenario = validate(spec.scenario, f"run {spec.run_id}")
    result = simulate(scenario, replication=spec.replication, records="summary")
    record = {"labels": spec.labels(), "scenario_hash": spec.scenario_hash,
              "summary": result.summary}
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, result.timeseries.schema) as writer:
        writer.write_table(result.timeseries)
    return RunOutput(spec.run_id, record, sink.getvalue())


def _row_path(out: Path, spec: RunSpec) -> Path:
    return out / "runs" / f"{spec.run_id}.json"


def _series_path(out: Path, spec: RunSpec) -> Path:
    return out / "runs" / f"{spec.run_id}.timeseries.parquet"


def is_done(out: Path, spec: RunSpec) -> bool:
    path = _row_path(out, spec)
    if not path.exists() or not _series_path(out, spec).exists():
        return False
    try:
        return bool(json.loads(path.read_text())["scenario_hash"] == spec.scenario_hash)
    except (ValueError, KeyError):
        return False   # a row from another version of the study: run again


def _store(out: Path, spec: RunSpec, output: RunOutput) -> None:
    table = pa.ipc.open_stream(output.timeseries).read_all()
    series = _series_path(out, spec)
    tmp = series.with_suffix(".tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, series)
    write_text(_row_path(out, spec), json.dumps(output.record) + "\n")


def local_pool(jobs: int) -> ProcessPoolExecutor:
    """``jobs`` worker processes, to keep for every round of a study's runs (a worker's
    start loads the simulator, most of a second); spawned: workers start clean, whatever
    threads the parent holds."""
    return ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn"))


def _local(specs: list[RunSpec], jobs: int, pool: ProcessPoolExecutor | None = None,
           ) -> Generator[tuple[RunSpec, RunOutput], None, None]:
    if jobs <= 1:
        for spec in specs:
            yield spec, run_one(spec)
        return
    own = pool is None   # a pool made for these runs is shut down after them
    pool = local_pool(jobs) if pool is None else pool
    futures: dict[Future[RunOutput], RunSpec] = {}
    finished = False
    try:
        futures = {pool.submit(run_one, spec): spec for spec in specs}
        for future in as_completed(futures):
            yield futures[future], future.result()
        finished = True
    finally:
        # on an interruption, stop the runs in flight and drop those not started instead
        # of waiting for them (the next call runs them again): the workers are terminated,
        # and the pool's manager thread then fails every pending future. Not cancelled
        # here as well: that thread would find them cancelled and raise in its own thread
        if not finished:
            _stop_workers(pool)
        if own or not finished:
            pool.shutdown(wait=False)


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """Terminate a pool's worker processes (Python 3.14 has a method for it); a pool shut
    down already has none left to terminate."""
    terminate = getattr(pool, "terminate_workers", None)
    if terminate is not None:
        terminate()
        return
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        process.terminate()


def connect_dask(scheduler: str | None) -> Any:
    """A dask.distributed client: to ``scheduler``, or to a new local cluster."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ExecutorError("the dask executor needs dask.distributed: "
                            "pip install 'netsim[dask]'") from None
    if scheduler is None:
        return Client(LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                   dashboard_address=None))
    try:
        return Client(scheduler, timeout="10s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise ExecutorError(f"--scheduler {scheduler}: cannot reach the Dask scheduler "
                            f"({exc})") from None


def _dask(specs: list[RunSpec], client: Any,
          ) -> Generator[tuple[RunSpec, RunOutput], None, None]:
    from distributed import as_completed as dask_completed

    futures = {client.submit(run_one, spec, pure=False): spec for spec in specs}
    try:
        for future in dask_completed(futures):
            yield futures[future], future.result()
    finally:
        client.cancel([f for f in futures if not f.done()])   # interrupted: stop the rest


def run_plan(plan: Plan, out: Path, *, jobs: int = 1, executor: str = "local",
             client: Any = None, pool: ProcessPoolExecutor | None = None,
             progress: bool = True) -> int:
    """Run what is missing of ``plan`` into ``out``; returns how many runs were simulated.
    ``client``: the Dask client (executor ``dask``); ``pool``: local workers kept across
    calls (``local_pool``; None: made for this call)."""
    (out / "runs").mkdir(parents=True, exist_ok=True)
    missing = [spec for spec in plan.runs if not is_done(out, spec)]
    stream = _dask(missing, client) if executor == "dask" else _local(missing, jobs, pool)
    bar = tqdm(total=len(missing), desc=plan.study.name, unit="run", file=sys.stderr,
               disable=not progress or not missing)
    # closed at once however the loop ends (a Ctrl-C may land while a run is stored): its
    # runs in flight are stopped then, while the pool is still the caller's to shut down
    with bar, contextlib.closing(stream):
        for spec, output in stream:
            _store(out, spec, output)
            bar.update()
    gather(plan, out)
    return len(missing)


def gather(plan: Plan, out: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """runs.parquet and timeseries.parquet from the stored runs of the plan, in plan order.
    Metrics are computed here from each run's stored summary, so a new metric needs no
    new simulation."""
    rows = []
    for spec in plan.runs:
        record = json.loads(_row_path(out, spec).read_text())
        rows.append({**record["labels"], "scenario_hash": record["scenario_hash"],
                     **flatten(record["summary"])})
    runs = pd.DataFrame(rows)
    for column in runs.columns:
        if column not in ("study", "arm", "scenario_hash", *plan.study.grid) and is_count(column):
            runs[column] = runs[column].fillna(0)
    series = []
    for spec in plan.runs:
        frame = pq.read_table(_series_path(out, spec)).to_pandas()
        for key, value in spec.labels().items():
            frame[key] = value
        series.append(frame)
    timeseries = pd.concat(series, ignore_index=True) if series else pd.DataFrame()
    _write_parquet(out / "runs.parquet", runs)
    _write_parquet(out / "timeseries.parquet", timeseries)
    write_text(out / "study.json", json.dumps(
        {"study": plan.study.model_dump(mode="json"), "source": plan.source,
         "runs": len(plan.runs)}, indent=2) + "\n")
    return runs, timeseries


def _write_parquet(path: Path, frame: pd.DataFrame) -> None:
    tmp = path.with_suffix(".tmp")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)
