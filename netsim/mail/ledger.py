"""The ledger: one row per message recipient, and the conservation law over it.

Rows are stored column by column in typed buffers (small integer codes and 8-byte floats:
:class:`~netsim.mail.column_buffer.ColumnBuffer`), so a run holds no Python object per
recipient, a row costs 53 bytes, and the table converts to Arrow without copying field by
field. The columns are those declared in :mod:`netsim.mail.recipients`. Outcomes are final
once set: setting one twice is a bug and raises at once, which is what makes the
conservation check meaningful.

A ledger with a ``sink`` streams: rows are numbered for the whole run, but only a window of
the newest is stored in the buffers. Once the window is large, the rows at rest (a
final outcome and, if delivered, retrieved: nothing more can happen to them) are handed to
the sink and freed, in row order; the few still in flight among them (a queue's retries, a
maildrop not yet checked) are set aside until they come to rest. A country's run then holds
the recipients in flight, not every recipient of its day.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from itertools import repeat
from typing import NoReturn

import numpy as np
import pyarrow as pa

from netsim.errors import ConservationError
from netsim.mail.column_buffer import ColumnBuffer
from netsim.mail.message import Kind, Mail, domain_of
from netsim.mail.recipients import CATEGORY, RECIPIENT_COLUMNS, ColumnRegistry, Outcome

OUTCOMES = tuple(Outcome)
KINDS = tuple(Kind)


# a ledger streams once its window holds this many rows (about 55 MB of columns)
RETIRE_ROWS = 1 << 19
# rows still in flight set aside per row handed on, at most, when the window is cut
ASIDE_SHARE = 1 / 8
# the window's rows looked at at once when a cut is looked for, and handed on at once
SLICE_ROWS = 1 << 18

# what a streaming ledger hands on: the rows' numbers, their stored columns (categorical
# ones as codes) and the words of each categorical column's codes
Sink = Callable[[np.ndarray, dict[str, np.ndarray], dict[str, list[str]]], None]


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

    Each stored column of ``columns`` is an attribute of its name, a typed buffer holding the
    window's rows (rows ``base`` onwards); a categorical one has a vocabulary in
    :attr:`vocab`. Without a ``sink`` the window is every row.
    """

    # the stored columns the ledger fills by name, for the type checker (``__init__`` makes
    # every stored column of the registry)
    message_id: ColumnBuffer
    rcpt_index: ColumnBuffer
    kind: ColumnBuffer
    sender: ColumnBuffer
    origin_isp: ColumnBuffer
    origin_network: ColumnBuffer
    path: ColumnBuffer
    first_hop_port: ColumnBuffer
    rcpt_domain: ColumnBuffer
    outcome: ColumnBuffer
    reply_code: ColumnBuffer
    stopped_by: ColumnBuffer
    created_s: ColumnBuffer
    retrieved_s: ColumnBuffer
    finished_s: ColumnBuffer
    sent_out: ColumnBuffer
    accepted_outside: ColumnBuffer

    def __init__(self, columns: ColumnRegistry = RECIPIENT_COLUMNS, *,
                 sink: Sink | None = None, retire_rows: int = RETIRE_ROWS) -> None:
        self.columns = columns
        self.vocab = {c.name: Vocabulary(c.words) for c in columns if c.kind is CATEGORY}
        for column in columns.stored:
            setattr(self, column.name, ColumnBuffer(column.typecode))
        self._blanks = columns.blanks
        self._dtypes = {c.name: c.dtype for c in columns.stored}   # for view(), on hot paths
        self._kind = {k: self.vocab["kind"].code(k.value) for k in Kind}
        self._outcome = {o: self.vocab["outcome"].code(o.value) for o in Outcome}
        self.attempted = dict.fromkeys(Kind, 0)
        self.finished = {k: dict.fromkeys(OUTCOMES[1:], 0) for k in Kind}
        self._pending = self._outcome[Outcome.PENDING]
        assert columns["outcome"].blank == Outcome.PENDING, "a new row starts pending"
        # streaming: the window's first row, the rows set aside (their numbers, sorted, and
        # their columns), and how many rows the window kept at its last cut
        self.sink = sink
        self.base = 0
        self.retire_rows = retire_rows
        self._aside_rows = np.zeros(0, dtype=np.int64)
        self._aside = {name: np.zeros(0, dtype=dtype) for name, dtype in self._dtypes.items()}
        self._kept = 0
        self.due = False   # the window is large enough to cut (``retire``, between events)

    def __len__(self) -> int:
        """Rows opened in the run (handed on and set aside included)."""
        return self.base + len(self.message_id)

    def _opened(self) -> None:
        # the next cut once the window holds retire_rows, and half as much again as it last
        # kept (each cut copies what it keeps: then no more than twice what it hands on)
        if self.sink is not None and len(self.message_id) >= max(self.retire_rows,
                                                                   3 * self._kept // 2):
            self.due = True

    def add(self, mail: Mail, recipients: Iterable[str], *, origin_isp: str, origin_network: str,
            path: str, first_hop_port: int, domain: str | None = None) -> None:
        """Open one row per recipient of a new message (each starts ``pending``);
        ``domain``, when the caller knows it, is every recipient's."""
        v = self.vocab
        start = len(self)
        addresses = list(recipients)
        n = len(addresses)
        mail.rows.update(zip(addresses, range(start, start + n), strict=True))
        code = v["rcpt_domain"].code
        if domain is None:
            first = domain_of(addresses[0]) if n else ""
            if all(map(str.endswith, addresses, repeat(f"@{first}"))):   # the usual: one
                domain = first
        if domain is not None:
            self.rcpt_domain.fill(code(domain), n)
        else:
            self.rcpt_domain.push([code(domain_of(a)) for a in addresses])
        self.rcpt_index.push(range(n))
        values: tuple[tuple[ColumnBuffer, float], ...] = (
            (self.message_id, mail.id), (self.kind, self._kind[mail.kind]),
            (self.sender, v["sender"].code(mail.sender.value)),
            (self.origin_isp, v["origin_isp"].code(origin_isp)),
            (self.origin_network, v["origin_network"].code(origin_network)),
            (self.path, v["path"].code(path)), (self.first_hop_port, first_hop_port),
            (self.created_s, mail.created))
        for column, value in values:
            column.fill(value, n)
        for name, blank in self._blanks:                        # what every new row starts as
            getattr(self, name).fill(blank, n)
        self.attempted[mail.kind] += len(mail.rows)
        self._opened()

    def finish(self, row: int, outcome: Outcome, at: float, *, code: int = 0,
               stopped_by: str = "") -> None:
        """Record a recipient's final outcome; a second outcome for one row is a bug."""
        self.finish_many((row,), outcome, at, code=code, stopped_by=stopped_by)

    def finish_many(self, rows: Iterable[int], outcome: Outcome, at: float, *, code: int = 0,
                    stopped_by: str = "") -> None:
        """:meth:`finish` for recipients that end alike at one instant (a session's)."""
        if outcome is Outcome.PENDING:
            raise ValueError("pending is not a final outcome")
        state, pending, kinds, base = self.outcome.items, self._pending, self.kind.items, \
            self.base
        finished_s, reply_code, stopped = (self.finished_s.items, self.reply_code.items,
                                           self.stopped_by.items)
        value = self._outcome[outcome]
        stop = self.vocab["stopped_by"].code(stopped_by) if stopped_by else 0
        counts = self.finished
        for row in rows:
            i = row - base
            if i < 0:   # set aside (or handed on: then it is final already)
                self._finish_aside(row, outcome, at, code, stop)
                continue
            if state[i] != pending:
                self._twice(row, state[i], outcome)
            state[i] = value
            finished_s[i] = at
            reply_code[i] = code
            if stop:
                stopped[i] = stop
            counts[KINDS[kinds[i]]][outcome] += 1

    def _finish_aside(self, row: int, outcome: Outcome, at: float, code: int,
                      stop: int) -> None:
        slot = self._slot(row)
        if slot is None:
            self._twice(row, None, outcome)
        aside = self._aside
        if aside["outcome"][slot] != self._pending:
            self._twice(row, int(aside["outcome"][slot]), outcome)
        aside["outcome"][slot] = self._outcome[outcome]
        aside["finished_s"][slot] = at
        aside["reply_code"][slot] = code
        if stop:
            aside["stopped_by"][slot] = stop
        self.finished[KINDS[int(aside["kind"][slot])]][outcome] += 1

    def _twice(self, row: int, state: int | None, outcome: Outcome) -> NoReturn:
        had = "a final outcome (handed on)" if state is None else \
            f"outcome {self.vocab['outcome'].words[state]}"
        raise ConservationError(f"recipient row {row} already has {had}; cannot also be "
                                f"{outcome}")

    # -- in bulk, for the flow path: the same rows and checks, a batch at a time -----------
    def code(self, column: str, word: str) -> int:
        """The integer code of ``word`` in a categorical column."""
        return self.vocab[column].code(word)

    def word(self, column: str, row: int) -> str:
        """The word a categorical column holds at ``row`` (what :meth:`code` coded)."""
        return self.vocab[column].words[int(self.value(column, row))]

    def value(self, column: str, row: int) -> float:
        """A stored column's value at ``row`` (a row in flight: one not handed on)."""
        i = row - self.base
        if i >= 0:
            return getattr(self, column).items[i]
        slot = self._slot(row)
        if slot is None:
            raise KeyError(f"recipient row {row} was handed on at rest")
        return self._aside[column][slot].item()

    def add_rows(self, kind: Kind, *, message_id: np.ndarray, rcpt_index: np.ndarray,
                 sender: np.ndarray, origin_isp: np.ndarray, origin_network: np.ndarray,
                 path: np.ndarray, first_hop_port: np.ndarray, rcpt_domain: np.ndarray,
                 created: np.ndarray) -> int:
        """Open rows (all ``pending``) from arrays, one entry a row, categorical columns as
        codes; returns the first new row's number."""
        start = len(self)
        n = len(message_id)
        for column, values in ((self.message_id, message_id), (self.rcpt_index, rcpt_index),
                               (self.sender, sender), (self.origin_isp, origin_isp),
                               (self.origin_network, origin_network), (self.path, path),
                               (self.first_hop_port, first_hop_port),
                               (self.rcpt_domain, rcpt_domain), (self.created_s, created)):
            column.push(values)
        self.kind.fill(self._kind[kind], n)
        for name, blank in self._blanks:                        # what every new row starts as
            getattr(self, name).fill(blank, n)
        self.attempted[kind] += n
        self._opened()
        return start

    def _places(self, name: str, rows: np.ndarray,
                ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray | slice]]:
        """Where a column holds ``rows``: ``(values, where, which)`` for the window and, if
        any row is before it, for the rows set aside — ``values[where]`` are the column's
        values of ``rows[which]``. Rows handed on are in neither."""
        local = rows - self.base
        if not len(local) or local.min() >= 0:   # the usual: every row in the window
            return [(self.view(name), local, slice(None))]
        inside = local >= 0
        slots, found = self._slots(rows[~inside])   # each row set aside looked for once
        return [(self.view(name), local[inside], inside),
                (self._aside[name], slots, np.flatnonzero(~inside)[found])]

    def _get(self, name: str, rows: np.ndarray, handed_on: float) -> np.ndarray:
        """A column's values at ``rows``; ``handed_on`` for rows handed on."""
        places = self._places(name, rows)
        if len(places) == 1:
            values, where, _ = places[0]
            return values[where]
        out = np.full(len(rows), handed_on, dtype=self._dtypes[name])
        for values, where, which in places:
            out[which] = values[where]
        return out

    def _set(self, name: str, rows: np.ndarray, values: np.ndarray | float) -> None:
        """Set a column at ``rows`` (each held: in the window or set aside)."""
        places = self._places(name, rows)
        if sum(len(where) for _, where, _ in places) < len(rows):
            early = rows[rows < self.base]
            handed = early[~self._slots(early)[1]]
            raise ConservationError(f"recipient rows {handed[:10].tolist()} were handed on at "
                                    f"rest; cannot set {name}")
        values = np.broadcast_to(values, rows.shape)
        for column, where, which in places:
            column[where] = values[which]

    def _slot(self, row: int) -> int | None:
        """Where ``row`` (before the window) is set aside; None: it was handed on."""
        place = int(np.searchsorted(self._aside_rows, row))
        if place < len(self._aside_rows) and self._aside_rows[place] == row:
            return place
        return None

    def _slots(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Where ``rows`` (before the window) are set aside, and which of them are."""
        place = np.minimum(np.searchsorted(self._aside_rows, rows),
                           max(len(self._aside_rows) - 1, 0))
        found = self._aside_rows[place] == rows if len(self._aside_rows) else \
            np.zeros(len(rows), dtype=bool)
        return place[found], found

    def finish_rows(self, rows: np.ndarray, outcome: Outcome, at: np.ndarray, *,
                    code: np.ndarray | int = 0, stopped_by: np.ndarray | int = 0) -> None:
        """:meth:`finish` for many rows at once (``stopped_by`` as vocabulary codes)."""
        if outcome is Outcome.PENDING:
            raise ValueError("pending is not a final outcome")
        if not len(rows):
            return
        values = (("outcome", self._outcome[outcome]), ("finished_s", at),
                  ("reply_code", code), ("stopped_by", stopped_by))
        local = rows - self.base
        inside = bool(local.min() >= 0)   # the usual: every row in the window, in place
        if inside:
            state, kind = self.view("outcome")[local], self.view("kind")[local]
        else:
            state, kind = self._get("outcome", rows, -1), self._get("kind", rows, 0)
        done = rows[state != self._pending]
        if len(done):
            raise ConservationError(f"recipient rows {done[:10].tolist()} already have an "
                                    f"outcome; cannot also be {outcome}")
        for name, value in values:
            if inside:
                self.view(name)[local] = value
            else:
                self._set(name, rows, value)
        kinds = np.bincount(kind, minlength=len(KINDS))
        for k, n in zip(KINDS, kinds.tolist(), strict=True):
            self.finished[k][outcome] += n

    def sent_out_rows(self, rows: np.ndarray) -> None:
        """Mark recipients a session carried out of their origin ISP's networks."""
        self._set("sent_out", rows, 1)

    def taken_outside_rows(self, rows: np.ndarray) -> None:
        """Mark recipients taken over by a server outside their origin ISP."""
        self._set("accepted_outside", rows, 1)

    def retrieved_rows(self, rows: np.ndarray, at: np.ndarray) -> None:
        """Record first retrievals (rows not yet retrieved; one handed on was)."""
        for column, where, which in self._places("retrieved_s", rows):
            first = np.isnan(column[where])
            column[where[first]] = at[which][first]

    def taken_outside(self, row: int) -> None:
        """Mark a recipient as taken over by a server outside its origin ISP."""
        self._put("accepted_outside", row, 1)

    def sent_out_many(self, rows: Iterable[int]) -> None:
        """Mark the recipients of one session carried out of their origin ISP's networks
        (the engines': a few rows, no array made for them)."""
        for row in rows:
            self._put("sent_out", row, 1)

    def _put(self, name: str, row: int, value: float) -> None:
        i = row - self.base
        if i >= 0:
            getattr(self, name).items[i] = value
            return
        slot = self._slot(row)
        if slot is None:
            raise ConservationError(f"recipient row {row} was handed on at rest; cannot "
                                    f"set {name}")
        self._aside[name][slot] = value

    def retrieved(self, row: int, at: float) -> None:
        """Record the first POP3 retrieval of a delivered recipient."""
        i = row - self.base
        if i >= 0:
            retrieved_s = self.retrieved_s.items
            if math.isnan(retrieved_s[i]):
                retrieved_s[i] = at
            return
        slot = self._slot(row)   # none: handed on, so retrieved already
        if slot is not None and math.isnan(self._aside["retrieved_s"][slot]):
            self._aside["retrieved_s"][slot] = at

    def at_rest(self, rows: Iterable[int]) -> bool:
        """True when each of ``rows`` has its final outcome and each delivered one has been
        retrieved by POP3: nothing more happens to these recipients (one handed on was at
        rest)."""
        rows = np.fromiter(rows, dtype=np.int64)
        return bool(self._rest(lambda name: self._get(
            name, rows, -1 if name == "outcome" else 0.0)).all())

    def pending(self, rows: np.ndarray) -> np.ndarray:
        """Whether each of ``rows`` is still without a final outcome."""
        return self._get("outcome", rows, -1) == self._pending

    def pending_rows(self) -> set[int]:
        window = np.flatnonzero(self.view("outcome") == self._pending) + self.base
        aside = self._aside_rows[self._aside["outcome"] == self._pending]
        return set(aside.tolist()) | set(window.tolist())

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
            by_kind[KINDS[int(self.value("kind", row))]] += 1
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
        """A column of the window as numpy (a categorical one as its codes), read in place;
        a derived one computed from the stored columns."""
        dtype = self._dtypes.get(name)
        if dtype is None:
            return self.columns.derive(name, self.view)
        return getattr(self, name).view()

    # -- streaming -------------------------------------------------------------------------
    def _rest(self, read: Callable[[str], np.ndarray]) -> np.ndarray:
        """Which rows of columns ``read`` are at rest (see :meth:`at_rest`)."""
        outcome = read("outcome")
        return (outcome != self._pending) & ~((outcome == self._outcome[Outcome.DELIVERED])
                                               & np.isnan(read("retrieved_s")))

    def retire(self, everything: bool = False) -> None:
        """Hand the rows at rest to the sink (in row order, some :data:`SLICE_ROWS` of the
        window's rows a call) and free them: those set aside, and the window's oldest (up
        to where more than one row in eight would have to be set aside); the window's rows
        before that cut that are in flight are set aside. With ``everything`` (the run is
        over) every row is handed on, in flight or not."""
        if self.sink is None:
            raise ValueError("a ledger without a sink keeps its rows")
        self.due = False
        n = len(self.message_id)
        aside = self._aside
        if everything:
            cut, rest, aside_rest = n, np.ones(n, dtype=bool), np.ones(len(self._aside_rows),
                                                                        dtype=bool)
        else:
            rest = self._rest(self.view)
            cut = _cut(rest)
            rest = rest[:cut]
            aside_rest = self._rest(aside.__getitem__)
        # handed on a slice of the window at a time, those set aside first: a country's
        # window hands on millions of rows, and each slice's columns are written into the
        # memory the slice before freed (fresh memory costs the kernel a page fault a page)
        words = {name: list(v.words) for name, v in self.vocab.items()}
        names = [column.name for column in self.columns.stored]
        for start in range(0, max(cut, 1), SLICE_ROWS):
            picked = start + np.flatnonzero(rest[start:start + SLICE_ROWS])
            rows = self.base + picked
            handed = {name: self.view(name)[picked] for name in names}
            if start == 0 and aside_rest.any():
                rows = np.concatenate([self._aside_rows[aside_rest], rows])
                handed = {name: np.concatenate([aside[name][aside_rest], values])
                          for name, values in handed.items()}
            if len(rows):
                self.sink(rows, handed, words)
            del handed
        in_flight = np.flatnonzero(~rest)
        self._aside_rows = np.concatenate([self._aside_rows[~aside_rest],
                                           self.base + in_flight])
        for name in names:
            aside[name] = np.concatenate([aside[name][~aside_rest],
                                          self.view(name)[in_flight]])
            getattr(self, name).cut(cut)
        self.base += cut
        self._kept = n - cut

    def to_arrow(self, release: bool = False) -> pa.Table:
        """The ledger as an Arrow table of its columns, in their order, categorical ones
        dictionary-encoded. With ``release``, each column is freed once copied (the ledger
        keeps only its counts), so a country's table never exists twice over."""
        if self.base or len(self._aside_rows):
            raise ValueError("this ledger has handed rows on to its sink: it holds no table "
                             "of every row")
        return table_of(self.columns, self.view, {n: v.words for n, v in self.vocab.items()},
                        release=self._release if release else None)

    def _release(self, name: str) -> None:
        setattr(self, name, ColumnBuffer(self.columns[name].typecode))


def _cut(rest: np.ndarray) -> int:
    """How many of the window's first rows to hand on: the longest run from the start in
    which the rows in flight (not ``rest``) are at most :data:`ASIDE_SHARE` of the rows.
    Counted a slice at a time, so a window of millions makes no running count as long."""
    cut = late = 0
    for start in range(0, len(rest), SLICE_ROWS):
        running = late + np.cumsum(~rest[start:start + SLICE_ROWS])
        fine = np.flatnonzero(running <= ASIDE_SHARE * np.arange(start + 1,
                                                                start + len(running) + 1))
        if len(fine):
            cut = start + int(fine[-1]) + 1
        late = int(running[-1])
    return cut


def table_of(columns: ColumnRegistry, read: Callable[[str], np.ndarray],
             words: dict[str, list[str]],
             release: Callable[[str], None] | None = None) -> pa.Table:
    """An Arrow table of ``columns`` read by ``read`` (stored ones, categorical as codes of
    ``words``), in the registry's order; ``release`` is called with each stored column's
    name once it is copied."""
    # derived from the stored columns before any of them is released
    derived = {c.name: columns.derive(c.name, read) for c in columns if c.derive is not None}
    arrays = []
    for column in columns:
        name = column.name
        if name in derived:
            values = derived.pop(name)
        else:
            values = read(name).copy()
            if release is not None:
                release(name)
        arrays.append(column.to_arrow(values, words.get(name, []) if column.kind is CATEGORY
                                      else []))
    return pa.Table.from_arrays(arrays, schema=columns.schema)
