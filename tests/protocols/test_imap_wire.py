"""The IMAP byte layer: parsing, literals both ways, framing limits, whole sessions in bytes."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netsim.protocols import (
    Authenticate,
    Capability,
    Close,
    Enable,
    Examine,
    Expunge,
    Fetch,
    FetchAttribute,
    IMAPInvalid,
    IMAPList,
    IMAPNoop,
    IMAPServer,
    IMAPStartTLS,
    IMAPState,
    IMAPStoredMessage,
    IMAPUnknown,
    IMAPWireServer,
    Login,
    Logout,
    Search,
    SearchKey,
    Select,
    SequenceSet,
    Store,
    StoreMode,
    Unselect,
    encode_imap_responses,
    parse_imap_command,
)
from netsim.protocols import imap_responses as r
from netsim.protocols.imap_commands import Idle
from netsim.protocols.imap_parsing import literal_announced, tokenize
from netsim.protocols.sasl import encode_plain
from tests.protocols.conftest import IMAP_THREE, IMAPStore, imap_message

F = FetchAttribute
LITERAL_AT_END = re.compile(rb"\{(\d+)\}$")
RESPONSE = re.compile(rb"^(\+( [^\r\n]*)?|\* [^\r\n]+|[!-~]+ (OK|NO|BAD) [^\r\n]*)$")


def responses_of(data: bytes) -> list[tuple[bytes, list[bytes]]]:
    """Cut server output into responses: the text (literal octets left out) and literals."""
    out: list[tuple[bytes, list[bytes]]] = []
    i = 0
    while i < len(data):
        text, literals = b"", []
        while True:
            end = data.index(b"\r\n", i)
            line, i = data[i:end], end + 2
            text += line
            found = LITERAL_AT_END.search(line)
            if found is None:
                break
            size = int(found.group(1))
            literals.append(data[i : i + size])
            i += size
        out.append((text, literals))
    return out


def check_output(data: bytes) -> None:
    assert data == b"" or data.endswith(b"\r\n")
    for text, _ in responses_of(data):
        assert RESPONSE.match(text), text


def new_wire(store: Any, **kwargs: Any) -> IMAPWireServer:
    engine_args = {k: kwargs.pop(k) for k in ("starttls", "allow_plaintext", "max_errors")
                   if k in kwargs}  # fmt: skip
    wire = IMAPWireServer(IMAPServer("mx", store, **engine_args), **kwargs)
    wire.greeting()
    return wire


# --- parsing ------------------------------------------------------------------------------

ALL = SequenceSet.parse("1:*")
DELETED = frozenset({"\\Deleted"})

IMAP_LINES = [
    (b"a1 CAPABILITY", Capability("a1")),
    (b"a1 noop", IMAPNoop("a1")),
    (b"a1 LOGOUT", Logout("a1")),
    (b"a1 STARTTLS", IMAPStartTLS("a1")),
    (b"a1 LOGIN alice secret", Login("a1", "alice", "secret")),
    (b'a1 LOGIN "alice" "se cr\\"e\\\\t"', Login("a1", "alice", 'se cr"e\\t')),
    (b'a1 LOGIN "j\xc3\xb6rg" ""', Login("a1", "jörg", "")),  # UTF-8 in quoted strings
    (b"a1 AUTHENTICATE PLAIN", Authenticate("a1", "PLAIN")),
    (b"a1 authenticate plain AGFsaWNlAHNlY3JldA==",
     Authenticate("a1", "plain", "AGFsaWNlAHNlY3JldA==")),
    (b"a1 ENABLE IMAP4rev2", Enable("a1", ("IMAP4rev2",))),
    (b"a1 SELECT INBOX", Select("a1", "INBOX")),
    (b'a1 EXAMINE "INBOX"', Examine("a1", "INBOX")),
    (b'a1 LIST "" *', IMAPList("a1", "", "*")),
    (b'a1 LIST "" "INBOX"', IMAPList("a1", "", "INBOX")),
    (b"a1 FETCH 1:* (FLAGS UID RFC822.SIZE BODY[] body.peek[] RFC822)",
     Fetch("a1", ALL, (F.FLAGS, F.UID, F.RFC822_SIZE, F.BODY, F.BODY_PEEK, F.RFC822))),
    (b"a1 FETCH 2,4:5 BODY[]", Fetch("a1", SequenceSet.parse("2,4:5"), (F.BODY,))),
    (b"a1 UID FETCH 1 BODY[]", Fetch("a1", SequenceSet.parse("1"), (F.BODY,), uid=True)),
    (b"a1 STORE 1 +FLAGS \\Deleted", Store("a1", SequenceSet.parse("1"), StoreMode.ADD,
                                           DELETED)),  # imaplib: no parentheses
    (b"a1 uid store 1:* -flags.silent (\\seen \\DELETED)",
     Store("a1", ALL, StoreMode.REMOVE, frozenset({"\\Seen", "\\Deleted"}), True, True)),
    (b"a1 STORE * FLAGS ()", Store("a1", SequenceSet.parse("*"), StoreMode.REPLACE,
                                   frozenset())),
    (b"a1 SEARCH ALL", Search("a1", (SearchKey("ALL"),))),
    (b"a1 UID SEARCH UNSEEN", Search("a1", (SearchKey("UNSEEN"),), uid=True)),
    (b"a1 SEARCH CHARSET UTF-8 UID 1:* (SEEN 2:3)",
     Search("a1", (SearchKey("UID", ALL), SearchKey("SEEN"),
                   SearchKey("SEQUENCE", SequenceSet.parse("2:3"))))),
    (b"a1 EXPUNGE", Expunge("a1")),
    (b"a1 UID EXPUNGE 1:2", Expunge("a1", SequenceSet.parse("1:2"))),
    (b"a1 CLOSE", Close("a1")),
    (b"a1 UNSELECT", Unselect("a1")),
    (b"a1 IDLE", Idle("a1")),
    # refusals: no tag, unknown names, syntax, and IMAP beyond this server's subset
    (b"", IMAPInvalid(None, r.BAD_MISSING_TAG, "")),
    (b"+ x", IMAPInvalid(None, r.BAD_MISSING_TAG, "+ x")),
    (b"a\"1 NOOP", IMAPInvalid(None, r.BAD_MISSING_TAG, 'a"1 NOOP')),
    (b"a1", IMAPInvalid("a1", r.BAD_SYNTAX, "a1")),
    (b"a1 XYZZY", IMAPUnknown("a1", "a1 XYZZY")),
    (b"a1 UID COPY 1 Trash", IMAPUnknown("a1", "a1 UID COPY 1 Trash")),
    (b"a1 NOOP extra", IMAPInvalid("a1", r.BAD_SYNTAX, "a1 NOOP extra")),
    (b"a1 LOGIN alice", IMAPInvalid("a1", r.BAD_SYNTAX, "a1 LOGIN alice")),
    (b'a1 LOGIN "alice secret', IMAPInvalid("a1", r.BAD_SYNTAX, 'a1 LOGIN "alice secret')),
    (b'a1 LOGIN "a\\b" x', IMAPInvalid("a1", r.BAD_SYNTAX, 'a1 LOGIN "a\\b" x')),
    (b"a1 LOGIN \xc3\xa9 x", IMAPInvalid("a1", r.BAD_SYNTAX, "a1 LOGIN ?? x")),
    (b'a1 LOGIN "\xff" x', IMAPInvalid("a1", r.BAD_SYNTAX, 'a1 LOGIN "?" x')),
    (b"a1 LOGIN a\x00b x", IMAPInvalid("a1", r.BAD_SYNTAX, "a1 LOGIN a?b x")),
    (b"a1 FETCH 0 BODY[]", IMAPInvalid("a1", r.BAD_SYNTAX, "a1 FETCH 0 BODY[]")),
    (b"a1 FETCH 1 (BODY[]", IMAPInvalid("a1", r.BAD_SYNTAX, "a1 FETCH 1 (BODY[]")),
    (b"a1 FETCH 1 BODY[])", IMAPInvalid("a1", r.BAD_SYNTAX, "a1 FETCH 1 BODY[])")),
    (b"a1 FETCH 1 ENVELOPE", IMAPInvalid("a1", r.BAD_UNSUPPORTED_ARGUMENT,
                                         "a1 FETCH 1 ENVELOPE")),
    (b"a1 FETCH 1 FAST", IMAPInvalid("a1", r.BAD_UNSUPPORTED_ARGUMENT, "a1 FETCH 1 FAST")),
    (b"a1 FETCH 1 BODY[]<0.10>", IMAPInvalid("a1", r.BAD_UNSUPPORTED_ARGUMENT,
                                             "a1 FETCH 1 BODY[]<0.10>")),
    (b"a1 STORE 1 +FLAGS (\\*)", IMAPInvalid("a1", r.BAD_SYNTAX, "a1 STORE 1 +FLAGS (\\*)")),
    (b"a1 STORE 1 X-GM-LABELS x", IMAPInvalid("a1", r.BAD_UNSUPPORTED_ARGUMENT,
                                              "a1 STORE 1 X-GM-LABELS x")),
    (b"a1 SEARCH NOT SEEN", IMAPInvalid("a1", r.BAD_UNSUPPORTED_ARGUMENT,
                                        "a1 SEARCH NOT SEEN")),
    (b"a1 SEARCH CHARSET KOI8-R ALL", IMAPInvalid("a1", r.BAD_UNSUPPORTED_ARGUMENT,
                                                  "a1 SEARCH CHARSET KOI8-R ALL")),
    (b"a1 SEARCH", IMAPInvalid("a1", r.BAD_SYNTAX, "a1 SEARCH")),
    (b"a1 SELECT INBOX (CONDSTORE)", IMAPInvalid("a1", r.BAD_UNSUPPORTED_ARGUMENT,
                                                 "a1 SELECT INBOX (CONDSTORE)")),
    (b"a1 LIST () \"\" *", IMAPInvalid("a1", r.BAD_UNSUPPORTED_ARGUMENT, 'a1 LIST () "" *')),
    (b"a1 EXPUNGE 1", IMAPInvalid("a1", r.BAD_SYNTAX, "a1 EXPUNGE 1")),
    (b"a1 NOOP {", IMAPInvalid("a1", r.BAD_SYNTAX, "a1 NOOP {")),
]  # fmt: skip


@pytest.mark.parametrize(("line", "event"), IMAP_LINES)
def test_parse_imap(line: bytes, event: Any) -> None:
    assert parse_imap_command([line]) == event


def test_parse_with_literals() -> None:
    # the literals are data: CR, LF, quotes and parentheses in them mean nothing
    lines = [b"a1 LOGIN {5}", b" {7+}", b""]
    assert parse_imap_command(lines, [b"alice", b'p"(\r\n)\\']) == Login("a1", "alice",
                                                                       'p"(\r\n)\\')
    assert parse_imap_command([b"a1 LIST {0}", b' "*"'], [b""]) == IMAPList("a1", "", "*")
    # a literal glued to its neighbours is not a token
    assert parse_imap_command([b"a1 LOGIN x{3}", b""], [b"abc"]) == IMAPInvalid(
        "a1", r.BAD_SYNTAX, "a1 LOGIN x{3}")
    assert parse_imap_command([b"a1 LOGIN {3}", b"x"], [b"abc"]) == IMAPInvalid(
        "a1", r.BAD_SYNTAX, "a1 LOGIN {3}")


@pytest.mark.parametrize(
    ("line", "announced"),
    [(b"a1 LOGIN {5}", (5, True)), (b"a1 LOGIN {5+}", (5, False)), (b"x {0}", (0, True)),
     (b"a1 LOGIN {x}", None), (b"a1 LOGIN {}", None), (b"a1 {+}", None), (b"a1 5}", None),
     (b"{12345678901}", None)],
)  # fmt: skip
def test_literal_announced(line: bytes, announced: tuple[int, bool] | None) -> None:
    assert literal_announced(line) == announced


def test_tokenize_checks_its_input() -> None:
    with pytest.raises(ValueError):
        tokenize([b"a1 NOOP"], [b"x"])  # one line more than literals
    with pytest.raises(ValueError):
        tokenize([b"a1 NOOP", b""], [b"x"])  # the first line announces no literal
    assert tokenize([b'a1 X (1 "two" (3)) NIL']) == ["a1", "X", ["1", b"two", ["3"]], "NIL"]


# --- whole sessions in bytes --------------------------------------------------------------

CAPS = b"IMAP4rev2 IMAP4rev1 LITERAL+ SASL-IR ENABLE IDLE UNSELECT"


def test_imap_wire_session(imap_store: IMAPStore) -> None:
    wire = IMAPWireServer(IMAPServer("mx", imap_store))
    assert wire.greeting() == b"* OK [CAPABILITY %s AUTH=PLAIN] IMAP4rev2 server ready\r\n" % CAPS
    assert wire.receive_data(b"a1 LOGIN {5}\r\n") == b"+ Ready for literal data\r\n"
    assert wire.in_record
    assert wire.receive_data(b"alice {6}\r\n") == b"+ Ready for literal data\r\n"
    assert wire.receive_data(b"secret\r\n") == b"a1 OK [CAPABILITY %s] Logged in\r\n" % CAPS
    assert not wire.in_record
    assert wire.receive_data(b"a2 SELECT INBOX\r\n").endswith(
        b"a2 OK [READ-WRITE] SELECT completed\r\n")
    body = IMAP_THREE[0].payload
    assert isinstance(body, bytes)
    assert wire.receive_data(b"a3 FETCH 1 BODY[]\r\n") == (
        b"* 1 FETCH (FLAGS (\\Seen) BODY[] {%d}\r\n%s)\r\na3 OK FETCH completed\r\n"
        % (len(body), body))
    assert wire.receive_data(b"a4 UID STORE 5 +FLAGS.SILENT (\\Deleted)\r\na5 EXPUNGE\r\n") == (
        b"a4 OK STORE completed\r\n* 3 EXPUNGE\r\na5 OK EXPUNGE completed\r\n")
    assert wire.receive_data(b"a6 LOGOUT\r\n") == b"* BYE Logging out\r\na6 OK LOGOUT completed\r\n"
    assert wire.closed and wire.receive_data(b"a7 NOOP\r\n") == b""
    assert imap_store.uids() == [1, 2] and imap_store.flags() == {1: {"\\Seen"}, 2: set()}


SCRIPT = (
    b"a1 LOGIN {5+}\r\nalice {6}\r\nsecret\r\n"
    b"a2 SELECT {5}\r\nINBOX\r\n"
    b"a3 UID FETCH 1:* (UID FLAGS BODY.PEEK[])\r\n"
    b"a4 STORE 2 +FLAGS (\\Flagged)\r\n"
    b"a5 UID SEARCH UNFLAGGED\r\n"
    b"a6 IDLE\r\nDONE\r\n"
    b"a7 LOGOUT\r\n"
)


def test_imap_wire_every_byte_boundary(make_imap_store: Any) -> None:
    """Literals and lines split anywhere: the same responses as when all came at once."""
    messages = [imap_message(1, b"\x00\xff\r\n.\r\n)\r\na9 LOGOUT"), imap_message(2)]
    at_once = new_wire(make_imap_store(messages)).receive_data(SCRIPT)
    check_output(at_once)
    assert at_once.count(b"+ Ready for literal data\r\n") == 2  # not for the {5+}
    assert b"a7 OK LOGOUT completed\r\n" in at_once
    for cut in range(1, len(SCRIPT)):
        wire = new_wire(make_imap_store(messages))
        assert wire.receive_data(SCRIPT[:cut]) + wire.receive_data(SCRIPT[cut:]) == at_once, cut
    drip = new_wire(make_imap_store(messages))
    assert b"".join(drip.receive_data(SCRIPT[i : i + 1]) for i in range(len(SCRIPT))) == at_once


def test_crlf_inside_a_literal_is_data(imap_store: IMAPStore) -> None:
    imap_store.passwords["alice"] = "pa\r\nss"
    wire = new_wire(imap_store)
    # the CRLF inside the literal ends no line: "ss" is not a command
    assert wire.receive_data(b"a1 LOGIN alice {6+}\r\npa\r\nss\r\n").startswith(b"a1 OK")
    # ... nor is a whole command smuggled inside one (a mailbox name cannot hold CRLF)
    out = wire.receive_data(b"a2 LIST {11+}\r\na3 LOGOUT\r\n *\r\n")
    assert out == b"a2 BAD Syntax error in arguments\r\n" and not wire.closed


@settings(max_examples=100)
@given(st.binary(max_size=400))
def test_fetch_returns_the_stored_octets(payload: bytes) -> None:
    """Any octets (NUL, bare CR/LF, 8-bit, ")" and "{n}") go out unchanged in the literal."""
    store = IMAPStore([IMAPStoredMessage(1, len(payload), frozenset(), payload)])
    wire = new_wire(store)
    wire.receive_data(b"a1 LOGIN alice secret\r\na2 SELECT INBOX\r\n")
    out = wire.receive_data(b"a3 FETCH 1 (BODY.PEEK[] RFC822.SIZE)\r\n")
    (text, literals), done = responses_of(out)
    assert literals == [payload]
    assert text == b"* 1 FETCH (RFC822.SIZE %d BODY[] {%d})" % (len(payload), len(payload))
    assert done == (b"a3 OK FETCH completed", [])


def test_encode_imap_responses() -> None:
    assert encode_imap_responses([r.CONTINUE_SASL, r.exists(3)]) == b"+ \r\n* 3 EXISTS\r\n"
    assert r.imap_greeting(["IMAP4rev2"]).wire_lines() == [
        "* OK [CAPABILITY IMAP4rev2] IMAP4rev2 server ready"]


# --- limits: literal sizes, line lengths, bare line ends ----------------------------------


def test_synchronizing_literal_too_large(imap_store: IMAPStore) -> None:
    wire = new_wire(imap_store, max_literal=10)
    # refused before it is sent: no "+", and the client sends nothing more for it
    assert wire.receive_data(b"a1 LOGIN {11}\r\n") == b"a1 BAD [TOOBIG] Literal too large\r\n"
    assert not wire.in_record
    assert wire.receive_data(b"a2 NOOP\r\n") == b"a2 OK NOOP completed\r\n"


def test_non_synchronizing_literal_too_large(imap_store: IMAPStore) -> None:
    wire = new_wire(imap_store, max_literal=10)
    # already on its way: its octets are read and dropped, then the command is refused
    out = wire.receive_data(b"a1 LOGIN alice {11+}\r\na2 LOGOUT\r\n")
    assert out == b"" and wire.in_record
    assert wire.receive_data(b" {3+}\r\nabc\r\n") == b"a1 BAD [TOOBIG] Literal too large\r\n"
    assert not wire.closed and wire.engine.state is IMAPState.NOT_AUTHENTICATED
    assert wire.receive_data(b"a3 NOOP\r\n") == b"a3 OK NOOP completed\r\n"


def test_command_too_large(imap_store: IMAPStore) -> None:
    wire = new_wire(imap_store, max_literal=10, max_command=40)
    data = b"a1 LOGIN {10+}\r\n0123456789 {10+}\r\n0123456789\r\n"
    assert wire.receive_data(data) == b"a1 BAD [TOOBIG] Literal too large\r\n"


def test_line_too_long_closes(imap_store: IMAPStore) -> None:
    wire = new_wire(imap_store)
    # 8192 octets with CRLF fit (RFC 7162 §4); one more does not, and framing is lost
    out = wire.receive_data(b"a1 LOGIN alice " + b"x" * 8175 + b"\r\n")
    assert out.startswith(b"a1 NO [AUTHENTICATIONFAILED]")
    out = wire.receive_data(b"a2 LOGIN alice " + b"x" * 8176 + b"\r\n{5+}\r\na3 NOOP\r\n")
    assert out == b"* BYE Line too long, closing connection\r\n" and wire.closed


@pytest.mark.parametrize("line_end", [b"\n", b"\r"])
def test_bare_line_end_closes(imap_store: IMAPStore, line_end: bytes) -> None:
    wire = new_wire(imap_store)
    out = wire.receive_data(b"a1 NOOP" + line_end + b"a2 LOGOUT\r\n")
    assert out == b"* BYE Bare CR or LF in a command: lines end with CRLF\r\n" and wire.closed


def test_missing_tag_is_an_untagged_bad(imap_store: IMAPStore) -> None:
    wire = new_wire(imap_store)
    assert wire.receive_data(b"\r\n") == b"* BAD Missing or invalid tag\r\n"


# --- continuations: AUTHENTICATE and IDLE -------------------------------------------------


def test_authenticate_continuation(imap_store: IMAPStore) -> None:
    wire = new_wire(imap_store)
    assert wire.receive_data(b"a1 AUTHENTICATE PLAIN\r\n") == b"+ \r\n"
    # the line after "+" is the SASL response, even if it looks like a command
    assert wire.receive_data(b"a2 LOGOUT\r\n") == b"a1 BAD Invalid base64 data\r\n"
    assert not wire.closed
    wire.receive_data(b"a3 AUTHENTICATE PLAIN\r\n")
    assert wire.receive_data(b"*\r\n") == b"a3 BAD AUTHENTICATE cancelled\r\n"
    wire.receive_data(b"a4 AUTHENTICATE PLAIN\r\n")
    out = wire.receive_data(encode_plain("alice", "secret").encode() + b"\r\n")
    assert out.startswith(b"a4 OK [CAPABILITY") and wire.engine.session.username == "alice"


def test_idle_done_and_news(imap_store: IMAPStore) -> None:
    wire = new_wire(imap_store)
    wire.receive_data(b"a1 LOGIN alice secret\r\na2 SELECT INBOX\r\n")
    assert wire.receive_data(b"a3 IDLE\r\n") == b"+ idling\r\n"
    assert wire.new_messages([imap_message(6)]) == b"* 4 EXISTS\r\n"
    assert wire.receive_data(b"done\r\n") == b"a3 OK IDLE terminated\r\n"
    assert wire.new_messages([imap_message(7)]) == b""  # told with the next command
    # the news comes first; a line other than DONE ends IDLE with a BAD
    assert wire.receive_data(b"a4 IDLE\r\na5 NOOP\r\n") == (
        b"* 5 EXISTS\r\n+ idling\r\na4 BAD Expected DONE\r\n")
    assert wire.engine.state is IMAPState.SELECTED


# --- STARTTLS (RFC 9051 §6.2.1) ------------------------------------------------------------


def test_starttls_drops_pipelined_plain_text(imap_store: IMAPStore) -> None:
    wire = new_wire(imap_store, starttls=True, allow_plaintext=False)
    assert b"LOGINDISABLED" in wire.receive_data(b"a1 CAPABILITY\r\n")
    assert wire.receive_data(b"a2 LOGIN alice secret\r\n") == (
        b"a2 NO [PRIVACYREQUIRED] Plaintext authentication disallowed on non-secure "
        b"connections\r\n")
    # a command injected after STARTTLS in plain text is never run (CVE-2011-0411's class)
    out = wire.receive_data(b"a3 STARTTLS\r\na4 LOGIN alice secret\r\n")
    assert out == b"a3 OK Begin TLS negotiation now\r\n" and wire.tls_pending
    assert wire.receive_data(b"a5 NOOP\r\n") == b""  # nothing until the adapter has TLS up
    wire.tls_started()
    assert wire.engine.session.tls and wire.engine.session.username is None
    assert wire.receive_data(b"a6 LOGIN alice secret\r\n").startswith(b"a6 OK")


def test_starttls_where_it_is_not_offered(imap_store: IMAPStore) -> None:
    wire = new_wire(imap_store)
    assert wire.receive_data(b"a1 STARTTLS\r\n") == b"a1 BAD STARTTLS not available\r\n"
    assert not wire.tls_pending


# --- fuzz: random lines never break the server ---------------------------------------------

VERBS = [
    "a LOGIN alice secret", "b AUTHENTICATE PLAIN", "*", encode_plain("alice", "secret"),
    "c SELECT INBOX", "c2 EXAMINE INBOX", "d FETCH 1:* (FLAGS BODY[])", "d2 UID FETCH * BODY[]",
    "e STORE 1 +FLAGS (\\Deleted)", "e2 UID STORE 2 FLAGS.SILENT ()", "f EXPUNGE",
    "f2 UID EXPUNGE 1", "g IDLE", "DONE", "h SEARCH UNSEEN", "i CLOSE", "j UNSELECT",
    "k ENABLE IMAP4rev2", 'l LIST "" *', "m NOOP", "n CAPABILITY", "o LOGIN {3}",
    "p LOGIN alice {6+}", "q STARTTLS", "r LOGOUT",
]  # fmt: skip
RANDOM_LINES = st.lists(
    st.one_of(st.sampled_from(VERBS),
              st.binary(max_size=60).filter(lambda b: b"\r" not in b and b"\n" not in b)
              .map(lambda b: b.decode("latin-1"))),
    max_size=30,
)  # fmt: skip


def check_invariants(wire: IMAPWireServer, store: IMAPStore) -> None:
    engine = wire.engine
    selected = engine.state in (IMAPState.SELECTED, IMAPState.SELECTED_IDLE)
    assert (engine.mailbox is not None) == selected
    logged_in = engine.state not in (IMAPState.NOT_AUTHENTICATED, IMAPState.AUTHENTICATING)
    assert (engine.session.username is not None) == logged_in or engine.closed
    if engine.mailbox is not None:  # the client's view is what storage holds
        assert [m.uid for m in engine.mailbox.messages] == store.uids()
        assert {m.uid: set(m.flags) for m in engine.mailbox.messages} == store.flags()


@settings(max_examples=200, deadline=None)
@given(RANDOM_LINES)
def test_imap_wire_survives_random_lines(lines: list[str]) -> None:
    store = IMAPStore(IMAP_THREE)
    wire = new_wire(store, max_errors=1000)
    for line in lines:
        out = wire.receive_data(line.encode("latin-1") + b"\r\n")
        check_output(out)
        for text, _ in responses_of(out):
            if not text.startswith((b"* ", b"+")):
                assert text.split(b" ")[1] in (b"OK", b"NO", b"BAD")
        check_invariants(wire, store)
        if wire.closed:
            return
    # still serving: a NOOP gets its OK (once a literal the lines announced has come)
    ready = (IMAPState.NOT_AUTHENTICATED, IMAPState.AUTHENTICATED, IMAPState.SELECTED)
    if wire.engine.state in ready and not wire.in_record:
        assert wire.receive_data(b"zz NOOP\r\n").endswith(b"zz OK NOOP completed\r\n")


def test_the_fuzz_vocabulary_reaches_every_state() -> None:
    store = IMAPStore(IMAP_THREE)
    wire = new_wire(store)
    seen = {wire.engine.state}
    for line in ["b AUTHENTICATE PLAIN", "*", "a LOGIN alice secret", "g IDLE", "DONE",
                 "c SELECT INBOX", "g IDLE", "DONE", "d FETCH 1:* (FLAGS BODY[])",
                 "e STORE 1 +FLAGS (\\Deleted)", "f EXPUNGE", "r LOGOUT"]:  # fmt: skip
        assert line in VERBS
        check_output(wire.receive_data(line.encode() + b"\r\n"))
        seen.add(wire.engine.state)
        check_invariants(wire, store)
    assert seen == set(IMAPState) - {IMAPState.NEW}
    assert store.uids() == [2, 5]


MUTATION = st.tuples(st.integers(0, len(SCRIPT)), st.sampled_from(
    [b"\r", b"\n", b"\x00", b"\xe9", b"{3}\r\n", b"{2+}\r\n", b")", b"(", b'"', b"x" * 9000, b""]))


@settings(max_examples=200, deadline=None)
@given(st.lists(MUTATION, max_size=5), st.integers(1, 40))
def test_byte_mutations_never_break_the_engine(mutations: list[tuple[int, bytes]],
                                               step: int) -> None:
    data = SCRIPT
    for at, insert in sorted(mutations, reverse=True):
        data = data[:at] + insert + data[at:]
    store = IMAPStore(IMAP_THREE)
    wire = new_wire(store, max_errors=1000)
    out = b"".join(wire.receive_data(data[i : i + step]) for i in range(0, len(data), step))
    check_output(out)
    check_invariants(wire, store)
