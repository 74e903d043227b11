"""Interoperability: Python's poplib against the POP3 wire server over loopback.

h11 tests itself against the standard library's HTTP client; this is the same check for us:
a real client implementation, real sockets, our engines. The socket loop lives in the
tests' conftest, not in netsim.protocols (which stays sans-I/O).
"""

from __future__ import annotations

import poplib
from typing import Any

import pytest

from netsim.protocols import POP3Server, POP3WireServer, StoredMessage

MESSAGE = (
    b"From: alice@isp-a.example\r\nTo: bob@isp-b.example\r\nSubject: hi\r\n\r\n"
    b".a line with a leading dot\r\nbye\r\n"
)


@pytest.mark.parametrize("apop", [False, True])
def test_poplib_fetch_and_delete(make_maildrop: Any, serve: Any, apop: bool) -> None:
    body = MESSAGE
    hooks = make_maildrop([StoredMessage("m1", len(body), body), StoredMessage("m2", 3, b"x\r\n")])

    def make() -> POP3WireServer:
        return POP3WireServer(POP3Server("mx", hooks, timestamp="<42.1@mx>"))

    with serve(make) as port:
        client = poplib.POP3("127.0.0.1", port, timeout=10)
        if apop:
            client.apop("alice", "secret")
        else:
            client.user("alice")
            client.pass_("secret")
        assert client.stat() == (2, len(body) + 3)
        _, listing, _ = client.uidl()
        assert listing == [b"1 m1", b"2 m2"]
        _, lines, _ = client.retr(1)
        assert b"\r\n".join(lines) + b"\r\n" == body  # poplib unstuffs ".a line..."
        assert b"TOP" in {key.encode() for key in client.capa()}
        client.dele(1)
        client.quit()
    assert hooks.commits == [("alice", ["m1"])]
