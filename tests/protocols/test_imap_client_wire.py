"""The IMAP client's byte layer: server bytes back into response events, and whole sessions
of IMAPClient against IMAPWireServer in bytes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netsim.protocols import (
    Continuation,
    FetchData,
    FetchPlan,
    IMAPClient,
    IMAPData,
    IMAPResponse,
    IMAPResponseReader,
    IMAPServer,
    IMAPStatus,
    IMAPStoredMessage,
    IMAPWireServer,
    RemoteProtocolError,
    StatusResponse,
    encode_imap_responses,
)
from netsim.protocols import imap_responses as r
from netsim.protocols.imap_syntax import SYSTEM_FLAGS, format_flags
from tests.protocols.conftest import IMAPStore

# --- what the server engine can produce -----------------------------------------------------

TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\r\n\0"),
               max_size=30)  # fmt: skip
ATOM = st.from_regex(r"[A-Za-z0-9.=+-]{1,10}", fullmatch=True)
TAG = st.from_regex(r"[A-Za-z0-9.]{1,8}", fullmatch=True)
NUMBER = st.integers(1, 2**32 - 1)
FLAGS = st.sets(st.sampled_from([*SYSTEM_FLAGS, "$Junk", "work"]), max_size=4)
CODE = st.one_of(st.none(), st.sampled_from(["ALERT", "READ-WRITE", "TOOBIG", "CLOSED"]),
                 NUMBER.map(lambda n: f"UIDVALIDITY {n}"),
                 st.lists(ATOM, min_size=1, max_size=4).map(
                     lambda caps: "CAPABILITY " + " ".join(caps)),
                 FLAGS.map(lambda f: "PERMANENTFLAGS " + format_flags(f)))  # fmt: skip


def _status_text(code: str | None) -> st.SearchStrategy[str]:
    # without a code, a text opening with "[" would read as one, on the wire as here
    return TEXT if code is not None else TEXT.filter(lambda t: not t.startswith("["))


def _status(kinds: list[str]) -> st.SearchStrategy[IMAPStatus]:
    return st.tuples(st.sampled_from(kinds), CODE).flatmap(
        lambda kc: _status_text(kc[1]).map(lambda t: IMAPStatus(kc[0], t, kc[1])))


STATUS = st.one_of(
    st.builds(StatusResponse, TAG, _status(["OK", "NO", "BAD"])),
    st.builds(StatusResponse, st.just("*"), _status(["OK", "NO", "BAD", "BYE", "PREAUTH"])),
    st.builds(StatusResponse, TAG, st.sampled_from(
        [s for s in r.IMAP_RESPONSES.values() if isinstance(s, IMAPStatus)
         and s.kind in ("OK", "NO", "BAD")])),
)  # fmt: skip
CONTINUATION = st.one_of(st.builds(Continuation, TEXT),
                         st.sampled_from([r.CONTINUE_LITERAL, r.CONTINUE_SASL]))  # fmt: skip
DATA = st.one_of(
    st.builds(r.exists, st.integers(0, 10**6)), st.builds(r.recent, st.integers(0, 9)),
    st.builds(r.expunged, NUMBER), st.builds(r.flags_data, FLAGS),
    st.builds(r.capability_data, st.lists(ATOM, max_size=6)),
    st.builds(r.search, st.lists(NUMBER, max_size=20)),
    st.builds(r.esearch, TAG, st.lists(NUMBER, max_size=20), uid=st.booleans()),
    st.builds(r.list_data, st.sampled_from(["", "INBOX"]),
              st.sampled_from(["", "\\HasNoChildren"])),
    st.builds(r.enabled, st.lists(ATOM, max_size=3)),
)  # fmt: skip
SMALL_ITEM = st.one_of(
    NUMBER.map(lambda n: ("UID", str(n))), NUMBER.map(lambda n: ("RFC822.SIZE", str(n))),
    FLAGS.map(lambda f: ("FLAGS", format_flags(f))),
)  # fmt: skip
# message octets: anything at all, and texts that look like the protocol itself
OCTETS = st.one_of(st.binary(max_size=300), st.lists(st.sampled_from(
    [b"\r\n", b"{5}", b")", b"(", b'"', b"* OK ", b"A1 OK x", b"\r", b"\n", b"\xff", b"\0"]),
    max_size=20).map(b"".join))  # fmt: skip
LITERAL_ITEM = st.tuples(st.sampled_from(["BODY[]", "RFC822"]), OCTETS)
FETCH = st.builds(FetchData, NUMBER, st.lists(st.one_of(SMALL_ITEM, LITERAL_ITEM), max_size=5)
                  .map(tuple))  # fmt: skip
RESPONSE = st.one_of(STATUS, CONTINUATION, DATA, FETCH)
# every kind in every example (and more at random), in a random order
RESPONSES = st.tuples(STATUS, CONTINUATION, DATA, FETCH, st.lists(RESPONSE, max_size=12)).map(
    lambda t: [*t[:4], *t[4]]).flatmap(st.permutations)  # fmt: skip


def read_in_pieces(data: bytes, cuts: list[int]) -> tuple[list[IMAPResponse], bool]:
    reader = IMAPResponseReader()
    events: list[IMAPResponse] = []
    start = 0
    for cut in [*sorted(c % (len(data) + 1) for c in cuts), len(data)]:
        events += reader.feed(data[start:cut])
        start = cut
    return events, reader.in_response


@settings(max_examples=300)
@given(responses=RESPONSES, cuts=st.lists(st.integers(0, 10**6), max_size=12))
def test_every_response_reads_back(responses: list[IMAPResponse], cuts: list[int]) -> None:
    data = encode_imap_responses(responses)
    assert IMAPResponseReader().feed(data) == responses  # all at once
    assert read_in_pieces(data, cuts) == (responses, False)  # cut anywhere


@given(responses=st.lists(RESPONSE, min_size=1, max_size=5))
def test_octet_by_octet_and_what_crossed(responses: list[IMAPResponse]) -> None:
    reader = IMAPResponseReader()
    for response in responses:
        data = response.to_bytes()
        seen = [event for octet in data for event in reader.feed(bytes([octet]))]
        assert seen == [response] and reader.last_octets == data and not reader.in_response


# --- the grammar, by example ----------------------------------------------------------------

OK = IMAPStatus("OK", "done")
READ = [
    # RFC 9051 §7.1: status responses, codes optional, case-insensitive names
    (b"a1 OK done\r\n", StatusResponse("a1", OK)),
    (b"a1 ok done\r\n", StatusResponse("a1", OK)),
    (b"a1 OK\r\n", StatusResponse("a1", IMAPStatus("OK", ""))),
    (b"a1 NO [AUTHENTICATIONFAILED] no\r\n",
     StatusResponse("a1", IMAPStatus("NO", "no", "AUTHENTICATIONFAILED"))),
    (b"* OK [ALERT]\r\n", StatusResponse("*", IMAPStatus("OK", "", "ALERT"))),
    (b"* OK [UIDVALIDITY 1] UIDs valid\r\n", r.uidvalidity(1)),
    (b"* OK [PERMANENTFLAGS (\\Seen \\*)] Limited\r\n",
     StatusResponse("*", IMAPStatus("OK", "Limited", "PERMANENTFLAGS (\\Seen \\*)"))),
    (b"* OK [unclosed bracket\r\n", StatusResponse("*", IMAPStatus("OK", "[unclosed bracket"))),
    (b"* BYE\r\n", StatusResponse("*", IMAPStatus("BYE", ""))),
    (b"* PREAUTH welcome\r\n", StatusResponse("*", IMAPStatus("PREAUTH", "welcome"))),
    (b"a1 OK see {5}\r\n", StatusResponse("a1", IMAPStatus("OK", "see {5}"))),  # no literal
    (b"* OK caf\xc3\xa9 \xff\r\n", StatusResponse("*", IMAPStatus("OK", "café \ufffd"))),
    # §7.5 continuation requests: "+" alone too
    (b"+ Ready\r\n", Continuation("Ready")),
    (b"+ \r\n", Continuation("")),
    (b"+\r\n", Continuation("")),
    # §7.2-7.4 untagged data
    (b"* 3 EXISTS\r\n", IMAPData("3 EXISTS")),
    (b"* SEARCH 1 2\r\n", IMAPData("SEARCH 1 2")),
    (b"* SEARCH\r\n", IMAPData("SEARCH")),
    (b"* CAPABILITY IMAP4rev2 AUTH=PLAIN\r\n", IMAPData("CAPABILITY IMAP4rev2 AUTH=PLAIN")),
    (b"* FLAGS (\\Seen \\Deleted)\r\n", IMAPData("FLAGS (\\Seen \\Deleted)")),
    (b"* OKAY then\r\n", IMAPData("OKAY then")),
    (b'* LIST () "/" {5}\r\nINBOX\r\n', IMAPData('LIST () "/" "INBOX"')),  # literal: quoted
    (b'* LIST () "/" {3}\r\na"b\r\n', IMAPData('LIST () "/" "a\\"b"')),
    # §7.5.2 FETCH: literals as bytes (exact, 8-bit, CRLF inside), the rest as written
    (b"* 1 FETCH (UID 4 RFC822.SIZE 10 FLAGS (\\Seen) BODY[] {10}\r\nab\r\n\xff\0.\r\n)"
     b")\r\n",
     FetchData(1, (("UID", "4"), ("RFC822.SIZE", "10"), ("FLAGS", "(\\Seen)"),
                   ("BODY[]", b"ab\r\n\xff\0.\r\n)")))),
    (b"* 1 FETCH (BODY[] {0}\r\n UID 7)\r\n", FetchData(1, (("BODY[]", b""), ("UID", "7")))),
    (b"* 1 FETCH (BODY[] {2}\r\nab RFC822 {1}\r\nc)\r\n",
     FetchData(1, (("BODY[]", b"ab"), ("RFC822", b"c")))),
    (b"* 2 fetch (FLAGS ())\r\n", FetchData(2, (("FLAGS", "()"),))),
    (b"* 2 FETCH ()\r\n", FetchData(2, ())),
    (b'* 2 FETCH (INTERNALDATE "17-Jul-1996 02:44:25 -0700")\r\n',
     FetchData(2, (("INTERNALDATE", '"17-Jul-1996 02:44:25 -0700"'),))),
    (b'* 2 FETCH (BODY[HEADER.FIELDS (FROM TO)]<0> {5}\r\nF: \r\n)\r\n',
     FetchData(2, (("BODY[HEADER.FIELDS (FROM TO)]<0>", b"F: \r\n"),))),
    (b'* 2 FETCH (ENVELOPE (NIL "a \\"q\\" )" {3}\r\nx y ((NIL NIL "u" "h"))))\r\n',
     FetchData(2, (("ENVELOPE", '(NIL "a \\"q\\" )" "x y" ((NIL NIL "u" "h")))'),))),
]  # fmt: skip


@pytest.mark.parametrize("data, expected", READ)
def test_responses_read(data: bytes, expected: IMAPResponse) -> None:
    reader = IMAPResponseReader()
    assert reader.feed(data) == [expected]
    assert reader.last_octets == data and not reader.in_response


MALFORMED = [
    (b"* OK a\nb\r\n", "bare CR or LF"),
    (b"* OK a\rb\r\n", "bare CR or LF"),
    (b"* OK \0\r\n", "NUL"),
    (b"\r\n", "neither tagged"),
    (b"*\r\n", "neither tagged"),
    (b"+x\r\n", "neither tagged"),
    (b'a"1 OK x\r\n', "neither tagged"),
    (b"a1 BYE x\r\n", "not OK, NO or BAD"),
    (b"a1 MAYBE\r\n", "not OK, NO or BAD"),
    (b"* OK [] x\r\n", "unusable"),
    (b"* 0 FETCH (UID 1)\r\n", "unusable"),
    (b"* 1 FETCH (UID 1\r\n", "expected"),
    (b"* 1 FETCH (UID)\r\n", "expected"),
    (b"* 1 FETCH (UID 1) extra\r\n", "text after"),
    (b"* 1 FETCH (UID 1 )\r\n", "bad item name"),
    (b'* 1 FETCH ("UID" 1)\r\n', "bad item name"),
    (b"* 1 FETCH (BODY[ 1)\r\n", "bad item name"),
    (b"* 1 FETCH (UID a(b)\r\n", "bad value"),
    (b'* 1 FETCH (X "abc)\r\n', "quoted string"),
    (b'* 1 FETCH (X "a\\b")\r\n', "quoted string"),
    (b"* 1 FETCH (X (a (b)\r\n", "unclosed"),
    (b"* 1 FETCH (BODY[] {3}\r\nabc\r\n", "expected"),  # the ")" is missing
    (b"* 1 FETCH (BODY[] {3+}\r\nabc)\r\n", "non-synchronizing"),
    (b"* 1 FETCH (X ({2}\r\n\r\n))\r\n", "CR, LF or NUL"),
    (b'* LIST () "/" {1}\r\n\n\r\n', "CR, LF or NUL"),
]  # fmt: skip


@pytest.mark.parametrize("data, message", MALFORMED)
def test_malformed_responses(data: bytes, message: str) -> None:
    reader = IMAPResponseReader()
    with pytest.raises(RemoteProtocolError, match=message):
        reader.feed(data)
    with pytest.raises(RemoteProtocolError, match=message):  # the stream is lost for good
        reader.feed(b"a1 OK fine\r\n")


def test_responses_before_a_malformed_one_are_delivered() -> None:
    reader = IMAPResponseReader()
    reader.receive_data(b"* 1 EXISTS\r\na1 OK [READ-WRITE] x\r\n\r\n")
    assert reader.next_event() == IMAPData("1 EXISTS")
    assert reader.next_event() == StatusResponse("a1", IMAPStatus("OK", "x", "READ-WRITE"))
    assert reader.last_octets == b"a1 OK [READ-WRITE] x\r\n"
    with pytest.raises(RemoteProtocolError):
        reader.next_event()


def test_limits() -> None:
    # a line that cannot end within the limit fails at once, before its CRLF
    with pytest.raises(RemoteProtocolError, match="line over 20"):
        IMAPResponseReader(max_line=20).feed(b"* OK " + b"x" * 15)
    assert IMAPResponseReader(max_line=20).feed(b"* OK " + b"x" * 13 + b"\r\n")  # 20: fits
    with pytest.raises(RemoteProtocolError, match="line over 20"):
        IMAPResponseReader(max_line=20).feed(b"* OK " + b"x" * 14 + b"\r\n")
    literal = b"* 1 FETCH (BODY[] {11}\r\n"
    with pytest.raises(RemoteProtocolError, match="11 octets is over the limit of 10"):
        IMAPResponseReader(max_literal=10).feed(literal)  # refused before its octets come
    assert IMAPResponseReader(max_literal=11).feed(literal + b"x" * 11 + b")\r\n")
    many = b"* 1 FETCH (" + b"X {0}\r\n " * 20 + b"UID 1)\r\n"
    with pytest.raises(RemoteProtocolError, match="response over 100"):
        IMAPResponseReader(max_response=100).feed(many)  # empty literals add up too
    with pytest.raises(ValueError):
        IMAPResponseReader(max_line=2)


def test_a_cut_off_response_is_pending() -> None:
    reader = IMAPResponseReader()
    assert reader.feed(b"* 1 FETCH (BODY[] {10}\r\nabc") == [] and reader.in_response
    assert reader.feed(b"defghij)\r\n") == [FetchData(1, (("BODY[]", b"abcdefghij"),))]
    assert not reader.in_response


# --- whole sessions: IMAPClient, the reader and IMAPWireServer, in bytes ------------------------

def wire_session(client: IMAPClient, wire: IMAPWireServer, chunk: int = 1 << 20) -> list[bytes]:
    """Pump bytes both ways (server output fed ``chunk`` octets at a time) until the client is
    done; the client's command lines."""
    reader = IMAPResponseReader()
    sent: list[bytes] = []
    out = wire.greeting()
    while True:
        command = None
        for start in range(0, len(out), chunk):
            for response in reader.feed(out[start : start + chunk]):
                answer = client.receive(response) if not client.done else None
                if answer is not None:
                    assert command is None, "two commands in one turn"
                    command = answer
        assert not reader.in_response
        if command is None:
            assert client.done
            return sent
        line = (command.to_line() + "\r\n").encode()
        sent.append(line)
        out = wire.receive_data(line)


def stored(uid: int, octets: bytes, flags: frozenset[str] = frozenset()) -> IMAPStoredMessage:
    return IMAPStoredMessage(uid, len(octets), flags, octets)


@settings(max_examples=50, deadline=None)
@given(contents=st.lists(OCTETS, min_size=1, max_size=5), chunk=st.integers(1, 64),
       delete=st.booleans(), mechanism=st.sampled_from([None, "LOGIN"]))
def test_the_client_retrieves_the_exact_octets(contents: list[bytes], chunk: int, delete: bool,
                                               mechanism: str | None) -> None:
    messages = [stored(2 * i + 1, octets) for i, octets in enumerate(contents)]
    store = IMAPStore(messages)
    client = IMAPClient("alice", "secret", delete=delete, mechanism=mechanism)
    sent = wire_session(client, IMAPWireServer(IMAPServer("mx", store)), chunk)
    assert [m.content for m in client.retrieved] == contents
    assert [(m.uid, m.size) for m in client.retrieved] == [(m.uid, m.size) for m in messages]
    assert client.authenticated and client.failed_response is None
    assert sent[0].startswith(b"A1 LOGIN" if mechanism else b"A1 AUTHENTICATE PLAIN")
    assert client.committed == delete
    assert store.uids() == ([] if delete else [m.uid for m in messages])


def test_unseen_and_a_refused_login_in_bytes() -> None:
    store = IMAPStore([stored(1, b"old\r\n", frozenset({"\\Seen"})), stored(2, b"new\r\n")])
    client = IMAPClient("alice", "secret", fetch=FetchPlan.UNSEEN)
    assert b"A3 UID SEARCH UNSEEN\r\n" in wire_session(client, IMAPWireServer(
        IMAPServer("mx", store)))
    assert [m.content for m in client.retrieved] == [b"new\r\n"]
    refused = IMAPClient("alice", "wrong")
    wire_session(refused, IMAPWireServer(IMAPServer("mx", IMAPStore())))
    assert not refused.authenticated
    assert refused.failed_response == r.NO_AUTHENTICATION_FAILED


def test_plain_without_sasl_ir_answers_the_continuation() -> None:
    """A server without SASL-IR asks with ``+``: the reader hands the client a Continuation."""
    store = IMAPStore([stored(1, b"x\r\n")])
    wire = IMAPWireServer(IMAPServer("mx", store))
    greeting = wire.greeting().replace(b" SASL-IR", b"")
    client = IMAPClient("alice", "secret")
    reader = IMAPResponseReader()
    (response,) = reader.feed(greeting)
    command = client.receive(response)
    assert command is not None and command.to_line() == "A1 AUTHENTICATE PLAIN"
    (continuation,) = reader.feed(wire.receive_data(b"A1 AUTHENTICATE PLAIN\r\n"))
    assert continuation == r.CONTINUE_SASL
    answer = client.receive(continuation)
    assert answer is not None
    (done,) = reader.feed(wire.receive_data((answer.to_line() + "\r\n").encode()))
    assert isinstance(done, StatusResponse) and done.status.ok
