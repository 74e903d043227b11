"""SMTP command events: wire text and validation at construction."""

from __future__ import annotations

import dataclasses

import pytest

from netsim.protocols import (
    Auth,
    AuthResponse,
    Content,
    Data,
    Ehlo,
    Helo,
    Invalid,
    Mail,
    Noop,
    Quit,
    Rcpt,
    Rset,
    SMTPCommand,
    Unknown,
)
from netsim.protocols.replies import S250_OK, S500_SYNTAX


@pytest.mark.parametrize(
    ("command", "line"),
    [
        (Helo("pc1.isp-a.example"), "HELO pc1.isp-a.example"),
        (Ehlo("[192.0.2.1]".strip("[]")), "EHLO 192.0.2.1"),
        (Mail("alice@isp-a.example"), "MAIL FROM:<alice@isp-a.example>"),
        (Mail("alice@isp-a.example", size=1234), "MAIL FROM:<alice@isp-a.example> SIZE=1234"),
        (Mail(""), "MAIL FROM:<>"),
        (Rcpt("bob@isp-b.example"), "RCPT TO:<bob@isp-b.example>"),
        (Rcpt("Postmaster"), "RCPT TO:<Postmaster>"),
        (Data(), "DATA"),
        (Rset(), "RSET"),
        (Noop(), "NOOP"),
        (Quit(), "QUIT"),
        (Auth("plain", "AGFsaWNlAHNlY3JldA=="), "AUTH PLAIN AGFsaWNlAHNlY3JldA=="),
        (Auth("LOGIN"), "AUTH LOGIN"),
        (AuthResponse("*"), "*"),
        (Unknown("VRFY bob"), "VRFY bob"),
        (Invalid(S500_SYNTAX, "MAIL FROM:x"), "MAIL FROM:x"),
        (Content(1234), "[message: 1234 octets]"),
    ],
)
def test_to_line(command: SMTPCommand, line: str) -> None:
    assert command.to_line() == line


def test_events_are_frozen_and_slotted() -> None:
    mail = Mail("alice@isp-a.example")
    with pytest.raises(dataclasses.FrozenInstanceError):
        mail.reverse_path = "x@y"  # type: ignore[misc]
    assert not hasattr(mail, "__dict__")
    assert Auth("login").mechanism == "LOGIN"
    assert Unknown("vrfy bob").verb == "VRFY"


LOCAL_64 = "a" * 64
DOMAIN_252 = ".".join(["d" * 63] * 3 + ["d" * 60])


@pytest.mark.parametrize(
    "address",
    [
        f"{LOCAL_64}@x.example",  # RFC 5321 §4.5.3.1.1: local part up to 64
        f"u@{DOMAIN_252}",  # path 256 with brackets: 1 + 1 + 1 + 252 + 1
        "first.last+tag@sub.domain.example",
    ],
)
def test_addresses_at_the_limits(address: str) -> None:
    Rcpt(address)
    Mail(address)


@pytest.mark.parametrize(
    "address",
    [
        "",  # the null path is for MAIL only
        "noatsign",
        "@domain.example",
        f"{'a' * 65}@x.example",  # local part over 64
        f"uu@{DOMAIN_252}",  # path over 256
        "a b@x.example",
        "a@b@c.example",
        "<a@b.example>",
        "a@",
        "bob@exämple.example",  # no SMTPUTF8
        "bob@x.example\r\nRSET",
    ],
)
def test_bad_recipients(address: str) -> None:
    with pytest.raises(ValueError):
        Rcpt(address)


@pytest.mark.parametrize(
    "build",
    [
        lambda: Mail("a@b.example", size=-1),
        lambda: Helo(""),
        lambda: Ehlo("a b"),
        lambda: Ehlo("x" * 256),
        lambda: Auth("NOT A MECH"),
        lambda: Auth("X" * 21),
        lambda: Auth("PLAIN", "not base64!"),
        lambda: Auth("PLAIN", ""),
        lambda: AuthResponse("a\r\nb"),
        lambda: Content(-1),
        lambda: Invalid(S250_OK, "x"),
        lambda: Unknown("x\ny"),
    ],
)
def test_invalid_construction(build: object) -> None:
    with pytest.raises(ValueError):
        build()  # type: ignore[operator]


@pytest.mark.parametrize("name", ["[192.0.2.1]", "[IPv6:2001:db8::1]", "mail.example"])
def test_helo_accepts_domains_and_address_literals(name):
    # RFC 5321 §4.1.3: a client without a name greets with an address literal
    assert Ehlo(name).to_line() == f"EHLO {name}"
    assert Helo(name).domain == name


@pytest.mark.parametrize("name", ["[999.1.1.1]", "[IPv6:zz]", "[]", "a b"])
def test_helo_rejects_malformed_literals(name):
    with pytest.raises(ValueError):
        Ehlo(name)
