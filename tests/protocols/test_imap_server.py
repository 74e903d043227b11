"""IMAP server engine: RFC 9051 state rules as parametrised corpora, then each command."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from netsim.protocols import (
    IMAP_TRANSITIONS,
    Authenticate,
    AuthenticateResponse,
    Capability,
    Close,
    Continuation,
    Done,
    Enable,
    Examine,
    Expunge,
    Fetch,
    FetchAttribute,
    FetchData,
    IMAPCommand,
    IMAPData,
    IMAPInvalid,
    IMAPList,
    IMAPMailbox,
    IMAPNoop,
    IMAPResponse,
    IMAPServer,
    IMAPStartTLS,
    IMAPState,
    IMAPStatus,
    IMAPStoredMessage,
    IMAPUnknown,
    LocalProtocolError,
    Login,
    Logout,
    Search,
    SearchKey,
    Select,
    SequenceSet,
    StatusResponse,
    Store,
    StoreMode,
    Unselect,
)
from netsim.protocols import imap_responses as r
from netsim.protocols.imap_commands import Idle
from netsim.protocols.imap_server import _HANDLERS
from netsim.protocols.imap_state import _WAITING
from netsim.protocols.imap_syntax import format_flags
from netsim.protocols.sasl import encode_plain
from tests.protocols.conftest import IMAPStore, imap_message

S = IMAPState
LOGIN: list[IMAPCommand] = [Login("a1", "alice", "secret")]
SELECTED: list[IMAPCommand] = [*LOGIN, Select("a2", "INBOX")]
EXAMINED: list[IMAPCommand] = [*LOGIN, Examine("a2", "INBOX")]
ALL = SequenceSet.parse("1:*")
BODY, PEEK = FetchAttribute.BODY, FetchAttribute.BODY_PEEK
CAPS = ("IMAP4rev2", "IMAP4rev1", "LITERAL+", "SASL-IR", "ENABLE", "IDLE", "UNSELECT")


def start(hooks: Any, **kwargs: Any) -> IMAPServer:
    server = IMAPServer("mail.isp-a.example", hooks, **kwargs)
    server.greeting()
    return server


def run(server: IMAPServer, commands: Sequence[IMAPCommand]) -> list[list[IMAPResponse]]:
    return [server.handle(c) for c in commands]


def last(responses: list[IMAPResponse]) -> IMAPStatus | Continuation:
    final = responses[-1]
    if isinstance(final, Continuation):
        return final
    assert isinstance(final, StatusResponse)
    return final.status


def wire(responses: list[IMAPResponse]) -> list[str]:
    return [line for response in responses for line in response.wire_lines()]


def seq(text: str) -> SequenceSet:
    return SequenceSet.parse(text)


PLAIN = encode_plain("alice", "secret")
WAIT_SASL = [Authenticate("a1", "PLAIN")]
LOGGED_IN = r.logged_in(CAPS)

CORPUS = [
    # RFC 9051 §6.1: CAPABILITY, NOOP and LOGOUT in any state.
    pytest.param([Capability("a1")], r.OK_CAPABILITY, S.NOT_AUTHENTICATED, id="capability"),
    pytest.param([IMAPNoop("a1")], r.OK_NOOP, S.NOT_AUTHENTICATED, id="noop"),
    pytest.param([Logout("a1")], r.OK_LOGOUT, S.LOGOUT, id="logout-not-authenticated"),
    pytest.param([*LOGIN, Logout("a9")], r.OK_LOGOUT, S.LOGOUT, id="logout-authenticated"),
    pytest.param([*SELECTED, Logout("a9")], r.OK_LOGOUT, S.LOGOUT, id="logout-selected"),
    pytest.param([*SELECTED, IMAPNoop("a9")], r.OK_NOOP, S.SELECTED, id="noop-selected"),
    # RFC 9051 §3: mailbox commands need authentication, message commands a selection.
    pytest.param([Select("a1", "INBOX")], r.BAD_WRONG_STATE, S.NOT_AUTHENTICATED,
                 id="select-before-login"),
    pytest.param([IMAPList("a1", "", "*")], r.BAD_WRONG_STATE, S.NOT_AUTHENTICATED,
                 id="list-before-login"),
    pytest.param([Idle("a1")], r.BAD_WRONG_STATE, S.NOT_AUTHENTICATED, id="idle-before-login"),
    pytest.param([Enable("a1", ("IMAP4rev2",))], r.BAD_WRONG_STATE, S.NOT_AUTHENTICATED,
                 id="enable-before-login"),
    pytest.param([Fetch("a1", ALL, (BODY,))], r.BAD_WRONG_STATE, S.NOT_AUTHENTICATED,
                 id="fetch-before-login"),
    pytest.param([*LOGIN, Fetch("a2", ALL, (BODY,))], r.BAD_WRONG_STATE, S.AUTHENTICATED,
                 id="fetch-before-select"),
    pytest.param([*LOGIN, Store("a2", ALL, StoreMode.ADD, frozenset({"\\Seen"}))],
                 r.BAD_WRONG_STATE, S.AUTHENTICATED, id="store-before-select"),
    pytest.param([*LOGIN, Search("a2", (SearchKey("ALL"),))], r.BAD_WRONG_STATE,
                 S.AUTHENTICATED, id="search-before-select"),
    pytest.param([*LOGIN, Expunge("a2")], r.BAD_WRONG_STATE, S.AUTHENTICATED,
                 id="expunge-before-select"),
    pytest.param([*LOGIN, Close("a2")], r.BAD_WRONG_STATE, S.AUTHENTICATED,
                 id="close-before-select"),
    pytest.param([*LOGIN, Unselect("a2")], r.BAD_WRONG_STATE, S.AUTHENTICATED,
                 id="unselect-before-select"),
    # RFC 9051 §6.2.3: LOGIN.
    pytest.param(LOGIN, LOGGED_IN, S.AUTHENTICATED, id="login"),
    pytest.param([Login("a1", "alice", "wrong")], r.NO_AUTHENTICATION_FAILED,
                 S.NOT_AUTHENTICATED, id="login-wrong-password"),
    pytest.param([Login("a1", "mallory", "secret")], r.NO_AUTHENTICATION_FAILED,
                 S.NOT_AUTHENTICATED, id="login-unknown-user"),
    pytest.param([*LOGIN, Login("a2", "alice", "secret")], r.BAD_WRONG_STATE,
                 S.AUTHENTICATED, id="login-twice"),
    # RFC 9051 §6.2.2 and RFC 4959: AUTHENTICATE PLAIN, with an initial response or after +.
    pytest.param([Authenticate("a1", "PLAIN", PLAIN)], LOGGED_IN, S.AUTHENTICATED,
                 id="plain-ir"),
    pytest.param([Authenticate("a1", "plain", PLAIN)], LOGGED_IN, S.AUTHENTICATED,
                 id="plain-ir-lower-case"),
    pytest.param([Authenticate("a1", "PLAIN", encode_plain("alice", "wrong"))],
                 r.NO_AUTHENTICATION_FAILED, S.NOT_AUTHENTICATED, id="plain-ir-wrong"),
    pytest.param([Authenticate("a1", "PLAIN", "=")], r.NO_AUTHENTICATION_FAILED,
                 S.NOT_AUTHENTICATED, id="plain-ir-empty"),
    pytest.param([Authenticate("a1", "PLAIN", "not-base64!")], r.BAD_INVALID_BASE64,
                 S.NOT_AUTHENTICATED, id="plain-ir-bad-base64"),
    pytest.param([Authenticate("a1", "PLAIN", encode_plain("alice", "secret", "bob"))],
                 r.NO_AUTHORIZATION_FAILED, S.NOT_AUTHENTICATED, id="plain-other-authzid"),
    pytest.param([Authenticate("a1", "PLAIN", encode_plain("alice", "secret", "alice"))],
                 LOGGED_IN, S.AUTHENTICATED, id="plain-own-authzid"),
    pytest.param([Authenticate("a1", "CRAM-MD5")], r.NO_UNSUPPORTED_MECHANISM,
                 S.NOT_AUTHENTICATED, id="unsupported-mechanism"),
    pytest.param(WAIT_SASL, r.CONTINUE_SASL, S.AUTHENTICATING, id="plain-continuation"),
    pytest.param([*WAIT_SASL, AuthenticateResponse(PLAIN)], LOGGED_IN, S.AUTHENTICATED,
                 id="plain-response"),
    pytest.param([*WAIT_SASL, AuthenticateResponse("*")], r.BAD_AUTHENTICATE_CANCELLED,
                 S.NOT_AUTHENTICATED, id="plain-cancelled"),
    pytest.param([*WAIT_SASL, AuthenticateResponse(encode_plain("alice", "x"))],
                 r.NO_AUTHENTICATION_FAILED, S.NOT_AUTHENTICATED, id="plain-response-wrong"),
    pytest.param([*WAIT_SASL, IMAPInvalid(None, r.BAD_SYNTAX)], r.BAD_SYNTAX,
                 S.NOT_AUTHENTICATED, id="plain-response-invalid"),
    pytest.param([*LOGIN, Authenticate("a2", "PLAIN", PLAIN)], r.BAD_WRONG_STATE,
                 S.AUTHENTICATED, id="authenticate-twice"),
    # RFC 9051 §6.2.1: STARTTLS only if offered, only before authentication.
    pytest.param([IMAPStartTLS("a1")], r.BAD_STARTTLS_UNAVAILABLE, S.NOT_AUTHENTICATED,
                 id="starttls-not-offered"),
    pytest.param([*LOGIN, IMAPStartTLS("a2")], r.BAD_WRONG_STATE, S.AUTHENTICATED,
                 id="starttls-after-login"),
    # RFC 9051 §6.3.2-3: SELECT and EXAMINE; INBOX is case-insensitive.
    pytest.param(SELECTED, r.OK_SELECT_READ_WRITE, S.SELECTED, id="select"),
    pytest.param([*LOGIN, Select("a2", "inbox")], r.OK_SELECT_READ_WRITE, S.SELECTED,
                 id="select-inbox-any-case"),
    pytest.param(EXAMINED, r.OK_EXAMINE_READ_ONLY, S.SELECTED, id="examine"),
    pytest.param([*LOGIN, Select("a2", "Archive")], r.NO_NONEXISTENT_MAILBOX,
                 S.AUTHENTICATED, id="select-nonexistent"),
    pytest.param([*SELECTED, Select("a3", "Archive")], r.NO_NONEXISTENT_MAILBOX,
                 S.AUTHENTICATED, id="failed-select-deselects"),
    pytest.param([*SELECTED, Examine("a3", "INBOX")], r.OK_EXAMINE_READ_ONLY, S.SELECTED,
                 id="examine-while-selected"),
    # RFC 5161: ENABLE only in the authenticated state.
    pytest.param([*LOGIN, Enable("a2", ("IMAP4rev2",))], r.OK_ENABLE, S.AUTHENTICATED,
                 id="enable"),
    pytest.param([*SELECTED, Enable("a3", ("IMAP4rev2",))], r.BAD_WRONG_STATE, S.SELECTED,
                 id="enable-selected"),
    pytest.param([*LOGIN, IMAPList("a2", "", "*")], r.OK_LIST, S.AUTHENTICATED, id="list"),
    pytest.param([*SELECTED, IMAPList("a3", "", "*")], r.OK_LIST, S.SELECTED,
                 id="list-selected"),
    # RFC 2177: IDLE until DONE, in either state.
    pytest.param([*LOGIN, Idle("a2")], r.CONTINUE_IDLING, S.AUTHENTICATED_IDLE, id="idle-auth"),
    pytest.param([*LOGIN, Idle("a2"), Done()], r.OK_IDLE_TERMINATED, S.AUTHENTICATED,
                 id="idle-done-auth"),
    pytest.param([*SELECTED, Idle("a3")], r.CONTINUE_IDLING, S.SELECTED_IDLE, id="idle"),
    pytest.param([*SELECTED, Idle("a3"), Done()], r.OK_IDLE_TERMINATED, S.SELECTED,
                 id="idle-done"),
    pytest.param([*SELECTED, Idle("a3"), IMAPInvalid(None, r.BAD_EXPECTED_DONE)],
                 r.BAD_EXPECTED_DONE, S.SELECTED, id="idle-not-done"),
    # RFC 9051 §6.4: the selected state.
    pytest.param([*SELECTED, Fetch("a3", seq("1"), (BODY,))], r.OK_FETCH, S.SELECTED,
                 id="fetch"),
    pytest.param([*SELECTED, Fetch("a3", seq("4"), (BODY,))], r.BAD_NO_SUCH_MESSAGE,
                 S.SELECTED, id="fetch-past-the-end"),
    pytest.param([*SELECTED, Fetch("a3", seq("9"), (BODY,), uid=True)], r.OK_FETCH,
                 S.SELECTED, id="uid-fetch-missing-uid"),
    pytest.param([*SELECTED, Store("a3", ALL, StoreMode.ADD, frozenset({"\\Flagged"}))],
                 r.OK_STORE, S.SELECTED, id="store"),
    pytest.param([*EXAMINED, Store("a3", ALL, StoreMode.ADD, frozenset({"\\Flagged"}))],
                 r.NO_READ_ONLY, S.SELECTED, id="store-read-only"),
    pytest.param([*SELECTED, Search("a3", (SearchKey("ALL"),))], r.OK_SEARCH, S.SELECTED,
                 id="search"),
    pytest.param([*SELECTED, Expunge("a3")], r.OK_EXPUNGE, S.SELECTED, id="expunge"),
    pytest.param([*EXAMINED, Expunge("a3")], r.NO_READ_ONLY, S.SELECTED,
                 id="expunge-read-only"),
    pytest.param([*SELECTED, Close("a3")], r.OK_CLOSE, S.AUTHENTICATED, id="close"),
    pytest.param([*SELECTED, Unselect("a3")], r.OK_UNSELECT, S.AUTHENTICATED, id="unselect"),
    pytest.param([*SELECTED, Login("a3", "alice", "secret")], r.BAD_WRONG_STATE, S.SELECTED,
                 id="login-selected"),
    # Parser rejections and unknown commands: BAD, nothing changes.
    pytest.param([IMAPUnknown("a1", "a1 XYZZY")], r.BAD_UNKNOWN_COMMAND, S.NOT_AUTHENTICATED,
                 id="unknown"),
    pytest.param([*SELECTED, IMAPInvalid("a3", r.BAD_SYNTAX)], r.BAD_SYNTAX, S.SELECTED,
                 id="invalid"),
]  # fmt: skip


@pytest.mark.parametrize(("commands", "final", "state"), CORPUS)
def test_corpus(
    imap_store: IMAPStore, commands: list[IMAPCommand], final: Any, state: IMAPState
) -> None:
    server = start(imap_store)
    assert last(run(server, commands)[-1]) == final
    assert server.state is state
    assert (server.mailbox is not None) == (state in (S.SELECTED, S.SELECTED_IDLE))


# --- the table ----------------------------------------------------------------------------


def test_table_covers_every_state_and_command() -> None:
    assert set(IMAP_TRANSITIONS) == set(IMAPState)
    kinds = {kind for edges in IMAP_TRANSITIONS.values() for kind in edges}
    assert kinds == set(_HANDLERS)  # every command the table admits has a handler
    for edges in IMAP_TRANSITIONS.values():
        for edge in edges.values():
            for target in (edge.ok, edge.error, edge.more):
                assert target is None or target in IMAP_TRANSITIONS
    # only AUTHENTICATE and IDLE ask for a continuation, and only they lead to a waiting state
    more = {kind for edges in IMAP_TRANSITIONS.values() for kind, e in edges.items() if e.more}
    assert more == {Authenticate, Idle}
    for state in _WAITING:
        assert set(IMAP_TRANSITIONS[state]) <= {AuthenticateResponse, Done, IMAPInvalid}
    assert all(Logout in IMAP_TRANSITIONS[s] for s in
               (S.NOT_AUTHENTICATED, S.AUTHENTICATED, S.SELECTED))  # fmt: skip


def test_local_misuse(imap_store: IMAPStore) -> None:
    server = IMAPServer("mx", imap_store)
    with pytest.raises(LocalProtocolError):
        server.handle(IMAPNoop("a1"))  # before the greeting
    server.greeting()
    with pytest.raises(LocalProtocolError):
        server.greeting()
    with pytest.raises(LocalProtocolError):
        server.handle(Done())  # no IDLE to end
    with pytest.raises(LocalProtocolError):
        server.handle(AuthenticateResponse(PLAIN))  # no AUTHENTICATE waiting
    server.handle(Authenticate("a1", "PLAIN"))
    with pytest.raises(LocalProtocolError):
        server.handle(IMAPNoop("a2"))  # the next line is the SASL response
    assert server.state is S.AUTHENTICATING  # unchanged by the refused events
    server.handle(AuthenticateResponse("*"))
    server.handle(Logout("a3"))
    with pytest.raises(LocalProtocolError):
        server.handle(IMAPNoop("a4"))
    with pytest.raises(LocalProtocolError):
        server.add_messages([imap_message(9)])


# --- greeting, capabilities, TLS ----------------------------------------------------------


def test_greeting_and_capability(imap_store: IMAPStore) -> None:
    server = IMAPServer("mx", imap_store)
    assert server.greeting().wire_lines() == [
        f"* OK [CAPABILITY {' '.join(CAPS)} AUTH=PLAIN] IMAP4rev2 server ready"]
    assert wire(server.handle(Capability("a1"))) == [
        f"* CAPABILITY {' '.join(CAPS)} AUTH=PLAIN", "a1 OK CAPABILITY completed"]
    assert wire(server.handle(Login("a2", "alice", "secret"))) == [
        f"a2 OK [CAPABILITY {' '.join(CAPS)}] Logged in"]  # no AUTH= once logged in


def test_login_disabled_until_starttls(imap_store: IMAPStore) -> None:
    server = start(imap_store, starttls=True, allow_plaintext=False)
    caps = server.capabilities()
    assert "STARTTLS" in caps and "LOGINDISABLED" in caps and "AUTH=PLAIN" not in caps
    assert last(server.handle(Login("a1", "alice", "secret"))) == r.NO_PRIVACY_REQUIRED
    assert last(server.handle(Authenticate("a2", "PLAIN", PLAIN))) == r.NO_PRIVACY_REQUIRED
    assert last(server.handle(Authenticate("a3", "PLAIN"))) == r.NO_PRIVACY_REQUIRED
    assert server.failed_logins == 0 and server.session.username is None
    assert last(server.handle(IMAPStartTLS("a4"))) == r.OK_BEGIN_TLS
    assert server.session.tls and server.state is S.NOT_AUTHENTICATED
    caps = server.capabilities()
    assert "STARTTLS" not in caps and "LOGINDISABLED" not in caps and "AUTH=PLAIN" in caps
    assert last(server.handle(IMAPStartTLS("a5"))) == r.BAD_TLS_ACTIVE
    assert last(server.handle(Login("a6", "alice", "secret"))) == LOGGED_IN
    assert server.session.username == "alice"


def test_implicit_tls(imap_store: IMAPStore) -> None:
    server = start(imap_store, port=993, tls=True, allow_plaintext=False, starttls=True)
    assert "STARTTLS" not in server.capabilities()
    assert last(server.handle(Login("a1", "alice", "secret"))) == LOGGED_IN


def test_failed_logins_counted_not_as_errors(imap_store: IMAPStore) -> None:
    server = start(imap_store, max_errors=0)
    for i in range(3):
        assert last(server.handle(Login(f"a{i}", "alice", "wrong"))) == r.NO_AUTHENTICATION_FAILED
    assert server.failed_logins == 3 and not server.closed


# --- SELECT, EXAMINE, LIST, ENABLE --------------------------------------------------------

SELECT_LINES = [
    "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)",
    "* 3 EXISTS",
    "* 0 RECENT",
    "* OK [UIDVALIDITY 1] UIDs valid",
    "* OK [UIDNEXT 6] Predicted next UID",
    "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)] Flags permitted",
    "a2 OK [READ-WRITE] SELECT completed",
]


def test_select_responses(imap_store: IMAPStore) -> None:
    server = start(imap_store)
    server.handle(LOGIN[0])
    assert wire(server.handle(Select("a2", "INBOX"))) == SELECT_LINES
    assert imap_store.calls == [("open", "alice", "INBOX", False)]
    assert server.session.mailbox == "INBOX" and not server.session.readonly


def test_examine_is_read_only(imap_store: IMAPStore) -> None:
    server = start(imap_store)
    server.handle(LOGIN[0])
    lines = wire(server.handle(Examine("a2", "INBOX")))
    assert lines[-2:] == ["* OK [PERMANENTFLAGS ()] Flags permitted",
                          "a2 OK [READ-ONLY] EXAMINE completed"]  # fmt: skip
    assert imap_store.calls == [("open", "alice", "INBOX", True)] and server.session.readonly


def test_enable_imap4rev2_drops_recent(imap_store: IMAPStore) -> None:
    server = start(imap_store)
    server.handle(LOGIN[0])
    assert wire(server.handle(Enable("a2", ("IMAP4rev2", "CONDSTORE")))) == [
        "* ENABLED IMAP4rev2", "a2 OK ENABLE completed"]  # unknown extensions are ignored
    assert wire(server.handle(Enable("a3", ("imap4rev2",)))) == ["a3 OK ENABLE completed"]
    assert "* 0 RECENT" not in wire(server.handle(Select("a4", "INBOX")))


def test_select_while_selected_closes_the_previous(imap_store: IMAPStore) -> None:
    server = start(imap_store)
    run(server, SELECTED)
    lines = wire(server.handle(Select("a3", "INBOX")))
    assert lines[0] == "* OK [CLOSED] Previous mailbox closed"  # RFC 9051 §7.1
    assert imap_store.calls[-2:] == [("close", "alice", "INBOX"),
                                     ("open", "alice", "INBOX", False)]  # fmt: skip
    assert wire(server.handle(Select("a4", "Nope"))) == [
        "* OK [CLOSED] Previous mailbox closed", "a4 NO [NONEXISTENT] No such mailbox"]
    assert server.state is S.AUTHENTICATED and server.session.mailbox is None


def test_locked_mailbox(make_imap_store: Any) -> None:
    store = make_imap_store([imap_message(1)], exclusive=True)
    first = start(store)
    run(first, SELECTED)
    second = start(store)
    assert last(run(second, SELECTED)[-1]) == r.NO_MAILBOX_IN_USE
    assert second.state is S.AUTHENTICATED
    first.handle(Logout("a9"))  # LOGOUT releases the mailbox
    assert last(second.handle(Select("a3", "INBOX"))) == r.OK_SELECT_READ_WRITE


@pytest.mark.parametrize(
    ("reference", "pattern", "lines"),
    [
        ("", "*", ['* LIST (\\HasNoChildren) "/" INBOX']),
        ("", "%", ['* LIST (\\HasNoChildren) "/" INBOX']),
        ("", "INBOX", ['* LIST (\\HasNoChildren) "/" INBOX']),
        ("", "inbox", ['* LIST (\\HasNoChildren) "/" INBOX']),
        ("", "I*X", ['* LIST (\\HasNoChildren) "/" INBOX']),
        ("IN", "B%", ['* LIST (\\HasNoChildren) "/" INBOX']),
        ("", "", ['* LIST (\\Noselect) "/" ""']),  # the hierarchy delimiter
        ("", "Archive*", []),
        ("", "*/%", []),
        ("", "*" * 200 + "Q", []),  # many wildcards: still linear
    ],
)
def test_list(imap_store: IMAPStore, reference: str, pattern: str, lines: list[str]) -> None:
    server = start(imap_store)
    server.handle(LOGIN[0])
    assert wire(server.handle(IMAPList("a2", reference, pattern))) == [*lines,
                                                                       "a2 OK LIST completed"]


# --- FETCH --------------------------------------------------------------------------------


def selected(store: IMAPStore, *, examine: bool = False) -> IMAPServer:
    server = start(store)
    run(server, EXAMINED if examine else SELECTED)
    store.calls.clear()
    return server


def test_fetch_body_sets_seen_and_reports_it(imap_store: IMAPStore) -> None:
    server = selected(imap_store)
    body = imap_store.render(imap_store.mailboxes["alice"][0])
    responses = server.handle(Fetch("a3", seq("1"), (BODY,)))
    assert responses[0] == FetchData(1, (("FLAGS", "(\\Seen)"), ("BODY[]", body)))
    assert imap_store.calls == [("flags", "alice", {1: frozenset({"\\Seen"})})]
    again = server.handle(Fetch("a3", seq("1"), (BODY,)))  # already \Seen: no FLAGS now
    assert again[0] == FetchData(1, (("BODY[]", body),))
    assert len(imap_store.calls) == 1


def test_fetch_peek_and_examine_leave_seen_alone(imap_store: IMAPStore) -> None:
    server = selected(imap_store)
    server.handle(Fetch("a3", ALL, (PEEK, FetchAttribute.FLAGS)))
    examined = selected(imap_store, examine=True)
    examined.handle(Fetch("a3", ALL, (BODY, FetchAttribute.RFC822)))
    assert imap_store.calls == [] and imap_store.flags() == {1: set(), 2: set(), 5: set()}


def test_fetch_item_order_and_names(imap_store: IMAPStore) -> None:
    server = selected(imap_store)
    body = imap_store.render(imap_store.mailboxes["alice"][2])
    items = (PEEK, FetchAttribute.FLAGS, FetchAttribute.RFC822_SIZE, FetchAttribute.RFC822)
    (data, done) = server.handle(Fetch("a3", seq("5"), items, uid=True))
    # UID first (UID FETCH always has it), the octets last, BODY.PEEK[] answered as BODY[]
    assert data == FetchData(3, (
        ("UID", "5"), ("FLAGS", "(\\Seen)"), ("RFC822.SIZE", str(len(body))), ("BODY[]", body),
        ("RFC822", body)))  # fmt: skip
    assert data.to_bytes() == (
        b"* 3 FETCH (UID 5 FLAGS (\\Seen) RFC822.SIZE %d BODY[] {%d}\r\n%s RFC822 {%d}\r\n%s)\r\n"
        % (len(body), len(body), body, len(body), body))
    assert done == StatusResponse("a3", r.OK_FETCH)


# --- sequence sets ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "uid", "numbers"),
    [
        ("1", False, [1]),
        ("1:3", False, [1, 2, 3]),
        ("2:*", False, [2, 3]),
        ("*", False, [3]),
        ("3:1", False, [1, 2, 3]),
        ("1,3", False, [1, 3]),
        ("3,1,1:2", False, [1, 2, 3]),  # each message once, in order
        ("4", False, None),  # past the end: BAD
        ("1,4", False, None),
        ("5", True, [3]),  # UID 5 is the third message
        ("1:*", True, [1, 2, 3]),
        ("3:4", True, []),  # no such UIDs: nothing, no error
        ("9:*", True, [3]),  # n:* always includes the last message
        ("2,5", True, [2, 3]),
    ],
)
def test_sequence_sets(
    imap_store: IMAPStore, text: str, uid: bool, numbers: list[int] | None
) -> None:
    server = selected(imap_store)
    responses = server.handle(Fetch("a3", seq(text), (FetchAttribute.FLAGS,), uid=uid))
    if numbers is None:
        assert responses == [StatusResponse("a3", r.BAD_NO_SUCH_MESSAGE)]
    else:
        assert [x.number for x in responses if isinstance(x, FetchData)] == numbers


def test_sequence_sets_in_an_empty_mailbox(make_imap_store: Any) -> None:
    server = selected(make_imap_store())
    assert last(server.handle(Fetch("a3", seq("1:*"), (BODY,)))) == r.BAD_NO_SUCH_MESSAGE
    assert server.handle(Fetch("a4", seq("1:*"), (BODY,), uid=True)) == [
        StatusResponse("a4", r.OK_FETCH)]


@pytest.mark.parametrize(
    ("text", "ranges"),
    [("1", ((1, 1),)), ("1:3", ((1, 3),)), ("2:*", ((2, None),)), ("*", ((None, None),)),
     ("1,3:5,*", ((1, 1), (3, 5), (None, None))), ("4294967295", ((4294967295, 4294967295),))],
)  # fmt: skip
def test_sequence_set_parse(text: str, ranges: Any) -> None:
    parsed = SequenceSet.parse(text)
    assert parsed.ranges == ranges and parsed.to_text() == text


@pytest.mark.parametrize("text", ["", "0", "1:", ":3", "a", "1,,2", "01", "4294967296", "1:2:3",
                                  "-1", "1 2", "²"])  # fmt: skip
def test_sequence_set_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        SequenceSet.parse(text)


def test_sequence_set_of() -> None:
    assert SequenceSet.of([5, 1, 2, 3, 7, 8, 2]).to_text() == "1:3,5,7:8"
    with pytest.raises(ValueError):
        SequenceSet.of([])


# --- STORE, SEARCH ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "given", "before", "after"),
    [
        (StoreMode.ADD, {"\\Deleted"}, {"\\Seen"}, {"\\Seen", "\\Deleted"}),
        (StoreMode.REMOVE, {"\\Seen"}, {"\\Seen", "\\Flagged"}, {"\\Flagged"}),
        (StoreMode.REPLACE, {"\\Draft"}, {"\\Seen", "\\Flagged"}, {"\\Draft"}),
        (StoreMode.REPLACE, set(), {"\\Seen"}, set()),
        (StoreMode.ADD, {"$Junk"}, set(), set()),  # keywords are not permanent: ignored
        (StoreMode.REPLACE, set(), {"$Stored"}, {"$Stored"}),  # ... and never removed
    ],
)
def test_store_modes(
    make_imap_store: Any, mode: StoreMode, given: set[str], before: set[str], after: set[str]
) -> None:
    store = make_imap_store([imap_message(1, flags=before)])
    server = selected(store)
    responses = server.handle(Store("a3", seq("1"), mode, frozenset(given)))
    assert responses[0] == FetchData(1, (("FLAGS", format_flags(after)),))
    assert store.flags() == {1: after}
    assert store.calls == ([] if before == after else [("flags", "alice", {1: frozenset(after)})])


def test_store_silent_and_uid(imap_store: IMAPStore) -> None:
    server = selected(imap_store)
    deleted = frozenset({"\\Deleted"})
    assert server.handle(Store("a3", seq("2:5"), StoreMode.ADD, deleted, silent=True,
                               uid=True)) == [StatusResponse("a3", r.OK_STORE)]  # fmt: skip
    assert imap_store.flags() == {1: set(), 2: {"\\Deleted"}, 5: {"\\Deleted"}}
    responses = server.handle(Store("a4", seq("5"), StoreMode.REMOVE, deleted, uid=True))
    assert responses[0] == FetchData(3, (("UID", "5"), ("FLAGS", "()")))


@pytest.mark.parametrize(
    ("keys", "uid", "found"),
    [
        ((SearchKey("ALL"),), False, [1, 2, 3]),
        ((SearchKey("ALL"),), True, [1, 2, 5]),
        ((SearchKey("UNSEEN"),), True, [2, 5]),
        ((SearchKey("SEEN"),), False, [1]),
        ((SearchKey("DELETED"),), True, [5]),
        ((SearchKey("UNDELETED"), SearchKey("UNSEEN")), True, [2]),
        ((SearchKey("UID", seq("2:*")),), False, [2, 3]),
        ((SearchKey("SEQUENCE", seq("2:9")),), True, [2, 5]),  # lenient past the end
        ((SearchKey("FLAGGED"),), False, []),
    ],
)
def test_search(make_imap_store: Any, keys: tuple[SearchKey, ...], uid: bool,
                found: list[int]) -> None:  # fmt: skip
    store = make_imap_store([imap_message(1, flags={"\\Seen"}), imap_message(2),
                             imap_message(5, flags={"\\Deleted"})])  # fmt: skip
    server = selected(store)
    data, done = server.handle(Search("a3", keys, uid=uid))
    assert data == IMAPData(" ".join(["SEARCH", *map(str, found)]))
    assert done == StatusResponse("a3", r.OK_SEARCH)


def test_search_after_enable_imap4rev2_is_esearch(imap_store: IMAPStore) -> None:
    server = start(imap_store)
    run(server, [*LOGIN, Enable("a2", ("IMAP4rev2",)), Select("a3", "INBOX")])
    assert wire(server.handle(Search("a4", (SearchKey("ALL"),), uid=True)))[0] == (
        '* ESEARCH (TAG "a4") UID ALL 1:2,5')
    assert wire(server.handle(Search("a5", (SearchKey("SEEN"),))))[0] == '* ESEARCH (TAG "a5")'


# --- EXPUNGE, CLOSE, UNSELECT -------------------------------------------------------------


def test_expunge_numbers_follow_rfc_example(make_imap_store: Any) -> None:
    # RFC 9051 §7.5.1: deleting messages 3, 4, 7 and 11 of 11 gives 3, 3, 5, 8.
    messages = [imap_message(u, flags={"\\Deleted"} if u in (3, 4, 7, 11) else ())
                for u in range(1, 12)]  # fmt: skip
    store = make_imap_store(messages)
    server = selected(store)
    assert wire(server.handle(Expunge("a3"))) == [
        "* 3 EXPUNGE", "* 3 EXPUNGE", "* 5 EXPUNGE", "* 8 EXPUNGE", "a3 OK EXPUNGE completed"]
    assert store.calls == [("expunge", "alice", [3, 4, 7, 11])]  # committed at once
    assert store.uids() == [1, 2, 5, 6, 8, 9, 10]
    assert server.mailbox is not None and len(server.mailbox) == 7
    assert wire(server.handle(Expunge("a4"))) == ["a4 OK EXPUNGE completed"]
    assert len(store.calls) == 1  # nothing left to expunge: no hook call


def test_uid_expunge_only_those(make_imap_store: Any) -> None:
    store = make_imap_store([imap_message(u, flags={"\\Deleted"}) for u in (1, 2, 5)])
    server = selected(store)
    assert wire(server.handle(Expunge("a3", seq("2:4")))) == ["* 2 EXPUNGE",
                                                              "a3 OK EXPUNGE completed"]
    assert store.uids() == [1, 5]


def test_close_expunges_silently_unselect_does_not(make_imap_store: Any) -> None:
    store = make_imap_store([imap_message(1, flags={"\\Deleted"}), imap_message(2)])
    server = selected(store)
    assert wire(server.handle(Unselect("a3"))) == ["a3 OK UNSELECT completed"]
    assert store.uids() == [1, 2] and store.calls == [("close", "alice", "INBOX")]
    server.handle(Select("a4", "INBOX"))
    assert wire(server.handle(Close("a5"))) == ["a5 OK CLOSE completed"]  # no EXPUNGE lines
    assert store.uids() == [2] and store.calls[-2:] == [("expunge", "alice", [1]),
                                                        ("close", "alice", "INBOX")]


def test_close_after_examine_expunges_nothing(make_imap_store: Any) -> None:
    store = make_imap_store([imap_message(1, flags={"\\Deleted"})])
    server = selected(store, examine=True)
    server.handle(Close("a3"))
    assert store.uids() == [1] and store.calls == [("close", "alice", "INBOX")]


def test_logout_keeps_deleted_messages(make_imap_store: Any) -> None:
    store = make_imap_store([imap_message(1)])
    server = selected(store)
    server.handle(Store("a3", seq("1"), StoreMode.ADD, frozenset({"\\Deleted"})))
    assert wire(server.handle(Logout("a4"))) == ["* BYE Logging out", "a4 OK LOGOUT completed"]
    assert store.uids() == [1] and store.calls[-1] == ("close", "alice", "INBOX")


# --- news: EXISTS while idling, or before the next command --------------------------------


def test_idle_pushes_exists(imap_store: IMAPStore) -> None:
    server = selected(imap_store)
    assert server.handle(Idle("a3")) == [r.CONTINUE_IDLING]
    assert server.add_messages([imap_message(7), imap_message(8)]) == [IMAPData("5 EXISTS")]
    assert server.handle(Done()) == [StatusResponse("a3", r.OK_IDLE_TERMINATED)]
    (data, _) = server.handle(Fetch("a4", seq("5"), (FetchAttribute.UID,)))
    assert data == FetchData(5, (("UID", "8"),))


def test_news_waits_for_the_next_command(imap_store: IMAPStore) -> None:
    server = selected(imap_store)
    assert server.add_messages([imap_message(6)]) == []
    assert wire(server.handle(IMAPNoop("a3"))) == ["* 4 EXISTS", "a3 OK NOOP completed"]
    assert wire(server.handle(IMAPNoop("a4"))) == ["a4 OK NOOP completed"]
    with pytest.raises(LocalProtocolError):
        server.add_messages([imap_message(6)])  # not above the last UID
    with pytest.raises(LocalProtocolError):
        server.add_messages([imap_message(9), imap_message(8)])
    assert wire(server.handle(IMAPNoop("a5"))) == ["a5 OK NOOP completed"]  # nothing queued


def test_news_outside_selected_is_ignored(imap_store: IMAPStore) -> None:
    server = start(imap_store)
    server.handle(LOGIN[0])
    assert server.add_messages([imap_message(6)]) == []


# --- the error budget and the end of a session --------------------------------------------


def test_error_budget(imap_store: IMAPStore) -> None:
    server = selected(imap_store)
    server._max_errors = 2
    assert last(server.handle(IMAPUnknown("a3", "a3 FOO"))) == r.BAD_UNKNOWN_COMMAND
    assert last(server.handle(Enable("a4", ("IMAP4rev2",)))) == r.BAD_WRONG_STATE
    assert wire(server.handle(IMAPInvalid("a5", r.BAD_SYNTAX))) == [
        "a5 BAD Syntax error in arguments", "* BYE [ALERT] Too many errors, closing connection"]
    assert server.closed and imap_store.calls == [("close", "alice", "INBOX")]


def test_framing_bye_closes(imap_store: IMAPStore) -> None:
    server = selected(imap_store)
    assert wire(server.handle(IMAPInvalid(None, r.BYE_LINE_TOO_LONG))) == [
        "* BYE Line too long, closing connection"]
    assert server.closed and imap_store.calls == [("close", "alice", "INBOX")]


def test_abort_releases_the_mailbox(imap_store: IMAPStore) -> None:
    server = selected(imap_store)
    server.abort()
    assert server.closed and imap_store.calls == [("close", "alice", "INBOX")]


def test_untagged_bad_for_a_command_without_tag(imap_store: IMAPStore) -> None:
    server = start(imap_store)
    assert wire(server.handle(IMAPInvalid(None, r.BAD_MISSING_TAG))) == [
        "* BAD Missing or invalid tag"]


# --- stored messages ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "build",
    [
        lambda: IMAPStoredMessage(0, 1),
        lambda: IMAPStoredMessage(2**32, 1),
        lambda: IMAPStoredMessage(1, -1),
        lambda: IMAPStoredMessage(1, 1, frozenset({"\\seen"})),  # not the canonical spelling
        lambda: IMAPStoredMessage(1, 1, frozenset({"two words"})),
        lambda: IMAPMailbox(0),
        lambda: IMAPMailbox(1, (IMAPStoredMessage(2, 1), IMAPStoredMessage(2, 1))),
        lambda: IMAPMailbox(1, (IMAPStoredMessage(3, 1), IMAPStoredMessage(2, 1))),
        lambda: IMAPMailbox(1, (IMAPStoredMessage(3, 1),), uidnext=3),
    ],
)
def test_storage_validation(build: Any) -> None:
    with pytest.raises(ValueError):
        build()


def test_mailbox_uidnext() -> None:
    assert IMAPMailbox(1).next_uid == 1
    assert IMAPMailbox(1, (IMAPStoredMessage(3, 1),)).next_uid == 4
    assert IMAPMailbox(1, (IMAPStoredMessage(3, 1),), uidnext=10).next_uid == 10
