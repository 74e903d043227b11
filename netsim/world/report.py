"""What a run reports beyond the counts: stopped_by, spam by origin and strategy, legitimate
delivery for home and roaming users by MUA port and by how they submit (who lost what, and
why), by origin ISP, delivery delays, and the hourly series.

A :class:`Summary` is accumulated from recipient rows a chunk at a time (never on the
simulation's hot path): the rows a streaming ledger hands on as they come to rest, or a
whole recipient table after the run. Each chunk is counted on the integer codes of its
dictionary-encoded columns into tallies of code combinations, and the delays into
log-bucketed histograms (:class:`Delays`), so the result is the same however the rows are
cut into chunks, and summaries of disjoint rows merge.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from netsim.mail.recipients import RECIPIENT_COLUMNS, ColumnRegistry

INTERVAL_S = 3600
CHUNK = 1 << 19   # rows counted at a time: a few tens of MB of temporaries


class RecipientColumns:
    """A recipient table's columns as numpy arrays: categorical ones as codes and words."""

    def __init__(self, table: pa.Table):
        self.table = table
        self._codes: dict[str, tuple[np.ndarray, list[str]]] = {}

    def codes(self, name: str) -> tuple[np.ndarray, list[str]]:
        """The column's codes and the word of each code."""
        if name not in self._codes:
            column = self.table.column(name).combine_chunks()
            self._codes[name] = (column.indices.to_numpy(zero_copy_only=False),
                                 column.dictionary.to_pylist())
        return self._codes[name]

    def values(self, name: str) -> np.ndarray:
        return self.table.column(name).to_numpy(zero_copy_only=False)


class ArrayColumns:
    """Columns given as arrays, as a ledger stores them (categorical ones as codes of
    ``words``); a derived column computed as the registry declares it."""

    def __init__(self, arrays: dict[str, np.ndarray], words: dict[str, list[str]],
                 columns: ColumnRegistry = RECIPIENT_COLUMNS):
        self.arrays, self.words, self.columns = arrays, words, columns

    def __len__(self) -> int:
        return len(next(iter(self.arrays.values())))

    def codes(self, name: str) -> tuple[np.ndarray, list[str]]:
        return self.arrays[name], self.words[name]

    def values(self, name: str) -> np.ndarray:
        found = self.arrays.get(name)
        return self.columns.derive(name, self.values) if found is None else found

    def part(self, rows: slice) -> ArrayColumns:
        return ArrayColumns({k: v[rows] for k, v in self.arrays.items()}, self.words,
                            self.columns)


def table_columns(table: pa.Table) -> ArrayColumns:
    """A recipient table's columns as arrays (read once)."""
    cols = RecipientColumns(table)
    arrays, words = {}, {}
    for column in table.schema:
        if pa.types.is_dictionary(column.type):
            arrays[column.name], words[column.name] = cols.codes(column.name)
        else:
            arrays[column.name] = cols.values(column.name)
    return ArrayColumns(arrays, words)


def _tally(keys: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The distinct combinations of non-negative integer keys (one row each, in order) and
    how often each occurs."""
    if not len(keys[0]):
        return np.zeros((0, len(keys)), dtype=np.int64), np.zeros(0, dtype=np.int64)
    tally = Tally(tuple(int(k.max()) + 1 for k in keys))
    tally.add(keys)
    return tally.result()


class Tally:
    """Counts of combinations of integer keys within ``dims``, added a chunk at a time: an
    array over the whole key space when it is small, the distinct keys seen otherwise."""

    def __init__(self, dims: tuple[int, ...]):
        self.dims = dims
        self.size = math.prod(dims)
        self.dense = np.zeros(self.size, dtype=np.int64) if self.size <= 1 << 20 else None
        self.parts: list[tuple[np.ndarray, np.ndarray]] = []

    def add(self, keys: list[np.ndarray]) -> None:
        flat = np.zeros(len(keys[0]), dtype=np.int64)
        for key, dim in zip(keys, self.dims, strict=True):
            flat *= dim
            flat += key
        if self.dense is not None:
            self.dense += np.bincount(flat, minlength=self.size)
        else:
            self.parts.append(np.unique(flat, return_counts=True))

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """The combinations seen (one row each, in order) and their counts."""
        if self.dense is not None:
            flat = np.flatnonzero(self.dense)
            counts = self.dense[flat]
        elif self.parts:
            seen = np.concatenate([p[0] for p in self.parts])
            flat, inverse = np.unique(seen, return_inverse=True)
            counts = np.bincount(inverse, weights=np.concatenate([p[1] for p in self.parts]),
                                 ).astype(np.int64)
        else:
            flat, counts = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        return np.stack(np.unravel_index(flat, self.dims), axis=1), counts


class Delays:
    """Durations [s] counted in logarithmic buckets, DDSketch's mapping (Masson, Rim and
    Lee, "DDSketch: a fast and fully-mergeable quantile sketch with relative-error
    guarantees", VLDB 2019): a reported quantile is within ``RELATIVE_ERROR`` (0.5 %) of
    the exact order statistic (``numpy.quantile(..., method="inverted_cdf")``) for
    durations from a microsecond to 30 years; shorter ones count as 0. The mean is exact to
    the microsecond (a sum of whole microseconds). Buckets add, so the result does not
    depend on how the durations were chunked."""

    RELATIVE_ERROR = 0.005
    GAMMA = (1 + RELATIVE_ERROR) / (1 - RELATIVE_ERROR)
    SMALLEST = 1e-6
    BUCKETS = math.ceil(math.log(1e9 / SMALLEST) / math.log(GAMMA)) + 2

    def __init__(self) -> None:
        self.buckets = np.zeros(self.BUCKETS, dtype=np.int64)
        self.micros = 0   # the durations' sum in whole microseconds (a Python int: no overflow)

    def add(self, seconds: np.ndarray) -> None:
        seconds = seconds[~np.isnan(seconds)]
        if not len(seconds):
            return
        # bucket i > 0 holds (SMALLEST·γ^(i-2), SMALLEST·γ^(i-1)]; bucket 0 what is shorter
        ratio = np.maximum(seconds, self.SMALLEST / 2) / self.SMALLEST
        index = np.where(seconds < self.SMALLEST, 0,
                         np.ceil(np.log(ratio) / math.log(self.GAMMA)).astype(np.int64) + 1)
        self.buckets += np.bincount(np.minimum(index, self.BUCKETS - 1),
                                    minlength=self.BUCKETS)
        self.micros += int(np.rint(seconds * 1e6).astype(np.int64).sum())

    def merge(self, other: Delays) -> None:
        self.buckets += other.buckets
        self.micros += other.micros

    def __len__(self) -> int:
        return int(self.buckets.sum())

    def quantile(self, q: float) -> float:
        """The ``q``-quantile's estimate: the bucket of the order statistic of rank
        ⌈q·n⌉, at the point within γ-relative error of every duration in it."""
        rank = max(1, math.ceil(q * len(self)))
        index = int(np.searchsorted(np.cumsum(self.buckets), rank))
        if index == 0:
            return 0.0
        return self.SMALLEST * 2 * self.GAMMA ** (index - 1) / (self.GAMMA + 1)

    def mean(self) -> float:
        return self.micros / len(self) / 1e6


class Summary:
    """The report of a run's recipients, accumulated from chunks of their rows (each row
    counted once, in its final state: a pending one as still pending). ``add`` a chunk;
    ``merge`` another summary of other rows; ``report`` and ``timeseries`` the result."""

    def __init__(self) -> None:
        self.words: dict[str, list[str]] = {}
        self.rows = 0
        # code combinations: (kind, stopped_by) of rows a mechanism stopped; spam (origin,
        # path, outcome, sent_out, accepted_outside); legitimate (sender, first_hop_port,
        # path, origin, outcome, stopped_by); hourly (interval, kind, origin, path, outcome,
        # with len(outcomes) for "created")
        self.stopped: Counter[tuple[int, ...]] = Counter()
        self.spam: Counter[tuple[int, ...]] = Counter()
        self.legit: Counter[tuple[int, ...]] = Counter()
        self.hourly: Counter[tuple[int, ...]] = Counter()
        # delivered legitimate mail: to the maildrop, and to its first retrieval
        self.delays = {"delivery": Delays(), "retrieval": Delays()}

    def _learn(self, words: dict[str, list[str]]) -> None:
        """Take a chunk's vocabularies: codes keep their words, new words come last."""
        for name, new in words.items():
            old = self.words.get(name, [])
            if new[:len(old)] != old and old[:len(new)] != new:
                raise ValueError(f"column {name}: these rows code its words otherwise "
                                 f"than the rows before")
            if len(new) > len(old):
                self.words[name] = list(new)

    def add(self, cols: ArrayColumns) -> None:
        """Count ``cols``' rows (their categorical columns coded as ``cols.words``)."""
        self._learn({name: cols.codes(name)[1] for name in
                     ("kind", "sender", "origin_isp", "path", "outcome", "stopped_by")})
        n = len(cols)
        self.rows += n
        for start in range(0, n, CHUNK):   # the temporaries stay small whatever the rows
            self._count(cols.part(slice(start, start + CHUNK)) if n > CHUNK else cols)

    def _count(self, cols: ArrayColumns) -> None:
        w = self.words
        kind, origin, path = cols.codes("kind")[0], cols.codes("origin_isp")[0], \
            cols.codes("path")[0]
        outcome, cause = cols.codes("outcome")[0], cols.codes("stopped_by")[0]
        named = cause != w["stopped_by"].index("")
        _into(self.stopped, [kind[named], cause[named]])
        spam = kind == w["kind"].index("spam")
        _into(self.spam, [k[spam] for k in (origin, path, outcome, cols.values("sent_out"),
                                             cols.values("accepted_outside"))])
        legit = kind == w["kind"].index("legit")
        _into(self.legit, [k[legit] for k in (cols.codes("sender")[0],
                                              cols.values("first_hop_port"), path, origin,
                                              outcome, cause)])
        delivered = legit & (outcome == w["outcome"].index("delivered"))
        created = cols.values("created_s")
        # a delivered recipient's outcome became final when it reached the maildrop
        for name, column in (("delivery", "finished_s"), ("retrieval", "retrieved_s")):
            self.delays[name].add(cols.values(column)[delivered] - created[delivered])
        # hourly: every row as created in its hour, a final one under its outcome in the
        # hour it became final
        final = outcome != w["outcome"].index("pending")
        _into(self.hourly, [(created // INTERVAL_S).astype(np.int64), kind, origin, path,
                            np.full(len(kind), len(OUTCOME_NAMES))])
        _into(self.hourly, [(cols.values("finished_s")[final] // INTERVAL_S).astype(np.int64),
                            kind[final], origin[final], path[final], outcome[final]])

    def merge(self, other: Summary) -> None:
        """Add another summary's rows (coded with the same vocabularies)."""
        self._learn(other.words)
        self.rows += other.rows
        for mine, theirs in ((self.stopped, other.stopped), (self.spam, other.spam),
                             (self.legit, other.legit), (self.hourly, other.hourly)):
            mine.update(theirs)
        for name, delays in self.delays.items():
            delays.merge(other.delays[name])

    # -- the report ------------------------------------------------------------------------
    def report(self) -> dict[str, Any]:
        """The summary's sections: stopped_by, spam_by_origin, legit_delivery,
        legit_groups, legit_by_origin, legit_delay."""
        return {"stopped_by": self.stopped_by(), "spam_by_origin": self.spam_by_origin(),
                "legit_delivery": self.legit_delivery(), "legit_groups": self.legit_groups(),
                "legit_by_origin": self.legit_by_origin(), "legit_delay": self.legit_delay()}

    def _word(self, column: str) -> Callable[[int], str]:
        words = self.words.get(column, [])
        return words.__getitem__

    def stopped_by(self) -> dict[str, dict[str, int]]:
        """``{kind: {mechanism: recipients}}`` over final outcomes that name a mechanism."""
        kind, cause = self._word("kind"), self._word("stopped_by")
        out: dict[str, dict[str, int]] = {}
        for (k, c), n in sorted(self.stopped.items()):
            out.setdefault(kind(k), {})[cause(c)] = n
        return out

    def spam_by_origin(self) -> list[dict[str, Any]]:
        """Spam by origin (ISP or hosting network) and strategy: attempted, what was sent out
        of the origin's networks (what OP25B acts on), what a server outside the origin
        accepted, and every outcome."""
        origin, path, outcome = self._word("origin_isp"), self._word("path"), \
            self._word("outcome")
        groups: dict[tuple[int, int], dict[str, Any]] = {}
        by_outcome: dict[tuple[int, int], Counter[int]] = {}
        for (o, p, r, sent, taken), n in self.spam.items():
            group = groups.setdefault((o, p), {"origin": origin(o), "strategy": path(p),
                                               "attempted": 0, "sent_out": 0,
                                               "accepted_outside": 0})
            group["attempted"] += n
            group["sent_out"] += n * bool(sent)
            group["accepted_outside"] += n * bool(taken)
            by_outcome.setdefault((o, p), Counter())[r] += n
        rows = [{**group, **{outcome(r): n for r, n in sorted(by_outcome[key].items())}}
                for key, group in groups.items()]
        return sorted(rows, key=lambda r: (r["origin"], r["strategy"]))

    def legit_delivery(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Legitimate delivery ratio (delivered ÷ attempted) for home and roaming users, by
        the MUA's submission port, and what kept the rest from an inbox."""
        return self._by_sender(1, str)

    def legit_groups(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Legitimate delivery by sender group (home, roaming) and how the mail was
        submitted (``path``: the ISP's server on 25 or 587, after a POP3 login or with AUTH
        on 25, a provider's server, a home MTA): who lost what, and why."""
        groups = self._by_sender(2, self._word("path"))
        return {who: paths for who, paths in groups.items() if paths}

    def legit_by_origin(self) -> dict[str, dict[str, Any]]:
        """Legitimate delivery by the sender's ISP, and why the rest was not delivered."""
        origin = self._word("origin_isp")
        found = self._shares(lambda key: (origin(key[3]),))
        return {o: group for (o,), group in sorted(found.items())}

    def _by_sender(self, field: int, name: Callable[[int], str],
                   ) -> dict[str, dict[str, dict[str, Any]]]:
        """Legitimate recipients of home and roaming users by the ``field``-th key of the
        legitimate tally (its words by ``name``)."""
        sender = self._word("sender")
        found = self._shares(lambda key: (sender(key[0]), name(key[field])))
        who = {"user": "home", "roaming": "roaming"}
        out: dict[str, dict[str, dict[str, Any]]] = {"home": {}, "roaming": {}}
        for (s, k), group in sorted(found.items()):
            if s in who:
                out[who[s]][k] = group
        return out

    def _shares(self, group_of: Callable[[tuple[int, ...]], tuple[str, ...]],
                ) -> dict[tuple[str, ...], dict[str, Any]]:
        """Legitimate recipients by ``group_of`` their key: attempted, delivered, the ratio,
        and what kept the rest from an inbox (``stopped_by``, else their outcome:
        ``junked``, ``pending``)."""
        outcome, cause = self._word("outcome"), self._word("stopped_by")
        out: dict[tuple[str, ...], dict[str, Any]] = {}
        for key, n in sorted(self.legit.items(), key=lambda kv: (kv[0][4], kv[0][5])):
            group = out.setdefault(group_of(key), {"attempted": 0, "delivered": 0,
                                                   "stopped_by": {}})
            why = cause(key[5]) or outcome(key[4])
            group["attempted"] += n
            if why == "delivered":
                group["delivered"] += n
            else:
                group["stopped_by"][why] = group["stopped_by"].get(why, 0) + n
        for group in out.values():
            group["ratio"] = round(group["delivered"] / group["attempted"], 6)
        return out

    def legit_delay(self) -> dict[str, float]:
        """How long delivered legitimate mail took [s]: to the maildrop, and to the
        recipient's first retrieval (mean; median and 90th percentile within
        :attr:`Delays.RELATIVE_ERROR`)."""
        out: dict[str, float] = {}
        for name, delays in self.delays.items():
            if len(delays):
                out[f"{name}_mean_s"] = round(delays.mean(), 6)
                out[f"{name}_median_s"] = round(delays.quantile(0.5), 6)
                out[f"{name}_p90_s"] = round(delays.quantile(0.9), 6)
        return out

    def timeseries(self) -> pa.Table:
        """Hourly counts: ``interval`` (hour index), kind, origin ISP, strategy (the
        submission path), outcome, count. Recipients are counted as ``created`` in the hour
        they were attempted and under their outcome in the hour it became final; pending
        ones only as created."""
        kind, origin, path = self._word("kind"), self._word("origin_isp"), self._word("path")
        names = [*OUTCOME_NAMES, "created"]
        items = sorted(self.hourly.items())
        frame = pd.DataFrame({
            "interval": np.array([k[0] for k, _ in items], dtype=np.int32),
            "kind": np.array([kind(k[1]) for k, _ in items], dtype=object),
            "origin_isp": np.array([origin(k[2]) for k, _ in items], dtype=object),
            "strategy": np.array([path(k[3]) for k, _ in items], dtype=object),
            "outcome": np.array([names[k[4]] for k, _ in items], dtype=object),
            "count": np.array([n for _, n in items], dtype=np.int64)})
        frame = frame.sort_values(["interval", "kind", "origin_isp", "strategy", "outcome"],
                                  kind="stable", ignore_index=True)
        return pa.Table.from_pandas(frame, preserve_index=False)


# the outcome column's words, in their codes' order (its vocabulary starts with them)
OUTCOME_NAMES: tuple[str, ...] = RECIPIENT_COLUMNS["outcome"].words


def _into(counter: Counter[tuple[int, ...]], keys: Iterable[np.ndarray]) -> None:
    """Count the combinations of ``keys`` into ``counter``."""
    keys = [np.asarray(k, dtype=np.int64) for k in keys]
    combos, counts = _tally(keys)
    counter.update(dict(zip(map(tuple, combos.tolist()), counts.tolist(), strict=True)))


def summarise(table: pa.Table) -> Summary:
    """The summary of a whole recipient table."""
    summary = Summary()
    if table.num_rows:
        summary.add(table_columns(table))
    return summary
