"""The recipient table's columns, declared once.

Each column of the ledger and of ``recipients.parquet`` is one :class:`Column` of
:data:`RECIPIENT_COLUMNS`, in the table's order: how the ledger stores it (a typecode of
:data:`NUMPY_TYPES`), the kind of value it holds, what a new row starts with, its Arrow type
and its meaning. The ledger's storage, its new rows, its Arrow table, the report's readers
and the column table of docs/outcomes.md are all read from it, as Mesa's DataCollector
declares what a model measures in one place: a new column is one declaration here, plus
whatever fills it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
import pyarrow as pa

from netsim.mail.message import Kind, SenderType


class Outcome(StrEnum):
    """Final states of a recipient (docs/model.md), plus ``pending`` while it is still queued."""

    PENDING = "pending"
    DELIVERED = "delivered"
    JUNKED = "junked"
    BLOCKED = "blocked"
    REJECTED = "rejected"
    EXPIRED = "expired"


class ColumnKind(StrEnum):
    """What a column holds, which decides how it is stored and read."""

    CATEGORY = "category"   # words, stored as small integer codes of a vocabulary
    INTEGER = "integer"
    INSTANT = "instant"     # seconds of simulated time; NaN (never happened) is null in Arrow
    DERIVED = "derived"     # computed from stored columns when read: no storage of its own


CATEGORY, INTEGER, INSTANT, DERIVED = tuple(ColumnKind)

NUMPY_TYPES: dict[str, type[Any]] = {"b": np.int8, "h": np.int16, "i": np.int32, "q": np.int64,
                                     "d": np.float64}

# a stored column read in place, by name (categorical ones as their codes)
Reader = Callable[[str], np.ndarray]
WORDS = pa.dictionary(pa.int32(), pa.string())


@dataclass(frozen=True)
class Column:
    """One column's declaration.

    Attributes:
        name: the column's name, in the ledger and in the table.
        kind: what it holds.
        typecode: the type it is stored in, a key of :data:`NUMPY_TYPES` ("" for a derived
            column).
        arrow: its type in the Arrow table.
        description: its meaning, one line of docs/outcomes.md.
        blank: what a new row starts with (a word of ``words`` for a categorical column);
            None when whoever opens the row gives the value.
        words: a categorical column's first words, so their codes are fixed from the start
            (further words get codes as they are seen).
        derive: a derived column's values, from the stored columns.
    """

    name: str
    kind: ColumnKind
    typecode: str
    arrow: pa.DataType
    description: str
    blank: float | str | None = None
    words: tuple[str, ...] = ()
    derive: Callable[[Reader], np.ndarray] | None = None

    def __post_init__(self) -> None:
        # refused at import: a registry the ledger could not store or read as declared
        category, stored = self.kind is CATEGORY, self.kind is not DERIVED
        for broken, problem in (
                (stored and (self.typecode not in NUMPY_TYPES or self.derive is not None),
                 f"a stored column has a typecode of {list(NUMPY_TYPES)} and no derivation"),
                (not stored and (self.derive is None or bool(self.typecode)
                                 or self.blank is not None),
                 "a derived column has a derivation, and no storage or blank"),
                (category != (self.arrow == WORDS),
                 "categorical columns, and only they, are dictionary-encoded"),
                (not category and (bool(self.words) or isinstance(self.blank, str)),
                 "only a categorical column has words"),
                (category and self.blank is not None and self.blank not in self.words,
                 "a categorical blank is one of the first words, so its code is fixed")):
            if broken:
                raise ValueError(f"column {self.name}: {problem}")

    @property
    def dtype(self) -> type[Any]:
        """The numpy type of its storage."""
        return NUMPY_TYPES[self.typecode]

    def blank_value(self) -> float:
        """A new row's value as stored (a categorical blank as its code)."""
        assert self.blank is not None
        return self.words.index(self.blank) if isinstance(self.blank, str) else self.blank

    def to_arrow(self, values: np.ndarray, words: Sequence[str] = ()) -> pa.Array:
        """The column as Arrow, from its values (a categorical column's codes and ``words``)."""
        if self.kind is CATEGORY:
            return pa.DictionaryArray.from_arrays(pa.array(values.astype(np.int32)),
                                                  pa.array(words, pa.string()))
        # from_pandas: NaN (never happened) becomes null, which Arrow compares and pandas
        # reads as NaN
        return pa.array(values.astype(self.arrow.to_pandas_dtype(), copy=False),
                        type=self.arrow, from_pandas=True)


class ColumnRegistry:
    """An ordered set of column declarations: the table's columns, in its order."""

    def __init__(self, *columns: Column):
        self._by_name = {c.name: c for c in columns}
        if len(self._by_name) != len(columns):
            raise ValueError("two columns share a name")
        self._columns = columns
        self.stored = tuple(c for c in columns if c.kind is not DERIVED)
        # what a new row starts as: (column, stored value) for each column with a blank
        self.blanks = tuple((c.name, c.blank_value()) for c in columns if c.blank is not None)
        self.schema = pa.schema([(c.name, c.arrow) for c in columns])

    def __iter__(self) -> Iterator[Column]:
        return iter(self._columns)

    def __getitem__(self, name: str) -> Column:
        return self._by_name[name]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self._columns]

    def derive(self, name: str, read: Reader) -> np.ndarray:
        """A derived column's values, from the stored columns ``read`` gives."""
        derive = self[name].derive
        if derive is None:
            raise KeyError(f"{name} is a stored column, not a derived one")
        return derive(read)

    def extended(self, *more: Column) -> ColumnRegistry:
        """These columns followed by ``more``."""
        return ColumnRegistry(*self._columns, *more)

    def markdown(self) -> str:
        """The column table of docs/outcomes.md."""
        rows = ["| column | meaning |", "|---|---|"]
        rows += [f"| `{c.name}` | {c.description} |" for c in self._columns]
        return "\n".join(rows)


OUTCOME_WORDS = tuple(o.value for o in Outcome)


def _delivered_s(read: Reader) -> np.ndarray:
    # the instant a delivered or junked recipient's outcome became final is when it reached
    # the maildrop or junk folder, so the ledger keeps no column of its own
    stored = np.isin(read("outcome"), [OUTCOME_WORDS.index(Outcome.DELIVERED),
                                       OUTCOME_WORDS.index(Outcome.JUNKED)])
    return np.where(stored, read("finished_s"), math.nan)


RECIPIENT_COLUMNS = ColumnRegistry(
    Column("message_id", INTEGER, "q", pa.int64(), "the message (ids count messages from 1 in "
           "creation order; bounces included)"),
    Column("rcpt_index", INTEGER, "h", pa.int16(), "the recipient's position in the message"),
    Column("kind", CATEGORY, "b", WORDS, "`legit`, `spam` or `bounce`",
           words=tuple(k.value for k in Kind)),
    Column("sender", CATEGORY, "b", WORDS, "`user` (at home), `roaming` (on a visited network), "
           "`bot`, `spammer_server`, `mailer_daemon` (a bounce)",
           words=tuple(s.value for s in SenderType)),
    Column("origin_isp", CATEGORY, "h", WORDS, "the sender's ISP; for spammer servers, their "
           "hosting network"),
    Column("origin_network", CATEGORY, "h", WORDS, "the network the message left from: "
           "`<isp>.dynamic`, a visited network, a hosting network, or the ISP (bounces)"),
    Column("path", CATEGORY, "h", WORDS, "how it was submitted: `mua:25`, `mua:25+auth`, "
           "`mua:25+pop`, `mua:587`; for spam the strategy `direct`, `isp_relay`, "
           "`open_relay`, `stolen_587`; `bounce`"),
    Column("first_hop_port", INTEGER, "h", pa.int32(), "the destination port of the first "
           "connection (25 or 587; 0 for bounces)"),
    Column("rcpt_domain", CATEGORY, "h", WORDS, "the recipient's domain (mistyped domains "
           "included)"),
    Column("outcome", CATEGORY, "b", WORDS, "see below", blank=Outcome.PENDING.value,
           words=OUTCOME_WORDS),
    Column("reply_code", INTEGER, "h", pa.int16(), "the SMTP reply that decided a rejection (0 "
           "when no reply decided it)", blank=0),
    Column("stopped_by", CATEGORY, "h", WORDS, "the mechanism that stopped it (below); empty for "
           "delivered and pending", blank="", words=("",)),
    Column("created_s", INSTANT, "d", pa.float64(), "when the sender attempted it [s of simulated "
           "time]"),
    Column("delivered_s", DERIVED, "", pa.float64(), "when a server put it in the "
           "recipient's maildrop or junk folder", derive=_delivered_s),
    Column("retrieved_s", INSTANT, "d", pa.float64(), "when the recipient's MUA first retrieved it "
           "with POP3 `RETR`", blank=math.nan),
    Column("finished_s", INSTANT, "d", pa.float64(), "when its outcome became final",
           blank=math.nan),
    Column("sent_out", INTEGER, "b", pa.bool_(), "a session carrying it left the origin ISP's "
           "networks: a connection from inside them to a server outside opened (what OP25B acts "
           "on)", blank=0),
    Column("accepted_outside", INTEGER, "b", pa.bool_(), "a server outside the origin ISP took "
           "it over", blank=0),
)
