"""Interoperability: Python's imaplib, and curl if installed, against the IMAP wire server.

As for poplib and smtplib: a real client implementation, real loopback sockets, our engine.
The socket loop lives in the tests' conftest, not in netsim.protocols (which stays sans-I/O).
"""

from __future__ import annotations

import imaplib
import shutil
import subprocess
from typing import Any

import pytest

from netsim.protocols import IMAPServer, IMAPStoredMessage, IMAPWireServer
from tests.protocols.conftest import imap_message

# 8-bit octets, a line that is only ")" and one that ends like a literal: all just data
MESSAGE = (
    b"From: alice@isp-a.example\r\nTo: bob@isp-b.example\r\nSubject: caf\xc3\xa9\r\n\r\n"
    b"Gr\xfc\xdfe, \xff\xfe\r\n)\r\na line ending {5}\r\n.\r\n"
)


def make_store(make_imap_store: Any) -> Any:
    return make_imap_store([IMAPStoredMessage(1, len(MESSAGE), frozenset(), MESSAGE),
                            imap_message(7, b"second")])  # fmt: skip


def test_imaplib_session(make_imap_store: Any, serve: Any) -> None:
    store = make_store(make_imap_store)
    with serve(lambda: IMAPWireServer(IMAPServer("mx", store))) as port:
        client = imaplib.IMAP4("127.0.0.1", port, timeout=10)
        assert "IMAP4REV1" in client.capabilities and "AUTH=PLAIN" in client.capabilities
        assert client.login("alice", "secret")[0] == "OK"
        assert client.list() == ("OK", [b'(\\HasNoChildren) "/" INBOX'])
        assert client.select("INBOX") == ("OK", [b"2"])
        typ, data = client.fetch("1", "(BODY[])")
        assert typ == "OK"
        assert data[0] == (b"1 (FLAGS (\\Seen) BODY[] {%d}" % len(MESSAGE), MESSAGE)  # exact
        typ, data = client.uid("FETCH", "7", "(BODY.PEEK[] RFC822.SIZE)")
        assert data[0][1] == b"Subject: message 7\r\n\r\nsecond\r\n"  # type: ignore[index]
        assert client.uid("SEARCH", "UNSEEN") == ("OK", [b"7"])
        assert client.store("1", "+FLAGS", "\\Deleted") == (
            "OK", [b"1 (FLAGS (\\Deleted \\Seen))"])
        assert client.expunge() == ("OK", [b"1"])
        assert client.search(None, "ALL") == ("OK", [b"1"])
        assert client.logout()[0] == "BYE"
    assert store.uids() == [7] and store.flags() == {7: set()}


def test_imaplib_authenticate_plain(make_imap_store: Any, serve: Any) -> None:
    store = make_store(make_imap_store)
    with serve(lambda: IMAPWireServer(IMAPServer("mx", store))) as port:
        client = imaplib.IMAP4("127.0.0.1", port, timeout=10)
        # imaplib sends no initial response: it answers the server's "+" with base64
        assert client.authenticate("PLAIN", lambda _: b"\0alice\0secret")[0] == "OK"
        assert client.select("INBOX", readonly=True) == ("OK", [b"2"])
        _, data = client.uid("FETCH", "1:*", "(UID RFC822)")
        assert [part[1] for part in data if isinstance(part, tuple)] == [
            MESSAGE, b"Subject: message 7\r\n\r\nsecond\r\n"]
        client.logout()
    assert store.flags() == {1: set(), 7: set()}  # EXAMINE: nothing became \Seen


def test_imaplib_wrong_password(make_imap_store: Any, serve: Any) -> None:
    store = make_store(make_imap_store)
    with serve(lambda: IMAPWireServer(IMAPServer("mx", store))) as port:
        client = imaplib.IMAP4("127.0.0.1", port, timeout=10)
        with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
            client.login("alice", "guess")
        client.logout()


CURL = shutil.which("curl")


@pytest.mark.skipif(CURL is None, reason="curl is not installed")
def test_curl_fetches_by_uid(make_imap_store: Any, serve: Any) -> None:
    store = make_store(make_imap_store)
    assert CURL is not None
    with serve(lambda: IMAPWireServer(IMAPServer("mx", store))) as port:
        url = f"imap://alice:secret@127.0.0.1:{port}"
        fetched = subprocess.run([CURL, "-s", "--max-time", "20", f"{url}/INBOX;UID=1"],
                                 capture_output=True, timeout=30, check=True)  # fmt: skip
        listed = subprocess.run([CURL, "-s", "--max-time", "20", f"{url}/"],
                                capture_output=True, timeout=30, check=True)  # fmt: skip
    assert fetched.stdout == MESSAGE  # byte for byte
    assert listed.stdout == b'* LIST (\\HasNoChildren) "/" INBOX\r\n'
    assert store.flags()[1] == {"\\Seen"}
