"""IMAP client against the server engine, and IMAP command events."""

from __future__ import annotations

from typing import Any

import pytest

from netsim.protocols import (
    Authenticate,
    AuthenticateResponse,
    Capability,
    Close,
    Done,
    Enable,
    Examine,
    Expunge,
    Fetch,
    FetchAttribute,
    FetchData,
    FetchedMessage,
    FetchPlan,
    IMAPClient,
    IMAPClientState,
    IMAPCommand,
    IMAPData,
    IMAPInvalid,
    IMAPList,
    IMAPNoop,
    IMAPServer,
    IMAPStartTLS,
    IMAPStatus,
    IMAPUnknown,
    LocalProtocolError,
    Login,
    Logout,
    RemoteProtocolError,
    Search,
    SearchKey,
    Select,
    SequenceSet,
    StatusResponse,
    Store,
    StoreMode,
    Unselect,
    imap_exchange,
)
from netsim.protocols import imap_responses as r
from netsim.protocols.imap_client import NO_STARTTLS_OFFERED, NO_USABLE_LOGIN
from netsim.protocols.imap_commands import Idle
from netsim.protocols.sasl import encode_plain
from tests.protocols.conftest import IMAP_THREE, IMAPStore, imap_message

PLAIN = encode_plain("alice", "secret")
CAPS = "IMAP4rev2 IMAP4rev1 LITERAL+ SASL-IR ENABLE IDLE UNSELECT"


def server(hooks: Any, **kwargs: Any) -> IMAPServer:
    return IMAPServer("mail.isp-a.example", hooks, **kwargs)


def sent(transcript: list[tuple[str, str]]) -> list[str]:
    return [line for side, line in transcript if side == "C"]


def test_fetch_everything(imap_store: IMAPStore) -> None:
    c = IMAPClient("alice", "secret")
    transcript = imap_exchange(c, server(imap_store))
    assert transcript[:10] == [
        ("S", f"* OK [CAPABILITY {CAPS} AUTH=PLAIN] IMAP4rev2 server ready"),
        ("C", f"A1 AUTHENTICATE PLAIN {PLAIN}"),  # SASL-IR: no round trip for "+"
        ("S", f"A1 OK [CAPABILITY {CAPS}] Logged in"),
        ("C", "A2 SELECT INBOX"),
        ("S", "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)"),
        ("S", "* 3 EXISTS"),
        ("S", "* 0 RECENT"),
        ("S", "* OK [UIDVALIDITY 1] UIDs valid"),
        ("S", "* OK [UIDNEXT 6] Predicted next UID"),
        ("S", "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)] "
              "Flags permitted"),
    ]  # fmt: skip
    assert sent(transcript) == [
        f"A1 AUTHENTICATE PLAIN {PLAIN}", "A2 SELECT INBOX", "A3 UID SEARCH ALL",
        "A4 UID FETCH 1:2,5 (UID RFC822.SIZE BODY[])", "A5 LOGOUT",
    ]  # fmt: skip
    # a literal on the wire: its announcement, then its lines
    size = IMAP_THREE[2].size
    assert ("S", f"* 3 FETCH (UID 5 RFC822.SIZE {size} FLAGS (\\Seen) BODY[] {{{size}}}") in (
        transcript)
    assert ("S", "third") in transcript
    assert transcript[-2:] == [("S", "* BYE Logging out"), ("S", "A5 OK LOGOUT completed")]
    assert c.done and c.authenticated and not c.committed
    assert c.message_count == 3 and c.uidvalidity == 1
    assert c.retrieved_uids == [1, 2, 5]
    assert c.retrieved[2] == FetchedMessage(5, size, imap_store.render(IMAP_THREE[2]))
    assert c.credentials_on_wire  # AUTHENTICATE PLAIN on port 143 without TLS
    # IMAP keeps the mail: the messages stay, marked \Seen by BODY[]
    assert imap_store.uids() == [1, 2, 5]
    assert imap_store.flags() == {1: {"\\Seen"}, 2: {"\\Seen"}, 5: {"\\Seen"}}


def test_fetch_only_unseen(make_imap_store: Any) -> None:
    store = make_imap_store([imap_message(1, flags={"\\Seen"}), imap_message(2),
                             imap_message(3)])  # fmt: skip
    first = IMAPClient("alice", "secret", fetch=FetchPlan.UNSEEN)
    assert "A3 UID SEARCH UNSEEN" in sent(imap_exchange(first, server(store)))
    assert first.retrieved_uids == [2, 3]
    again = IMAPClient("alice", "secret", fetch=FetchPlan.UNSEEN)
    transcript = imap_exchange(again, server(store))
    assert sent(transcript)[-2:] == ["A3 UID SEARCH UNSEEN", "A4 LOGOUT"]  # nothing new
    assert again.retrieved == []


def test_delete_and_expunge(imap_store: IMAPStore) -> None:
    c = IMAPClient("alice", "secret", delete=True)
    transcript = imap_exchange(c, server(imap_store))
    assert sent(transcript)[-3:] == [
        "A5 UID STORE 1:2,5 +FLAGS.SILENT (\\Deleted)", "A6 EXPUNGE", "A7 LOGOUT"]
    assert [line for side, line in transcript if "EXPUNGE" in line and side == "S"] == [
        "* 1 EXPUNGE", "* 1 EXPUNGE", "* 1 EXPUNGE", "A6 OK EXPUNGE completed"]
    assert c.deleted_uids == [1, 2, 5] and c.committed
    assert imap_store.uids() == []


def test_login_command(imap_store: IMAPStore) -> None:
    c = IMAPClient("alice", "s3cr\"t", mechanism="LOGIN", fetch=FetchPlan.NONE)
    imap_store.passwords["alice"] = 's3cr"t'
    transcript = imap_exchange(c, server(imap_store))
    assert sent(transcript) == ['A1 LOGIN alice "s3cr\\"t"', "A2 LOGOUT"]
    assert c.authenticated and c.credentials_on_wire and imap_store.calls == []


def test_plain_without_sasl_ir(imap_store: IMAPStore) -> None:
    """A server without SASL-IR: AUTHENTICATE, then the response after the empty "+"."""
    c = IMAPClient("alice", "secret", fetch=FetchPlan.NONE)
    srv = server(imap_store)
    srv.greeting()
    greeting = StatusResponse("*", IMAPStatus("OK", "ready", "CAPABILITY IMAP4rev1 AUTH=PLAIN"))
    command = c.receive(greeting)
    assert command == Authenticate("A1", "PLAIN") and not c.credentials_on_wire
    lines = []
    while command is not None:
        lines.append(command.to_line())
        for response in srv.handle(command):
            command = c.receive(response)
    assert lines == ["A1 AUTHENTICATE PLAIN", PLAIN, "A2 LOGOUT"]
    assert c.authenticated and c.credentials_on_wire and c.done


def test_capability_asked_when_the_greeting_has_none(imap_store: IMAPStore) -> None:
    c = IMAPClient("alice", "secret", fetch=FetchPlan.NONE)
    assert c.receive(StatusResponse("*", IMAPStatus("OK", "hi"))) == Capability("A1")
    assert c.receive(IMAPData(f"CAPABILITY {CAPS} AUTH=PLAIN")) is None
    assert c.receive(StatusResponse("A1", r.OK_CAPABILITY)) == Authenticate("A2", "PLAIN", PLAIN)


def test_starttls_then_login_is_protected(imap_store: IMAPStore) -> None:
    c = IMAPClient("alice", "secret", use_starttls=True, fetch=FetchPlan.NONE)
    transcript = imap_exchange(c, server(imap_store, starttls=True, allow_plaintext=False))
    assert sent(transcript) == ["A1 STARTTLS", "A2 CAPABILITY", f"A3 AUTHENTICATE PLAIN {PLAIN}",
                                "A4 LOGOUT"]  # fmt: skip
    assert c.tls and c.authenticated and not c.credentials_on_wire
    assert "AUTH=PLAIN" not in c.capabilities  # what the server says after login


def test_starttls_not_offered_never_falls_back(imap_store: IMAPStore) -> None:
    c = IMAPClient("alice", "secret", use_starttls=True)
    transcript = imap_exchange(c, server(imap_store))
    assert sent(transcript) == ["A1 LOGOUT"]
    assert c.failed_response == NO_STARTTLS_OFFERED
    assert not c.credentials_on_wire and not c.authenticated


def test_login_disabled_sends_no_password(imap_store: IMAPStore) -> None:
    c = IMAPClient("alice", "secret")
    transcript = imap_exchange(c, server(imap_store, allow_plaintext=False))
    assert sent(transcript) == ["A1 LOGOUT"] and not c.credentials_on_wire
    assert c.failed_response == NO_USABLE_LOGIN and not c.authenticated


def test_implicit_tls(imap_store: IMAPStore) -> None:
    c = IMAPClient("alice", "secret", tls=True, use_starttls=True)
    imap_exchange(c, server(imap_store, tls=True, port=993, allow_plaintext=False))
    assert c.authenticated and not c.credentials_on_wire and c.retrieved_uids == [1, 2, 5]


def test_wrong_password(imap_store: IMAPStore) -> None:
    c = IMAPClient("alice", "guess")
    transcript = imap_exchange(c, server(imap_store))
    assert transcript[-4:] == [
        ("S", "A1 NO [AUTHENTICATIONFAILED] Invalid credentials"), ("C", "A2 LOGOUT"),
        ("S", "* BYE Logging out"), ("S", "A2 OK LOGOUT completed"),
    ]  # fmt: skip
    assert c.failed_response == r.NO_AUTHENTICATION_FAILED and not c.authenticated
    assert c.credentials_on_wire  # the (wrong) password still crossed the wire


def test_locked_mailbox(make_imap_store: Any) -> None:
    store = make_imap_store([imap_message(1)], exclusive=True)
    holder = server(store)
    holder.greeting()
    holder.handle(Login("h1", "alice", "secret"))
    holder.handle(Select("h2", "INBOX"))
    c = IMAPClient("alice", "secret")
    imap_exchange(c, server(store))
    assert c.failed_response == r.NO_MAILBOX_IN_USE and c.retrieved == []


def test_empty_mailbox_and_read_only(make_imap_store: Any, imap_store: IMAPStore) -> None:
    empty = IMAPClient("alice", "secret")
    assert sent(imap_exchange(empty, server(make_imap_store())))[-2:] == [
        "A2 SELECT INBOX", "A3 LOGOUT"]
    reader = IMAPClient("alice", "secret", readonly=True, delete=True)
    transcript = imap_exchange(reader, server(imap_store))
    assert "A2 EXAMINE INBOX" in sent(transcript) and "STORE" not in str(sent(transcript))
    assert reader.retrieved_uids == [1, 2, 5] and imap_store.flags()[1] == set()


def test_greetings() -> None:
    refused = IMAPClient("alice", "secret")
    assert refused.receive(StatusResponse("*", r.BYE_BUSY)) is None
    assert refused.done and refused.failed_response == r.BYE_BUSY
    preauth = IMAPClient("alice", "secret")
    command = preauth.receive(StatusResponse("*", IMAPStatus("PREAUTH", "welcome")))
    assert command == Select("A1", "INBOX") and preauth.authenticated


def test_server_bye_ends_the_client(imap_store: IMAPStore) -> None:
    c = IMAPClient("alice", "secret")
    srv = server(imap_store, max_errors=0)
    command = c.receive(srv.greeting())
    assert command is not None
    c.receive(srv.handle(command)[-1])
    assert c.receive(StatusResponse("*", r.BYE_TOO_MANY_ERRORS)) is None
    assert c.done and c.failed_response == r.BYE_TOO_MANY_ERRORS


def test_esearch_results_are_understood() -> None:
    c = IMAPClient("alice", "secret")
    c.receive(StatusResponse("*", IMAPStatus("PREAUTH", "hi")))
    c.receive(IMAPData("2 EXISTS"))
    search = c.receive(StatusResponse("A1", r.OK_SELECT_READ_WRITE))
    assert search == Search("A2", (SearchKey("ALL"),), uid=True)
    c.receive(IMAPData('ESEARCH (TAG "A2") UID ALL 3:1,7'))
    fetch = c.receive(StatusResponse("A2", r.OK_SEARCH))
    assert isinstance(fetch, Fetch) and fetch.sequence.to_text() == "1:3,7"


def test_client_errors(imap_store: IMAPStore) -> None:
    c = IMAPClient("alice", "secret")
    c.receive(StatusResponse("*", IMAPStatus("PREAUTH", "hi")))
    with pytest.raises(RemoteProtocolError):
        c.receive(StatusResponse("Z9", r.OK_SELECT_READ_WRITE))  # not our tag
    with pytest.raises(RemoteProtocolError):
        c.receive(r.CONTINUE_LITERAL)  # nobody asked for a "+"
    c.receive(IMAPData("1 EXISTS"))
    c.receive(StatusResponse("A1", r.OK_SELECT_READ_WRITE))
    c.receive(IMAPData("SEARCH 4"))
    c.receive(StatusResponse("A2", r.OK_SEARCH))
    with pytest.raises(RemoteProtocolError):
        c.receive(FetchData(1, (("BODY[]", b"x"),)))  # no UID
    with pytest.raises(RemoteProtocolError):
        c.receive(FetchData(1, (("UID", "4"),)))  # no message
    c.abort()
    assert c.done
    with pytest.raises(LocalProtocolError):
        c.receive(StatusResponse("A3", r.OK_FETCH))
    for bad in (lambda: IMAPClient("", "x"), lambda: IMAPClient("alice", "a\r\nb"),
                lambda: IMAPClient("alice", "x", mechanism="CRAM-MD5")):  # fmt: skip
        with pytest.raises(ValueError):
            bad()
    assert IMAPClient("alice", "x").state is IMAPClientState.GREETING


# --- command events -----------------------------------------------------------------------

ONE = SequenceSet.parse("1")


@pytest.mark.parametrize(
    ("command", "line"),
    [
        (Capability("a1"), "a1 CAPABILITY"),
        (IMAPNoop("a1"), "a1 NOOP"),
        (Logout("a1"), "a1 LOGOUT"),
        (IMAPStartTLS("a1"), "a1 STARTTLS"),
        (Login("a1", "alice", "se cret"), 'a1 LOGIN alice "se cret"'),
        (Login("a1", "al ice", "x\\y"), 'a1 LOGIN "al ice" "x\\\\y"'),
        (Authenticate("a1", "PLAIN"), "a1 AUTHENTICATE PLAIN"),
        (Authenticate("a1", "PLAIN", "="), "a1 AUTHENTICATE PLAIN ="),
        (AuthenticateResponse("*"), "*"),
        (Enable("a1", ("IMAP4rev2",)), "a1 ENABLE IMAP4rev2"),
        (Select("a1", "INBOX"), "a1 SELECT INBOX"),
        (Examine("a1", "My Mail"), 'a1 EXAMINE "My Mail"'),
        (IMAPList("a1", "", "*"), 'a1 LIST "" "*"'),
        (Fetch("a1", ONE, (FetchAttribute.BODY_PEEK,)), "a1 FETCH 1 (BODY.PEEK[])"),
        (Store("a1", ONE, StoreMode.REPLACE, frozenset(), uid=True), "a1 UID STORE 1 FLAGS ()"),
        (Store("a1", ONE, StoreMode.REMOVE, frozenset({"\\Seen"}), silent=True),
         "a1 STORE 1 -FLAGS.SILENT (\\Seen)"),
        (Search("a1", (SearchKey("UID", ONE), SearchKey("SEQUENCE", ONE), SearchKey("DRAFT"))),
         "a1 SEARCH UID 1 1 DRAFT"),
        (Expunge("a1"), "a1 EXPUNGE"),
        (Expunge("a1", ONE), "a1 UID EXPUNGE 1"),
        (Close("a1"), "a1 CLOSE"),
        (Unselect("a1"), "a1 UNSELECT"),
        (Idle("a1"), "a1 IDLE"),
        (Done(), "DONE"),
        (IMAPUnknown("a1", "a1 XYZZY"), "a1 XYZZY"),
        (IMAPInvalid(None, r.BAD_MISSING_TAG, "junk"), "junk"),
    ],
)  # fmt: skip
def test_imap_command_lines(command: IMAPCommand, line: str) -> None:
    assert command.to_line() == line


@pytest.mark.parametrize(
    "build",
    [
        lambda: IMAPNoop(""),
        lambda: IMAPNoop("a+1"),  # "+" is not allowed in a tag
        lambda: IMAPNoop("a 1"),
        lambda: Login("a1", "", "x"),
        lambda: Login("a1", "alice", "a\0b"),
        lambda: Authenticate("a1", "PL AIN"),
        lambda: Authenticate("a1", "PLAIN", "a b"),
        lambda: Select("a1", ""),
        lambda: Enable("a1", ()),
        lambda: Fetch("a1", ONE, ()),
        lambda: Store("a1", ONE, StoreMode.ADD, frozenset({"\\seen"})),  # not canonical
        lambda: Search("a1", ()),
        lambda: SearchKey("NOT"),
        lambda: SearchKey("UID"),
        lambda: SearchKey("ALL", ONE),
        lambda: IMAPInvalid("a1", r.OK_NOOP),
        lambda: IMAPList("a1", "a\r\nb", "*"),
        lambda: SequenceSet(()),
        lambda: SequenceSet(((0, 1),)),
    ],
)
def test_imap_command_validation(build: Any) -> None:
    with pytest.raises(ValueError):
        build()


def test_login_with_crlf_has_no_line() -> None:
    command = Login("a1", "alice", "pa\r\nss")  # a literal can carry it ...
    with pytest.raises(ValueError):
        command.to_line()  # ... a line cannot
