"""The byte layer: framing, parsing, dot-stuffing, and whole sessions in bytes."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netsim.protocols import (
    Apop,
    Auth,
    Content,
    Data,
    Ehlo,
    Helo,
    Invalid,
    List,
    Mail,
    Noop,
    Pass,
    POP3Invalid,
    POP3Quit,
    POP3Server,
    POP3Unknown,
    POP3WireServer,
    Quit,
    Rcpt,
    Retr,
    Rset,
    SMTPServer,
    SMTPWireServer,
    Stat,
    StoredMessage,
    Top,
    Uidl,
    Unknown,
    User,
    encode_command,
    encode_pop3_reply,
    encode_reply,
    parse_pop3_command,
    parse_smtp_command,
)
from netsim.protocols import pop3_replies as p
from netsim.protocols import replies as r
from netsim.protocols.sasl import b64encode
from netsim.protocols.wire import (
    BARE_LINE_END,
    LINE_TOO_LONG,
    DataReader,
    LineBuffer,
    dot_stuff,
    dot_unstuff,
    encode_content,
    message_text,
)

# --- LineBuffer -------------------------------------------------------------------------


def lines_of(buffer: LineBuffer, data: bytes) -> list[Any]:
    buffer.feed(data)
    return list(buffer.lines())


def test_line_buffer_splits_and_waits() -> None:
    buffer = LineBuffer(512)
    assert lines_of(buffer, b"EHLO a\r\nMAIL FR") == [b"EHLO a"]
    assert buffer.pending == 7
    assert lines_of(buffer, b"OM:<a@b>\r") == []
    assert lines_of(buffer, b"\nNOOP\n") == [b"MAIL FROM:<a@b>"]   # a bare LF ends nothing
    assert lines_of(buffer, b"\r\n") == [BARE_LINE_END]   # ... and marks its line
    assert lines_of(buffer, b"a\rb\r\n\r\n") == [BARE_LINE_END, b""]   # nor does a bare CR


def test_line_buffer_finds_a_crlf_split_across_a_discard() -> None:
    buffer = LineBuffer(8)
    assert lines_of(buffer, b"x" * 20 + b"\r") == []
    assert buffer.pending <= 8
    assert lines_of(buffer, b"\nok\r\n") == [LINE_TOO_LONG, b"ok"]


def test_line_buffer_limit_counts_crlf() -> None:
    buffer = LineBuffer(10)
    assert lines_of(buffer, b"12345678\r\n") == [b"12345678"]  # 8 + CRLF = 10: fits
    assert lines_of(buffer, b"123456789\r\nok\r\n") == [LINE_TOO_LONG, b"ok"]


def test_line_buffer_discards_long_lines_as_they_come() -> None:
    buffer = LineBuffer(16)
    for _ in range(100):
        assert lines_of(buffer, b"x" * 50) == []
        assert buffer.pending <= 16
    assert lines_of(buffer, b"tail\r\nNOOP\r\n") == [LINE_TOO_LONG, b"NOOP"]


@given(st.lists(st.binary(max_size=30).filter(lambda b: b"\n" not in b and b"\r" not in b),
                max_size=10),
       st.integers(1, 7))  # fmt: skip
def test_line_buffer_any_chunking(lines: list[bytes], step: int) -> None:
    data = b"".join(line + b"\r\n" for line in lines)
    buffer = LineBuffer(1000)
    got: list[Any] = []
    for i in range(0, len(data), step):
        got += lines_of(buffer, data[i : i + step])
    assert got == lines  # exactly the CRLF is removed, whatever the chunking


# --- parsing ----------------------------------------------------------------------------

SMTP_LINES = [
    ("EHLO pc1.isp-a.example", Ehlo("pc1.isp-a.example")),
    ("ehlo pc1", Ehlo("pc1")),
    ("HELO pc1", Helo("pc1")),
    ("MAIL FROM:<alice@isp-a.example>", Mail("alice@isp-a.example")),
    ("mail from: <alice@isp-a.example>", Mail("alice@isp-a.example")),  # lenient space
    ("MAIL FROM:<> SIZE=42", Mail("", 42)),
    ("MAIL FROM:<a@b.example> BODY=8BITMIME SIZE=7", Mail("a@b.example", 7)),
    ("MAIL FROM:<a@b.example> AUTH=<>", Mail("a@b.example")),
    ("RCPT TO:<bob@isp-b.example>", Rcpt("bob@isp-b.example")),
    ("RCPT TO:<@relay.example:bob@isp-b.example>", Rcpt("bob@isp-b.example")),  # source route
    ("RCPT TO:<postmaster>", Rcpt("postmaster")),
    ("DATA", Data()),
    ("RSET", Rset()),
    ("NOOP anything", Noop()),
    ("QUIT", Quit()),
    ("AUTH PLAIN AGFsaWNlAHNlY3JldA==", Auth("PLAIN", "AGFsaWNlAHNlY3JldA==")),
    ("auth login", Auth("LOGIN")),
    ("VRFY bob", Unknown("VRFY bob")),
    ("XYZZY", Unknown("XYZZY")),
    ("", Unknown("")),
    # Syntax errors become Invalid events carrying the reply.
    ("HELO", Invalid(r.S501_ARG_SYNTAX, "HELO")),
    ("EHLO two words", Invalid(r.S501_ARG_SYNTAX, "EHLO two words")),
    ("MAIL alice@isp-a.example", Invalid(r.S501_ARG_SYNTAX, "MAIL alice@isp-a.example")),
    ("MAIL FROM:alice@x.example", Invalid(r.S501_ARG_SYNTAX, "MAIL FROM:alice@x.example")),
    ("MAIL FROM:<alice>", Invalid(r.S501_BAD_SENDER_SYNTAX, "MAIL FROM:<alice>")),
    ("MAIL FROM:<a@b.example> SIZE=x", Invalid(r.S501_ARG_SYNTAX,
                                               "MAIL FROM:<a@b.example> SIZE=x")),
    ("MAIL FROM:<a@b.example> RET=FULL", Invalid(r.S555_PARAMS_UNRECOGNISED,
                                                 "MAIL FROM:<a@b.example> RET=FULL")),
    ("RCPT TO:<bob>", Invalid(r.S501_BAD_RECIPIENT_SYNTAX, "RCPT TO:<bob>")),
    ("RCPT TO:<b@x.example> NOTIFY=NEVER", Invalid(r.S555_PARAMS_UNRECOGNISED,
                                                   "RCPT TO:<b@x.example> NOTIFY=NEVER")),
    ("RCPT TO:<b@x.example>junk", Invalid(r.S501_ARG_SYNTAX, "RCPT TO:<b@x.example>junk")),
    ("DATA now", Invalid(r.S501_ARG_SYNTAX, "DATA now")),
    ("AUTH", Invalid(r.S501_ARG_SYNTAX, "AUTH")),
    ("AUTH PLAIN not!base64", Invalid(r.S501_ARG_SYNTAX, "AUTH PLAIN not!base64")),
    ("MAIL FROM:<bøb@x.example>", Invalid(r.S500_SYNTAX, "MAIL FROM:<b?b@x.example>")),
]  # fmt: skip


@pytest.mark.parametrize(("line", "event"), SMTP_LINES)
def test_parse_smtp(line: str, event: Any) -> None:
    assert parse_smtp_command(line) == event


POP3_LINES = [
    ("USER alice", User("alice")),
    ("user alice", User("alice")),
    ("PASS secret with spaces", Pass("secret with spaces")),
    ("APOP alice C4C9334BAC560ECC979E58001B3E22FB",
     Apop("alice", "c4c9334bac560ecc979e58001b3e22fb")),
    ("STAT", Stat()),
    ("LIST", List()),
    ("LIST 3", List(3)),
    ("UIDL 1", Uidl(1)),
    ("RETR 2", Retr(2)),
    ("TOP 1 0", Top(1, 0)),
    ("QUIT", POP3Quit()),
    ("XTND", POP3Unknown("XTND")),
    ("RETR 0", POP3Invalid(p.ERR_NO_SUCH_MESSAGE, "RETR 0")),
    ("RETR x", POP3Invalid(p.ERR_SYNTAX, "RETR x")),
    ("RETR", POP3Invalid(p.ERR_SYNTAX, "RETR")),
    ("STAT 1", POP3Invalid(p.ERR_SYNTAX, "STAT 1")),
    ("TOP 1", POP3Invalid(p.ERR_SYNTAX, "TOP 1")),
    ("APOP alice short", POP3Invalid(p.ERR_SYNTAX, "APOP alice short")),
    ("APOP alice " + "g" * 32, POP3Invalid(p.ERR_SYNTAX, "APOP alice " + "g" * 32)),
    ("USER " + "a" * 41, POP3Invalid(p.ERR_SYNTAX, "USER " + "a" * 41)),  # RFC 2449: <= 40
    ("USER a  b", POP3Invalid(p.ERR_SYNTAX, "USER a  b")),
    ("PASS", POP3Invalid(p.ERR_SYNTAX, "PASS")),
    ("RETRIEVE 1", POP3Invalid(p.ERR_UNKNOWN_COMMAND, "RETRIEVE 1")),  # keywords 3-4 chars
    ("", POP3Invalid(p.ERR_UNKNOWN_COMMAND, "")),
]  # fmt: skip


@pytest.mark.parametrize(("line", "event"), POP3_LINES)
def test_parse_pop3(line: str, event: Any) -> None:
    assert parse_pop3_command(line) == event


# --- dot-stuffing and DATA ---------------------------------------------------------------

TEXT_LINES = st.lists(st.text(st.characters(blacklist_characters="\r\n"), max_size=20))


@given(TEXT_LINES)
def test_dot_stuffing_round_trip(lines: list[str]) -> None:
    stuffed = dot_stuff(lines)
    assert dot_unstuff(stuffed) == lines
    assert "." not in stuffed  # no stuffed line can end the data early


@given(st.lists(st.binary(max_size=40).filter(lambda b: b"\n" not in b and b"\r" not in b),
                max_size=15))  # fmt: skip
def test_content_encoding_round_trip(lines: list[bytes]) -> None:
    message = b"".join(line + b"\r\n" for line in lines)
    wire = encode_content(message)
    assert wire.endswith(b".\r\n")
    buffer, reader = LineBuffer(10_000), DataReader(10**6)
    buffer.feed(wire)
    done = [reader.feed(item) for item in buffer.lines()]
    assert done[-1] and not any(done[:-1])
    assert reader.payload() == message and reader.size == len(message)


def test_data_reader_limits() -> None:
    reader = DataReader(max_size=10)
    for line in (b"12345678", b"..x", LINE_TOO_LONG):
        assert not reader.feed(line)
    assert reader.feed(b".")
    assert reader.size == 10 + 4 and reader.overflow and reader.line_too_long
    assert reader.payload() == b"12345678\r\n"  # nothing stored past the limit
    with pytest.raises(ValueError):
        reader.feed(b"more")


def test_encoders() -> None:
    assert encode_reply(r.S250_OK) == b"250 2.0.0 Ok\r\n"
    assert encode_reply(r.ehlo_reply("mx", 10, None)).count(b"\r\n") == 5
    assert encode_command(Mail("a@b.example", 5)) == b"MAIL FROM:<a@b.example> SIZE=5\r\n"
    assert encode_command(Content(7, b".hi\r\nyo")) == b"..hi\r\nyo\r\n.\r\n"
    assert encode_command(User("alice")) == b"USER alice\r\n"
    assert encode_pop3_reply(p.POP3Reply(True, "x", (".",))) == b"+OK x\r\n..\r\n.\r\n"
    with pytest.raises(Exception, match="bytes payload"):
        encode_command(Content(7, object()))


# --- whole sessions in bytes ------------------------------------------------------------

MESSAGE = (
    b"From: alice@isp-a.example\r\n"
    b"Subject: dots\r\n"
    b"\r\n"
    b".leading dot\r\n"
    b"..two dots\r\n"
    b".\tnot the end\r\n"
)


def test_smtp_wire_session(mail_hooks: Any) -> None:
    wire = SMTPWireServer(SMTPServer("mail.isp-b.example", mail_hooks))
    out = [wire.greeting()]
    for chunk in (
        b"EHLO pc1.isp-a.example\r\n",
        b"MAIL FROM:<alice@isp-a.example>\r\n",
        b"RCPT TO:<bob@isp-b.example>\r\n",
        b"DATA\r\n",
        encode_content(MESSAGE),
        b"QUIT\r\n",
    ):
        out.append(wire.receive_data(chunk))
    assert out == [
        b"220 mail.isp-b.example ESMTP netsim\r\n",
        b"250-mail.isp-b.example\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n"
        b"250-AUTH PLAIN LOGIN\r\n250-ENHANCEDSTATUSCODES\r\n250 8BITMIME\r\n",
        b"250 2.1.0 Sender ok\r\n",
        b"250 2.1.5 Recipient ok\r\n",
        b"354 Start mail input; end with <CRLF>.<CRLF>\r\n",
        b"250 2.0.0 Ok: queued\r\n",
        b"221 2.0.0 Bye\r\n",
    ]
    (envelope,) = mail_hooks.delivered
    assert envelope.payload == MESSAGE  # unstuffed, CRLF line ends
    assert envelope.size == len(MESSAGE)
    assert wire.closed
    assert wire.receive_data(b"NOOP\r\n") == b""  # nothing after close


def test_smtp_wire_pipelined_byte_by_byte(mail_hooks: Any) -> None:
    script = (
        b"EHLO pc1\r\nMAIL FROM:<a@isp-a.example>\r\nRCPT TO:<bob@isp-b.example>\r\n"
        b"RCPT TO:<nobody@isp-b.example>\r\nDATA\r\n" + encode_content(MESSAGE) + b"QUIT\r\n"
    )
    whole = SMTPWireServer(SMTPServer("mx", mail_hooks))
    whole.greeting()
    at_once = whole.receive_data(script)
    drip = SMTPWireServer(SMTPServer("mx", mail_hooks))
    drip.greeting()
    by_byte = b"".join(drip.receive_data(script[i : i + 1]) for i in range(len(script)))
    assert at_once == by_byte
    assert b"550 5.1.1 <nobody@isp-b.example> User unknown\r\n" in at_once
    assert [e.payload for e in mail_hooks.delivered] == [MESSAGE, MESSAGE]


def test_smtp_wire_auth_continuation(mail_hooks: Any) -> None:
    wire = SMTPWireServer(SMTPServer("mx", mail_hooks, port=587, auth_required=True))
    wire.greeting()
    wire.receive_data(b"EHLO pc1\r\n")
    assert wire.receive_data(b"AUTH PLAIN\r\n") == b"334 \r\n"
    # A line that looks like a command is still the AUTH response (RFC 4954 §4).
    assert wire.receive_data(b"QUIT\r\n") == b"501 5.5.2 Invalid base64 data\r\n"
    assert not wire.closed
    wire.receive_data(b"AUTH LOGIN\r\n")
    wire.receive_data(b64encode("alice").encode() + b"\r\n")
    reply = wire.receive_data(b64encode("secret").encode() + b"\r\n")
    assert reply == b"235 2.7.0 Authentication successful\r\n"


def test_smtp_wire_line_too_long(mail_hooks: Any) -> None:
    wire = SMTPWireServer(SMTPServer("mx", mail_hooks))
    wire.greeting()
    # RFC 5321 §4.5.3.1.4: command lines are at most 512 octets with CRLF.
    assert wire.receive_data(b"NOOP " + b"x" * 505 + b"\r\n") == b"250 2.0.0 Ok\r\n"
    assert wire.receive_data(b"NOOP " + b"x" * 506 + b"\r\n") == b"500 5.5.6 Line too long\r\n"
    assert wire.receive_data(b"EHLO pc1\r\n").startswith(b"250-")  # still working
    # RFC 5321 §4.5.3.1.6: text lines at most 1000; the message is refused after the dot.
    wire.receive_data(b"MAIL FROM:<a@b.example>\r\nRCPT TO:<bob@isp-b.example>\r\nDATA\r\n")
    reply = wire.receive_data(b"ok\r\n" + b"y" * 999 + b"\r\n.\r\n")
    assert reply == b"500 5.5.6 Line too long\r\n"
    assert mail_hooks.delivered == []
    assert wire.receive_data(b"RCPT TO:<bob@isp-b.example>\r\n").startswith(b"503")  # reset


def test_smtp_wire_oversized_message(mail_hooks: Any) -> None:
    wire = SMTPWireServer(SMTPServer("mx", mail_hooks, max_message_size=100))
    wire.greeting()
    wire.receive_data(b"HELO pc1\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<bob@isp-b.example>\r\n")
    wire.receive_data(b"DATA\r\n")
    reply = wire.receive_data(b"z" * 50 + b"\r\n" + b"z" * 50 + b"\r\n.\r\n")
    assert reply == b"552 5.3.4 Message size exceeds fixed limit\r\n"


def test_pop3_wire_session(make_maildrop: Any) -> None:
    hooks = make_maildrop([StoredMessage("m1", len(MESSAGE), MESSAGE)])
    wire = POP3WireServer(POP3Server("mx", hooks, timestamp="<1.2@mx>"))
    assert wire.greeting() == b"+OK POP3 server ready <1.2@mx>\r\n"
    size = len(MESSAGE)
    assert wire.receive_data(b"USER alice\r\nPASS secret\r\n") == (
        b"+OK send PASS\r\n+OK maildrop has 1 messages (%d octets)\r\n" % size
    )
    retr = wire.receive_data(b"RETR 1\r\n")
    assert retr.startswith(b"+OK %d octets\r\n" % size) and retr.endswith(b"\r\n.\r\n")
    assert b"\r\n..leading dot\r\n...two dots\r\n" in retr  # stuffed on the way out
    # RFC 2449 §4: command lines at most 255 octets.
    assert wire.receive_data(b"NOOP" + b" " * 300 + b"\r\n") == b"-ERR line too long\r\n"
    assert wire.receive_data(b"DELE 1\r\nQUIT\r\n") == (
        b"+OK message 1 deleted\r\n+OK POP3 server signing off (0 messages left)\r\n"
    )
    assert wire.closed and hooks.commits == [("alice", ["m1"])]


# --- fuzz: random lines never break the servers -----------------------------------------

SMTP_REPLY_LINE = re.compile(rb"^[2-5]\d\d[ -][^\r\n]*$")
POP3_STATUS_LINE = re.compile(rb"^(\+OK|-ERR)( [^\r\n]*)?$")
VERBS = [
    "HELO x", "EHLO x", "MAIL FROM:<a@b.c>", "RCPT TO:<bob@isp-b.example>", "DATA", "RSET",
    "NOOP", "AUTH PLAIN", "AUTH LOGIN", "*", ".", "QUIT", "USER alice", "PASS secret", "STAT",
    "LIST", "RETR 1", "DELE 1", "UIDL", "TOP 1 1", "CAPA", "STLS",
]  # fmt: skip
RANDOM_LINES = st.lists(
    st.one_of(st.sampled_from(VERBS), st.binary(max_size=80).map(lambda b: b.decode("latin-1"))),
    max_size=30,
)


def _check_smtp_output(data: bytes) -> None:
    assert data == b"" or data.endswith(b"\r\n")
    for line in data.split(b"\r\n")[:-1]:
        assert SMTP_REPLY_LINE.match(line), line


@settings(max_examples=200)
@given(RANDOM_LINES)
def test_smtp_wire_survives_random_lines(lines: list[str]) -> None:
    wire = SMTPWireServer(SMTPServer("mx", None, max_errors=1000))
    _check_smtp_output(wire.greeting())
    for line in lines:
        _check_smtp_output(wire.receive_data(line.encode("latin-1") + b"\r\n"))


@settings(max_examples=200)
@given(RANDOM_LINES)
def test_pop3_wire_survives_random_lines(make_maildrop: Any, lines: list[str]) -> None:
    hooks = make_maildrop([StoredMessage("a", 10), StoredMessage("b", 20)])
    wire = POP3WireServer(POP3Server("mx", hooks, max_errors=1000))
    wire.greeting()
    for line in lines:
        out = wire.receive_data(line.encode("latin-1") + b"\r\n")
        if not out:
            assert wire.closed
            continue
        first = out.split(b"\r\n", 1)[0]
        assert POP3_STATUS_LINE.match(first), first
        assert out.endswith(b"\r\n")


# --- SMTP smuggling and 8-bit bodies ------------------------------------------------------

FORGED = b"MAIL FROM:<ceo@bank.example>\r\nRCPT TO:<carol@isp-b.example>\r\nDATA\r\nforged\r\n"


@pytest.mark.parametrize("fake_end", [b"\n.\n", b"\n.\r\n", b"\r\n.\n", b"\r.\r\n"],
                         ids=["LF.LF", "LF.CRLF", "CRLF.LF", "CR.CRLF"])
def test_only_crlf_dot_crlf_ends_data(mail_hooks: Any, fake_end: bytes) -> None:
    wire = SMTPWireServer(SMTPServer("mx", mail_hooks))
    wire.greeting()
    wire.receive_data(b"EHLO pc1\r\nMAIL FROM:<a@isp-a.example>\r\n"
                      b"RCPT TO:<bob@isp-b.example>\r\nDATA\r\n")
    # the lines after the fake end are text, never commands; the whole message is refused
    reply = wire.receive_data(b"Subject: hi\r\n\r\nhello" + fake_end + FORGED + b".\r\n")
    assert reply == b"550 5.5.2 Message refused: bare <CR> or <LF> in its text\r\n"
    assert mail_hooks.delivered == []
    assert wire.receive_data(b"RCPT TO:<bob@isp-b.example>\r\n").startswith(b"503")  # reset


def test_a_bare_line_end_in_a_command_is_refused(mail_hooks: Any,
                                                 make_maildrop: Any) -> None:
    wire = SMTPWireServer(SMTPServer("mx", mail_hooks))
    wire.greeting()
    assert wire.receive_data(b"EHLO pc1\nMAIL FROM:<a@b.example>\r\n") == (
        b"500 5.5.2 Bare <CR> or <LF> in a command: lines end with <CRLF>\r\n")
    assert wire.receive_data(b"EHLO pc1\r\n").startswith(b"250-")   # still working
    pop = POP3WireServer(POP3Server("mx", make_maildrop([])))
    pop.greeting()
    assert pop.receive_data(b"USER alice\nPASS secret\r\n").startswith(b"-ERR bare CR or LF")


@given(st.binary(max_size=300).filter(lambda b: b"\r" not in b and b"\n" not in b))
def test_pop3_retr_returns_the_stored_octets(body: bytes) -> None:
    message = b"Subject: 8-bit\r\n\r\n" + body + b"\r\n\xe9\xff\xfe\r\n"
    lines = message_text(message).split("\r\n")[:-1]
    reply = encode_pop3_reply(p.POP3Reply(True, f"{len(message)} octets", tuple(lines)))
    _, _, rest = reply.partition(b"\r\n")
    buffer, reader = LineBuffer(10_000), DataReader(10**6)
    buffer.feed(rest)
    assert [reader.feed(item) for item in buffer.lines()][-1]
    assert reader.payload() == message and reader.size == len(message)   # byte for byte


# byte-level mutations of a valid session: bare CR and LF, 8-bit octets, NUL, long lines
SESSION = (b"EHLO pc1\r\nMAIL FROM:<a@isp-a.example>\r\nRCPT TO:<bob@isp-b.example>\r\n"
           b"DATA\r\nSubject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n")
MUTATION = st.tuples(st.integers(0, len(SESSION)), st.sampled_from(
    [b"\r", b"\n", b"\x00", b"\xe9", b"\xff", b"\r\n.\n", b"\n.\r\n", b"x" * 1200, b""]))


@settings(max_examples=300)
@given(st.lists(MUTATION, max_size=6), st.integers(1, 40))
def test_byte_mutations_never_break_the_engines(mutations: list[tuple[int, bytes]],
                                                step: int) -> None:
    """Whatever octets arrive, in whatever chunks: every reply is well formed, and what is
    delivered holds no bare CR or LF (only CRLF.CRLF ended it)."""
    from tests.protocols.conftest import MailHooks

    data = SESSION
    for at, insert in sorted(mutations, reverse=True):
        data = data[:at] + insert + data[at:]
    hooks = MailHooks()
    wire = SMTPWireServer(SMTPServer("mx", hooks, max_errors=1000))
    _check_smtp_output(wire.greeting())
    for i in range(0, len(data), step):
        _check_smtp_output(wire.receive_data(data[i : i + step]))
    for envelope in hooks.delivered:
        payload = envelope.payload
        assert isinstance(payload, bytes)
        assert b"\r" not in payload.replace(b"\r\n", b"") and b"\n" not in payload.replace(
            b"\r\n", b"")
    maildrop = POP3WireServer(POP3Server("mx", None, max_errors=1000))
    maildrop.greeting()
    for i in range(0, len(data), step):
        out = maildrop.receive_data(data[i : i + step])
        if out:
            assert POP3_STATUS_LINE.match(out.split(b"\r\n", 1)[0]) and out.endswith(b"\r\n")


# --- STARTTLS (RFC 3207) and STLS (RFC 2595) ----------------------------------------------


def test_starttls_resets_the_session_and_drops_pipelined_plain_text(mail_hooks: Any) -> None:
    wire = SMTPWireServer(SMTPServer("mx", mail_hooks, port=587, auth_required=True,
                                     auth_requires_tls=True, starttls=True))
    wire.greeting()
    ehlo = wire.receive_data(b"EHLO pc1\r\n")
    assert b"250-STARTTLS\r\n" in ehlo and b"AUTH" not in ehlo   # AUTH only inside TLS
    assert wire.receive_data(b"AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n").startswith(b"538")
    # a command injected after STARTTLS in plain text is never run (CVE-2011-0411's class)
    out = wire.receive_data(b"STARTTLS\r\nMAIL FROM:<evil@x.example>\r\n")
    assert out == b"220 2.0.0 Ready to start TLS\r\n" and wire.tls_pending
    assert wire.receive_data(b"NOOP\r\n") == b""   # nothing until the adapter has TLS up
    wire.tls_started()
    assert wire.engine.session.tls and wire.engine.session.helo_name is None
    assert wire.receive_data(b"MAIL FROM:<a@b.example>\r\n").startswith(b"503")  # EHLO again
    ehlo = wire.receive_data(b"EHLO pc1\r\n")
    assert b"STARTTLS" not in ehlo and b"250-AUTH PLAIN LOGIN\r\n" in ehlo
    assert wire.receive_data(b"STARTTLS\r\n").startswith(b"503 5.5.1 TLS already active")
    assert wire.receive_data(b"AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n").startswith(b"235")


def test_starttls_where_it_is_not_offered(mail_hooks: Any) -> None:
    wire = SMTPWireServer(SMTPServer("mx", mail_hooks))
    wire.greeting()
    assert b"STARTTLS" not in wire.receive_data(b"EHLO pc1\r\n")
    assert wire.receive_data(b"STARTTLS\r\n").startswith(b"502 5.5.1")
    assert not wire.tls_pending


def test_stls_drops_pipelined_plain_text(make_maildrop: Any) -> None:
    wire = POP3WireServer(POP3Server("mx", make_maildrop([]), stls=True))
    wire.greeting()
    assert wire.receive_data(b"STLS\r\nUSER alice\r\n").startswith(b"+OK")
    assert wire.tls_pending and wire.receive_data(b"PASS secret\r\n") == b""
    wire.tls_started()
    assert wire.engine.session.tls
    assert wire.receive_data(b"USER alice\r\n").startswith(b"+OK")
