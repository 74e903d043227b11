"""POP3 server engine: RFC 1939 state rules as parametrised corpora."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from netsim.protocols import (
    POP3_TRANSITIONS,
    Apop,
    Capa,
    Dele,
    List,
    LocalProtocolError,
    Pass,
    POP3Command,
    POP3Invalid,
    POP3Noop,
    POP3Quit,
    POP3Reply,
    POP3Rset,
    POP3Server,
    POP3State,
    POP3Unknown,
    Retr,
    Stat,
    Stls,
    StoredMessage,
    Top,
    Uidl,
    User,
    apop_digest,
)
from netsim.protocols import pop3_replies as p

TS = "<1896.697170952@mail.isp-a.example>"
P = POP3State
LOGIN: list[POP3Command] = [User("alice"), Pass("secret")]


def start(hooks: Any, **kwargs: Any) -> POP3Server:
    server = POP3Server("mail.isp-a.example", hooks, timestamp=TS, **kwargs)
    assert server.greeting().status_line() == f"+OK POP3 server ready {TS}"
    return server


def run(server: POP3Server, commands: Sequence[POP3Command]) -> list[POP3Reply]:
    return [server.handle(c) for c in commands]


CORPUS = [
    # RFC 1939 §4: in AUTHORIZATION only USER/PASS/APOP/QUIT (and CAPA, STLS).
    pytest.param([Stat()], p.ERR_WRONG_STATE, P.AUTHORIZATION, id="stat-before-login"),
    pytest.param([List()], p.ERR_WRONG_STATE, P.AUTHORIZATION, id="list-before-login"),
    pytest.param([Retr(1)], p.ERR_WRONG_STATE, P.AUTHORIZATION, id="retr-before-login"),
    pytest.param([Dele(1)], p.ERR_WRONG_STATE, P.AUTHORIZATION, id="dele-before-login"),
    pytest.param([POP3Noop()], p.ERR_WRONG_STATE, P.AUTHORIZATION, id="noop-before-login"),
    pytest.param([Uidl()], p.ERR_WRONG_STATE, P.AUTHORIZATION, id="uidl-before-login"),
    pytest.param([Top(1, 0)], p.ERR_WRONG_STATE, P.AUTHORIZATION, id="top-before-login"),
    # RFC 1939 §7: USER then PASS.
    pytest.param([User("alice")], p.OK_SEND_PASS, P.AUTHORIZATION, id="user"),
    pytest.param([Pass("secret")], p.ERR_NEED_USER, P.AUTHORIZATION, id="pass-without-user"),
    pytest.param(LOGIN, p.maildrop_ready(3, 600), P.TRANSACTION, id="login"),
    pytest.param([User("alice"), Pass("wrong")], p.ERR_AUTH_FAILED, P.AUTHORIZATION,
                 id="wrong-password"),
    pytest.param([User("alice"), Pass("wrong"), Pass("secret")], p.ERR_NEED_USER,
                 P.AUTHORIZATION, id="wrong-password-starts-over"),
    pytest.param([User("mallory"), Pass("secret")], p.ERR_AUTH_FAILED, P.AUTHORIZATION,
                 id="unknown-user"),
    pytest.param([*LOGIN, User("alice")], p.ERR_WRONG_STATE, P.TRANSACTION,
                 id="user-in-transaction"),
    # RFC 1939 §7: APOP = MD5(timestamp + secret); no password on the wire.
    pytest.param([Apop("alice", apop_digest(TS, "secret"))], p.maildrop_ready(3, 600),
                 P.TRANSACTION, id="apop"),
    pytest.param([Apop("alice", apop_digest(TS, "wrong"))], p.ERR_AUTH_FAILED,
                 P.AUTHORIZATION, id="apop-bad-digest"),
    pytest.param([Apop("alice", apop_digest("<other@x>", "secret"))], p.ERR_AUTH_FAILED,
                 P.AUTHORIZATION, id="apop-replayed-digest"),
    pytest.param([Apop("mallory", apop_digest(TS, "secret"))], p.ERR_AUTH_FAILED,
                 P.AUTHORIZATION, id="apop-unknown-user"),
    # RFC 1939 §5: TRANSACTION commands; message numbers are 1-based.
    pytest.param([*LOGIN, Stat()], p.scan_listing(3, 600), P.TRANSACTION, id="stat"),
    pytest.param([*LOGIN, List(2)], p.scan_listing(2, 200), P.TRANSACTION, id="list-one"),
    pytest.param([*LOGIN, List(4)], p.ERR_NO_SUCH_MESSAGE, P.TRANSACTION, id="list-missing"),
    pytest.param([*LOGIN, Uidl(3)], POP3Reply(True, "3 uid-3"), P.TRANSACTION, id="uidl-one"),
    pytest.param([*LOGIN, Dele(2)], p.deleted(2), P.TRANSACTION, id="dele"),
    pytest.param([*LOGIN, Dele(2), Retr(2)], p.already_deleted(2), P.TRANSACTION,
                 id="retr-deleted"),
    pytest.param([*LOGIN, Dele(2), Dele(2)], p.already_deleted(2), P.TRANSACTION,
                 id="dele-twice"),
    pytest.param([*LOGIN, Dele(2), List(2)], p.already_deleted(2), P.TRANSACTION,
                 id="list-deleted"),
    pytest.param([*LOGIN, Dele(2), Stat()], p.scan_listing(2, 400), P.TRANSACTION,
                 id="stat-excludes-deleted"),
    pytest.param([*LOGIN, Dele(2), POP3Rset(), Stat()], p.scan_listing(3, 600), P.TRANSACTION,
                 id="rset-undeletes"),
    pytest.param([*LOGIN, POP3Noop()], p.OK, P.TRANSACTION, id="noop"),
    pytest.param([*LOGIN, Apop("alice", "0" * 32)], p.ERR_WRONG_STATE, P.TRANSACTION,
                 id="apop-in-transaction"),
    # RFC 2449 §5: CAPA in any state.
    pytest.param([Capa()], p.capabilities(True, False), P.AUTHORIZATION, id="capa-auth"),
    pytest.param([*LOGIN, Capa()], p.capabilities(True, False), P.TRANSACTION,
                 id="capa-transaction"),
    # RFC 2595 §4: STLS only if offered.
    pytest.param([Stls()], p.ERR_STLS_UNAVAILABLE, P.AUTHORIZATION, id="stls-not-offered"),
    pytest.param([POP3Unknown("XYZZ")], p.ERR_UNKNOWN_COMMAND, P.AUTHORIZATION, id="unknown"),
    pytest.param([POP3Invalid(p.ERR_LINE_TOO_LONG)], p.ERR_LINE_TOO_LONG, P.AUTHORIZATION,
                 id="invalid"),
]  # fmt: skip


@pytest.mark.parametrize(("commands", "last", "state"), CORPUS)
def test_corpus(maildrop: Any, commands: list[POP3Command], last: POP3Reply, state: P) -> None:
    server = start(maildrop)
    assert run(server, commands)[-1] == last
    assert server.state is state


def test_listings(maildrop: Any) -> None:
    server = start(maildrop)
    run(server, [*LOGIN, Dele(1)])
    listing = server.handle(List())
    assert listing.wire_lines() == ["+OK 2 messages (500 octets)", "2 200", "3 300", "."]
    assert server.handle(Uidl()).lines == ("2 uid-2", "3 uid-3")


def test_retr_and_top_render(maildrop: Any) -> None:
    server = start(maildrop)
    run(server, LOGIN)
    retr = server.handle(Retr(1))
    assert retr.wire_lines() == [
        "+OK 100 octets", "Subject: message uid-1", "", "hello", "..dotted line", ".",
    ]  # fmt: skip
    assert server.handle(Top(1, 0)).lines == ("Subject: message uid-1", "")


def test_dele_rset_quit_commits_nothing(maildrop: Any) -> None:
    server = start(maildrop)
    run(server, [*LOGIN, Dele(1), Dele(3), POP3Rset()])
    assert server.handle(POP3Quit()) == p.signing_off(3)
    assert maildrop.commits == [("alice", [])]
    assert len(maildrop.messages["alice"]) == 3
    assert server.state is P.UPDATE and server.closed


def test_dele_quit_commits_exactly_those(maildrop: Any) -> None:
    server = start(maildrop)
    run(server, [*LOGIN, Dele(1), Dele(3)])
    assert maildrop.commits == []  # RFC 1939 §6: nothing is deleted before UPDATE
    assert server.handle(POP3Quit()) == p.signing_off(1)
    assert maildrop.commits == [("alice", ["uid-1", "uid-3"])]
    assert [m.uid for m in maildrop.messages["alice"]] == ["uid-2"]


def test_quit_from_authorization_commits_nothing(maildrop: Any) -> None:
    server = start(maildrop)
    run(server, [User("alice")])
    assert server.handle(POP3Quit()) == p.OK_BYE
    assert server.state is P.CLOSED and maildrop.commits == []
    with pytest.raises(LocalProtocolError):
        server.handle(Stat())


def test_locked_maildrop(maildrop: Any) -> None:
    # RFC 1939 §8: an exclusive lock; a second session gets -ERR and stays unauthorised.
    first = start(maildrop)
    run(first, LOGIN)
    second = start(maildrop)
    assert run(second, LOGIN)[-1] == p.ERR_IN_USE
    assert second.state is P.AUTHORIZATION and second.session.username is None


def test_stls(maildrop: Any) -> None:
    server = start(maildrop, stls=True, allow_plaintext=False)
    assert "STLS" in (server.handle(Capa()).lines or ())
    assert "USER" not in (server.handle(Capa()).lines or ())
    assert server.handle(User("alice")) == p.ERR_PLAINTEXT_DISABLED
    assert server.handle(Stls()) == p.OK_BEGIN_TLS
    assert server.state is P.AUTHORIZATION and server.session.tls
    assert server.handle(Stls()) == p.ERR_TLS_ACTIVE
    assert run(server, LOGIN)[-1].ok
    assert server.handle(Stls()) == p.ERR_WRONG_STATE  # not in TRANSACTION


def test_stls_after_user_refused(maildrop: Any) -> None:
    server = start(maildrop, stls=True)
    server.handle(User("alice"))
    assert server.handle(Stls()) == p.ERR_WRONG_STATE
    assert not server.session.tls


def test_implicit_tls_and_no_apop(maildrop: Any) -> None:
    server = POP3Server("mx", maildrop, port=995, tls=True, apop=False, allow_plaintext=False)
    assert server.greeting().status_line() == "+OK POP3 server ready"
    assert server.handle(Apop("alice", apop_digest(TS, "secret"))) == p.ERR_APOP_UNAVAILABLE
    assert run(server, LOGIN)[-1].ok  # plaintext is fine inside TLS


def test_error_budget(maildrop: Any) -> None:
    server = start(maildrop, max_errors=2)
    assert run(server, [POP3Unknown("FOO"), Stat()]) == [p.ERR_UNKNOWN_COMMAND, p.ERR_WRONG_STATE]
    assert run(server, [User("alice"), Pass("wrong")])[-1] == p.ERR_AUTH_FAILED  # not counted
    assert server.handle(Pass("x")) == p.ERR_TOO_MANY_ERRORS
    assert server.closed and maildrop.commits == []


def test_local_misuse(maildrop: Any) -> None:
    server = POP3Server("mx", maildrop)
    with pytest.raises(LocalProtocolError):
        server.handle(Stat())
    server.greeting()
    with pytest.raises(LocalProtocolError):
        server.greeting()
    with pytest.raises(ValueError):
        POP3Server("mx", maildrop, timestamp="no-brackets")


def test_table_covers_every_state() -> None:
    assert set(POP3_TRANSITIONS) == set(POP3State)
    for edges in POP3_TRANSITIONS.values():
        for edge in edges.values():
            assert edge.ok in POP3_TRANSITIONS
            assert edge.error is None or edge.error in POP3_TRANSITIONS


def test_stored_message_validation() -> None:
    with pytest.raises(ValueError):
        StoredMessage("has space", 1)
    with pytest.raises(ValueError):
        StoredMessage("x" * 71, 1)
    with pytest.raises(ValueError):
        StoredMessage("ok", -1)
