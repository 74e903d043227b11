"""The lab as a server under abuse: caps, timeouts, lost connections, long lines, garbage.

Raw sockets here, since the point is what a well-behaved client library never sends.
Each test starts its own small lab (two ISPs, ports picked by the system) and stops it.
"""

from __future__ import annotations

import os
import re
import smtplib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netsim.lab import BackgroundLab, Lab, LabSettings, PortMap, RelaySettings
from netsim.lab.spool import Spool
from netsim.scenario import Scenario
from tests.conftest import send_all, tiny_scenario, wait_for

SMTP_LINE = re.compile(rb"^\d{3}[ -]")
POP3_STATUS = re.compile(rb"^(\+OK|-ERR)( |$)")


def scenario(**mail_server: Any) -> Scenario:
    """The tiny two-ISP world, with mail server settings for both ISPs."""
    base = tiny_scenario()
    isps = [isp.model_dump() for isp in base.isps]
    for isp in isps:
        isp["mail_server"].update(mail_server)
    return tiny_scenario(isps=isps)


@contextmanager
def lab_thread(world: Scenario | None = None, **changes: Any) -> Iterator[BackgroundLab]:
    options: dict[str, Any] = {"ports": PortMap("ephemeral"), "drop_hold_s": 0.3,
                               "relay": RelaySettings(retry_min_s=0.2, retry_max_s=0.4)}
    options.update(changes)
    background = BackgroundLab(world or scenario(), LabSettings(**options))
    with background:
        yield background


class Line:
    """A raw client: send lines, read what comes back, line by line."""

    def __init__(self, lab: Lab, isp: str, service: str, source: str = "127.0.0.1") -> None:
        self.sock = socket.create_connection(lab.endpoint(isp, service), timeout=5,
                                             source_address=(source, 0))
        self.file = self.sock.makefile("rb")

    def send(self, *lines: bytes) -> None:
        self.sock.sendall(b"".join(line + b"\r\n" for line in lines))

    def line(self) -> bytes:
        return self.file.readline()

    def reply(self) -> bytes:
        """One SMTP reply (its last line)."""
        while True:
            line = self.line()
            if line[3:4] != b"-":
                return line

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def mailbox(background: BackgroundLab, isp: str, user: int) -> list[bytes]:
    return background.call(lambda: background.lab.mailbox(isp, user))


def test_session_cap_refuses_with_421_and_err() -> None:
    """SMTP and POP3 have two slots each here, and one address may hold one of each pool
    (half, as Postfix's smtpd_client_connection_count_limit is half its process limit)."""
    a, b, c = "127.0.0.1", "127.0.0.2", "127.0.0.3"
    with lab_thread(scenario(session_slots=2)) as background:
        lab = background.lab
        first = Line(lab, "isp-a", "smtp", a)
        assert first.reply().startswith(b"220")
        again = Line(lab, "isp-a", "smtp", a)
        assert again.reply() == b"421 4.7.0 Too many connections from your address\r\n"
        assert again.line() == b""   # and closed
        second = Line(lab, "isp-a", "smtp", b)   # kept open: the pool is full
        assert second.reply().startswith(b"220")
        third = Line(lab, "isp-a", "smtp", c)
        assert third.reply().startswith(b"421 4.3.2 mail.isp-a.example too many sessions")
        # a full SMTP pool leaves mail reading alone; an address's share holds there too
        reading = Line(lab, "isp-a", "pop3", a)
        assert reading.line().startswith(b"+OK")
        assert Line(lab, "isp-a", "pop3", a).line().startswith(
            b"-ERR [SYS/TEMP] too many connections from your address")
        assert Line(lab, "isp-b", "smtp", c).reply().startswith(b"220")   # per server
        first.send(b"QUIT")
        assert first.reply().startswith(b"221")
        assert wait_for(lambda: Line(lab, "isp-a", "smtp", c).reply().startswith(b"220"))


def test_a_trickling_client_keeps_no_session() -> None:
    """A line must arrive within the idle timeout, extended only by the octets that come at
    500 a second: a byte every 0.1 s does not keep a session open."""
    with lab_thread(smtp_idle_s=0.5) as background:
        client = Line(background.lab, "isp-a", "smtp")
        assert client.reply().startswith(b"220")
        start = time.monotonic()
        with pytest.raises(OSError):
            for byte in b"NOOP " + b"x" * 100:
                client.sock.sendall(bytes([byte]))
                time.sleep(0.1)
        assert client.reply().startswith(b"421")   # timeout exceeded, then closed
        assert time.monotonic() - start < 5


def test_a_client_lost_in_data_delivers_nothing() -> None:
    with lab_thread() as background:
        lab = background.lab
        client = Line(lab, "isp-a", "smtp")
        client.reply()
        client.send(b"HELO pc.example", b"MAIL FROM:<x@elsewhere.example>",
                    b"RCPT TO:<user1@isp-a.example>", b"DATA")
        assert [client.reply()[:3] for _ in range(4)] == [b"250", b"250", b"250", b"354"]
        client.send(b"Subject: half", b"", b"the first half")
        client.close()
        again = Line(lab, "isp-a", "smtp")
        assert again.reply().startswith(b"220")   # still serving
        again.send(b"QUIT")
        assert again.reply().startswith(b"221")
        assert mailbox(background, "isp-a", 1) == []


def test_a_pop3_client_lost_after_dele_deletes_nothing() -> None:
    with lab_thread() as background:
        lab = background.lab
        host, port = lab.endpoint("isp-b", "smtp")
        with smtplib.SMTP(host, port, local_hostname="pc.example", timeout=5) as client:
            client.sendmail("x@elsewhere.example", ["user2@isp-b.example"], b"hi\r\n")
        reader = Line(lab, "isp-b", "pop3")
        reader.line()
        reader.send(b"USER user2", b"PASS pw-isp-b.example-2", b"DELE 1")
        assert [reader.line()[:3] for _ in range(3)] == [b"+OK"] * 3
        reader.close()   # no QUIT: no UPDATE state
        assert wait_for(lambda: len(mailbox(background, "isp-b", 2)) == 1)
        again = Line(lab, "isp-b", "pop3")   # and the maildrop is unlocked again
        again.line()
        again.send(b"USER user2", b"PASS pw-isp-b.example-2")
        again.line()
        assert again.line().startswith(b"+OK maildrop has 1 messages")


def test_long_lines_get_500_and_err_and_the_session_goes_on() -> None:
    with lab_thread() as background:
        lab = background.lab
        client = Line(lab, "isp-a", "smtp")
        client.reply()
        client.send(b"NOOP " + b"x" * 600, b"NOOP")
        assert client.reply().startswith(b"500 5.5.6")
        assert client.reply().startswith(b"250")
        reader = Line(lab, "isp-a", "pop3")
        reader.line()
        reader.send(b"USER " + b"u" * 300, b"CAPA")
        assert reader.line().startswith(b"-ERR")
        assert reader.line().startswith(b"+OK")


def test_error_budget_then_421() -> None:
    with lab_thread(max_errors=3) as background:
        client = Line(background.lab, "isp-a", "smtp")
        client.reply()
        client.send(*[b"BOGUS"] * 5)
        replies = [client.reply() for _ in range(4)]
        assert [r[:3] for r in replies] == [b"500"] * 3 + [b"421"]
        assert client.line() == b""


def test_idle_timeouts() -> None:
    with lab_thread(smtp_idle_s=0.3, pop3_idle_s=0.3) as background:
        client = Line(background.lab, "isp-a", "smtp")
        client.reply()
        assert client.reply().startswith(b"421 4.4.2 mail.isp-a.example Error: timeout")
        assert client.line() == b""
        reader = Line(background.lab, "isp-a", "pop3")
        reader.line()
        assert reader.line() == b""   # RFC 1939: the autologout timer closes silently


def test_stopping_the_lab_tells_smtp_clients() -> None:
    background = BackgroundLab(scenario(), LabSettings(ports=PortMap("ephemeral")))
    with background:
        client = Line(background.lab, "isp-a", "smtp")
        client.reply()
    assert client.reply().startswith(b"421 4.3.2")


def test_reject_resets_and_a_closed_port_refuses() -> None:
    world = tiny_scenario(policy="op25b")   # no submission port
    data = world.model_dump()
    data["isps"][0]["policies"]["op25b"]["action"] = "reject"
    with lab_thread(Scenario.model_validate(data)) as background:
        lab = background.lab
        assert (0, "submission") not in lab.bound
        with pytest.raises((ConnectionError, smtplib.SMTPServerDisconnected)):
            host, port = lab.endpoint("isp-b", "smtp")
            smtplib.SMTP(host, port, local_hostname="pc.example", timeout=5,
                         source_address=("127.1.0.9", 0))


def test_a_later_submission_port_opens_on_time() -> None:
    data = tiny_scenario().model_dump()
    data["isps"][0]["policies"]["submission"] = {"start_s": 0.5}
    with lab_thread(Scenario.model_validate(data)) as background:
        host, port = background.lab.endpoint("isp-a", "submission")
        with pytest.raises((ConnectionError, smtplib.SMTPServerDisconnected)):
            smtplib.SMTP(host, port, local_hostname="pc.example", timeout=5)
        time.sleep(0.6)
        with smtplib.SMTP(host, port, local_hostname="pc.example", timeout=5) as client:
            assert client.noop()[0] == 250


def test_greylisting_defers_and_the_relay_retries() -> None:
    world = tiny_scenario(defences={"greylisting": {"delay_s": 0.5, "retry_window_s": 60}})
    with lab_thread(world) as background:
        host, port = background.lab.endpoint("isp-a", "submission")
        with smtplib.SMTP(host, port, local_hostname="pc.example", timeout=5) as client:
            client.login("user3", "pw-isp-a.example-3")
            client.sendmail("user3@isp-a.example", ["user3@isp-b.example"], b"hi\r\n")
        assert mailbox(background, "isp-b", 3) == []
        assert wait_for(lambda: len(mailbox(background, "isp-b", 3)) == 1)


def test_undeliverable_mail_bounces_to_the_sender() -> None:
    with lab_thread() as background:
        host, port = background.lab.endpoint("isp-a", "submission")
        with smtplib.SMTP(host, port, local_hostname="pc.example", timeout=5) as client:
            client.login("user4", "pw-isp-a.example-4")
            client.sendmail("user4@isp-a.example",
                            ["nobody@nowhere.example", "user999@isp-b.example"],
                            b"Subject: lost\r\n\r\nhi\r\n")
        assert wait_for(lambda: len(mailbox(background, "isp-a", 4)) == 2)
        bounces = b"\n".join(mailbox(background, "isp-a", 4))
        assert b"5.1.2 Host or domain name not found" in bounces
        assert b"550 5.1.1 User unknown" in bounces and b"Subject: lost" in bounces


# -- garbage in, well-formed replies out -----------------------------------------------
lines = st.one_of(
    st.binary(max_size=80).map(lambda b: b.replace(b"\n", b"")),
    st.sampled_from([b"HELO", b"EHLO x", b"MAIL FROM:<a@b>", b"RCPT TO:<user1@isp-a.example>",
                     b"AUTH PLAIN", b"AUTH LOGIN", b"*", b"RSET", b"NOOP", b"VRFY x",
                     b"USER user1", b"PASS x", b"APOP a b", b"LIST", b"RETR 1", b"CAPA",
                     b"STLS", b"TOP 1 x", b"DATA", b".", b"x" * 1500, b"\x00\xff", b""]),
)


def smtp_well_formed(data: bytes) -> bool:
    replies = data.split(b"\r\n")
    assert replies[-1] == b""
    return all(SMTP_LINE.match(line) for line in replies[:-1])


def pop3_well_formed(data: bytes) -> bool:
    """Status lines, and after a +OK perhaps a body up to its "." line."""
    rows = data.split(b"\r\n")[:-1]
    i = 0
    while i < len(rows):
        if not POP3_STATUS.match(rows[i]):
            return False
        ok = rows[i].startswith(b"+OK")
        i += 1
        if ok and i < len(rows) and not POP3_STATUS.match(rows[i]):
            while i < len(rows) and rows[i] != b".":
                i += 1
            if i == len(rows):
                return False
            i += 1
    return True


@pytest.fixture(scope="module")
def garbage_lab() -> Iterator[BackgroundLab]:
    with lab_thread() as background:
        yield background


@settings(max_examples=60, deadline=None)
@given(sent=st.lists(lines, max_size=12), service=st.sampled_from(["smtp", "pop3"]))
def test_random_lines_get_well_formed_replies(garbage_lab: BackgroundLab, sent: list[bytes],
                                              service: str) -> None:
    lab = garbage_lab.lab
    received = send_all(lab.endpoint("isp-a", service), sent)
    check = pop3_well_formed if service == "pop3" else smtp_well_formed
    assert check(received), received
    probe = socket.create_connection(lab.endpoint("isp-a", service), timeout=5)
    assert probe.recv(100)[:3] in (b"220", b"+OK")   # still serving
    probe.close()


def _serve(spool: Path, offset: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "netsim.cli", "serve", "--set", "policy=op25b+587",
         "--spool", str(spool), "--offset", str(offset), "--no-tls", "--quiet"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _listening(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=0.5).close()
        return True
    except OSError:
        return False


def _messages(offset: int, host: str, source: str, user: int, domain: str) -> int:
    """How many messages a maildrop holds (POP3 STAT from the user's own pool)."""
    with socket.create_connection((host, offset + 110), timeout=5,
                                  source_address=(source, 0)) as sock:
        stream = sock.makefile("rwb")
        stream.readline()
        replies = []
        for line in (f"USER user{user}", f"PASS pw-{domain}-{user}", "STAT", "QUIT"):
            stream.write(line.encode() + b"\r\n")
            stream.flush()
            replies.append(stream.readline())
    assert all(r.startswith(b"+OK") for r in replies), replies
    return int(replies[2].split()[1])


def test_a_sigkill_after_250_loses_nothing_and_delivers_once(tmp_path: Path) -> None:
    """netsim serve --spool: mail is on disk before the 250; a lab killed with SIGKILL and
    started again has the local copy once, and relays the rest once (twice only when the
    kill fell between the receiving server's 250 and the dequeue)."""
    offset = 20000 + (os.getpid() % 390) * 100
    spool = tmp_path / "spool"
    server = _serve(spool, offset)
    try:
        assert wait_for(lambda: _listening("127.4.0.1", offset + 25), seconds=30)
        with smtplib.SMTP("127.4.0.1", offset + 25, local_hostname="pc.example",
                          timeout=5) as client:
            client.sendmail("x@elsewhere.example", ["user7@isp-b.example"],
                            b"Subject: kept\r\n\r\nsurvives a crash\r\n")
        server.kill()                               # SIGKILL right after the 250
        server.wait(10)
        server = _serve(spool, offset)
        assert wait_for(lambda: _listening("127.4.0.1", offset + 110), seconds=30)
        assert _messages(offset, "127.4.0.1", "127.3.0.7", 7, "isp-b.example") == 1
        # relayed mail: queued on disk at the 250, resumed after a kill, delivered once
        with smtplib.SMTP("127.2.0.1", offset + 25, local_hostname="pc.example",
                          source_address=("127.1.0.9", 0), timeout=5) as client:
            client.sendmail("user9@isp-a.example", ["user8@isp-c.example"],
                            b"Subject: relayed\r\n\r\nacross a crash\r\n")
        server.kill()
        server.wait(10)
        # the relay may have delivered before the kill; then only a kill before it
        # dequeued the entry sends the copy again (docs/lab.md: a duplicate, not a loss)
        delivered = len(list((spool / "maildrops" / "isp-c.example" / "8").glob("*")))
        queued = len(list((spool / "queue").glob("*.json")))
        assert delivered + queued >= 1   # on disk, one way or the other
        server = _serve(spool, offset)
        assert wait_for(lambda: _listening("127.6.0.1", offset + 110), seconds=30)
        assert wait_for(lambda: _messages(offset, "127.6.0.1", "127.5.0.8", 8,
                                          "isp-c.example") >= 1, seconds=30)
        # the entry leaves the spool once the delivery is acknowledged (a moment later)
        assert wait_for(lambda: not list((spool / "queue").glob("*.json")), seconds=30)
        assert _messages(offset, "127.6.0.1", "127.5.0.8", 8, "isp-c.example") == \
            delivered + queued
    finally:
        server.kill()
        server.wait(10)


def test_a_deferred_relay_entry_survives_a_restart(tmp_path: Path) -> None:
    """Greylisted (450) at the destination, the entry stays queued on disk; the lab stops
    before the retry, and the next lab on the same spool delivers it, once."""
    world = tiny_scenario(defences={"greylisting": {"delay_s": 0.5, "retry_window_s": 60}})
    spool = tmp_path / "spool"
    slow = RelaySettings(retry_min_s=30, retry_max_s=30)   # no retry before the stop
    with lab_thread(world, spool=spool, relay=slow) as background:
        host, port = background.lab.endpoint("isp-a", "submission")
        with smtplib.SMTP(host, port, local_hostname="pc.example", timeout=5) as client:
            client.login("user3", "pw-isp-a.example-3")
            client.sendmail("user3@isp-a.example", ["user3@isp-b.example"], b"hi\r\n")
        assert wait_for(lambda: background.lab.relay.queued == 1)
        assert wait_for(lambda: any(e["attempts"] == 1 for _, e, _ in
                                    Spool(spool).queued()))
    assert [e["pending"] for _, e, _ in Spool(spool).queued()] == [["user3@isp-b.example"]]
    time.sleep(0.6)   # past the greylisting delay
    with lab_thread(world, spool=spool) as background:
        assert background.lab.restored[1] == 1
        assert wait_for(lambda: len(mailbox(background, "isp-b", 3)) == 1)
        assert wait_for(lambda: list(Spool(spool).queued()) == [])
    with lab_thread(world, spool=spool) as background:   # and not again
        assert background.lab.restored == (1, 0)
        time.sleep(0.5)
        assert len(mailbox(background, "isp-b", 3)) == 1


def test_the_spool_round_trip(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.store("isp-a.example", 3, "7.isp-a", b"one\r\n")
    spool.store("isp-a.example", 3, "9.isp-a", b"two\r\n")
    spool.enqueue("12.isp-a.isp-b.example", {"pending": ["a@isp-b.example"]}, b"m\r\n")
    assert spool.last_sequence() == 12
    assert [(d, u, uid, p) for d, u, uid, p in spool.stored()] == [
        ("isp-a.example", 3, "7.isp-a", b"one\r\n"), ("isp-a.example", 3, "9.isp-a", b"two\r\n")]
    spool.delete("isp-a.example", 3, {"7.isp-a"})
    assert [uid for _, _, uid, _ in spool.stored()] == ["9.isp-a"]
    spool.update("12.isp-a.isp-b.example", {"pending": []})
    assert list(spool.queued()) == [("12.isp-a.isp-b.example", {"pending": []}, b"m\r\n")]
    spool.dequeue("12.isp-a.isp-b.example")
    assert list(spool.queued()) == [] and not any(tmp_path.glob("**/.*.tmp"))
