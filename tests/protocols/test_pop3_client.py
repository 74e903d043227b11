"""POP3 client against the server engine, and POP3 command events."""

from __future__ import annotations

from typing import Any

import pytest

from netsim.protocols import (
    Apop,
    List,
    LocalProtocolError,
    Pass,
    POP3Client,
    POP3Command,
    POP3Quit,
    POP3Reply,
    POP3Server,
    RemoteProtocolError,
    Retr,
    Stat,
    StoredMessage,
    Top,
    Uidl,
    User,
    apop_digest,
    pop3_exchange,
)
from netsim.protocols import pop3_replies as p

TS = "<1896.697170952@mail.isp-a.example>"


def server(hooks: Any, **kwargs: Any) -> POP3Server:
    return POP3Server("mail.isp-a.example", hooks, timestamp=TS, **kwargs)


def test_retrieve_and_delete_all(maildrop: Any) -> None:
    c = POP3Client("alice", "secret")
    transcript = pop3_exchange(c, server(maildrop))
    sent = [line for side, line in transcript if side == "C"]
    assert sent == [
        "USER alice", "PASS secret", "STAT", "LIST", "UIDL",
        "RETR 1", "DELE 1", "RETR 2", "DELE 2", "RETR 3", "DELE 3", "QUIT",
    ]  # fmt: skip
    assert transcript[:3] == [
        ("S", f"+OK POP3 server ready {TS}"), ("C", "USER alice"), ("S", "+OK send PASS"),
    ]  # fmt: skip
    assert ("S", "..dotted line") in transcript  # bodies are dot-stuffed on the wire
    assert transcript[-1] == ("S", "+OK POP3 server signing off (0 messages left)")
    assert c.done and c.authenticated and c.committed
    assert c.message_count == 3
    assert c.retrieved_uids == ["uid-1", "uid-2", "uid-3"]
    assert c.retrieved[0].lines[-1] == ".dotted line"  # unstuffed for the caller
    assert c.deleted_uids == ["uid-1", "uid-2", "uid-3"]
    assert maildrop.commits == [("alice", ["uid-1", "uid-2", "uid-3"])]
    assert maildrop.messages["alice"] == []
    assert c.credentials_on_wire  # USER/PASS on port 110 without TLS


def test_keep_messages(maildrop: Any) -> None:
    c = POP3Client("alice", "secret", delete=False)
    transcript = pop3_exchange(c, server(maildrop))
    assert not any(line.startswith("DELE") for side, line in transcript if side == "C")
    assert maildrop.commits == [("alice", [])]
    assert c.retrieved_uids == ["uid-1", "uid-2", "uid-3"]


def test_a_login_only_session_fetches_nothing(maildrop: Any) -> None:
    # POP-before-SMTP: the mail client logs in to open relay, and its mail waits
    c = POP3Client("alice", "secret", fetch=False)
    transcript = pop3_exchange(c, server(maildrop))
    assert [line for side, line in transcript if side == "C"] == ["USER alice", "PASS secret",
                                                                  "QUIT"]
    assert c.authenticated and c.committed and c.retrieved == []
    assert maildrop.commits == [("alice", [])] and len(maildrop.messages["alice"]) == 3


def test_empty_maildrop(make_maildrop: Any) -> None:
    c = POP3Client("alice", "secret")
    transcript = pop3_exchange(c, server(make_maildrop()))
    assert [line for side, line in transcript if side == "C"] == [
        "USER alice", "PASS secret", "STAT", "QUIT",
    ]  # fmt: skip
    assert c.retrieved == [] and c.committed


def test_apop_never_sends_the_password(maildrop: Any) -> None:
    c = POP3Client("alice", "secret", use_apop=True)
    transcript = pop3_exchange(c, server(maildrop))
    sent = [line for side, line in transcript if side == "C"]
    assert sent[0].startswith("APOP alice ")
    assert not any(line.startswith(("PASS", "USER")) or "secret" in line for line in sent)
    assert not c.credentials_on_wire
    assert c.retrieved_uids == ["uid-1", "uid-2", "uid-3"]


def test_apop_without_timestamp_gives_up(maildrop: Any) -> None:
    c = POP3Client("alice", "secret", use_apop=True)
    transcript = pop3_exchange(c, server(maildrop, apop=False))
    assert [line for side, line in transcript if side == "C"] == ["QUIT"]
    assert c.failed_reply is not None and not c.authenticated


def test_stls_then_plaintext_login_is_protected(maildrop: Any) -> None:
    c = POP3Client("alice", "secret", use_stls=True)
    transcript = pop3_exchange(c, server(maildrop, stls=True))
    assert transcript[1] == ("C", "STLS")
    assert c.tls and c.authenticated and not c.credentials_on_wire


def test_stls_refused_never_falls_back(maildrop: Any) -> None:
    c = POP3Client("alice", "secret", use_stls=True)
    transcript = pop3_exchange(c, server(maildrop))
    assert [line for side, line in transcript if side == "C"] == ["STLS", "QUIT"]
    assert c.failed_reply == p.ERR_STLS_UNAVAILABLE and not c.credentials_on_wire


def test_implicit_tls(maildrop: Any) -> None:
    c = POP3Client("alice", "secret", tls=True)
    pop3_exchange(c, server(maildrop, tls=True, port=995))
    assert c.authenticated and not c.credentials_on_wire


def test_wrong_password(maildrop: Any) -> None:
    c = POP3Client("alice", "guess")
    transcript = pop3_exchange(c, server(maildrop))
    assert transcript[-3:] == [
        ("S", "-ERR [AUTH] invalid user name or password"), ("C", "QUIT"),
        ("S", "+OK POP3 server signing off"),
    ]  # fmt: skip
    assert c.failed_reply == p.ERR_AUTH_FAILED
    assert not c.authenticated and not c.committed
    assert c.credentials_on_wire  # the (wrong) password still crossed the wire


def test_locked_maildrop(maildrop: Any) -> None:
    holder = server(maildrop)
    holder.greeting()
    holder.handle(User("alice"))
    holder.handle(Pass("secret"))
    c = POP3Client("alice", "secret")
    pop3_exchange(c, server(maildrop))
    assert c.failed_reply == p.ERR_IN_USE and c.retrieved == []


def test_client_errors() -> None:
    c = POP3Client("alice", "secret")
    assert c.receive(POP3Reply(False, "go away")) is None and c.done
    with pytest.raises(LocalProtocolError):
        c.receive(p.OK)
    bad = POP3Client("alice", "secret")
    for reply in (p.pop3_greeting(TS), p.OK_SEND_PASS, p.maildrop_ready(1, 1)):
        bad.receive(reply)
    with pytest.raises(RemoteProtocolError):
        bad.receive(POP3Reply(True, "lots"))  # STAT without numbers
    with pytest.raises(ValueError):
        POP3Client("", "secret")


def test_abort() -> None:
    c = POP3Client("alice", "secret")
    c.receive(p.pop3_greeting(TS))
    c.abort()
    assert c.done and not c.committed


@pytest.mark.parametrize(
    ("command", "line"),
    [
        (User("alice"), "USER alice"),
        (Pass("secret with spaces"), "PASS secret with spaces"),
        (Apop("alice", "c4c9334bac560ecc979e58001b3e22fb"),
         "APOP alice c4c9334bac560ecc979e58001b3e22fb"),
        (Stat(), "STAT"),
        (List(), "LIST"),
        (List(2), "LIST 2"),
        (Retr(1), "RETR 1"),
        (Uidl(), "UIDL"),
        (Top(1, 10), "TOP 1 10"),
        (POP3Quit(), "QUIT"),
    ],
)  # fmt: skip
def test_pop3_command_lines(command: POP3Command, line: str) -> None:
    assert command.to_line() == line


@pytest.mark.parametrize(
    "build",
    [
        lambda: User(""),
        lambda: User("a b"),
        lambda: User("x" * 41),
        lambda: Pass("x" * 41),
        lambda: Apop("alice", "XYZ"),
        lambda: Retr(0),
        lambda: List(-1),
        lambda: Top(1, -1),
        lambda: StoredMessage("", 1),
    ],
)
def test_pop3_command_validation(build: Any) -> None:
    with pytest.raises(ValueError):
        build()


def test_rfc1939_apop_example() -> None:
    # The worked example of RFC 1939 §7.
    digest = apop_digest("<1896.697170952@dbc.mtview.ca.us>", "tanstaaf")
    assert digest == "c4c9334bac560ecc979e58001b3e22fb"


def test_retr_failure_skips_message(make_maildrop: Any) -> None:
    hooks = make_maildrop([StoredMessage("a", 1), StoredMessage("b", 2)])
    c = POP3Client("alice", "secret")
    srv = server(hooks)
    # Drive by hand so the second RETR can be refused as if the message vanished.
    command = c.receive(srv.greeting())
    while command is not None:
        reply = srv.handle(command)
        if isinstance(command, Retr) and command.msg == 2:
            reply = p.ERR_NO_SUCH_MESSAGE
        command = c.receive(reply)
    assert c.retrieved_uids == ["a"] and c.deleted_uids == ["a"]
    assert hooks.commits == [("alice", ["a"])]
