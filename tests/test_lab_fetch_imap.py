"""``netsim fetch --imap``: netsim's own IMAP client (engine and response reader) against a
running lab, beside POP3 on the same maildrops."""

from __future__ import annotations

import asyncio
import os
import poplib
import random
import smtplib
from collections.abc import Iterator

import pytest

from netsim.cli import main
from netsim.lab import BackgroundLab, Lab, LabSettings, PortMap
from netsim.lab.clients import Target, fetch_imap
from netsim.scenario import load_scenario
from tests.conftest import wait_for

OP25B = ["--set", "policy=op25b+587"]
STRANGER = "127.0.0.1"
# 8-bit octets, a dotted line, and text that looks like IMAP: all must come back unchanged
MESSAGE = (b"From: <x@elsewhere.example>\r\nSubject: {0}\r\n\r\nbody of {0}\r\n"
           b".a dotted line\r\ncaf\xc3\xa9 \xff\r\n* 1 FETCH (BODY[] {3}\r\nA1 OK )\r\n")


def password(isp: str, user: int) -> str:
    return f"pw-{isp}.example-{user}"


@pytest.fixture(scope="module")
def lab() -> Iterator[tuple[BackgroundLab, int]]:
    """A lab on fixed ports (as the command computes them), at a random offset that
    tests/test_lab_tools.py (20000-38000, 40000-50000) never picks."""
    base = random.Random(os.getpid() + 2).randrange(51000, 60000, 100)
    background = BackgroundLab(load_scenario(None, ["policy=op25b+587"]),
                               LabSettings(ports=PortMap("offset", base), drop_hold_s=0.3))
    with background:
        yield background, base


def deliver(background: BackgroundLab, user: int, subject: str) -> bytes:
    """Send one message to ``user<user>@isp-b.example`` through the lab's SMTP; the octets
    the lab stored (its Received: line, then the message)."""
    host, port = background.lab.endpoint("isp-b", "smtp")
    body = MESSAGE.replace(b"{0}", subject.encode())
    with smtplib.SMTP(host, port, local_hostname="pc.example", timeout=5) as client:
        refused = client.sendmail("x@elsewhere.example", [f"user{user}@isp-b.example"], body,
                                  mail_options=["BODY=8BITMIME"])
        assert refused == {}
    assert wait_for(lambda: bool(mailbox(background, user)))
    (stored,) = mailbox(background, user)
    assert stored.endswith(body)
    return stored


def mailbox(background: BackgroundLab, user: int) -> list[bytes]:
    return background.call(lambda: background.lab.mailbox("isp-b", user))


def pop3_count(lab: Lab, user: int) -> int:
    host, port = lab.endpoint("isp-b", "pop3")
    client = poplib.POP3(host, port, timeout=5)
    try:
        client.user(f"user{user}")
        client.pass_(password("isp-b", user))
        return client.stat()[0]
    finally:
        client.quit()


def fetch(base: int, user: int, *more: str, secret: str | None = None) -> int:
    """``netsim fetch --imap`` as a student types it."""
    return main(["fetch", "--offset", str(base), *OP25B, "--server", "isp-b", "--imap",
                 "--user", f"user{user}", "--password", secret or password("isp-b", user),
                 *more])


def test_fetch_keeps_then_deletes(lab: tuple[BackgroundLab, int],
                                  capsys: pytest.CaptureFixture[str]) -> None:
    background, base = lab
    stored = deliver(background, 2, "kept")
    assert fetch(base, 2, "--keep") == 0
    out = capsys.readouterr().out
    assert f"connect {STRANGER} → 127.4.0.1:{base + 143}" in out
    assert "S: * OK [CAPABILITY" in out and "C: A1 AUTHENTICATE PLAIN " in out
    assert "C: A2 SELECT INBOX" in out and "C: A3 UID SEARCH ALL" in out
    assert "C: A4 UID FETCH 1 (UID RFC822.SIZE BODY[])" in out
    assert "S: body of kept" in out and "S: .a dotted line" in out  # the literal's lines
    assert "STORE" not in out and "C: A5 LOGOUT" in out
    assert "1 message(s) retrieved, kept on the server, marked \\Seen" in out
    assert pop3_count(background.lab, 2) == 1  # IMAP kept it: POP3 still lists it
    assert mailbox(background, 2) == [stored]
    # the exact octets, 8-bit and all, as the client engine got them
    host, port = background.lab.endpoint("isp-b", "imap")
    outcome = asyncio.run(fetch_imap(Target(STRANGER, host, port), "user2@isp-b.example",
                                     password("isp-b", 2), keep=True, unseen=False,
                                     echo=lambda d, line: None))
    assert outcome.ok and outcome.octets == [stored]
    assert outcome.messages[0].endswith("* 1 FETCH (BODY[] {3}\nA1 OK )")
    # BODY[] set \Seen: nothing is unseen now
    assert fetch(base, 2, "--unseen", "--keep") == 0
    out = capsys.readouterr().out
    assert "C: A3 UID SEARCH UNSEEN" in out and "UID FETCH" not in out
    assert "0 message(s) retrieved" in out
    # without --keep: \Deleted and EXPUNGE, and POP3 sees it gone
    assert fetch(base, 2) == 0
    out = capsys.readouterr().out
    assert "C: A5 UID STORE 1 +FLAGS.SILENT (\\Deleted)" in out and "C: A6 EXPUNGE" in out
    assert "S: * 1 EXPUNGE" in out
    assert "1 message(s) retrieved, marked \\Deleted and expunged" in out
    assert pop3_count(background.lab, 2) == 0 and mailbox(background, 2) == []


def test_unseen_fetches_only_new_mail(lab: tuple[BackgroundLab, int],
                                      capsys: pytest.CaptureFixture[str]) -> None:
    background, base = lab
    first = deliver(background, 3, "first")
    assert fetch(base, 3, "--keep") == 0
    capsys.readouterr()
    host, port = background.lab.endpoint("isp-b", "smtp")
    with smtplib.SMTP(host, port, local_hostname="pc.example", timeout=5) as client:
        client.sendmail("x@elsewhere.example", ["user3@isp-b.example"], b"Subject: new\r\n\r\n"
                        b"second\r\n")
    assert wait_for(lambda: len(mailbox(background, 3)) == 2)
    target = Target(STRANGER, *background.lab.endpoint("isp-b", "imap"))
    outcome = asyncio.run(fetch_imap(target, "user3", password("isp-b", 3), keep=False,
                                     unseen=True, echo=lambda d, line: None))
    assert outcome.ok and len(outcome.octets) == 1
    assert outcome.octets[0].endswith(b"Subject: new\r\n\r\nsecond\r\n")
    assert mailbox(background, 3) == [first]  # only the new one was deleted


def test_fetch_with_a_wrong_password(lab: tuple[BackgroundLab, int],
                                     capsys: pytest.CaptureFixture[str]) -> None:
    _, base = lab
    assert fetch(base, 4, secret="nope") == 1
    out = capsys.readouterr().out
    assert "failed: NO [AUTHENTICATIONFAILED] Invalid credentials" in out
    assert "C: A2 SELECT" not in out and "C: A2 LOGOUT" in out


def test_the_connection_refused(capsys: pytest.CaptureFixture[str]) -> None:
    # nothing listens at offset 100: the fetch says so instead of failing
    assert main(["fetch", "--offset", "100", "--server", "isp-b", "--imap", "--user",
                 "user1", "--password", "x", "--timeout", "2"]) == 1
    assert "failed: connection refused" in capsys.readouterr().out


@pytest.mark.parametrize("more, message", [
    (["--imap", "--apop"], "--apop is POP3's"),
    (["--unseen"], "--unseen needs --imap"),
])
def test_fetch_user_errors(more: list[str], message: str,
                           capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fetch", "--server", "isp-b", "--user", "user1", "--password", "x",
                 *more]) == 2
    assert message in capsys.readouterr().err
