"""What a run reports beyond the counts: stopped_by, spam by origin and strategy, legitimate
delivery for home and roaming users by MUA port and by how they submit (who lost what, and
why), by origin ISP, credentials, and the hourly series.

Computed once, after the run, from the recipient table (never on the simulation's hot path),
on the integer codes of its dictionary-encoded columns: counting a country's twenty million
recipients takes a few arrays of their size, not a data frame of strings.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from netsim.mail.ledger import Ledger

INTERVAL_S = 3600
CHUNK = 1 << 21


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

    def is_(self, name: str, word: str) -> np.ndarray:
        codes, words = self.codes(name)
        return codes == words.index(word) if word in words else np.zeros(len(codes), bool)

    def values(self, name: str) -> np.ndarray:
        return self.table.column(name).to_numpy(zero_copy_only=False)


class LedgerColumns(RecipientColumns):
    """The same columns read in place from a ledger's typed arrays as its registry declares
    them (no table is built; a derived column computed): what a run that keeps only its
    summary reports from."""

    def __init__(self, ledger: Ledger):
        self.ledger = ledger
        self._codes = {}

    def codes(self, name: str) -> tuple[np.ndarray, list[str]]:
        if name not in self._codes:
            self._codes[name] = (self.values(name), self.ledger.vocab[name].words)
        return self._codes[name]

    def values(self, name: str) -> np.ndarray:
        return self.ledger.view(name)


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
        self.dense = np.zeros(self.size, dtype=np.int64) if self.size <= 1 << 24 else None
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


def stopped_by(cols: RecipientColumns) -> dict[str, dict[str, int]]:
    """``{kind: {mechanism: recipients}}`` over final outcomes that name a mechanism."""
    kind, kinds = cols.codes("kind")
    cause, causes = cols.codes("stopped_by")
    named = ~cols.is_("stopped_by", "")
    out: dict[str, dict[str, int]] = {}
    for (k, c), n in zip(*_tally([kind[named], cause[named]]), strict=True):
        out.setdefault(kinds[k], {})[causes[c]] = int(n)
    return out


def spam_by_origin(cols: RecipientColumns) -> list[dict[str, Any]]:
    """Spam by origin (ISP or hosting network) and strategy: attempted, what was sent out of
    the origin's networks (what OP25B acts on), what a server outside the origin accepted,
    and every outcome."""
    spam = cols.is_("kind", "spam")
    origin, origins = cols.codes("origin_isp")
    path, paths = cols.codes("path")
    outcome, outcomes = cols.codes("outcome")
    groups, attempted = _tally([origin[spam], path[spam]])
    crossed: dict[str, dict[tuple[int, int], int]] = {}
    for name in ("sent_out", "accepted_outside"):
        gone = spam & cols.values(name).astype(bool)
        keys, counts = _tally([origin[gone], path[gone]])
        crossed[name] = dict(zip(map(tuple, keys.tolist()), counts.tolist(), strict=True))
    by_outcome: dict[tuple[int, int], dict[str, int]] = {}
    for (o, p, r), n in zip(*_tally([origin[spam], path[spam], outcome[spam]]), strict=True):
        by_outcome.setdefault((int(o), int(p)), {})[outcomes[r]] = int(n)
    rows = []
    for (o, p), n in zip(groups.tolist(), attempted.tolist(), strict=True):
        rows.append({"origin": origins[o], "strategy": paths[p], "attempted": int(n),
                     **{name: int(counts.get((o, p), 0)) for name, counts in crossed.items()},
                     **by_outcome[(o, p)]})
    return sorted(rows, key=lambda r: (r["origin"], r["strategy"]))


def legit_delivery(cols: RecipientColumns) -> dict[str, dict[str, dict[str, Any]]]:
    """Legitimate delivery ratio (delivered ÷ attempted) for home and roaming users, by the
    MUA's submission port, and what kept the rest from an inbox."""
    port = cols.values("first_hop_port")   # a port is its own code: no array as long
    return _by_sender(cols, port, [str(p) for p in range(int(port.max(initial=0)) + 1)])


def _shares(cols: RecipientColumns, mine: np.ndarray, keys: list[np.ndarray],
            names: list[list[str]]) -> dict[tuple[str, ...], dict[str, Any]]:
    """Legitimate recipients of ``mine`` by the keys' words: attempted, delivered, the
    ratio, and what kept the rest from an inbox (``stopped_by``, else their outcome:
    ``junked``, ``pending``)."""
    outcome, outcomes = cols.codes("outcome")
    cause, causes = cols.codes("stopped_by")
    words = [outcomes[o] if causes[c] == "" else causes[c]
             for o in range(len(outcomes)) for c in range(len(causes))]
    why = outcome * len(causes) + cause
    out: dict[tuple[str, ...], dict[str, Any]] = {}
    groups, counts = _tally([k[mine] for k in keys] + [why[mine]])
    for (*key, w), n in zip(groups.tolist(), counts.tolist(), strict=True):
        group = out.setdefault(tuple(names[j][k] for j, k in enumerate(key)),
                               {"attempted": 0, "delivered": 0, "stopped_by": {}})
        group["attempted"] += n
        if words[w] == "delivered":
            group["delivered"] += n
        else:
            group["stopped_by"][words[w]] = group["stopped_by"].get(words[w], 0) + n
    for group in out.values():
        group["ratio"] = round(group["delivered"] / group["attempted"], 6)
    return out


def legit_groups(cols: RecipientColumns) -> dict[str, dict[str, dict[str, Any]]]:
    """Legitimate delivery by sender group (home, roaming) and how the mail was submitted
    (``path``: the ISP's server on 25 or 587, after a POP3 login or with AUTH on 25, a
    provider's server, a home MTA): who lost what, and why."""
    path, paths = cols.codes("path")
    groups = _by_sender(cols, path, paths)
    return {who: paths_ for who, paths_ in groups.items() if paths_}


def _by_sender(cols: RecipientColumns, key: np.ndarray,
               names: list[str]) -> dict[str, dict[str, dict[str, Any]]]:
    """Legitimate recipients of home and roaming users by ``key`` (codes of ``names``)."""
    sender, senders = cols.codes("sender")
    found = _shares(cols, cols.is_("kind", "legit"), [sender, key], [senders, names])
    who = {"user": "home", "roaming": "roaming"}
    out: dict[str, dict[str, dict[str, Any]]] = {"home": {}, "roaming": {}}
    for (s, k), group in sorted(found.items()):
        if s in who:
            out[who[s]][k] = group
    return out


def legit_by_origin(cols: RecipientColumns) -> dict[str, dict[str, Any]]:
    """Legitimate delivery by the sender's ISP, and why the rest was not delivered."""
    legit = cols.is_("kind", "legit")
    origin, origins = cols.codes("origin_isp")
    return {o: group for (o,), group in sorted(_shares(cols, legit, [origin],
                                                       [origins]).items())}


def legit_delay(cols: RecipientColumns) -> dict[str, float]:
    """How long delivered legitimate mail took [s]: to the maildrop, and to the recipient's
    first POP3 retrieval."""
    legit = cols.is_("kind", "legit") & cols.is_("outcome", "delivered")
    created = cols.values("created_s")[legit]
    out: dict[str, float] = {}
    # a delivered recipient's outcome became final when it reached the maildrop
    for name, column in (("delivery", "finished_s"), ("retrieval", "retrieved_s")):
        values = cols.values(column)[legit] - created
        values = values[~np.isnan(values)]
        if len(values):
            out[f"{name}_mean_s"] = round(float(values.mean()), 6)
            out[f"{name}_median_s"] = round(float(np.median(values)), 6)
            out[f"{name}_p90_s"] = round(float(np.quantile(values, 0.9)), 6)
    return out


def timeseries(cols: RecipientColumns) -> pa.Table:
    """Hourly counts: ``interval`` (hour index), kind, origin ISP, strategy (the submission
    path), outcome, count. Recipients are counted as ``created`` in the hour they were
    attempted and under their outcome in the hour it became final; pending ones only as
    created."""
    kind, kinds = cols.codes("kind")
    origin, origins = cols.codes("origin_isp")
    path, paths = cols.codes("path")
    outcome, outcomes = cols.codes("outcome")
    created_s, finished_s = cols.values("created_s"), cols.values("finished_s")
    names = [*outcomes, "created"]
    pending = outcomes.index("pending")
    last = max(float(np.nanmax(created_s, initial=0.0)), float(np.nanmax(finished_s, initial=0.0)))
    dims = (int(last // INTERVAL_S) + 1, len(kinds), len(origins), len(paths), len(names))
    tally = Tally(dims)
    # a few million recipients at a time: the temporaries stay small whatever the run
    for start in range(0, len(kind), CHUNK):
        rows = slice(start, start + CHUNK)
        group = [kind[rows], origin[rows], path[rows]]
        created = (created_s[rows] // INTERVAL_S).astype(np.int64)
        tally.add([created, *group, np.full(len(created), len(outcomes))])
        final = outcome[rows] != pending
        finished = (finished_s[rows][final] // INTERVAL_S).astype(np.int64)
        tally.add([finished, *(g[final] for g in group), outcome[rows][final]])
    keys, counts = tally.result()
    frame = pd.DataFrame({
        "interval": keys[:, 0].astype(np.int32),
        "kind": np.array(kinds, dtype=object)[keys[:, 1]] if len(keys) else [],
        "origin_isp": np.array(origins, dtype=object)[keys[:, 2]] if len(keys) else [],
        "strategy": np.array(paths, dtype=object)[keys[:, 3]] if len(keys) else [],
        "outcome": np.array(names, dtype=object)[keys[:, 4]] if len(keys) else [],
        "count": counts.astype(np.int64)})
    frame = frame.sort_values(["interval", "kind", "origin_isp", "strategy", "outcome"],
                              kind="stable", ignore_index=True)
    return pa.Table.from_pandas(frame, preserve_index=False)
