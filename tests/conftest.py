"""Shared fixtures: small scenarios built in code, so each test says what its world is."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from netsim.scenario import Scenario


def tiny_scenario(**changes: Any) -> Scenario:
    """Two ISPs, a few subscribers each, one hour; ``changes`` override top-level fields."""
    data: dict[str, Any] = {
        "name": "tiny",
        "seed": 7,
        "duration_s": 3600,
        "isps": [
            {"name": "isp-a", "domain": "isp-a.example", "subscribers": 40,
             "dynamic_pool": "10.1.0.0/24", "server_network": "192.0.2.0/28"},
            {"name": "isp-b", "domain": "isp-b.example", "subscribers": 30,
             "dynamic_pool": "10.2.0.0/24", "server_network": "198.51.100.0/28"},
        ],
        "links": [{"a": "isp-a", "b": "isp-b", "latency_s": 0.010}],
        "users": {"sends_per_day": 48.0},
    }
    data.update(changes)
    return Scenario.model_validate(data)


def in_creation_order(table: pa.Table) -> pa.Table:
    """A recipient table as words (each row group of a streamed file carries its own
    dictionaries), in creation order: message by message, recipient by recipient."""
    columns = [pc.cast(c, pa.string()) if pa.types.is_dictionary(c.type) else c
               for c in table.columns]
    return pa.table(columns, names=table.column_names).sort_by(
        [("message_id", "ascending"), ("rcpt_index", "ascending")]).combine_chunks()


@pytest.fixture
def tiny() -> Scenario:
    return tiny_scenario()


def send_all(address: tuple[str, int], lines: list[bytes]) -> bytes:
    """Send ``lines`` to a server at once, close the sending side, and read every byte it
    answers until it closes (for garbage-in tests of the live lab)."""
    sock = socket.create_connection(address, timeout=5)
    sock.sendall(b"".join(line + b"\r\n" for line in lines))
    sock.shutdown(socket.SHUT_WR)
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    sock.close()
    return received


def wait_for(check: Callable[[], bool], seconds: float = 5.0) -> bool:
    """Poll until ``check()`` is true, for at most ``seconds`` (for tests on real sockets)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()
