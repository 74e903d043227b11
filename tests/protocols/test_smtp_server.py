"""SMTP server engine: the state table, as RFC corpora (aiosmtpd's test_smtp.py habit)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netsim.protocols import (
    SEQUENCE_ERRORS,
    TRANSITIONS,
    Auth,
    AuthResponse,
    Content,
    Data,
    DefaultHooks,
    Ehlo,
    Helo,
    Invalid,
    LocalProtocolError,
    Mail,
    Noop,
    Quit,
    Rcpt,
    Reply,
    Rset,
    SMTPCommand,
    SMTPServer,
    SMTPSession,
    SMTPState,
    StartTLS,
    Unknown,
)
from netsim.protocols import replies as r
from netsim.protocols.sasl import b64encode, encode_plain

ALICE = "alice@isp-a.example"
BOB = "bob@isp-b.example"
CAROL = "carol@isp-b.example"
NOBODY = "nobody@isp-b.example"
GOOD_PLAIN = encode_plain("alice", "secret")
BAD_PLAIN = encode_plain("alice", "wrong")
EHLO: SMTPCommand = Ehlo("pc1.isp-a.example")
S = SMTPState


def start(hooks: Any = None, **kwargs: Any) -> SMTPServer:
    server = SMTPServer("mail.isp-b.example", hooks, **kwargs)
    assert server.greeting().code == 220
    return server


def run(server: SMTPServer, commands: Sequence[SMTPCommand]) -> list[Reply]:
    return [server.handle(c) for c in commands]


CORPUS = [
    # RFC 5321 §4.1.4: a session starts with HELO or EHLO; NOOP, RSET and QUIT need none.
    pytest.param([Mail(ALICE)], r.S503_HELO_FIRST, S.CONNECTED, id="mail-before-helo"),
    pytest.param([Rcpt(BOB)], r.S503_HELO_FIRST, S.CONNECTED, id="rcpt-before-helo"),
    pytest.param([Data()], r.S503_HELO_FIRST, S.CONNECTED, id="data-before-helo"),
    pytest.param([Auth("PLAIN")], r.S503_HELO_FIRST, S.CONNECTED, id="auth-before-helo"),
    pytest.param([Noop()], r.S250_OK, S.CONNECTED, id="noop-before-helo"),
    pytest.param([Rset()], r.S250_OK, S.CONNECTED, id="rset-before-helo"),
    pytest.param([Quit()], r.S221_BYE, S.CLOSED, id="quit-before-helo"),
    pytest.param([Helo("pc1")], r.helo_reply("mail.isp-b.example"), S.READY, id="helo"),
    # RFC 5321 §3.3 / §4.1.4: the order MAIL, RCPT..., DATA; 503 otherwise.
    pytest.param([EHLO, Mail(ALICE), Mail(ALICE)], r.S503_NESTED_MAIL, S.MAIL, id="nested"),
    pytest.param([EHLO, Mail(ALICE), Rcpt(BOB), Mail(ALICE)], r.S503_NESTED_MAIL, S.RCPT,
                 id="nested-after-rcpt"),
    pytest.param([EHLO, Rcpt(BOB)], r.S503_NEED_MAIL, S.READY, id="rcpt-before-mail"),
    pytest.param([EHLO, Data()], r.S503_NEED_RCPT, S.READY, id="data-before-mail"),
    pytest.param([EHLO, Mail(ALICE), Data()], r.S503_NEED_RCPT, S.MAIL, id="data-before-rcpt"),
    pytest.param([EHLO, Mail(ALICE), Rcpt(NOBODY), Data()], r.S503_NEED_RCPT, S.MAIL,
                 id="data-after-only-rejected-rcpt"),
    pytest.param([EHLO, Mail(ALICE), Rcpt(BOB), Data()], r.S354_START_INPUT, S.DATA, id="data"),
    pytest.param([EHLO, Mail(""), Rcpt(BOB)], r.S250_RECIPIENT_OK, S.RCPT, id="null-sender"),
    pytest.param([EHLO, Mail(ALICE), Rcpt(NOBODY)], r.user_unknown(NOBODY), S.MAIL,
                 id="user-unknown"),
    pytest.param([EHLO, Mail(ALICE), Rcpt("x@elsewhere.example")],
                 r.relay_denied("x@elsewhere.example"), S.MAIL, id="relay-denied"),
    pytest.param([EHLO, Content(10)], r.S503_BAD_SEQUENCE, S.READY, id="content-outside-data"),
    pytest.param([EHLO, AuthResponse("x")], r.S503_BAD_SEQUENCE, S.READY,
                 id="auth-response-outside-auth"),
    # RFC 5321 §4.1.1.5: RSET aborts the transaction; §4.1.4: a new EHLO does too.
    pytest.param([EHLO, Mail(ALICE), Rcpt(BOB), Rset()], r.S250_OK, S.READY, id="rset"),
    pytest.param([EHLO, Mail(ALICE), Rcpt(BOB), Rset(), Rcpt(BOB)], r.S503_NEED_MAIL, S.READY,
                 id="rset-clears"),
    pytest.param([EHLO, Mail(ALICE), Rcpt(BOB), EHLO, Rcpt(BOB)], r.S503_NEED_MAIL, S.READY,
                 id="ehlo-clears"),
    pytest.param([EHLO, Mail(ALICE), Noop()], r.S250_OK, S.MAIL, id="noop-keeps-transaction"),
    # RFC 5321 §4.2.4: unknown verbs 500; known but not implemented 502.
    pytest.param([Unknown("FOO bar")], r.S500_SYNTAX, S.CONNECTED, id="unknown-verb"),
    pytest.param([EHLO, Unknown("VRFY bob")], r.S502_NOT_IMPLEMENTED, S.READY, id="vrfy"),
    pytest.param([EHLO, StartTLS()], r.S502_NOT_IMPLEMENTED, S.READY, id="starttls"),
    pytest.param([EHLO, Invalid(r.S501_ARG_SYNTAX, "MAIL FROM:x")], r.S501_ARG_SYNTAX,
                 S.READY, id="parser-invalid"),
    # RFC 4954 §4: AUTH.
    pytest.param([EHLO, Auth("CRAM-MD5")], r.S504_UNRECOGNISED_AUTH, S.READY, id="bad-mech"),
    pytest.param([EHLO, Auth("PLAIN", GOOD_PLAIN)], r.S235_AUTH_OK, S.READY, id="plain-ok"),
    pytest.param([EHLO, Auth("PLAIN", BAD_PLAIN)], r.S535_AUTH_INVALID, S.READY, id="plain-bad"),
    pytest.param([EHLO, Auth("PLAIN")], r.S334_CONTINUE, S.AUTH, id="plain-334"),
    pytest.param([EHLO, Auth("PLAIN"), AuthResponse(GOOD_PLAIN)], r.S235_AUTH_OK, S.READY,
                 id="plain-via-334"),
    pytest.param([EHLO, Auth("PLAIN"), AuthResponse("*")], r.S501_AUTH_CANCELLED, S.READY,
                 id="plain-cancel"),
    pytest.param([EHLO, Auth("PLAIN"), AuthResponse("!!!!")], r.S501_INVALID_BASE64, S.READY,
                 id="plain-bad-base64"),
    pytest.param([EHLO, Auth("PLAIN", b64encode("no-nuls"))], r.S501_INVALID_BASE64, S.READY,
                 id="plain-malformed"),
    pytest.param([EHLO, Auth("PLAIN", encode_plain("alice", "secret", authzid="root"))],
                 r.S535_AUTH_INVALID, S.READY, id="plain-other-authzid"),
    # While the server awaits a response, any line is the response (here QUIT's text).
    pytest.param([EHLO, Auth("PLAIN"), Quit()], r.S501_INVALID_BASE64, S.READY,
                 id="quit-as-auth-response"),
    pytest.param([EHLO, Auth("LOGIN")], r.S334_USERNAME, S.AUTH, id="login-user-prompt"),
    pytest.param([EHLO, Auth("LOGIN"), AuthResponse(b64encode("alice"))], r.S334_PASSWORD,
                 S.AUTH, id="login-password-prompt"),
    pytest.param([EHLO, Auth("LOGIN"), AuthResponse(b64encode("alice")),
                  AuthResponse(b64encode("secret"))], r.S235_AUTH_OK, S.READY, id="login-ok"),
    pytest.param([EHLO, Auth("LOGIN"), AuthResponse(b64encode("alice")),
                  AuthResponse(b64encode("nope"))], r.S535_AUTH_INVALID, S.READY,
                 id="login-bad"),
    pytest.param([EHLO, Auth("LOGIN"), AuthResponse(b64encode("alice")), AuthResponse("*")],
                 r.S501_AUTH_CANCELLED, S.READY, id="login-cancel"),
    pytest.param([EHLO, Auth("LOGIN", b64encode("alice")), AuthResponse(b64encode("secret"))],
                 r.S235_AUTH_OK, S.READY, id="login-initial-response"),
    pytest.param([EHLO, Auth("PLAIN", GOOD_PLAIN), Auth("PLAIN", GOOD_PLAIN)],
                 r.S503_ALREADY_AUTH, S.READY, id="auth-twice"),
    pytest.param([EHLO, Mail(ALICE), Auth("PLAIN", GOOD_PLAIN)], r.S503_AUTH_IN_TRANSACTION,
                 S.MAIL, id="auth-in-transaction"),
    pytest.param([EHLO, Auth("PLAIN", GOOD_PLAIN), Mail(ALICE), Rcpt("x@elsewhere.example")],
                 r.S250_RECIPIENT_OK, S.RCPT, id="authenticated-may-relay"),
]  # fmt: skip


@pytest.mark.parametrize(("commands", "last", "state"), CORPUS)
def test_corpus(mail_hooks: Any, commands: list[SMTPCommand], last: Reply, state: S) -> None:
    server = start(mail_hooks)
    assert run(server, commands)[-1] == last
    assert server.state is state


SUBMISSION = [
    # RFC 6409 §4.3 / RFC 4954 §6: 587 requires AUTH before MAIL (530 5.7.0).
    pytest.param([EHLO, Mail(ALICE)], r.S530_AUTH_REQUIRED, S.READY, id="mail-needs-auth"),
    pytest.param([EHLO, Auth("PLAIN", BAD_PLAIN), Mail(ALICE)], r.S530_AUTH_REQUIRED, S.READY,
                 id="failed-auth-still-530"),
    pytest.param([EHLO, Auth("PLAIN", GOOD_PLAIN), Mail(ALICE)], r.S250_SENDER_OK, S.MAIL,
                 id="auth-then-mail"),
    # RSET and a new EHLO keep the AUTH identity (aiosmtpd: "RSET keeps AUTH").
    pytest.param([EHLO, Auth("PLAIN", GOOD_PLAIN), Mail(ALICE), Rset(), Mail(ALICE)],
                 r.S250_SENDER_OK, S.MAIL, id="rset-keeps-auth"),
    pytest.param([EHLO, Auth("PLAIN", GOOD_PLAIN), EHLO, Mail(ALICE)], r.S250_SENDER_OK,
                 S.MAIL, id="ehlo-keeps-auth"),
]  # fmt: skip


@pytest.mark.parametrize(("commands", "last", "state"), SUBMISSION)
def test_submission_port(
    mail_hooks: Any, commands: list[SMTPCommand], last: Reply, state: S
) -> None:
    server = start(mail_hooks, port=587, auth_required=True)
    assert run(server, commands)[-1] == last
    assert server.state is state
    assert server.session.port == 587


def test_ehlo_advertises_extensions() -> None:
    server = start(max_message_size=5000)
    assert server.handle(EHLO).wire_lines() == [
        "250-mail.isp-b.example",
        "250-PIPELINING",
        "250-SIZE 5000",
        "250-AUTH PLAIN LOGIN",
        "250-ENHANCEDSTATUSCODES",
        "250 8BITMIME",
    ]
    assert server.session.esmtp and server.session.helo_name == "pc1.isp-a.example"
    quiet = start(offer_auth=False)
    assert not any("AUTH" in line for line in quiet.handle(EHLO).lines)
    assert quiet.handle(Auth("PLAIN", GOOD_PLAIN)) == r.S503_AUTH_NOT_ENABLED


def test_auth_requires_tls(mail_hooks: Any) -> None:
    plain = start(mail_hooks, auth_requires_tls=True)
    assert not any("AUTH" in line for line in plain.handle(EHLO).lines)
    assert plain.handle(Auth("PLAIN", GOOD_PLAIN)) == r.S538_ENCRYPTION_REQUIRED
    secure = start(mail_hooks, auth_requires_tls=True, tls=True, port=465)
    assert any("AUTH" in line for line in secure.handle(EHLO).lines)
    assert secure.handle(Auth("PLAIN", GOOD_PLAIN)) == r.S235_AUTH_OK
    assert secure.session.authenticated_user == "alice"


def test_too_many_recipients() -> None:
    # RFC 5321 §4.5.3.1.10: past the limit, 452 4.5.3; the accepted ones stay.
    server = start(max_recipients=2)
    replies = run(server, [EHLO, Mail(ALICE), Rcpt(BOB), Rcpt(CAROL), Rcpt("d@isp-b.example")])
    assert replies[-1] == r.S452_TOO_MANY_RCPTS
    assert server.session.rcpt_to == [BOB, CAROL]
    assert server.state is S.RCPT
    assert server.errors == 0  # a limit, not a syntax error


def test_size_limits(mail_hooks: Any) -> None:
    # RFC 1870: a declared SIZE over the limit is refused at MAIL; so is larger content.
    server = start(mail_hooks, max_message_size=1000)
    assert server.handle(EHLO).code == 250
    assert server.handle(Mail(ALICE, size=1001)) == r.S552_SIZE_EXCEEDED
    assert server.state is S.READY
    run(server, [Mail(ALICE, size=1000), Rcpt(BOB), Data()])
    assert server.handle(Content(1001)) == r.S552_SIZE_EXCEEDED
    assert server.state is S.READY and server.session.mail_from is None
    assert mail_hooks.delivered == []


def test_delivery_envelope_and_reset(mail_hooks: Any) -> None:
    server = start(mail_hooks, client_address="192.0.2.7")
    record = object()
    commands = [EHLO, Auth("PLAIN", GOOD_PLAIN), Mail(ALICE), Rcpt(BOB), Rcpt(NOBODY),
                Rcpt(CAROL), Data(), Content(321, record)]  # fmt: skip
    assert run(server, commands)[-1] == r.S250_QUEUED
    (envelope,) = mail_hooks.delivered
    assert envelope.mail_from == ALICE
    assert envelope.rcpt_to == (BOB, CAROL)  # only the accepted recipients
    assert (envelope.size, envelope.payload) == (321, record)
    assert envelope.helo_name == "pc1.isp-a.example"
    assert envelope.authenticated_user == "alice"
    assert server.session.client_address == "192.0.2.7"
    # The transaction is over: a new one starts cleanly in the same session.
    assert server.state is S.READY and server.session.rcpt_to == []
    assert run(server, [Mail(""), Rcpt(BOB), Data(), Content(1)])[-1] == r.S250_QUEUED
    assert mail_hooks.delivered[1].mail_from == ""


def test_delivery_refused_resets(make_mail_hooks: Any) -> None:
    hooks = make_mail_hooks(deliver_reply=r.S451_LOCAL_ERROR)
    server = start(hooks)
    assert run(server, [EHLO, Mail(ALICE), Rcpt(BOB), Data(), Content(5)])[-1].code == 451
    assert server.state is S.READY and server.session.mail_from is None


def test_error_budget() -> None:
    # Postfix-like hard error limit: the error past max_errors gets 421 and closes.
    server = start(max_errors=2)
    assert run(server, [Unknown("FOO"), Mail(ALICE)]) == [r.S500_SYNTAX, r.S503_HELO_FIRST]
    assert server.handle(Noop()) == r.S250_OK  # successes do not reset the count
    assert server.handle(Unknown("BAR")) == r.S421_TOO_MANY_ERRORS
    assert server.closed and server.state is S.CLOSED
    with pytest.raises(LocalProtocolError):
        server.handle(Noop())


def test_policy_rejections_do_not_count_and_failed_logins_do(mail_hooks: Any) -> None:
    server = start(mail_hooks, max_errors=1)
    run(server, [EHLO, Mail(ALICE)] + [Rcpt(NOBODY)] * 5 + [Rset()])
    assert not server.closed and server.errors == 0
    # a wrong password costs the session: guessing is not free
    run(server, [Auth("PLAIN", BAD_PLAIN)])
    assert server.errors == 1 and server.failed_logins == 1
    assert run(server, [Auth("PLAIN", BAD_PLAIN)]) == [r.S421_TOO_MANY_ERRORS]
    assert server.closed


def test_greeting_refused(refusing_hooks: Any) -> None:
    # RFC 5321 §3.1: after a 554 greeting, 503 to everything until QUIT.
    server = SMTPServer("mail.isp-b.example", refusing_hooks)
    assert server.greeting() == r.S554_ACCESS_DENIED
    assert server.state is S.REFUSED
    assert run(server, [EHLO, Mail(ALICE), Noop()]) == [r.S503_NO_SERVICE] * 3
    assert server.handle(Quit()) == r.S221_BYE
    assert server.closed


def test_greeting_421_closes(make_mail_hooks: Any) -> None:
    server = SMTPServer("mx", make_mail_hooks(refuse=r.S421_SHUTTING_DOWN))
    assert server.greeting().code == 421
    assert server.closed
    with pytest.raises(LocalProtocolError):
        server.handle(Quit())


def test_hook_421_closes() -> None:
    class Overloaded(DefaultHooks):
        def check_rcpt(self, session: SMTPSession, forward_path: str) -> Reply | None:
            return r.S421_SHUTTING_DOWN

    server = start(Overloaded())
    assert run(server, [EHLO, Mail(ALICE), Rcpt(BOB)])[-1].code == 421
    assert server.closed


@pytest.mark.parametrize(
    "misuse",
    [
        lambda s: s.handle(Noop()),  # before greeting()
        lambda s: (s.greeting(), s.greeting()),
    ],
)
def test_local_misuse_before_greeting(misuse: Any) -> None:
    with pytest.raises(LocalProtocolError):
        misuse(SMTPServer("mx", DefaultHooks()))


def test_only_content_in_data() -> None:
    server = start()
    run(server, [EHLO, Mail(ALICE), Rcpt(BOB), Data()])
    with pytest.raises(LocalProtocolError):
        server.handle(Noop())
    assert server.state is S.DATA  # unchanged
    assert server.handle(Content(3)) == r.S250_QUEUED


def test_hook_with_impossible_reply_is_local_error() -> None:
    class Broken(DefaultHooks):
        def check_mail(self, session: SMTPSession, reverse_path: str) -> Reply | None:
            return r.S354_START_INPUT

    server = start(Broken())
    server.handle(EHLO)
    with pytest.raises(LocalProtocolError):
        server.handle(Mail(ALICE))


def test_bad_configuration() -> None:
    with pytest.raises(ValueError):
        SMTPServer("mx", auth_mechanisms=("CRAM-MD5",))
    with pytest.raises(ValueError):
        SMTPServer("mx", auth_required=True, offer_auth=False)


def test_table_is_closed() -> None:
    # Every edge leads to a state of the table; every state where the peer may speak has
    # a sequence-error default.
    for state, edges in TRANSITIONS.items():
        for edge in edges.values():
            for target in (edge.ok, edge.more, edge.error):
                assert target is None or target in TRANSITIONS
        if edges and state not in (S.AUTH, S.DATA):
            assert None in SEQUENCE_ERRORS[state]
    assert set(TRANSITIONS) == set(SMTPState)


POOL = [EHLO, Helo("x"), Mail(ALICE), Mail(""), Rcpt(BOB), Rcpt(NOBODY), Data(), Rset(),
        Noop(), Auth("PLAIN", GOOD_PLAIN), Auth("LOGIN"), Auth("XOAUTH2"),
        AuthResponse(b64encode("alice")), AuthResponse("*"), Unknown("HELP"),
        Invalid(r.S500_LINE_TOO_LONG), Quit()]  # fmt: skip


@given(st.lists(st.sampled_from(POOL), max_size=40))
def test_random_sessions_keep_the_rules(commands: list[SMTPCommand]) -> None:
    server = start(_Hooks(), max_errors=5)
    for command in commands:
        if server.closed:
            break
        before = server.state
        if before is S.DATA:
            command = Content(10)
        reply = server.handle(command)
        assert reply.code in range(200, 600)
        if reply.code == 503:  # a sequence error never moves the state
            assert server.state is before
        if server.state is S.READY:
            assert server.session.mail_from is None and server.session.rcpt_to == []


class _Hooks(DefaultHooks):
    def authenticate(self, session: SMTPSession, mechanism: str, user: str, pw: str) -> bool:
        return pw == "secret"

    def check_rcpt(self, session: SMTPSession, forward_path: str) -> Reply | None:
        return r.S550_USER_UNKNOWN if forward_path == NOBODY else None
