"""The live lab against the standard library's clients: smtplib and poplib on real sockets.

One lab serves the default world with OP25B and the submission port (``policy=op25b+587``)
for the whole module, on ports the system picks; each test uses accounts of its own, so the
tests do not see each other's mail. Source addresses stand the client in a network:
127.0.0.1 is a stranger, 127.1.0.x is isp-a's dynamic pool, 127.7.0.x the hotel behind
isp-b (see netsim/lab/addresses.py).
"""

from __future__ import annotations

import base64
import logging
import poplib
import shutil
import smtplib
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest

from netsim.lab import BackgroundLab, Lab, LabSettings, PortMap, RelaySettings
from netsim.scenario import load_scenario
from tests.conftest import wait_for

HELO = "pc.example"
STRANGER = "127.0.0.1"
ISP_A_POOL = "127.1.0.{}"   # isp-a.dynamic, 10.1.0.x
HOTEL = "127.7.0.{}"        # the hotel network behind isp-b, 172.16.0.x
MESSAGE = b"From: <{0}>\r\nSubject: test\r\n\r\nThis is a test mail\r\n.a line with a dot\r\n"


def password(domain: str, user: int) -> str:
    return f"pw-{domain}-{user}"


@pytest.fixture(scope="module")
def running() -> Iterator[BackgroundLab]:
    settings = LabSettings(ports=PortMap("ephemeral"), drop_hold_s=0.3,
                           relay=RelaySettings(retry_min_s=0.2, retry_max_s=0.5))
    background = BackgroundLab(load_scenario(None, ["policy=op25b+587"]), settings)
    with background:
        yield background


@pytest.fixture
def lab(running: BackgroundLab) -> Lab:
    return running.lab


def smtp(lab: Lab, isp: str, service: str, source: str = STRANGER) -> smtplib.SMTP:
    host, port = lab.endpoint(isp, service)
    return smtplib.SMTP(host, port, local_hostname=HELO, source_address=(source, 0),
                        timeout=5)


class SourcedPOP3(poplib.POP3):
    """poplib's client from a chosen source address (poplib has no ``source_address``)."""

    def __init__(self, host: str, port: int, source: str) -> None:
        self.source = source
        super().__init__(host, port, timeout=5)

    def _create_socket(self, timeout: float) -> socket.socket:
        return socket.create_connection((self.host, self.port), timeout,
                                        source_address=(self.source, 0))


def pop3(lab: Lab, isp: str, source: str = STRANGER) -> poplib.POP3:
    host, port = lab.endpoint(isp, "pop3")
    return SourcedPOP3(host, port, source)


def mailbox(running: BackgroundLab, isp: str, user: int) -> list[bytes]:
    return running.call(lambda: running.lab.mailbox(isp, user))


def test_ehlo_offers_size_auth_and_8bitmime(lab: Lab) -> None:
    with smtp(lab, "isp-a", "smtp") as client:
        code, _ = client.ehlo()
        assert code == 250
        assert client.has_extn("size") and client.has_extn("8bitmime")
        assert client.esmtp_features["auth"].split() == ["PLAIN", "LOGIN"]
        assert client.noop()[0] == 250


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_auth_on_submission(running: BackgroundLab, mechanism: str) -> None:
    user = 10 if mechanism == "PLAIN" else 11
    with smtp(running.lab, "isp-a", "submission") as client:
        client.ehlo()
        client.user, client.password = f"user{user}", password("isp-a.example", user)
        auth = client.auth_plain if mechanism == "PLAIN" else client.auth_login
        assert client.auth(mechanism, auth)[0] == 235
        sender = f"user{user}@isp-a.example"
        assert client.sendmail(sender, [f"user{user + 100}@isp-a.example"],
                               MESSAGE.replace(b"{0}", sender.encode())) == {}
    (message,) = mailbox(running, "isp-a", user + 100)
    assert b"with ESMTPA" in message and b"\r\n.a line with a dot\r\n" in message


def test_submission_requires_auth(lab: Lab) -> None:
    with smtp(lab, "isp-a", "submission") as client:
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            client.sendmail("user1@isp-a.example", ["user2@isp-a.example"], b"x\r\n")
        assert refused.value.smtp_code == 530
        with pytest.raises(smtplib.SMTPAuthenticationError) as failed:
            client.login("user1", "wrong")
        assert failed.value.smtp_code == 535


def test_relay_denied_to_a_stranger(running: BackgroundLab) -> None:
    with smtp(running.lab, "isp-a", "smtp") as client:
        refused = client.sendmail("someone@elsewhere.example",
                                  ["user1@isp-b.example", "user20@isp-a.example"], b"hi\r\n")
        assert refused == {"user1@isp-b.example": (554, b"5.7.1 Relay access denied")}
        with pytest.raises(smtplib.SMTPRecipientsRefused) as unknown:
            client.sendmail("someone@elsewhere.example", ["user99999@isp-a.example"], b"x\r\n")
        assert unknown.value.recipients["user99999@isp-a.example"][0] == 550
    assert len(mailbox(running, "isp-a", 20)) == 1


def test_op25b_refuses_port_25_from_the_pool(running: BackgroundLab) -> None:
    lab = running.lab
    # isp-a's subscriber straight to isp-b's server on 25: OP25B drops it, no greeting comes
    with pytest.raises((smtplib.SMTPServerDisconnected, OSError)):
        smtp(lab, "isp-b", "smtp", ISP_A_POOL.format(5))
    # through its own server's submission port, with AUTH, the mail gets there
    with smtp(lab, "isp-a", "submission", ISP_A_POOL.format(5)) as client:
        client.login("user5@isp-a.example", password("isp-a.example", 5))
        assert client.sendmail("user5@isp-a.example", ["user5@isp-b.example"],
                               b"Subject: via 587\r\n\r\nhi\r\n") == {}
    assert wait_for(lambda: len(mailbox(running, "isp-b", 5)) == 1)


def test_submission_from_the_hotel_then_pop3(running: BackgroundLab) -> None:
    lab = running.lab
    # the hotel is behind isp-b, whose OP25B blocks port 25 to isp-a's server ...
    with pytest.raises((smtplib.SMTPServerDisconnected, OSError)):
        smtp(lab, "isp-a", "smtp", HOTEL.format(9))
    # ... but 587 with AUTH reaches it, and isp-a relays to isp-c over real SMTP
    with smtp(lab, "isp-a", "submission", HOTEL.format(9)) as client:
        client.login("user30", password("isp-a.example", 30))
        client.sendmail("user30@isp-a.example", ["user31@isp-c.example"],
                        MESSAGE.replace(b"{0}", b"user30@isp-a.example"))
    assert wait_for(lambda: len(mailbox(running, "isp-c", 31)) == 1)
    reader = pop3(lab, "isp-c", "127.5.0.31")   # at home in isp-c's pool
    reader.user("user31")
    reader.pass_(password("isp-c.example", 31))
    count, size = reader.stat()
    assert count == 1
    _, listing, _ = reader.list()
    assert listing == [f"1 {size}".encode()]
    _, lines, _ = reader.retr(1)
    assert b"This is a test mail" in lines and b".a line with a dot" in lines
    assert lines[0].startswith(b"Received: from mail.isp-a.example (127.2.0.1 [192.0.2.1])")
    assert reader.dele(1).startswith(b"+OK")
    assert reader.quit().startswith(b"+OK")
    assert mailbox(running, "isp-c", 31) == []


def test_own_pool_relays_on_25_without_auth(running: BackgroundLab) -> None:
    # OP25B spares the ISP's own server, which relays for its own networks
    with smtp(running.lab, "isp-a", "smtp", ISP_A_POOL.format(40)) as client:
        assert client.sendmail("user40@isp-a.example", ["user40@isp-b.example"],
                               b"Subject: hi\r\n\r\nhello\r\n") == {}
    assert wait_for(lambda: len(mailbox(running, "isp-b", 40)) == 1)


def test_apop_and_top(running: BackgroundLab) -> None:
    with smtp(running.lab, "isp-b", "smtp") as client:
        client.sendmail("x@elsewhere.example", ["user50@isp-b.example"],
                        b"Subject: one\r\n\r\nline 1\r\nline 2\r\n")
    reader = pop3(running.lab, "isp-b")
    assert reader.apop("user50", password("isp-b.example", 50)).startswith(b"+OK")
    _, lines, _ = reader.top(1, 1)
    assert lines[-2:] == [b"", b"line 1"]
    reader.quit()   # nothing deleted
    assert len(mailbox(running, "isp-b", 50)) == 1


def test_maildrop_lock_is_exclusive(lab: Lab) -> None:
    first = pop3(lab, "isp-b")
    first.user("user60")
    first.pass_(password("isp-b.example", 60))
    second = pop3(lab, "isp-b")
    second.user("user60")
    with pytest.raises(poplib.error_proto, match="IN-USE"):
        second.pass_(password("isp-b.example", 60))
    first.quit()
    second.user("user60")
    assert second.pass_(password("isp-b.example", 60)).startswith(b"+OK")
    second.quit()


def test_rset_forgets_the_transaction(running: BackgroundLab) -> None:
    with smtp(running.lab, "isp-b", "smtp") as client:
        client.ehlo()
        assert client.mail("x@elsewhere.example")[0] == 250
        assert client.rcpt("user70@isp-b.example")[0] == 250
        assert client.rset()[0] == 250
        assert client.mail("y@elsewhere.example")[0] == 250   # not a nested MAIL
        assert client.rcpt("user71@isp-b.example")[0] == 250
        assert client.data(b"Subject: after RSET\r\n\r\nbody\r\n")[0] == 250
    assert mailbox(running, "isp-b", 70) == []
    assert len(mailbox(running, "isp-b", 71)) == 1


def test_many_concurrent_clients(running: BackgroundLab) -> None:
    errors: list[BaseException] = []

    def one(n: int) -> None:
        try:
            with smtp(running.lab, "isp-b", "smtp", f"127.8.0.{n + 1}") as client:
                client.sendmail("bulk@hosting.example", [f"user{200 + n}@isp-b.example"],
                                f"Subject: {n}\r\n\r\nmessage {n}\r\n".encode())
        except BaseException as exc:   # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(n,)) for n in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert errors == []
    counts = running.call(lambda: [len(running.lab.mailbox("isp-b", 200 + n))
                                   for n in range(30)])
    assert counts == [1] * 30


def test_pop3_refuses_a_wrong_password(lab: Lab) -> None:
    reader = pop3(lab, "isp-a")
    reader.user("user1")
    with pytest.raises(poplib.error_proto, match="AUTH"):
        reader.pass_("wrong")
    reader.quit()


def test_ehlo_with_an_address_literal(lab: Lab) -> None:
    """smtplib greets with [127.0.0.1] on a host without a dotted name (RFC 5321 §4.1.3)."""
    host, port = lab.endpoint("isp-a", "smtp")
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.recv(1000)
        sock.sendall(b"EHLO [127.0.0.1]\r\n")
        assert sock.recv(1000).startswith(b"250")


def test_a_message_comes_back_byte_for_byte(running: BackgroundLab) -> None:
    """8-bit clean: octets that are not UTF-8 come back as they went, and LIST's octet count
    is what RETR sends."""
    body = b"Subject: caf\xe9\r\n\r\n\xe9t\xe9 \xff\xfe\r\nplain UTF-8: \xc3\xa9\r\n"
    with smtp(running.lab, "isp-b", "smtp") as client:
        client.sendmail("x@elsewhere.example", ["user60@isp-b.example"], body)
    assert wait_for(lambda: len(mailbox(running, "isp-b", 60)) == 1)
    reader = pop3(running.lab, "isp-b", "127.3.0.60")
    reader.user("user60")
    reader.pass_(password("isp-b.example", 60))
    _, listing, _ = reader.list()
    _, lines, octets = reader.retr(1)
    message = b"".join(line + b"\r\n" for line in lines)
    assert message.endswith(body) and octets == len(message)
    assert listing == [f"1 {len(message)}".encode()]
    reader.dele(1)
    reader.quit()


@pytest.mark.parametrize("fake_end", [b"\n.\n", b"\n.\r\n", b"\r\n.\n"],
                         ids=["LF.LF", "LF.CRLF", "CRLF.LF"])
def test_smtp_smuggling_queues_nothing(running: BackgroundLab, fake_end: bytes) -> None:
    """A bare-LF end of data neither ends DATA nor starts commands (the 2023 smuggling
    class): the message is refused whole and the forged one after it is never queued."""
    host, port = running.lab.endpoint("isp-b", "smtp")
    with socket.create_connection((host, port), timeout=5) as sock:
        stream = sock.makefile("rwb")

        def say(data: bytes) -> bytes:
            stream.write(data)
            stream.flush()
            reply = stream.readline()
            while reply[3:4] == b"-":
                reply = stream.readline()
            return reply

        assert stream.readline().startswith(b"220")
        assert say(b"EHLO pc.example\r\n").startswith(b"250")
        assert say(b"MAIL FROM:<x@elsewhere.example>\r\n").startswith(b"250")
        assert say(b"RCPT TO:<user61@isp-b.example>\r\n").startswith(b"250")
        assert say(b"DATA\r\n").startswith(b"354")
        smuggled = (b"Subject: hi\r\n\r\nhello" + fake_end + b"MAIL FROM:<ceo@bank.example>\r\n"
                    b"RCPT TO:<user62@isp-b.example>\r\nDATA\r\nforged\r\n.\r\n")
        assert say(smuggled).startswith(b"550 5.5.2")
        assert say(b"QUIT\r\n").startswith(b"221")
    assert mailbox(running, "isp-b", 61) == [] and mailbox(running, "isp-b", 62) == []


def test_postmaster_and_quoted_local_parts(running: BackgroundLab) -> None:
    """RFC 5321 §4.5.1: postmaster exists at every domain (with or without one); a quoted
    local part is looked up, the same mailbox as unquoted when it is a plain dot-string."""
    with smtp(running.lab, "isp-b", "smtp") as client:
        client.ehlo()
        client.mail("x@elsewhere.example")
        for path in ("<postmaster@isp-b.example>", "<PostMaster@ISP-B.example>",
                     "<postmaster>", '<"user63"@isp-b.example>'):
            assert client.docmd("RCPT TO:" + path)[0] == 250, path
        code, text = client.docmd('RCPT TO:<"john smith"@isp-b.example>')
        assert code == 550 and b"5.1.1" in text     # looked up, not a syntax error
        assert client.data(b"Subject: to the postmaster\r\n\r\nhello\r\n")[0] == 250
    server = running.lab.world.servers[1]
    assert wait_for(lambda: len(mailbox(running, "isp-b", server.users)) == 1)   # one copy
    assert wait_for(lambda: len(mailbox(running, "isp-b", 63)) == 1)


def test_a_connection_reset_is_one_warning_line(running: BackgroundLab,
                                                caplog: pytest.LogCaptureFixture) -> None:
    host, port = running.lab.endpoint("isp-b", "smtp")
    with caplog.at_level(logging.INFO, logger="netsim.lab"):
        for _ in range(3):
            sock = socket.create_connection((host, port), timeout=5)
            sock.recv(1024)                                  # the greeting
            sock.sendall(b"EHLO pc.example\r\n")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()                                     # RST: the client resets
        assert wait_for(lambda: sum("session ended" in r.getMessage() or "connection lost"
                                    in r.getMessage() for r in caplog.records) >= 3)
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    lost = [r for r in caplog.records if "connection lost" in r.getMessage()]
    assert all(r.levelno == logging.WARNING and "\n" not in r.getMessage() for r in lost)


def test_an_authenticated_client_sends_only_as_itself(running: BackgroundLab) -> None:
    """Postfix reject_sender_login_mismatch: after AUTH as user70, MAIL FROM must be
    user70's address (or <>)."""
    with smtp(running.lab, "isp-a", "submission") as client:
        client.ehlo()
        client.login("user70", password("isp-a.example", 70))
        for forged in ("user71@isp-a.example", "ceo@bank.example", "user70@isp-b.example"):
            code, text = client.docmd(f"MAIL FROM:<{forged}>")
            assert code == 553 and text.startswith(b"5.7.1"), forged
        assert client.docmd("MAIL FROM:<user70@isp-a.example>")[0] == 250
        client.rset()
        assert client.docmd("MAIL FROM:<>")[0] == 250


def test_password_guessing_is_slowed_then_refused_per_address(running: BackgroundLab) -> None:
    """Each failed login costs a second; after five from one address (fail2ban's maxretry)
    even the right password gets 454 there, while the account stays open from elsewhere."""
    guesser, owner = HOTEL.format(21), HOTEL.format(22)

    def plain(secret: str) -> str:
        return "AUTH PLAIN " + base64.b64encode(f"\0user80\0{secret}".encode()).decode()

    right = password("isp-a.example", 80)
    with smtp(running.lab, "isp-a", "submission", guesser) as client:
        client.ehlo()
        start = time.monotonic()
        assert [client.docmd(plain(f"guess-{i}"))[0] for i in range(5)] == [535] * 5
        assert time.monotonic() - start >= 5 * 0.9 * LabSettings().auth_failure_delay_s
        code, text = client.docmd(plain(right))
        assert code == 454 and text.startswith(b"4.7.0")
    with smtp(running.lab, "isp-a", "submission", guesser) as client:   # a new session too
        client.ehlo()
        assert client.docmd(plain(right))[0] == 454
    with smtp(running.lab, "isp-a", "submission", owner) as client:
        client.ehlo()
        assert client.docmd(plain(right))[0] == 235


def test_failed_logins_count_against_the_error_budget() -> None:
    from netsim.protocols import SMTPServer
    from netsim.protocols.smtp_commands import Auth, Ehlo

    engine = SMTPServer("mx", None, port=587, max_errors=3)   # DefaultHooks: every login fails
    engine.greeting()
    engine.handle(Ehlo("pc"))
    codes = [engine.handle(Auth("PLAIN", "AHVzZXIAcHc=")).code for _ in range(4)]
    assert codes == [535, 535, 535, 421] and engine.closed and engine.failed_logins == 4


# --- TLS: STARTTLS, STLS, and implicit TLS on 465 and 995 (RFC 3207, 2595, 8314) ---------


def test_starttls_on_submission_then_implicit_tls_on_465(running: BackgroundLab) -> None:
    lab = running.lab
    assert lab.tls is not None
    context = lab.tls.client_context()   # verifies the certificate and the host name
    with smtp(lab, "isp-a", "submission", HOTEL.format(30)) as client:
        client.ehlo()
        assert client.has_extn("starttls")
        assert client.starttls(context=context)[0] == 220
        client.ehlo()
        assert not client.has_extn("starttls")
        client.login("user90", password("isp-a.example", 90))
        client.sendmail("user90@isp-a.example", ["user91@isp-a.example"], b"Subject: tls\r\n")
    host, port = lab.endpoint("isp-a", "submissions")
    with smtplib.SMTP_SSL(host, port, local_hostname=HELO, context=context,
                          source_address=(HOTEL.format(31), 0), timeout=5) as client:
        client.login("user92", password("isp-a.example", 92))
        client.sendmail("user92@isp-a.example", ["user91@isp-a.example"], b"Subject: 465\r\n")
    assert wait_for(lambda: len(mailbox(running, "isp-a", 91)) == 2)


def test_stls_on_110_and_implicit_tls_on_995(running: BackgroundLab) -> None:
    lab = running.lab
    assert lab.tls is not None
    context = lab.tls.client_context()
    with smtp(lab, "isp-b", "smtp") as client:
        client.sendmail("x@elsewhere.example", ["user93@isp-b.example"], b"Subject: s\r\n")
    reader = pop3(lab, "isp-b", "127.3.0.93")
    assert reader.stls(context=context).startswith(b"+OK")
    reader.user("user93")
    reader.pass_(password("isp-b.example", 93))
    assert reader.stat()[0] == 1
    reader.quit()
    host, port = lab.endpoint("isp-b", "pop3s")
    secure = poplib.POP3_SSL(host, port, context=context, timeout=5)
    secure.user("user93")
    secure.pass_(password("isp-b.example", 93))
    assert secure.stat()[0] == 1
    secure.quit()


def test_submission_security_tls_keeps_auth_inside_tls() -> None:
    scenario = load_scenario(None, ["policy=op25b+587",
                                    "isps.isp-a.mail_server.submission_security=tls"])
    background = BackgroundLab(scenario, LabSettings(ports=PortMap("ephemeral")))
    with background:
        lab = background.lab
        assert lab.tls is not None
        with smtp(lab, "isp-a", "submission") as client:
            client.ehlo()
            assert not client.has_extn("auth")   # not offered in plain text
            code, text = client.docmd("AUTH PLAIN " + base64.b64encode(
                b"\0user5\0" + password("isp-a.example", 5).encode()).decode())
            assert code == 538 and text.startswith(b"5.7.11")
            client.starttls(context=lab.tls.client_context())
            client.ehlo()
            assert client.login("user5", password("isp-a.example", 5))[0] == 235


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_openssl_verifies_the_lab_certificate(running: BackgroundLab) -> None:
    """As docs/lab.md shows: openssl s_client -starttls smtp with the lab's CA."""
    lab = running.lab
    assert lab.tls is not None
    host, port = lab.endpoint("isp-a", "smtp")
    done = subprocess.run(
        ["openssl", "s_client", "-starttls", "smtp", "-connect", f"{host}:{port}",
         "-CAfile", str(lab.tls.ca_path), "-verify_return_error", "-verify_ip", host,
         "-brief"], input=b"QUIT\r\n", capture_output=True, timeout=20)
    output = (done.stdout + done.stderr).decode(errors="replace")
    assert done.returncode == 0, output
    assert "Verification: OK" in output


def test_pop3_password_guessing_is_slowed_and_refused_per_address(
        running: BackgroundLab) -> None:
    """POP3 logins share SMTP AUTH's record of failures per address."""
    guesser, owner = HOTEL.format(23), HOTEL.format(24)
    right = password("isp-c.example", 95)
    reader = pop3(running.lab, "isp-c", guesser)
    start = time.monotonic()
    for guess in range(5):
        reader.user("user95")
        with pytest.raises(poplib.error_proto, match="AUTH"):
            reader.pass_(f"guess-{guess}")
    assert time.monotonic() - start >= 5 * 0.9 * LabSettings().auth_failure_delay_s
    reader.user("user95")
    with pytest.raises(poplib.error_proto, match="AUTH"):
        reader.pass_(right)                        # refused there, the right password too
    reader.quit()
    other = pop3(running.lab, "isp-c", owner)
    other.user("user95")
    assert other.pass_(right).startswith(b"+OK")   # the account is open elsewhere
    other.quit()


def _relay_burst(caplog: pytest.LogCaptureFixture, overrides: list[str], sender: int,
                 first: int) -> list[str]:
    """Twenty messages from isp-a's pool to twenty isp-b users, relayed by isp-a's server
    with two messages in flight to isp-b at most; returns the lab's log lines."""
    scenario = load_scenario(None, ["policy=op25b+587", *overrides])
    settings = LabSettings(ports=PortMap("ephemeral"), tls=False,
                           relay=RelaySettings(retry_min_s=0.2, retry_max_s=0.5,
                                               destination_concurrency=2))
    background = BackgroundLab(scenario, settings)
    with background, caplog.at_level(logging.INFO, logger="netsim.lab"):
        with smtp(background.lab, "isp-a", "smtp", ISP_A_POOL.format(sender)) as client:
            for n in range(20):
                client.sendmail(f"user{sender}@isp-a.example",
                                [f"user{first + n}@isp-b.example"],
                                f"Subject: burst {n}\r\n\r\nhi\r\n".encode())
        assert wait_for(lambda: all(len(mailbox(background, "isp-b", first + n)) == 1
                                    for n in range(20)))
    return [r.getMessage() for r in caplog.records]


def test_the_relay_keeps_within_a_destination_s_concurrency(caplog: pytest.LogCaptureFixture,
                                                            ) -> None:
    """A burst for one domain opens at most destination_concurrency connections to its
    exchanger: the receiving server (4 slots, 2 per address) never answers 421."""
    lines = _relay_burst(caplog, ["isps.*.mail_server.session_slots=4"], 41, 300)
    assert [line for line in lines if "refused" in line] == []


def test_the_relay_reuses_a_connection_for_the_next_message(
        caplog: pytest.LogCaptureFixture) -> None:
    """Twenty messages to one exchanger take far fewer than twenty connections: a
    connection whose message went through carries the next (the connection cache)."""
    lines = _relay_burst(caplog, [], 42, 400)
    opened = [line for line in lines if line.startswith("mail.isp-b.example:25 ← 127.2.0.1")
              and "session opened" in line]
    assert 1 <= len(opened) <= 4, opened
