"""`netsim serve --pcap FILE`: the lab's sessions as packets, with the world's addresses.

A lab records while smtplib and imaplib talk to it over sockets that keep every octet they
sent and received; the file it writes when it stops must carry exactly those octets, on the
world's addresses and well-known ports, and tshark must dissect it without a complaint.
"""

from __future__ import annotations

import imaplib
import os
import shutil
import smtplib
import socket
import subprocess
from collections import defaultdict
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

import pytest
from scapy.layers.inet import IP, TCP
from scapy.utils import rdpcap

from netsim.errors import UserError
from netsim.lab import BackgroundLab, Lab, LabSettings, PortMap
from netsim.scenario import load_scenario

HOME = "127.1.0.5"          # isp-a's dynamic pool: 10.1.0.5
HOME_WORLD = "10.1.0.5"
ISP_A = "192.0.2.1"         # isp-a's server in the world
ISP_B = "198.51.100.1"
MESSAGE = b"From: <user5@isp-a.example>\r\nSubject: captured\r\n\r\nhello capture\r\n"

NEED_TSHARK = pytest.mark.skipif(
    shutil.which("tshark") is None and not os.environ.get("NETSIM_NEED_TSHARK"),
    reason="tshark is not installed (make test installs it)")


class Tap(socket.socket):
    """A client socket that keeps what it sent and what it received."""

    def __init__(self, source: str, host: str, port: int) -> None:
        super().__init__(socket.AF_INET, socket.SOCK_STREAM)
        self.sent = bytearray()
        self.got = bytearray()
        self.settimeout(5)
        self.bind((source, 0))
        self.connect((host, port))

    def sendall(self, data: Any, flags: int = 0) -> None:
        self.sent += data
        super().sendall(data, flags)

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        count = super().recv_into(buffer, nbytes, flags)
        self.got += bytes(buffer[:count])
        return count


class TappedSMTP(smtplib.SMTP):
    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        self.tap = Tap(HOME, host, port)
        return self.tap


class TappedIMAP4(imaplib.IMAP4):
    def _create_socket(self, timeout: float | None) -> socket.socket:
        self.tap = Tap(HOME, self.host, self.port)
        return self.tap


def flows(path: Path) -> dict[tuple[str, int, str, int], list[Any]]:
    """TCP packets by connection: (client address, port, server address, port)."""
    found: dict[tuple[str, int, str, int], list[Any]] = defaultdict(list)
    for p in rdpcap(str(path)):
        if TCP in p:
            ip, tcp = p[IP], p[TCP]
            key = ((ip.src, tcp.sport, ip.dst, tcp.dport) if tcp.sport >= 49152
                   else (ip.dst, tcp.dport, ip.src, tcp.sport))
            found[key].append(p)
    return found


def carried(packets: list[Any], key: tuple[str, int, str, int]) -> tuple[bytes, bytes]:
    """What the client and the server sent on one connection."""
    client, server = b"", b""
    for p in packets:
        payload = bytes(p[TCP].payload)
        if p[TCP].sport == key[1]:
            client += payload
        else:
            server += payload
    return client, server


def by_port(found: dict[tuple[str, int, str, int], list[Any]], port: int,
            ) -> list[tuple[tuple[str, int, str, int], list[Any]]]:
    return sorted(((k, v) for k, v in found.items() if k[3] == port),
                  key=lambda kv: float(kv[1][0].time))


@pytest.fixture(scope="module")
def captured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A lab with --pcap, an SMTP send, an IMAP fetch, STARTTLS and IMAPS, a dropped
    connection; stopped, so its file is written."""
    out = tmp_path_factory.mktemp("pcap") / "lab.pcap"
    settings = LabSettings(ports=PortMap("ephemeral"), drop_hold_s=0.3, pcap=out)
    background = BackgroundLab(load_scenario(None, ["policy=op25b+587"]), settings)
    seen: dict[str, Any] = {"path": out}
    with background as lab:
        assert lab.tls is not None
        host, port = lab.endpoint("isp-a", "smtp")
        with TappedSMTP(host, port, local_hostname="pc.example", timeout=5) as sender:
            sender.sendmail("user5@isp-a.example", ["user6@isp-a.example"], MESSAGE)
        seen["smtp"] = sender.tap
        reader = TappedIMAP4(*lab.endpoint("isp-a", "imap"), timeout=5)
        reader.login("user6", "pw-isp-a.example-6")
        reader.select("INBOX")
        seen["fetched"] = reader.fetch("1", "(RFC822)")[1][0][1]
        reader.logout()
        seen["imap"] = reader.tap
        context = lab.tls.client_context()
        upgraded = imaplib.IMAP4(*lab.endpoint("isp-a", "imap"), timeout=5)
        upgraded.starttls(ssl_context=context)
        upgraded.login("user6", "pw-isp-a.example-6")
        upgraded.logout()
        secure = imaplib.IMAP4_SSL(*lab.endpoint("isp-a", "imaps"), ssl_context=context,
                                   timeout=5)
        secure.logout()
        # OP25B drops port 25 from isp-a's pool to isp-b's server: held, then reset
        with socket.create_connection(lab.endpoint("isp-b", "smtp"), timeout=5,
                                      source_address=(HOME, 0)) as dropped, \
                suppress(ConnectionResetError):
            assert dropped.recv(100) == b""
    seen["packets"] = background.lab.packets
    yield seen


def test_each_direction_carries_what_the_clients_sent_and_received(
        captured: dict[str, Any]) -> None:
    found = flows(captured["path"])
    assert sum(len(v) for v in found.values()) == captured["packets"]
    ((key, packets),) = by_port(found, 25)[:1]
    assert key[0] == HOME_WORLD and key[2] == ISP_A   # the world's addresses and ports
    smtp = captured["smtp"]
    assert carried(packets, key) == (bytes(smtp.sent), bytes(smtp.got))
    assert MESSAGE.replace(b"\r\n", b"") in bytes(smtp.sent).replace(b"\r\n", b"")
    key, packets = by_port(found, 143)[0]
    assert key[0] == HOME_WORLD and key[2] == ISP_A
    imap = captured["imap"]
    assert carried(packets, key) == (bytes(imap.sent), bytes(imap.got))
    assert captured["fetched"] in bytes(imap.got)
    assert [str(p[TCP].flags) for p in packets][:3] == ["S", "SA", "A"]
    assert [str(p[TCP].flags) for p in packets][-3:] == ["FA", "FA", "A"]


def test_tls_is_not_recorded(captured: dict[str, Any]) -> None:
    """STARTTLS: the plain dialogue up to the go-ahead, then only the close; 993: the
    handshake and the close."""
    found = flows(captured["path"])
    key, packets = by_port(found, 143)[1]
    client, server = carried(packets, key)
    assert client.endswith(b" STARTTLS\r\n")
    assert server.endswith(b" OK Begin TLS negotiation now\r\n")
    ((key, packets),) = by_port(found, 993)
    assert key[2] == ISP_A and carried(packets, key) == (b"", b"")


def test_a_dropped_connection_is_unanswered_syns(captured: dict[str, Any]) -> None:
    found = flows(captured["path"])
    dropped = [(k, v) for k, v in found.items() if k[2] == ISP_B and k[3] == 25]
    ((key, packets),) = dropped
    assert key[0] == HOME_WORLD
    assert {str(p[TCP].flags) for p in packets} == {"S"}


def _tshark(path: Path, *args: str) -> str:
    return subprocess.run(["tshark", "-r", str(path), *args], capture_output=True,
                          text=True, check=True).stdout


@NEED_TSHARK
def test_tshark_dissects_smtp_and_imap_with_no_errors(captured: dict[str, Any]) -> None:
    path = captured["path"]
    shown = _tshark(path, "-Y", "smtp || imap")
    for expected in ("C: ehlo pc.example", "C: mail FROM:<user5@isp-a.example>", "C: data",
                     "S: 250 2.0.0 Ok: queued", "C: QUIT", "LOGIN user6", "SELECT INBOX",
                     "FETCH 1 (RFC822)", "LOGOUT", "STARTTLS", f"{HOME_WORLD} → {ISP_A}"):
        assert expected in shown, expected
    assert _tshark(path, "-Y", "_ws.malformed || _ws.expert.severity >= error") == ""
    assert "Errors" not in _tshark(path, "-q", "-z", "expert")


def test_the_file_is_written_whole_at_stop(tmp_path: Path) -> None:
    """Nothing until the lab stops, then the file at once (no temporary one left)."""
    out = tmp_path / "empty.pcap"
    settings = LabSettings(ports=PortMap("ephemeral"), tls=False, pcap=out)
    background = BackgroundLab(load_scenario(), settings)
    with background as lab:
        with smtplib.SMTP(*lab.endpoint("isp-b", "smtp"), timeout=5) as client:
            client.noop()
        assert not out.exists()
    assert lab.packets > 0 and len(rdpcap(str(out))) == lab.packets
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.pcap"]


def test_a_missing_folder_is_a_user_error(tmp_path: Path) -> None:
    settings = LabSettings(ports=PortMap("ephemeral"), pcap=tmp_path / "no" / "x.pcap")
    with pytest.raises(UserError, match="no such folder"):
        Lab(load_scenario(), settings)
