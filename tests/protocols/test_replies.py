"""The reply tables themselves (aiosmtpd's test of its status-code table): SMTP, POP3, IMAP."""

from __future__ import annotations

import ast
import inspect

import pytest

from netsim.protocols import (
    Continuation,
    FetchData,
    IMAPData,
    IMAPStatus,
    StatusResponse,
    imap_responses,
    pop3_replies,
    replies,
)
from netsim.protocols.imap_responses import IMAP_RESPONSES
from netsim.protocols.pop3_replies import POP3_REPLIES, POP3Reply
from netsim.protocols.replies import REPLIES, Reply, with_text

NAMED = sorted(REPLIES.items())


def test_registry_holds_every_constant() -> None:
    names = {n for n, v in vars(replies).items() if isinstance(v, Reply)}
    assert names == set(REPLIES)
    assert len(REPLIES) > 40


@pytest.mark.parametrize(("name", "reply"), NAMED)
def test_code_in_range(name: str, reply: Reply) -> None:
    assert 200 <= reply.code <= 599


@pytest.mark.parametrize(("name", "reply"), NAMED)
def test_name_number_is_the_code(name: str, reply: Reply) -> None:
    assert name.startswith("S")
    assert int(name[1:4]) == reply.code
    assert name[4] == "_"


@pytest.mark.parametrize(("name", "reply"), NAMED)
def test_enhanced_class_matches_code(name: str, reply: Reply) -> None:
    if reply.enhanced is None:
        # RFC 2034: greeting and HELO/EHLO replies have none; RFC 3463: no 3.x.x class.
        assert reply.code in (220, 334, 354)
        return
    klass, subject, detail = reply.enhanced.split(".")
    assert klass == str(reply.code)[0]
    assert subject.isdigit() and detail.isdigit()


def test_names_defined_once_and_values_distinct() -> None:
    tree = ast.parse(inspect.getsource(replies))
    assigned = [
        target.id
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name) and target.id[:1] == "S" and target.id[1:4].isdigit()
    ]
    assert len(assigned) == len(set(assigned))
    values = list(REPLIES.values())
    assert len(values) == len(set(values)), "two names for one reply"


@pytest.mark.parametrize(
    ("reply", "lines"),
    [
        (replies.S550_USER_UNKNOWN.with_text("<bob@x> User unknown"),
         ["550 5.1.1 <bob@x> User unknown"]),
        (Reply(250, None, "mail.isp-a.example", ("AUTH PLAIN LOGIN", "8BITMIME")),
         ["250-mail.isp-a.example", "250-AUTH PLAIN LOGIN", "250 8BITMIME"]),
        (Reply(250, "2.0.0", "first", ("second",)), ["250-2.0.0 first", "250 2.0.0 second"]),
        (replies.S334_CONTINUE, ["334 "]),
        (replies.S354_START_INPUT, ["354 Start mail input; end with <CRLF>.<CRLF>"]),
    ],
)  # fmt: skip
def test_wire_lines(reply: Reply, lines: list[str]) -> None:
    assert reply.wire_lines() == lines


def test_classes() -> None:
    assert replies.S250_OK.is_positive and replies.S250_OK.is_completion
    assert replies.S354_START_INPUT.is_intermediate and replies.S354_START_INPUT.is_positive
    assert replies.S421_SHUTTING_DOWN.is_transient and not replies.S421_SHUTTING_DOWN.is_positive
    assert replies.S550_POLICY.is_permanent and not replies.S550_POLICY.is_transient


def test_with_text_keeps_code() -> None:
    variant = with_text(replies.S554_RELAY_DENIED, "<x@y> Relay access denied")
    assert (variant.code, variant.enhanced) == (554, "5.7.1")
    assert replies.relay_denied("x@y") == variant
    assert replies.greeting("mx.example").wire_lines() == ["220 mx.example ESMTP netsim"]


@pytest.mark.parametrize(
    ("code", "enhanced", "text"),
    [
        (199, None, "x"),
        (600, None, "x"),
        (550, "4.1.1", "wrong class"),
        (550, "5.1", "too short"),
        (550, "5.a.1", "not digits"),
        (550, "5.1.1", "line\r\nbreak"),
        (550, "5.1.1", "x" * 600),
        (354, "3.0.0", "no 3.x.x class"),
    ],
)
def test_bad_replies_rejected(code: int, enhanced: str | None, text: str) -> None:
    with pytest.raises(ValueError):
        Reply(code, enhanced, text)


def test_pop3_table() -> None:
    names = {n for n, v in vars(pop3_replies).items() if isinstance(v, POP3Reply)}
    assert names == set(POP3_REPLIES)
    for name, reply in POP3_REPLIES.items():
        assert reply.ok == (not name.startswith("ERR")), name
    assert len(set(POP3_REPLIES.values())) == len(POP3_REPLIES)


def test_pop3_wire_lines() -> None:
    reply = POP3Reply(True, "2 messages", ("1 100", ".hidden", ""))
    assert reply.wire_lines() == ["+OK 2 messages", "1 100", "..hidden", "", "."]
    assert POP3Reply(False, "no such message").wire_lines() == ["-ERR no such message"]
    assert POP3Reply(True, "").wire_lines() == ["+OK"]
    assert POP3Reply(True, "empty", ()).wire_lines() == ["+OK empty", "."]
    with pytest.raises(ValueError):
        POP3Reply(False, "x", ("body",))


# --- IMAP: the named conditions of imap_responses -------------------------------------------

# RFC 9051 §7.1's response codes, RFC 5530's PRIVACYREQUIRED (also in RFC 9051), RFC 7888's TOOBIG
IMAP_RESPONSE_CODES = {
    "ALERT", "ALREADYEXISTS", "APPENDUID", "AUTHENTICATIONFAILED", "AUTHORIZATIONFAILED",
    "BADCHARSET", "CANNOT", "CAPABILITY", "CLIENTBUG", "CLOSED", "CONTACTADMIN", "COPYUID",
    "CORRUPTION", "EXPIRED", "EXPUNGEISSUED", "HASCHILDREN", "INUSE", "LIMIT", "NONEXISTENT",
    "NOPERM", "OVERQUOTA", "PARSE", "PERMANENTFLAGS", "PRIVACYREQUIRED", "READ-ONLY",
    "READ-WRITE", "SERVERBUG", "TRYCREATE", "UIDNEXT", "UIDNOTSTICKY", "UIDVALIDITY",
    "UNAVAILABLE", "UNKNOWN-CTE", "TOOBIG",
}  # fmt: skip


def test_imap_table_holds_every_constant() -> None:
    names = {n for n, v in vars(imap_responses).items()
             if isinstance(v, IMAPStatus | Continuation)}  # fmt: skip
    assert names == set(IMAP_RESPONSES)
    assert set(IMAP_RESPONSES) <= set(imap_responses.__all__)
    assert len(set(IMAP_RESPONSES.values())) == len(IMAP_RESPONSES), "two names for one response"


@pytest.mark.parametrize(("name", "response"), sorted(IMAP_RESPONSES.items()))
def test_imap_name_says_the_kind(name: str, response: IMAPStatus | Continuation) -> None:
    prefix = name.split("_", 1)[0]
    if isinstance(response, Continuation):
        assert prefix == "CONTINUE"
        return
    assert prefix == response.kind
    assert response.code is None or response.code.split(" ")[0] in IMAP_RESPONSE_CODES
    assert response.text and response.text[0].isupper()  # read as a sentence


def test_imap_wire_forms() -> None:
    assert StatusResponse("a1", imap_responses.NO_MAILBOX_IN_USE).to_bytes() == (
        b"a1 NO [INUSE] Mailbox is in use\r\n")
    assert StatusResponse("*", imap_responses.BYE_LOGGING_OUT).wire_lines() == [
        "* BYE Logging out"]
    assert imap_responses.CONTINUE_SASL.to_bytes() == b"+ \r\n"
    assert imap_responses.uidvalidity(7).to_bytes() == b"* OK [UIDVALIDITY 7] UIDs valid\r\n"
    assert imap_responses.esearch("a1", [], uid=True) == IMAPData('ESEARCH (TAG "a1") UID')
    assert FetchData(2, (("UID", "9"), ("BODY[]", b"\xff\r\n"))).wire_lines() == [
        "* 2 FETCH (UID 9 BODY[] {3}", "\udcff", ")"]  # octets shown as surrogate escapes
    for build in (lambda: IMAPStatus("MAYBE", "x"), lambda: IMAPStatus("OK", "a\r\nb"),
                  lambda: IMAPStatus("OK", "x", ""), lambda: IMAPStatus("OK", "x", "A]B C"),
                  lambda: IMAPData("a\nb"), lambda: FetchData(0, ()),
                  lambda: Continuation("a\rb")):  # fmt: skip
        with pytest.raises(ValueError):
            build()
