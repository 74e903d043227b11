"""Where a streaming ledger's rows go as they come to rest (``Ledger.sink``): the run's
summary, a sample of whole messages, a Parquet file of every row."""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from netsim.mail import Ledger
from netsim.mail.ledger import table_of
from netsim.world import report
from netsim.world.helper import Helper

SAMPLE_EVERY = 100   # ``sample`` keeps the recipients of every 100th message
ROW_GROUP = 1 << 18  # rows of recipients.parquet written at a time (a few tens of MB)


def sampled_ids(message_id: np.ndarray, every: int = SAMPLE_EVERY) -> np.ndarray:
    """Which of these messages a sample keeps: every ``every``-th by id, whole messages."""
    return np.asarray(message_id) % every == 0


class Sample:
    """The rows of every ``SAMPLE_EVERY``-th message, kept as the ledger hands them on and
    put back in row order at the end."""

    def __init__(self) -> None:
        self.rows: list[np.ndarray] = []
        self.parts: list[dict[str, np.ndarray]] = []
        self.words: dict[str, list[str]] = {}

    def add(self, rows: np.ndarray, columns: dict[str, np.ndarray],
            words: dict[str, list[str]]) -> None:
        kept = sampled_ids(columns["message_id"])
        self.rows.append(rows[kept])
        self.parts.append({name: values[kept] for name, values in columns.items()})
        self.words = words   # a vocabulary only grows: the last words code every row

    def table(self) -> pa.Table:
        if not self.parts:
            return Ledger().to_arrow()
        order = np.argsort(np.concatenate(self.rows), kind="stable")
        return _table(self.parts, self.words, order)


class ParquetRows:
    """Every row, written to a Parquet file in row groups as the ledger hands them on: in
    the order they came to rest (each row group's categorical columns carry the words known
    when it was written)."""

    def __init__(self, path: Path):
        self.path = path
        self.writer = pq.ParquetWriter(path, Ledger().columns.schema)
        self.parts: list[dict[str, np.ndarray]] = []
        self.held = 0
        self.words: dict[str, list[str]] = {}

    def add(self, rows: np.ndarray, columns: dict[str, np.ndarray],
            words: dict[str, list[str]]) -> None:
        self.parts.append(columns)
        self.held += len(rows)
        self.words = words
        if self.held >= ROW_GROUP:
            self._write()

    def _write(self) -> None:
        if not self.parts:
            return
        table = _table(self.parts, self.words)
        self.parts, self.held = [], 0
        self.writer.write_table(table, row_group_size=ROW_GROUP)

    def close(self) -> None:
        self._write()
        self.writer.close()


def _table(parts: list[dict[str, np.ndarray]], words: dict[str, list[str]],
           order: np.ndarray | None = None) -> pa.Table:
    """The recipient table of rows handed on in ``parts`` (in ``order``, if given)."""
    joined = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
    if order is not None:
        joined = {name: values[order] for name, values in joined.items()}
    return table_of(Ledger().columns, joined.__getitem__, words)


class Sinks:
    """What a streaming ledger hands its rows at rest to: the summary, and a sample or a
    file of every row, counted and kept by the run's ``helper`` (on its thread, if it has
    one), in the order handed on, at most ``AHEAD`` hand-overs behind (their rows are held
    till then): ``wait`` for them before reading the summary or the rows."""

    AHEAD = 2

    def __init__(self, summary: report.Summary, rows: Sample | ParquetRows | None,
                 helper: Helper):
        self.summary, self.rows = summary, rows
        self.helper = helper
        self._pending: deque[Future[None]] = deque()

    def __call__(self, rows: np.ndarray, columns: dict[str, np.ndarray],
                 words: dict[str, list[str]]) -> None:
        while len(self._pending) >= self.AHEAD:
            self._pending.popleft().result()
        self._pending.append(self.helper.submit(self._take, rows, columns, words))

    def wait(self) -> None:
        """Once every row handed on is counted and kept (raises what counting raised)."""
        while self._pending:
            self._pending.popleft().result()

    def _take(self, rows: np.ndarray, columns: dict[str, np.ndarray],
              words: dict[str, list[str]]) -> None:
        self.summary.add(report.ArrayColumns(columns, words))
        if self.rows is not None:
            self.rows.add(rows, columns, words)
