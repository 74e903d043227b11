"""The ledger: one row per message recipient, and the conservation law over it.

Rows are stored column by column in typed arrays (``array.array``: small integer codes and
8-byte floats), so a run holds no Python object per recipient, a row costs 52 bytes,
and the table converts to Arrow without copying field by field. Outcomes are final once set:
setting one twice is a bug and raises at once, which is what makes the conservation check
meaningful.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable
from enum import StrEnum
from itertools import repeat
from typing import Any

import numpy as np
import pyarrow as pa

from netsim.mail.message import Kind, Mail, SenderType, domain_of


class Outcome(StrEnum):
    """Final states of a recipient (MODEL.md), plus ``pending`` while it is still queued."""

    PENDING = "pending"
    DELIVERED = "delivered"
    JUNKED = "junked"
    BLOCKED = "blocked"
    REJECTED = "rejected"
    EXPIRED = "expired"


OUTCOMES = tuple(Outcome)
KINDS = tuple(Kind)
_NAN = math.nan


# a new row's outcome (pending: code 0), reply code, mechanism and instants, one element each
_BLANK: dict[str, array[Any]] = {
    "outcome": array("b", [0]), "reply_code": array("h", [0]), "stopped_by": array("h", [0]),
    "retrieved_s": array("d", [_NAN]), "finished_s": array("d", [_NAN]),
    "left_origin": array("b", [0])}

NUMPY_TYPES: dict[str, type[Any]] = {"b": np.int8, "h": np.int16, "i": np.int32, "q": np.int64,
                                     "d": np.float64}


class ConservationError(AssertionError):
    """Recipients were lost or counted twice: the run's figures cannot be trusted."""


class Vocabulary:
    """Strings to small integer codes, for categorical columns."""

    def __init__(self, words: Iterable[str] = ()):
        self.words: list[str] = []
        self._codes: dict[str, int] = {}
        for word in words:
            self.code(word)

    def code(self, word: str) -> int:
        found = self._codes.get(word)
        if found is None:
            found = self._codes[word] = len(self.words)
            self.words.append(word)
        return found


class Ledger:
    """Every recipient of every message, from creation to its final outcome."""

    def __init__(self) -> None:
        self.vocab = {name: Vocabulary(words) for name, words in (
            ("kind", [k.value for k in Kind]), ("sender", [s.value for s in SenderType]),
            ("outcome", [o.value for o in Outcome]), ("origin_isp", []),
            ("origin_network", []), ("path", []), ("rcpt_domain", []), ("stopped_by", [""]))}
        self._kind = {k: self.vocab["kind"].code(k.value) for k in Kind}
        self._outcome = {o: self.vocab["outcome"].code(o.value) for o in Outcome}
        self.message_id = array("q")
        self.rcpt_index = array("h")
        self.kind = array("b")
        self.sender = array("b")
        self.origin_isp = array("h")
        self.origin_network = array("h")
        self.path = array("h")
        self.first_hop_port = array("h")
        self.rcpt_domain = array("h")
        self.outcome = array("b")
        self.reply_code = array("h")
        self.stopped_by = array("h")
        self.created_s = array("d")
        self.retrieved_s = array("d")
        self.finished_s = array("d")
        self.left_origin = array("b")
        self.attempted = dict.fromkeys(Kind, 0)
        self.finished = {k: dict.fromkeys(OUTCOMES[1:], 0) for k in Kind}
        self._pending = self._outcome[Outcome.PENDING]
        assert self._pending == _BLANK["outcome"][0], "a new row starts pending"

    def __len__(self) -> int:
        return len(self.message_id)

    def add(self, mail: Mail, recipients: Iterable[str], *, origin_isp: str, origin_network: str,
            path: str, first_hop_port: int) -> None:
        """Open one row per recipient of a new message (each starts ``pending``)."""
        v = self.vocab
        start = len(self.message_id)
        addresses = list(recipients)
        n = len(addresses)
        mail.rows.update(zip(addresses, range(start, start + n), strict=True))
        domain = v["rcpt_domain"].code
        first = domain_of(addresses[0]) if n else ""
        if all(map(str.endswith, addresses, repeat(f"@{first}"))):   # the usual: one domain
            self.rcpt_domain.extend(array("h", [domain(first)]) * n)
        else:
            self.rcpt_domain.extend([domain(domain_of(a)) for a in addresses])
        self.rcpt_index.extend(range(n))
        values: tuple[tuple[array, float], ...] = (
            (self.message_id, mail.id), (self.kind, self._kind[mail.kind]),
            (self.sender, v["sender"].code(mail.sender.value)),
            (self.origin_isp, v["origin_isp"].code(origin_isp)),
            (self.origin_network, v["origin_network"].code(origin_network)),
            (self.path, v["path"].code(path)), (self.first_hop_port, first_hop_port),
            (self.created_s, mail.created))
        for column, value in values:
            column.extend(array(column.typecode, [value]) * n)   # filled in C, not a list
        for name, blank in _BLANK.items():                      # what every new row starts as
            getattr(self, name).extend(blank * n)
        self.attempted[mail.kind] += len(mail.rows)

    def finish(self, row: int, outcome: Outcome, at: float, *, code: int = 0,
               stopped_by: str = "") -> None:
        """Record a recipient's final outcome; a second outcome for one row is a bug."""
        self.finish_many((row,), outcome, at, code=code, stopped_by=stopped_by)

    def finish_many(self, rows: Iterable[int], outcome: Outcome, at: float, *, code: int = 0,
                    stopped_by: str = "") -> None:
        """:meth:`finish` for recipients that end alike at one instant (a session's)."""
        if outcome is Outcome.PENDING:
            raise ValueError("pending is not a final outcome")
        state, pending, kinds = self.outcome, self._pending, self.kind
        value = self._outcome[outcome]
        stop = self.vocab["stopped_by"].code(stopped_by) if stopped_by else 0
        counts = self.finished
        for row in rows:
            if state[row] != pending:
                raise ConservationError(
                    f"recipient row {row} (message {self.message_id[row]}) already has "
                    f"outcome {self.vocab['outcome'].words[state[row]]}; cannot also be "
                    f"{outcome}")
            state[row] = value
            self.finished_s[row] = at
            self.reply_code[row] = code
            if stop:
                self.stopped_by[row] = stop
            counts[KINDS[kinds[row]]][outcome] += 1

    # -- in bulk, for the flow path: the same rows and checks, a batch at a time -----------
    def code(self, column: str, word: str) -> int:
        """The integer code of ``word`` in a categorical column."""
        return self.vocab[column].code(word)

    def add_rows(self, kind: Kind, *, message_id: np.ndarray, rcpt_index: np.ndarray,
                 sender: np.ndarray, origin_isp: np.ndarray, origin_network: np.ndarray,
                 path: np.ndarray, first_hop_port: np.ndarray, rcpt_domain: np.ndarray,
                 created: np.ndarray) -> int:
        """Open rows (all ``pending``) from arrays, one entry a row, categorical columns as
        codes; returns the first new row's number."""
        start = len(self.message_id)
        n = len(message_id)
        for column, values in ((self.message_id, message_id), (self.rcpt_index, rcpt_index),
                               (self.sender, sender), (self.origin_isp, origin_isp),
                               (self.origin_network, origin_network), (self.path, path),
                               (self.first_hop_port, first_hop_port),
                               (self.rcpt_domain, rcpt_domain), (self.created_s, created)):
            column.frombytes(np.asarray(values, dtype=NUMPY_TYPES[column.typecode]).tobytes())
        self.kind.extend(array("b", [self._kind[kind]]) * n)
        for name, blank in _BLANK.items():                      # what every new row starts as
            getattr(self, name).extend(blank * n)
        self.attempted[kind] += n
        return start

    def finish_rows(self, rows: np.ndarray, outcome: Outcome, at: np.ndarray, *,
                    code: np.ndarray | int = 0, stopped_by: np.ndarray | int = 0) -> None:
        """:meth:`finish` for many rows at once (``stopped_by`` as vocabulary codes)."""
        if outcome is Outcome.PENDING:
            raise ValueError("pending is not a final outcome")
        if not len(rows):
            return
        state = np.frombuffer(self.outcome, dtype=np.int8)
        done = rows[state[rows] != self._pending]
        if len(done):
            raise ConservationError(f"recipient rows {done[:10].tolist()} already have an "
                                    f"outcome; cannot also be {outcome}")
        state[rows] = self._outcome[outcome]
        np.frombuffer(self.finished_s, dtype=np.float64)[rows] = at
        np.frombuffer(self.reply_code, dtype=np.int16)[rows] = code
        np.frombuffer(self.stopped_by, dtype=np.int16)[rows] = stopped_by
        kinds = np.bincount(np.frombuffer(self.kind, dtype=np.int8)[rows], minlength=len(KINDS))
        for k, n in zip(KINDS, kinds.tolist(), strict=True):
            self.finished[k][outcome] += n
        del state

    def left_rows(self, rows: np.ndarray) -> None:
        np.frombuffer(self.left_origin, dtype=np.int8)[rows] = 1

    def retrieved_rows(self, rows: np.ndarray, at: np.ndarray) -> None:
        """Record first retrievals (rows not yet retrieved)."""
        column = np.frombuffer(self.retrieved_s, dtype=np.float64)
        first = np.isnan(column[rows])
        column[rows[first]] = at[first]

    def left(self, row: int) -> None:
        """Mark a recipient as taken over by a server outside its origin network's ISP."""
        self.left_origin[row] = 1

    def retrieved(self, row: int, at: float) -> None:
        """Record the first POP3 retrieval of a delivered recipient."""
        if math.isnan(self.retrieved_s[row]):
            self.retrieved_s[row] = at

    def at_rest(self, rows: Iterable[int]) -> bool:
        """True when each of ``rows`` has its final outcome and each delivered one has been
        retrieved by POP3: nothing more happens to these recipients."""
        outcome, retrieved = self.outcome, self.retrieved_s
        pending, delivered = self._pending, self._outcome[Outcome.DELIVERED]
        for row in rows:
            state = outcome[row]
            if state == pending or (state == delivered and math.isnan(retrieved[row])):
                return False
        return True

    def pending_rows(self) -> set[int]:
        codes = np.frombuffer(self.outcome, dtype=np.int8)
        return set(np.flatnonzero(codes == self._pending).tolist())

    def counts(self) -> dict[str, dict[str, int]]:
        """``{kind: {outcome: n}}`` over recipients, every outcome listed."""
        out = {}
        for kind in Kind:
            done = self.finished[kind]
            row = {o.value: done[o] for o in OUTCOMES[1:]}
            row[Outcome.PENDING.value] = self.attempted[kind] - sum(done.values())
            out[kind.value] = row
        return out

    def check_conservation(self, held: set[int]) -> None:
        """MODEL.md's law: per kind, attempted = delivered + junked + blocked + rejected +
        expired + pending; and the pending rows are exactly those some queue still holds."""
        pending = self.pending_rows()
        problems = []
        by_kind = dict.fromkeys(Kind, 0)
        for row in pending:
            by_kind[KINDS[self.kind[row]]] += 1
        for kind in Kind:
            total = sum(self.finished[kind].values()) + by_kind[kind]
            if total != self.attempted[kind]:
                problems.append(f"{kind}: attempted {self.attempted[kind]} != outcomes {total}")
        lost = pending - held
        if lost:
            problems.append(f"{len(lost)} pending recipient(s) held by no queue "
                            f"(rows {sorted(lost)[:10]})")
        ghosts = held - pending
        if ghosts:
            problems.append(f"{len(ghosts)} recipient(s) still queued but already final "
                            f"(rows {sorted(ghosts)[:10]})")
        if problems:
            raise ConservationError("conservation of recipients broken: " + "; ".join(problems))

    def delivered_s(self) -> np.ndarray:
        """When each recipient reached a maildrop or junk folder (NaN for any other outcome):
        the instant its outcome became final, so the ledger keeps no column of its own."""
        outcome = np.frombuffer(self.outcome, dtype=np.int8)
        stored = np.isin(outcome, [self._outcome[Outcome.DELIVERED],
                                   self._outcome[Outcome.JUNKED]])
        return np.where(stored, np.frombuffer(self.finished_s, dtype=np.float64), _NAN)

    def to_arrow(self, release: bool = False) -> pa.Table:
        """The ledger as an Arrow table, categorical columns dictionary-encoded. With
        ``release``, each column is freed once copied (the ledger keeps only its counts),
        so a country's table never exists twice over."""
        v = self.vocab

        def take(name: str) -> np.ndarray:
            column: array = getattr(self, name)
            values = np.frombuffer(column, dtype=NUMPY_TYPES[column.typecode]).copy()
            if release:
                setattr(self, name, array(column.typecode))
            return values

        def floats(name: str) -> pa.Array:
            # NaN (never happened) becomes null, which Arrow compares and pandas reads as NaN
            return pa.array(take(name), from_pandas=True)

        def categories(name: str) -> pa.DictionaryArray:
            return pa.DictionaryArray.from_arrays(pa.array(take(name).astype(np.int32)),
                                                  pa.array(v[name].words, pa.string()))

        delivered = self.delivered_s()
        return pa.table({
            "message_id": pa.array(take("message_id")),
            "rcpt_index": pa.array(take("rcpt_index").astype(np.int16)),
            "kind": categories("kind"),
            "sender": categories("sender"),
            "origin_isp": categories("origin_isp"),
            "origin_network": categories("origin_network"),
            "path": categories("path"),
            "first_hop_port": pa.array(take("first_hop_port").astype(np.int32)),
            "rcpt_domain": categories("rcpt_domain"),
            "outcome": categories("outcome"),
            "reply_code": pa.array(take("reply_code")),
            "stopped_by": categories("stopped_by"),
            "created_s": floats("created_s"),
            "delivered_s": pa.array(delivered, from_pandas=True),
            "retrieved_s": floats("retrieved_s"),
            "finished_s": floats("finished_s"),
            "left_origin": pa.array(take("left_origin").astype(bool)),
        })
