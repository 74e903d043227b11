"""The ledger: one row per message recipient, and the conservation law over it.

Rows are stored column by column in typed arrays (``array.array``: small integer codes and
8-byte floats), so a run holds no Python object per recipient, a row costs 53 bytes,
and the table converts to Arrow without copying field by field. The columns are those
declared in :mod:`netsim.mail.recipients`. Outcomes are final once set: setting one twice is a
bug and raises at once, which is what makes the conservation check meaningful.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable
from itertools import repeat
from typing import Any

import numpy as np
import pyarrow as pa

from netsim.mail.message import Kind, Mail, domain_of
from netsim.mail.recipients import CATEGORY, NUMPY_TYPES, RECIPIENT_COLUMNS, ColumnRegistry, Outcome

OUTCOMES = tuple(Outcome)
KINDS = tuple(Kind)


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
    """Every recipient of every message, from creation to its final outcome.

    Each stored column of ``columns`` is an attribute of its name, a typed array; a
    categorical one has a vocabulary in :attr:`vocab`.
    """

    # the stored columns the ledger fills by name, for the type checker (``__init__`` makes
    # every stored column of the registry)
    message_id: array[Any]
    rcpt_index: array[Any]
    kind: array[Any]
    sender: array[Any]
    origin_isp: array[Any]
    origin_network: array[Any]
    path: array[Any]
    first_hop_port: array[Any]
    rcpt_domain: array[Any]
    outcome: array[Any]
    reply_code: array[Any]
    stopped_by: array[Any]
    created_s: array[Any]
    retrieved_s: array[Any]
    finished_s: array[Any]
    sent_out: array[Any]
    accepted_outside: array[Any]

    def __init__(self, columns: ColumnRegistry = RECIPIENT_COLUMNS) -> None:
        self.columns = columns
        self.vocab = {c.name: Vocabulary(c.words) for c in columns if c.kind is CATEGORY}
        for column in columns.stored:
            setattr(self, column.name, array(column.typecode))
        self._blanks = columns.blanks
        self._dtypes = {c.name: c.dtype for c in columns.stored}   # for view(), on hot paths
        self._kind = {k: self.vocab["kind"].code(k.value) for k in Kind}
        self._outcome = {o: self.vocab["outcome"].code(o.value) for o in Outcome}
        self.attempted = dict.fromkeys(Kind, 0)
        self.finished = {k: dict.fromkeys(OUTCOMES[1:], 0) for k in Kind}
        self._pending = self._outcome[Outcome.PENDING]
        assert columns["outcome"].blank == Outcome.PENDING, "a new row starts pending"

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
        for name, blank in self._blanks:                        # what every new row starts as
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

    def word(self, column: str, row: int) -> str:
        """The word a categorical column holds at ``row`` (what :meth:`code` coded)."""
        return self.vocab[column].words[getattr(self, column)[row]]

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
        for name, blank in self._blanks:                        # what every new row starts as
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
        state = self.view("outcome")
        done = rows[state[rows] != self._pending]
        if len(done):
            raise ConservationError(f"recipient rows {done[:10].tolist()} already have an "
                                    f"outcome; cannot also be {outcome}")
        state[rows] = self._outcome[outcome]
        self.view("finished_s")[rows] = at
        self.view("reply_code")[rows] = code
        self.view("stopped_by")[rows] = stopped_by
        kinds = np.bincount(self.view("kind")[rows], minlength=len(KINDS))
        for k, n in zip(KINDS, kinds.tolist(), strict=True):
            self.finished[k][outcome] += n
        del state

    def sent_out_rows(self, rows: np.ndarray) -> None:
        """Mark recipients a session carried out of their origin ISP's networks."""
        self.view("sent_out")[rows] = 1

    def taken_outside_rows(self, rows: np.ndarray) -> None:
        """Mark recipients taken over by a server outside their origin ISP."""
        self.view("accepted_outside")[rows] = 1

    def retrieved_rows(self, rows: np.ndarray, at: np.ndarray) -> None:
        """Record first retrievals (rows not yet retrieved)."""
        column = self.view("retrieved_s")
        first = np.isnan(column[rows])
        column[rows[first]] = at[first]

    def taken_outside(self, row: int) -> None:
        """Mark a recipient as taken over by a server outside its origin ISP."""
        self.accepted_outside[row] = 1

    def sent_out_many(self, rows: Iterable[int]) -> None:
        """Mark the recipients of one session carried out of their origin ISP's networks
        (the engines': a few rows, no array made for them)."""
        column = self.sent_out
        for row in rows:
            column[row] = 1

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

    def pending(self, rows: np.ndarray) -> np.ndarray:
        """Whether each of ``rows`` is still without a final outcome."""
        return self.view("outcome")[rows] == self._pending

    def pending_rows(self) -> set[int]:
        codes = self.view("outcome")
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
        """docs/model.md's law: per kind, attempted = delivered + junked + blocked + rejected +
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

    def view(self, name: str) -> np.ndarray:
        """A column as numpy (a categorical one as its codes), read in place; a derived one
        computed from the stored columns."""
        dtype = self._dtypes.get(name)
        if dtype is None:
            return self.columns.derive(name, self.view)
        return np.frombuffer(getattr(self, name), dtype=dtype)

    def to_arrow(self, release: bool = False) -> pa.Table:
        """The ledger as an Arrow table of its columns, in their order, categorical ones
        dictionary-encoded. With ``release``, each column is freed once copied (the ledger
        keeps only its counts), so a country's table never exists twice over."""
        # derived from the stored columns before any of them is released
        derived = {c.name: self.view(c.name) for c in self.columns if c.derive is not None}
        arrays = []
        for column in self.columns:
            name = column.name
            if name in derived:
                values = derived.pop(name)
            else:
                values = self.view(name).copy()
                if release:
                    setattr(self, name, array(column.typecode))
            words = self.vocab[name].words if column.kind is CATEGORY else []
            arrays.append(column.to_arrow(values, words))
        return pa.Table.from_arrays(arrays, schema=self.columns.schema)
