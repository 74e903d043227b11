"""IMAP in the live lab, beside POP3 on the same maildrops: imaplib, curl and raw sockets.

One lab serves the default world with OP25B and the submission port for most tests, on
ports the system picks; each test reads mailboxes of its own. Tests that need other
settings (a spool, a small pool, short timeouts, the scenario's security) start their own.
"""

from __future__ import annotations

import imaplib
import poplib
import re
import shutil
import smtplib
import socket
import ssl
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netsim.lab import BackgroundLab, Lab, LabSettings, PortMap
from netsim.scenario import Scenario, load_scenario
from tests.conftest import send_all, tiny_scenario, wait_for

STRANGER = "127.0.0.1"
MESSAGE = b"From: <x@elsewhere.example>\r\nSubject: {0}\r\n\r\nbody of {0}\r\n.a dotted line\r\n"


def password(domain: str, user: int) -> str:
    return f"pw-{domain}-{user}"


@pytest.fixture(scope="module")
def running() -> Iterator[BackgroundLab]:
    background = BackgroundLab(load_scenario(None, ["policy=op25b+587"]),
                               LabSettings(ports=PortMap("ephemeral"), drop_hold_s=0.3))
    with background:
        yield background


@contextmanager
def lab_thread(world: Scenario | None = None, **changes: Any) -> Iterator[BackgroundLab]:
    options: dict[str, Any] = {"ports": PortMap("ephemeral"), "drop_hold_s": 0.3}
    options.update(changes)
    background = BackgroundLab(world or load_scenario(None, ["policy=op25b+587"]),
                               LabSettings(**options))
    with background:
        yield background


def tiny(**mail_server: Any) -> Scenario:
    """The two-ISP world with these mail server settings for both ISPs."""
    isps = [isp.model_dump() for isp in tiny_scenario().isps]
    for isp in isps:
        isp["mail_server"].update(mail_server)
    return tiny_scenario(isps=isps)


def deliver(lab: Lab, isp: str, user: int, subject: str) -> bytes:
    """Send one message to ``user<user>`` at ``isp`` through the lab's SMTP, from outside."""
    host, port = lab.endpoint(isp, "smtp")
    body = MESSAGE.replace(b"{0}", subject.encode())
    with smtplib.SMTP(host, port, local_hostname="pc.example", timeout=5) as client:
        assert client.sendmail("x@elsewhere.example", [f"user{user}@{isp}.example"], body) == {}
    return body


class SourcedIMAP4(imaplib.IMAP4):
    """imaplib's client from a chosen source address (imaplib has no ``source_address``)."""

    def __init__(self, host: str, port: int, source: str = STRANGER) -> None:
        self.source = source
        super().__init__(host, port, timeout=5)

    def _create_socket(self, timeout: float | None) -> socket.socket:
        return socket.create_connection((self.host, self.port), timeout,
                                        source_address=(self.source, 0))


def imap(lab: Lab, isp: str, user: int, source: str = STRANGER) -> imaplib.IMAP4:
    """A logged-in imaplib client."""
    host, port = lab.endpoint(isp, "imap")
    client = SourcedIMAP4(host, port, source)
    assert client.login(f"user{user}", password(f"{isp}.example", user))[0] == "OK"
    return client


def pop3(lab: Lab, isp: str, user: int) -> poplib.POP3:
    """A logged-in poplib client."""
    host, port = lab.endpoint(isp, "pop3")
    client = poplib.POP3(host, port, timeout=5)
    client.user(f"user{user}")
    client.pass_(password(f"{isp}.example", user))
    return client


def waiting(running: BackgroundLab, isp: str, user: int) -> int:
    return len(running.call(lambda: running.lab.mailbox(isp, user)))


class Raw:
    """A raw IMAP client: tagged commands, the lines that come back."""

    def __init__(self, lab: Lab, isp: str, source: str = STRANGER,
                 service: str = "imap") -> None:
        self.sock = socket.create_connection(lab.endpoint(isp, service), timeout=5,
                                             source_address=(source, 0))
        self.file = self.sock.makefile("rb")

    def line(self) -> bytes:
        return self.file.readline()

    def send(self, line: bytes) -> None:
        self.sock.sendall(line + b"\r\n")

    def command(self, tag: bytes, line: bytes) -> list[bytes]:
        """Send ``tag line``; every line up to and with the tagged one."""
        self.send(tag + b" " + line)
        lines = [self.line()]
        while not lines[-1].startswith(tag + b" ") and lines[-1]:
            lines.append(self.line())
        return lines

    def close(self) -> None:
        self.file.close()
        self.sock.close()


# --- imaplib against the lab ------------------------------------------------------------


def test_imaplib_login_select_fetch_store_expunge(running: BackgroundLab) -> None:
    lab = running.lab
    first = deliver(lab, "isp-a", 10, "one")
    second = deliver(lab, "isp-a", 10, "two")
    client = imap(lab, "isp-a", 10)
    assert client.select("INBOX") == ("OK", [b"2"])
    kind, data = client.fetch("1", "(RFC822.SIZE BODY.PEEK[])")
    assert kind == "OK"
    header, content = data[0]
    assert content.endswith(first) and content.startswith(b"Received: from pc.example")
    assert f"RFC822.SIZE {len(content)}".encode() in header   # the octets sent
    assert client.fetch("1", "(FLAGS)")[1] == [b"1 (FLAGS ())"]   # PEEK sets no \Seen
    kind, data = client.uid("FETCH", "2", "(RFC822)")
    assert kind == "OK" and data[0][1].endswith(second)
    assert client.fetch("2", "(FLAGS)")[1] == [b"2 (FLAGS (\\Seen))"]
    assert client.store("1", "+FLAGS", "(\\Deleted)")[0] == "OK"
    assert client.search(None, "DELETED") == ("OK", [b"1"])
    assert client.expunge() == ("OK", [b"1"])
    assert client.select("INBOX") == ("OK", [b"1"])
    assert client.fetch("1", "(UID FLAGS)")[1] == [b"1 (UID 2 FLAGS (\\Seen))"]
    assert client.logout()[0] == "BYE"
    assert waiting(running, "isp-a", 10) == 1


def test_a_wrong_password_is_refused(running: BackgroundLab) -> None:
    host, port = running.lab.endpoint("isp-b", "imap")
    client = SourcedIMAP4(host, port, "127.7.0.40")
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        client.login("user11", "wrong")
    client.logout()


# --- one maildrop, two protocols ----------------------------------------------------------


def test_read_by_imap_is_still_listed_by_pop3(running: BackgroundLab) -> None:
    lab = running.lab
    body = deliver(lab, "isp-b", 12, "kept")
    client = imap(lab, "isp-b", 12)
    client.select("INBOX")
    assert client.fetch("1", "(BODY[])")[1][0][1].endswith(body)   # and now \Seen
    client.logout()
    reader = pop3(lab, "isp-b", 12)
    assert reader.stat()[0] == 1
    _, lines, _ = reader.retr(1)
    assert b"".join(line + b"\r\n" for line in lines).endswith(body)
    reader.quit()   # nothing deleted
    assert waiting(running, "isp-b", 12) == 1


def test_deleted_by_pop3_is_gone_for_imap(running: BackgroundLab) -> None:
    lab = running.lab
    deliver(lab, "isp-b", 13, "first")
    deliver(lab, "isp-b", 13, "second")
    reader = pop3(lab, "isp-b", 13)
    reader.dele(1)
    reader.quit()
    client = imap(lab, "isp-b", 13)
    assert client.select("INBOX") == ("OK", [b"1"])
    _, data = client.fetch("1", "(UID BODY.PEEK[])")
    assert b"UID 2" in data[0][0] and b"body of second" in data[0][1]
    client.logout()


def test_expunged_by_imap_is_gone_for_pop3(running: BackgroundLab) -> None:
    lab = running.lab
    deliver(lab, "isp-c", 14, "doomed")
    kept = deliver(lab, "isp-c", 14, "kept")
    client = imap(lab, "isp-c", 14)
    client.select("INBOX")
    client.store("1", "+FLAGS.SILENT", "(\\Deleted)")
    client.close()   # CLOSE expunges too
    client.logout()
    reader = pop3(lab, "isp-c", 14)
    assert reader.stat()[0] == 1
    _, lines, _ = reader.retr(1)
    assert b"".join(line + b"\r\n" for line in lines).endswith(kept)
    reader.quit()


def test_expunges_leave_the_spool_like_pop3_deletions(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    with lab_thread(spool=spool, tls=False) as background:
        lab = background.lab
        for subject in ("a", "b", "c"):
            deliver(lab, "isp-a", 3, subject)
        copies = spool / "maildrops" / "isp-a.example" / "3"
        assert len(list(copies.iterdir())) == 3
        client = imap(lab, "isp-a", 3)
        client.select("INBOX")
        client.uid("STORE", "1", "+FLAGS", "(\\Deleted)")
        client.expunge()
        client.logout()
        reader = pop3(lab, "isp-a", 3)
        reader.dele(1)   # b, now the first
        reader.quit()
        assert [p.read_bytes().endswith(b"body of c\r\n.a dotted line\r\n")
                for p in copies.iterdir()] == [True]
    with lab_thread(spool=spool, tls=False) as background:   # started again: c only
        client = imap(background.lab, "isp-a", 3)
        assert client.select("INBOX") == ("OK", [b"1"])
        # UIDs are numbered afresh (c is UID 1 now): UIDVALIDITY is the start's time
        validity = background.lab.sessions.engines.uidvalidity
        assert client.response("UIDVALIDITY")[1] == [str(validity).encode()]
        assert client.fetch("1", "(UID BODY.PEEK[])")[1][0][1].startswith(b"Received: ")
        assert b"body of c" in client.fetch("1", "(BODY.PEEK[])")[1][0][1]
        client.logout()


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs the curl command")
def test_curl_fetches_a_message_by_uid(running: BackgroundLab) -> None:
    lab = running.lab
    body = deliver(lab, "isp-a", 15, "for curl")
    host, port = lab.endpoint("isp-a", "imap")
    url = f"imap://user15:{password('isp-a.example', 15)}@{host}:{port}/INBOX;UID=1"
    done = subprocess.run(["curl", "-s", url], capture_output=True, timeout=20)
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith(body) and done.stdout.startswith(b"Received: ")
    assert waiting(running, "isp-a", 15) == 1   # fetched, not deleted


# --- IDLE: new mail is told ---------------------------------------------------------------


def test_idle_is_told_of_new_mail_at_once(running: BackgroundLab) -> None:
    lab = running.lab
    raw = Raw(lab, "isp-b")
    assert raw.line().startswith(b"* OK [CAPABILITY")
    assert raw.command(b"a1", b"LOGIN user16 " + password("isp-b.example", 16).encode()
                       )[-1].startswith(b"a1 OK")
    assert b"* 0 EXISTS\r\n" in raw.command(b"a2", b"SELECT INBOX")
    raw.send(b"a3 IDLE")
    assert raw.line() == b"+ idling\r\n"
    deliver(lab, "isp-b", 16, "while idling")
    assert raw.line() == b"* 1 EXISTS\r\n"
    raw.send(b"DONE")
    assert raw.line() == b"a3 OK IDLE terminated\r\n"
    deliver(lab, "isp-b", 16, "not idling")    # told before the next command's answer
    assert raw.command(b"a4", b"NOOP") == [b"* 2 EXISTS\r\n", b"a4 OK NOOP completed\r\n"]
    fetched = raw.command(b"a5", b"UID FETCH 2 (BODY.PEEK[])")
    assert fetched[0].startswith(b"* 2 FETCH (UID 2 BODY[] {")
    assert b"body of not idling\r\n" in fetched
    raw.command(b"a6", b"LOGOUT")
    raw.close()


def test_news_waits_for_the_reply_on_its_way(running: BackgroundLab) -> None:
    """Mail that arrives while the answer to a pipelined batch is held back (a failed
    login costs a second) is told after that answer, never inside it."""
    lab = running.lab
    raw = Raw(lab, "isp-c", "127.7.0.41")
    raw.line()
    right = password("isp-c.example", 20).encode()
    raw.send(b"a1 LOGIN user20 wrong\r\na2 LOGIN user20 " + right +
             b"\r\na3 SELECT INBOX\r\na4 IDLE")
    deliver(lab, "isp-c", 20, "during the delay")
    lines = [raw.line()]
    while lines[-1] not in (b"* 1 EXISTS\r\n", b""):
        lines.append(raw.line())
    assert lines[0].startswith(b"a1 NO [AUTHENTICATIONFAILED]")
    assert lines[-3:] == [b"a3 OK [READ-WRITE] SELECT completed\r\n", b"+ idling\r\n",
                          b"* 1 EXISTS\r\n"]
    raw.send(b"DONE")
    assert raw.line().startswith(b"a4 OK")
    raw.close()


def test_mail_for_another_user_is_not_told(running: BackgroundLab) -> None:
    lab = running.lab
    raw = Raw(lab, "isp-b")
    raw.line()
    raw.command(b"a1", b"LOGIN user17 " + password("isp-b.example", 17).encode())
    raw.command(b"a2", b"SELECT INBOX")
    raw.send(b"a3 IDLE")
    raw.line()
    deliver(lab, "isp-b", 18, "someone else's")
    deliver(lab, "isp-b", 17, "mine")
    assert raw.line() == b"* 1 EXISTS\r\n"
    raw.send(b"DONE")
    assert raw.line().startswith(b"a3 OK")
    raw.close()


# --- TLS: STARTTLS on 143, implicit TLS on 993 (RFC 9051 §6.2.1, RFC 8314) ---------------


def test_starttls_on_143_and_imaps_on_993(running: BackgroundLab) -> None:
    lab = running.lab
    assert lab.tls is not None
    context = lab.tls.client_context()
    body = deliver(lab, "isp-c", 19, "over tls")
    host, port = lab.endpoint("isp-c", "imap")
    client = imaplib.IMAP4(host, port, timeout=5)
    assert "STARTTLS" in client.capabilities
    assert client.starttls(ssl_context=context)[0] == "OK"
    assert "STARTTLS" not in client.capabilities
    client.login("user19", password("isp-c.example", 19))
    assert client.select("INBOX", readonly=True) == ("OK", [b"1"])
    client.logout()
    host, port = lab.endpoint("isp-c", "imaps")
    secure = imaplib.IMAP4_SSL(host, port, ssl_context=context, timeout=5)
    assert "STARTTLS" not in secure.capabilities
    secure.login("user19", password("isp-c.example", 19))
    secure.select("INBOX")
    assert secure.fetch("1", "(RFC822)")[1][0][1].endswith(body)
    secure.logout()


def test_imaps_needs_the_lab_s_ca(running: BackgroundLab) -> None:
    host, port = running.lab.endpoint("isp-c", "imaps")
    with pytest.raises(ssl.SSLCertVerificationError):
        imaplib.IMAP4_SSL(host, port, ssl_context=ssl.create_default_context(), timeout=5)


@pytest.mark.parametrize("security", ["starttls", "imaps"])
def test_the_scenario_keeps_imap_logins_inside_tls(security: str) -> None:
    """As for POP3: where the scenario's IMAP needs TLS, LOGIN is refused in plain text on
    143 (LOGINDISABLED), and STARTTLS is there to use first."""
    with lab_thread(tiny(imap_security=security)) as background:
        lab = background.lab
        assert lab.tls is not None
        host, port = lab.endpoint("isp-a", "imap")
        client = imaplib.IMAP4(host, port, timeout=5)
        assert {"STARTTLS", "LOGINDISABLED"} <= set(client.capabilities)
        with pytest.raises(imaplib.IMAP4.error, match="PRIVACYREQUIRED"):
            client.login("user1", password("isp-a.example", 1))
        client.starttls(ssl_context=lab.tls.client_context())
        assert client.login("user1", password("isp-a.example", 1))[0] == "OK"
        client.logout()


def test_a_pop3s_scenario_keeps_110_plain_with_stls() -> None:
    """pop3_security pop3s: the lab's plain 110 is still plain (STLS offered, USER refused
    until it is used), as 143 is under imaps."""
    with lab_thread(tiny(pop3_security="pop3s")) as background:
        lab = background.lab
        assert lab.tls is not None
        reader = poplib.POP3(*lab.endpoint("isp-a", "pop3"), timeout=5)
        assert "STLS" in reader.capa()
        with pytest.raises(poplib.error_proto):
            reader.user("user1")
        reader.stls(context=lab.tls.client_context())
        reader.user("user1")
        assert reader.pass_(password("isp-a.example", 1)).startswith(b"+OK")
        reader.quit()


def test_no_tls_serves_no_993_and_offers_no_starttls() -> None:
    with lab_thread(tls=False) as background:
        lab = background.lab
        assert (0, "imaps") not in lab.bound and (0, "imap") in lab.bound
        client = imaplib.IMAP4(*lab.endpoint("isp-a", "imap"), timeout=5)
        assert "STARTTLS" not in client.capabilities
        client.logout()


# --- the mail-reading pool, timeouts ------------------------------------------------------


def test_imap_and_pop3_share_the_mail_reading_pool() -> None:
    """Two slots a pool, one an address: IMAP takes POP3's slots and not SMTP's."""
    a, b, c = "127.0.0.1", "127.0.0.2", "127.0.0.3"
    with lab_thread(tiny(session_slots=2)) as background:
        lab = background.lab
        first = Raw(lab, "isp-a", a)
        assert first.line().startswith(b"* OK")
        reader = socket.create_connection(lab.endpoint("isp-a", "pop3"), timeout=5,
                                          source_address=(a, 0))
        assert reader.recv(200).startswith(b"-ERR [SYS/TEMP] too many connections from "
                                           b"your address")
        second = Raw(lab, "isp-a", b)
        assert second.line().startswith(b"* OK")
        third = Raw(lab, "isp-a", c)
        assert third.line() == b"* BYE [UNAVAILABLE] Too many sessions, try again later\r\n"
        assert third.line() == b""   # and closed
        with smtplib.SMTP(*lab.endpoint("isp-a", "smtp"), timeout=5) as client:
            assert client.noop()[0] == 250
        first.command(b"a1", b"LOGOUT")
        assert wait_for(lambda: Raw(lab, "isp-a", c).line().startswith(b"* OK"))


def test_imap_idle_timeout_closes_silently() -> None:
    with lab_thread(tiny(), imap_idle_s=0.3) as background:
        raw = Raw(background.lab, "isp-a")
        assert raw.line().startswith(b"* OK")
        assert raw.line() == b""   # RFC 9051 §5.4: the autologout timer


def test_literals_and_literal_plus_across_the_socket(running: BackgroundLab) -> None:
    """RFC 9051 §4.3: a synchronizing literal waits for the server's ``+``; a LITERAL+
    one (RFC 7888) is sent at once. Both carry the password here."""
    raw = Raw(running.lab, "isp-a")
    raw.line()
    secret = password("isp-a.example", 21).encode()
    raw.send(b"a1 LOGIN user21 {%d}" % len(secret))
    assert raw.line() == b"+ Ready for literal data\r\n"
    raw.send(secret)   # the literal's octets, then the CRLF that ends the command
    assert raw.line().startswith(b"a1 OK")
    raw.close()
    raw = Raw(running.lab, "isp-a")
    raw.line()
    raw.sock.sendall(b"a1 LOGIN {6+}\r\nuser21 {%d+}\r\n%s\r\n" % (len(secret), secret))
    assert raw.line().startswith(b"a1 OK")
    raw.command(b"a2", b"LOGOUT")
    raw.close()


def test_stopping_the_lab_closes_imap_sessions_silently() -> None:
    with lab_thread(tiny()) as background:
        raw = Raw(background.lab, "isp-a")
        raw.line()
        raw.command(b"a1", b"LOGIN user1 " + password("isp-a.example", 1).encode())
        raw.command(b"a2", b"SELECT INBOX")
        raw.send(b"a3 IDLE")
        assert raw.line() == b"+ idling\r\n"
    assert raw.line() == b""
    raw.close()


# --- garbage in, well-formed responses out -------------------------------------------------

IMAP_START = re.compile(rb"^(\* |\+ |\+$|[!-~]+ (OK|NO|BAD) )")
LITERAL = re.compile(rb"\{(\d+)\}$")
garbage = st.one_of(
    st.binary(max_size=60).map(lambda b: b.replace(b"\n", b"")),
    st.sampled_from([b"a LOGIN user2 pw-isp-a.example-2", b"a LOGIN x y", b"a SELECT INBOX",
                     b"a EXAMINE inbox", b"a IDLE", b"DONE", b"a NOOP", b"a FETCH 1 BODY[]",
                     b"a UID FETCH 1:* (UID FLAGS RFC822.SIZE)", b"a STORE 1 +FLAGS (\\Seen)",
                     b"a SEARCH UNSEEN", b"a EXPUNGE", b"a CLOSE", b"a STARTTLS",
                     b"a AUTHENTICATE PLAIN", b"*", b"a LOGIN {3}", b"abc", b"a LOGIN {3+}",
                     b"a CAPABILITY", b"a LIST \"\" *", b"a LOGOUT", b"x" * 9000, b""]),
)


def imap_well_formed(data: bytes) -> bool:
    """Every response starts as one (``*``, ``+`` or tagged); literals are skipped whole."""
    i, starts = 0, True
    while i < len(data):
        end = data.find(b"\r\n", i)
        if end < 0:
            return False
        line = data[i:end]
        if starts and not IMAP_START.match(line):
            return False
        i = end + 2
        literal = LITERAL.search(line)
        starts = literal is None
        if literal is not None:
            i += int(literal[1])
    return starts


@pytest.fixture(scope="module")
def garbage_lab() -> Iterator[BackgroundLab]:
    with lab_thread(tiny(), auth_failure_delay_s=0.0) as background:
        deliver(background.lab, "isp-a", 2, "for the garbage")
        yield background


@settings(max_examples=40, deadline=None)
@given(sent=st.lists(garbage, max_size=12), selected=st.booleans())
def test_random_lines_get_well_formed_responses(garbage_lab: BackgroundLab,
                                                sent: list[bytes], selected: bool) -> None:
    """Half the sessions start logged in with a message selected, so FETCH (a literal),
    STORE, IDLE and EXPUNGE meet a mailbox; no line flags it \\Deleted, so it stays."""
    lab = garbage_lab.lab
    if selected:
        sent = [b"s1 LOGIN user2 pw-isp-a.example-2", b"s2 SELECT INBOX", *sent]
    received = send_all(lab.endpoint("isp-a", "imap"), sent)
    assert imap_well_formed(received), received
    probe = Raw(lab, "isp-a")
    assert probe.line().startswith(b"* OK")   # still serving
    probe.close()


def test_a_quota_in_the_lab_reads_the_maildrops_as_clients_leave_them():
    """A full mailbox refuses more mail (552 5.2.2 at RCPT); once a POP3 client deleted what
    it held, it takes mail again."""
    with lab_thread(tiny(mailbox_quota_bytes=200)) as background:
        lab = background.lab
        host, port = lab.endpoint("isp-b", "smtp")
        with smtplib.SMTP(host, port, local_hostname="pc.example", timeout=5) as client:
            body = MESSAGE.replace(b"{0}", b"big") + b"x" * 300 + b"\r\n"
            assert client.sendmail("x@elsewhere.example", ["user3@isp-b.example"], body) == {}
            with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
                client.sendmail("x@elsewhere.example", ["user3@isp-b.example"], body)
        code, text = refused.value.recipients["user3@isp-b.example"]
        assert code == 552 and text.startswith(b"5.2.2")
        host, port = lab.endpoint("isp-b", "pop3")
        mailbox = poplib.POP3(host, port, timeout=5)
        mailbox.user("user3")
        mailbox.pass_(password("isp-b.example", 3))
        mailbox.dele(1)
        mailbox.quit()
        host, port = lab.endpoint("isp-b", "smtp")
        with smtplib.SMTP(host, port, local_hostname="pc.example", timeout=5) as client:
            assert client.sendmail("x@elsewhere.example", ["user3@isp-b.example"], body) == {}
