"""The recipient columns, declared once (netsim.mail.recipients): the ledger's storage, its new
rows, its Arrow table, the report's readers and docs/outcomes.md all follow the registry."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from netsim.mail import Kind, Ledger, Mail, Outcome, SenderType
from netsim.mail.column_buffer import ColumnBuffer
from netsim.mail.recipients import (
    CATEGORY,
    DERIVED,
    INTEGER,
    RECIPIENT_COLUMNS,
    WORDS,
    Column,
    ColumnRegistry,
)
from netsim.world import World
from netsim.world.report import ArrayColumns, RecipientColumns, table_columns
from tests.conftest import tiny_scenario

ROOT = Path(__file__).resolve().parent.parent

# recipients.parquet as published: its columns, their order and their types
PUBLISHED = [
    ("message_id", pa.int64()), ("rcpt_index", pa.int16()), ("kind", WORDS),
    ("sender", WORDS), ("origin_isp", WORDS), ("origin_network", WORDS), ("path", WORDS),
    ("first_hop_port", pa.int32()), ("rcpt_domain", WORDS), ("outcome", WORDS),
    ("reply_code", pa.int16()), ("stopped_by", WORDS), ("created_s", pa.float64()),
    ("delivered_s", pa.float64()), ("retrieved_s", pa.float64()),
    ("finished_s", pa.float64()), ("sent_out", pa.bool_()),
    ("accepted_outside", pa.bool_())]


def _open_rows(ledger: Ledger) -> None:
    """Two rows opened one message at a time (the engines' way), three from arrays (the
    flow path's)."""
    mail = Mail(1, Kind.LEGIT, SenderType.USER, "a@x.example", 100, 5.0)
    ledger.add(mail, ["u0@y.example", "u1@z.example"], origin_isp="x",
               origin_network="x.dynamic", path="mua:587", first_hop_port=587)
    n = 3
    ledger.add_rows(Kind.SPAM, message_id=np.arange(2, 2 + n), rcpt_index=np.zeros(n),
                    sender=np.full(n, ledger.code("sender", "bot")),
                    origin_isp=np.full(n, ledger.code("origin_isp", "x")),
                    origin_network=np.full(n, ledger.code("origin_network", "x.dynamic")),
                    path=np.full(n, ledger.code("path", "direct")),
                    first_hop_port=np.full(n, 25),
                    rcpt_domain=np.full(n, ledger.code("rcpt_domain", "y.example")),
                    created=np.array([6.0, 7.0, 8.0]))


def test_the_registry_drives_the_arrow_schema():
    ledger = Ledger()
    _open_rows(ledger)
    table = ledger.to_arrow()
    assert table.schema == RECIPIENT_COLUMNS.schema
    assert table.column_names == RECIPIENT_COLUMNS.names
    for column, field in zip(RECIPIENT_COLUMNS, table.schema, strict=True):
        assert field.type == column.arrow, column.name
    # and the registry is the published table, column for column
    assert [(f.name, f.type) for f in table.schema] == PUBLISHED
    assert Ledger().to_arrow().schema == RECIPIENT_COLUMNS.schema   # an empty run's too


def test_the_category_encodings_start_with_the_declared_words():
    table = Ledger().to_arrow()
    for column in RECIPIENT_COLUMNS:
        if column.kind is CATEGORY:
            words = table.column(column.name).combine_chunks().dictionary.to_pylist()
            assert words == list(column.words), column.name
    assert RECIPIENT_COLUMNS["outcome"].words[0] == Outcome.PENDING     # a new row's code 0


def test_a_new_row_starts_with_the_registrys_blanks():
    ledger = Ledger()
    _open_rows(ledger)
    rows = ledger.to_arrow().to_pylist()
    assert len(rows) == 5
    for row in rows:
        assert row["outcome"] == "pending" and row["stopped_by"] == ""
        assert row["reply_code"] == 0
        assert row["sent_out"] is False and row["accepted_outside"] is False
        assert row["retrieved_s"] is None and row["finished_s"] is None
    # a registry with another blank: both ways of opening rows start from it
    columns = ColumnRegistry(*(dataclasses.replace(c, blank=-1) if c.name == "reply_code"
                               else c for c in RECIPIENT_COLUMNS))
    ledger = Ledger(columns)
    _open_rows(ledger)
    assert ledger.reply_code.tolist() == [-1] * 5
    assert ledger.to_arrow().column("reply_code").to_pylist() == [-1] * 5


def test_a_declared_column_reaches_storage_the_table_and_the_report():
    """One declaration each: a stored integer, a categorical and a derived column."""
    columns = RECIPIENT_COLUMNS.extended(
        Column("hops", INTEGER, "b", pa.int8(), "the servers it crossed", blank=0),
        Column("spf", CATEGORY, "b", WORDS, "the SPF verdict", blank="none",
               words=("none", "pass")),
        Column("took_s", DERIVED, "", pa.float64(), "how long its outcome took",
               derive=lambda read: read("finished_s") - read("created_s")))
    ledger = Ledger(columns)
    _open_rows(ledger)
    ledger.finish(0, Outcome.DELIVERED, 9.0)
    assert isinstance(vars(ledger)["hops"], ColumnBuffer) and ledger.hops.typecode == "b"
    assert len(ledger.hops) == len(ledger.spf) == len(ledger) == 5
    table = ledger.to_arrow()
    assert table.column_names[-3:] == ["hops", "spf", "took_s"]
    assert table.schema == columns.schema
    assert table.column("hops").to_pylist() == [0] * 5
    assert table.column("spf").to_pylist() == ["none"] * 5
    assert table.column("took_s").to_pylist() == [4.0, None, None, None, None]
    in_place = ArrayColumns({c.name: ledger.view(c.name) for c in columns.stored},
                            {n: v.words for n, v in ledger.vocab.items()}, columns)
    assert in_place.values("hops").tolist() == [0] * 5
    codes, words = in_place.codes("spf")
    assert codes.tolist() == [0] * 5 and words == ["none", "pass"]
    assert in_place.values("took_s")[0] == 4.0 and np.isnan(in_place.values("took_s")[1:]).all()


def test_the_report_reads_every_column_alike_as_handed_on_and_from_the_table():
    world = World(tiny_scenario(seed=11))
    world.env.run(until=world.scenario.duration_s)
    world.finish()
    from_table = RecipientColumns(world.ledger.to_arrow())
    assert table_columns(from_table.table).codes("kind")[1] == from_table.codes("kind")[1]
    handed = []
    world.ledger.sink = lambda rows, arrays, words: handed.append((rows, arrays, words))
    world.ledger.retire(everything=True)
    (rows, arrays, words), = handed
    assert rows.tolist() == list(range(len(world.ledger)))
    in_place = ArrayColumns(arrays, words)
    assert len(world.ledger) > 100
    for column in RECIPIENT_COLUMNS:
        if column.kind is CATEGORY:
            (codes, words) = in_place.codes(column.name)
            (t_codes, t_words) = from_table.codes(column.name)
            assert [words[c] for c in codes] == [t_words[c] for c in t_codes], column.name
        else:
            got, want = in_place.values(column.name), from_table.values(column.name)
            assert np.array_equal(got.astype(want.dtype), want, equal_nan=True), column.name


def test_the_ledger_stores_every_declared_column_and_no_other():
    ledger = Ledger()
    stored = {name: v for name, v in vars(ledger).items() if isinstance(v, ColumnBuffer)}
    assert {name: a.typecode for name, a in stored.items()} == {
        c.name: c.typecode for c in RECIPIENT_COLUMNS.stored}
    # annotated for the type checker: each a stored column of the registry
    declared = {name for name, kind in Ledger.__annotations__.items() if kind == "array[Any]"}
    assert declared <= set(stored)


def test_a_column_buffer_keeps_its_rows_through_growth_and_cuts():
    """Rows pushed and filled stay in order as the buffer grows; a cut drops the oldest
    and keeps the memory; ``items`` reads and writes the rows in place after either."""
    column = ColumnBuffer("q")
    column.push(range(1000))
    column.fill(-1, 500)                        # past the first capacity: grown
    column.push(np.arange(2000, 2100, dtype=np.int32))
    assert len(column) == 1600
    assert column.tolist() == [*range(1000), *[-1] * 500, *range(2000, 2100)]
    column.items[3] = 33                        # in place, as an engine writes a row
    assert column.view()[3] == 33 and column.items[1599] == 2099
    held = column.view()
    column.cut(1200)
    assert column.tolist() == [*[-1] * 300, *range(2000, 2100)]
    column.fill(7, 50)                          # into the memory kept: no growth
    assert column.view().base is held.base and column.tolist()[-51:] == [2099, *[7] * 50]
    column.clear()
    assert len(column) == 0 and column.tolist() == []
    floats = ColumnBuffer("d")
    floats.fill(math.nan, 2)
    floats.items[1] = 2.5
    assert math.isnan(floats.items[0]) and floats.tolist()[1] == 2.5


def test_docs_column_table_is_the_registrys():
    """docs/outcomes.md's column table; regenerate with ``RECIPIENT_COLUMNS.markdown()``."""
    assert RECIPIENT_COLUMNS.markdown() in (ROOT / "docs" / "outcomes.md").read_text("utf-8")


@pytest.mark.parametrize("declaration", [
    dict(name="x", kind=CATEGORY, typecode="h", arrow=WORDS, description="", blank="unseen"),
    dict(name="x", kind=INTEGER, typecode="", arrow=pa.int8(), description=""),
    dict(name="x", kind=INTEGER, typecode="b", arrow=WORDS, description=""),
    dict(name="x", kind=INTEGER, typecode="b", arrow=pa.int8(), description="", blank="0"),
    dict(name="x", kind=DERIVED, typecode="d", arrow=pa.float64(), description="",
         derive=lambda read: read("created_s")),
    dict(name="x", kind=DERIVED, typecode="", arrow=pa.float64(), description=""),
])
def test_a_declaration_that_cannot_be_stored_or_read_is_refused(declaration):
    with pytest.raises(ValueError, match="column x"):
        Column(**declaration)


def test_two_columns_of_one_name_are_refused():
    with pytest.raises(ValueError, match="share a name"):
        RECIPIENT_COLUMNS.extended(RECIPIENT_COLUMNS["outcome"])


def test_a_row_is_pending_until_its_outcome_is_final():
    ledger = Ledger()
    _open_rows(ledger)
    rows = np.arange(len(ledger))
    assert ledger.pending(rows).all()
    ledger.finish_rows(np.array([1, 3]), Outcome.REJECTED, np.array([9.0, 9.0]), code=550)
    assert ledger.pending(rows).tolist() == [True, False, True, False, True]
    assert ledger.pending_rows() == {0, 2, 4}


def test_a_categorical_column_gives_back_the_word_it_coded():
    ledger = Ledger()
    _open_rows(ledger)
    assert [ledger.word("sender", row) for row in range(len(ledger))] == [
        "user", "user", "bot", "bot", "bot"]
    assert ledger.word("path", 0) == "mua:587" and ledger.word("rcpt_domain", 1) == "z.example"
