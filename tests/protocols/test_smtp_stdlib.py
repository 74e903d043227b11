"""Interoperability: Python's smtplib against the SMTP wire server over loopback.

h11 tests itself against the standard library's HTTP client; this is the same check for us:
a real client implementation, real sockets, our engines. The socket loop lives in the
tests' conftest, not in netsim.protocols (which stays sans-I/O).
"""

from __future__ import annotations

import smtplib
from typing import Any

import pytest

from netsim.protocols import SMTPServer, SMTPWireServer

MESSAGE = (
    "From: alice@isp-a.example\r\nTo: bob@isp-b.example\r\nSubject: hi\r\n\r\n"
    ".a line with a leading dot\r\nbye\r\n"
)


def test_smtplib_submission(mail_hooks: Any, serve: Any) -> None:
    def make() -> SMTPWireServer:
        return SMTPWireServer(SMTPServer("mail.isp-b.example", mail_hooks, port=587,
                                         auth_required=True))  # fmt: skip

    with serve(make) as port:
        with smtplib.SMTP("127.0.0.1", port, local_hostname="pc1.isp-a.example") as client:
            client.ehlo()
            assert client.has_extn("size") and "PLAIN" in client.esmtp_features["auth"]
            with pytest.raises(smtplib.SMTPSenderRefused) as refused:
                client.sendmail("alice@isp-a.example", ["bob@isp-b.example"], MESSAGE)
            assert refused.value.smtp_code == 530
            client.login("alice", "secret")
            failures = client.sendmail(
                "alice@isp-a.example", ["bob@isp-b.example", "nobody@isp-b.example"], MESSAGE
            )
        assert failures == {
            "nobody@isp-b.example": (550, b"5.1.1 <nobody@isp-b.example> User unknown")
        }
    (envelope,) = mail_hooks.delivered
    assert envelope.rcpt_to == ("bob@isp-b.example",)
    assert envelope.authenticated_user == "alice"
    assert envelope.payload == MESSAGE.encode()  # unstuffed exactly as smtplib meant it


def test_smtplib_bad_login(mail_hooks: Any, serve: Any) -> None:
    with (
        serve(lambda: SMTPWireServer(SMTPServer("mx", mail_hooks))) as port,
        smtplib.SMTP("127.0.0.1", port, local_hostname="pc1") as client,
        pytest.raises(smtplib.SMTPAuthenticationError) as failed,
    ):
        client.login("alice", "wrong")
    assert failed.value.smtp_code == 535
