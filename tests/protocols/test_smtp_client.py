"""SMTP client against the server engine (h11's ConnectionPair habit): exact transcripts."""

from __future__ import annotations

from typing import Any

import pytest

from netsim.protocols import (
    Content,
    Credentials,
    DefaultHooks,
    Ehlo,
    Helo,
    LocalProtocolError,
    Quit,
    RemoteProtocolError,
    Reply,
    SMTPClient,
    SMTPServer,
    SMTPSession,
    smtp_exchange,
)
from netsim.protocols import replies as r

ALICE = "alice@isp-a.example"
BOB = "bob@isp-b.example"
CAROL = "carol@isp-b.example"
NOBODY = "nobody@isp-b.example"
FAR = "dave@isp-c.example"


def client(rcpt: list[str], **kwargs: Any) -> SMTPClient:
    return SMTPClient("pc1.isp-a.example", ALICE, rcpt, size=1234, **kwargs)


def assert_every_recipient_decided(c: SMTPClient, rcpt: list[str]) -> None:
    assert c.done
    assert set(c.rcpt_replies) == set(rcpt)


def test_successful_delivery_transcript(mail_hooks: Any) -> None:
    c = client([BOB], payload="msg-1")
    server = SMTPServer("mail.isp-b.example", mail_hooks)
    assert smtp_exchange(c, server) == [
        ("S", "220 mail.isp-b.example ESMTP netsim"),
        ("C", "EHLO pc1.isp-a.example"),
        ("S", "250-mail.isp-b.example"),
        ("S", "250-PIPELINING"),
        ("S", "250-SIZE 10240000"),
        ("S", "250-AUTH PLAIN LOGIN"),
        ("S", "250-ENHANCEDSTATUSCODES"),
        ("S", "250 8BITMIME"),
        ("C", "MAIL FROM:<alice@isp-a.example> SIZE=1234"),
        ("S", "250 2.1.0 Sender ok"),
        ("C", "RCPT TO:<bob@isp-b.example>"),
        ("S", "250 2.1.5 Recipient ok"),
        ("C", "DATA"),
        ("S", "354 Start mail input; end with <CRLF>.<CRLF>"),
        ("C", "[message: 1234 octets]"),
        ("C", "."),
        ("S", "250 2.0.0 Ok: queued"),
        ("C", "QUIT"),
        ("S", "221 2.0.0 Bye"),
    ]
    assert c.accepted == (BOB,)
    assert c.rcpt_replies == {BOB: r.S250_QUEUED}
    assert c.final_reply == r.S250_QUEUED
    assert c.failed_at is None
    assert mail_hooks.delivered[0].payload == "msg-1"
    assert server.closed


def test_mixed_recipients(mail_hooks: Any) -> None:
    rcpt = [BOB, NOBODY, CAROL]
    c = client(rcpt)
    smtp_exchange(c, SMTPServer("mail.isp-b.example", mail_hooks))
    assert c.accepted == (BOB, CAROL)
    assert c.rcpt_replies[NOBODY] == r.user_unknown(NOBODY)
    assert c.rcpt_replies[BOB] == c.rcpt_replies[CAROL] == r.S250_QUEUED
    assert c.failed_at is None
    assert mail_hooks.delivered[0].rcpt_to == (BOB, CAROL)
    assert_every_recipient_decided(c, rcpt)


def test_all_recipients_rejected_no_data(mail_hooks: Any) -> None:
    rcpt = [NOBODY, FAR]  # user unknown, and relay denied for a stranger
    c = client(rcpt)
    transcript = smtp_exchange(c, SMTPServer("mail.isp-b.example", mail_hooks))
    sent = [line for side, line in transcript if side == "C"]
    assert sent[-3:] == ["RCPT TO:<nobody@isp-b.example>", "RCPT TO:<dave@isp-c.example>", "QUIT"]
    assert "DATA" not in sent
    assert c.rcpt_replies == {NOBODY: r.user_unknown(NOBODY), FAR: r.relay_denied(FAR)}
    assert c.accepted == ()
    assert c.failed_at == "rcpt"
    assert c.final_reply == r.relay_denied(FAR)
    assert mail_hooks.delivered == []


def test_submission_without_credentials_gets_530(mail_hooks: Any) -> None:
    rcpt = [FAR, BOB]
    c = client(rcpt)
    transcript = smtp_exchange(c, SMTPServer("mail.isp-a.example", mail_hooks, port=587,
                                             auth_required=True))  # fmt: skip
    assert ("S", "530 5.7.0 Authentication required") in transcript
    assert transcript[-2:] == [("C", "QUIT"), ("S", "221 2.0.0 Bye")]
    assert c.failed_at == "mail"
    assert c.rcpt_replies == {FAR: r.S530_AUTH_REQUIRED, BOB: r.S530_AUTH_REQUIRED}
    assert c.accepted == ()


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_submission_with_credentials(mail_hooks: Any, mechanism: str) -> None:
    c = client([FAR], credentials=Credentials("alice", "secret", mechanism))
    server = SMTPServer("mail.isp-a.example", mail_hooks, port=587, auth_required=True)
    transcript = smtp_exchange(c, server)
    assert c.accepted == (FAR,) and c.failed_at is None
    assert mail_hooks.delivered[0].authenticated_user == "alice"
    sent = [line for side, line in transcript if side == "C"]
    if mechanism == "PLAIN":
        assert "AUTH PLAIN AGFsaWNlAHNlY3JldA==" in sent
    else:
        assert sent[1:4] == ["AUTH LOGIN", "YWxpY2U=", "c2VjcmV0"]


def test_bad_credentials(mail_hooks: Any) -> None:
    c = client([FAR, BOB], credentials=Credentials("alice", "guess"))
    smtp_exchange(c, SMTPServer("mx", mail_hooks, port=587, auth_required=True))
    assert c.failed_at == "auth"
    assert set(c.rcpt_replies.values()) == {r.S535_AUTH_INVALID}


def test_greeting_refusal_decides_everyone(refusing_hooks: Any) -> None:
    rcpt = [BOB, CAROL]
    c = client(rcpt)
    transcript = smtp_exchange(c, SMTPServer("mx", refusing_hooks))
    assert transcript == [
        ("S", "554 5.7.1 Access denied"),
        ("C", "QUIT"),
        ("S", "221 2.0.0 Bye"),
    ]
    assert c.failed_at == "greeting"
    assert c.rcpt_replies == {BOB: r.S554_ACCESS_DENIED, CAROL: r.S554_ACCESS_DENIED}
    assert_every_recipient_decided(c, rcpt)


def test_421_mid_session_no_quit() -> None:
    class Overloaded(DefaultHooks):
        def check_rcpt(self, session: SMTPSession, forward_path: str) -> Reply | None:
            return r.S421_SHUTTING_DOWN if forward_path == CAROL else None

    rcpt = [BOB, CAROL, FAR]
    c = client(rcpt)
    transcript = smtp_exchange(c, SMTPServer("mx", Overloaded()))
    assert transcript[-1] == ("S", "421 4.3.2 Service not available, closing transmission channel")
    assert ("C", "QUIT") not in transcript
    assert c.failed_at == "rcpt"
    # BOB was accepted at RCPT but nothing was delivered: the 421 decides him too.
    assert c.rcpt_replies == {x: r.S421_SHUTTING_DOWN for x in rcpt}
    assert c.accepted == ()
    assert_every_recipient_decided(c, rcpt)


def test_content_refused(make_mail_hooks: Any) -> None:
    hooks = make_mail_hooks(deliver_reply=r.S550_CONTENT_REJECTED)
    rcpt = [BOB, NOBODY]
    c = client(rcpt)
    smtp_exchange(c, SMTPServer("mx", hooks))
    assert c.failed_at == "content"
    assert c.rcpt_replies == {BOB: r.S550_CONTENT_REJECTED, NOBODY: r.user_unknown(NOBODY)}
    assert c.final_reply == r.S550_CONTENT_REJECTED and c.accepted == ()


def test_size_refused_at_mail(mail_hooks: Any) -> None:
    c = SMTPClient("pc1", ALICE, [BOB], size=2000)
    smtp_exchange(c, SMTPServer("mx", mail_hooks, max_message_size=1000))
    assert c.failed_at == "mail" and c.final_reply == r.S552_SIZE_EXCEEDED


def test_helo_client_and_ehlo_fallback(mail_hooks: Any) -> None:
    c = client([BOB], esmtp=False)
    transcript = smtp_exchange(c, SMTPServer("mx", mail_hooks))
    assert transcript[1] == ("C", "HELO pc1.isp-a.example")
    assert ("C", "MAIL FROM:<alice@isp-a.example>") in transcript  # no SIZE without EHLO
    assert c.accepted == (BOB,)
    # RFC 5321 §3.2: an old server answers EHLO with 500/502; the client falls back to HELO.
    fallback = client([BOB])
    assert isinstance(fallback.receive(r.greeting("old")), Ehlo)
    assert isinstance(fallback.receive(r.S502_NOT_IMPLEMENTED), Helo)


def test_abort_decides_open_recipients() -> None:
    c = client([BOB, CAROL])
    c.receive(r.greeting("mx"))
    c.receive(r.ehlo_reply("mx", 1000, None))
    c.receive(r.S250_SENDER_OK)
    c.receive(r.S250_RECIPIENT_OK)  # BOB provisionally accepted; CAROL not yet sent
    c.abort()
    assert c.done and c.failed_at == "rcpt"
    assert c.rcpt_replies == {BOB: r.S421_SHUTTING_DOWN, CAROL: r.S421_SHUTTING_DOWN}


def test_client_misuse_and_remote_errors() -> None:
    c = client([BOB])
    c.receive(r.greeting("mx"))
    c.receive(r.ehlo_reply("mx", 1000, None))
    with pytest.raises(RemoteProtocolError):
        c.receive(r.S354_START_INPUT)  # 354 to MAIL
    done = client([BOB])
    assert isinstance(done.receive(r.S421_SHUTTING_DOWN), type(None))
    with pytest.raises(LocalProtocolError):
        done.receive(r.S250_OK)
    data = client([BOB])
    for reply in (r.greeting("mx"), r.helo_reply("mx"), r.S250_OK, r.S250_OK):
        data.receive(reply)
    with pytest.raises(RemoteProtocolError):
        data.receive(r.S250_OK)  # 250 to DATA


@pytest.mark.parametrize(
    "kwargs",
    [
        {"rcpt_to": []},
        {"rcpt_to": [BOB, BOB]},
        {"rcpt_to": ["not an address"]},
        {"rcpt_to": [BOB], "mail_from": "bad"},
    ],
)
def test_client_validation(kwargs: dict[str, Any]) -> None:
    args: dict[str, Any] = {"helo_name": "pc1", "mail_from": ALICE, "size": 1} | kwargs
    with pytest.raises(ValueError):
        SMTPClient(**args)
    with pytest.raises(ValueError):
        Credentials("alice", "x", "CRAM-MD5")


def test_client_commands_are_events() -> None:
    c = client([BOB])
    c.receive(r.greeting("mx"))
    c.receive(r.helo_reply("mx"))
    c.receive(r.S250_OK)
    assert c.receive(r.S250_OK).to_line() == "DATA"  # type: ignore[union-attr]
    content = c.receive(r.S354_START_INPUT)
    assert isinstance(content, Content) and content.size == 1234
    assert isinstance(c.receive(r.S250_QUEUED), Quit)
    assert c.receive(r.S221_BYE) is None and c.done


def test_a_kept_connection_carries_the_next_message(mail_hooks: Any) -> None:
    """keep_open: after a message the server took, the client idles; next_message sends
    another on the same connection (no new greeting, no second EHLO), close() ends it."""
    server = SMTPServer("mail.isp-b.example", mail_hooks)
    c = client([BOB], keep_open=True)
    smtp_exchange(c, server)
    assert c.idle and c.accepted == (BOB,) and not server.closed
    with pytest.raises(LocalProtocolError):
        c.receive(r.S250_OK)
    command = c.next_message(ALICE, ["carol@isp-b.example", NOBODY], size=5, payload=b"two")
    assert command.to_line() == "MAIL FROM:<alice@isp-a.example> SIZE=5"
    while command is not None:
        command = c.receive(server.handle(command))
    assert c.idle and c.accepted == ("carol@isp-b.example",)
    assert c.rcpt_replies[NOBODY].code == 550             # this message's results only
    assert BOB not in c.rcpt_replies
    assert [e.payload for e in mail_hooks.delivered][-1] == b"two"
    assert server.handle(c.close()).code == 221 and server.closed
    with pytest.raises(LocalProtocolError):
        c.close()
