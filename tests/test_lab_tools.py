"""The lab's address mapping, ports, and commands: serve, send, fetch."""

from __future__ import annotations

import errno
import ipaddress
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netsim.cli import main
from netsim.lab import AddressMap, BackgroundLab, LabSettings, PortMap
from netsim.lab.addresses import parse_ipv4, text
from netsim.lab.layout import SERVICES, lab_world
from netsim.lab.server import _bind_error
from netsim.lab.table import banner
from netsim.net import AddressPlan, NetKind, Subnet
from netsim.scenario import load_scenario

OP25B = ["--set", "policy=op25b+587"]
DEFAULT_PLAN = lab_world(load_scenario()).plan


def lab_of(address: str, plan: AddressPlan = DEFAULT_PLAN) -> str:
    return text(AddressMap(plan).lab_address(parse_ipv4(address)))


# -- the address mapping ---------------------------------------------------------------
def test_default_world_addresses() -> None:
    assert lab_of("10.1.0.5") == "127.1.0.5"        # isp-a.dynamic, network 0
    assert lab_of("192.0.2.1") == "127.2.0.1"       # isp-a's server
    assert lab_of("10.2.0.5") == "127.3.0.5"        # isp-b.dynamic: no clash with 10.1
    assert lab_of("10.1.255.254") == "127.1.255.254"
    assert lab_of("172.16.0.5") == "127.7.0.5"      # the hotel


@given(network=st.integers(0, len(DEFAULT_PLAN.subnets) - 1), offset=st.integers(0, 65535))
def test_the_mapping_is_reversible(network: int, offset: int) -> None:
    subnet = DEFAULT_PLAN.subnets[network]
    address = subnet.first + offset % subnet.prefix.num_addresses
    mapping = AddressMap(DEFAULT_PLAN)
    lab = mapping.lab_address(address)
    assert lab >> 24 == 127 and (lab >> 16) & 0xFF == network + 1
    assert mapping.scenario_address(lab) == address


@pytest.mark.parametrize("peer", ["127.0.0.1", "127.0.3.4", "127.9.0.1", "127.2.0.200",
                                  "10.1.0.5", "::1", "not an address"])
def test_strangers(peer: str) -> None:
    assert AddressMap(DEFAULT_PLAN).client_address(peer) is None


def test_big_networks_map_their_first_65536_addresses() -> None:
    big = Subnet(0, "big", NetKind.DYNAMIC, ipaddress.IPv4Network("10.0.0.0/12"), 0, 0.01, 1e6)
    mapping = AddressMap(AddressPlan([big]))
    assert text(mapping.lab_address(big.first + 65535)) == "127.1.255.255"
    assert mapping.lab_prefix(big) == "127.1.0.0/16"
    with pytest.raises(ValueError, match="no lab address"):
        mapping.lab_address(big.first + 65536)
    with pytest.raises(ValueError, match="no network"):
        mapping.lab_address(parse_ipv4("192.168.0.1"))


def test_port_maps_never_collide() -> None:
    for ports in (PortMap("offset", 10000), PortMap("standard")):
        lab_ports = {ports.lab_port(p) for _, p in SERVICES}
        exposed = [ports.exposed_port(p, k) for _, p in SERVICES for k in range(50)]
        assert len(set(exposed)) == len(exposed) and not lab_ports & set(exposed)
    assert PortMap("offset", 10000).lab_port(25) == 10025
    assert [PortMap("offset", 10000).lab_port(p) for p in (143, 993)] == [10143, 10993]
    assert PortMap("ephemeral").lab_port(25) == 0


def test_bind_errors_say_what_to_do() -> None:
    assert "--ports offset" in _bind_error("127.2.0.1", 25, OSError(errno.EACCES, "denied"))
    assert "--offset" in _bind_error("127.2.0.1", 10025, OSError(errno.EADDRINUSE, "in use"))
    assert "ifconfig lo0 alias" in _bind_error("127.2.0.1", 1, OSError(errno.EADDRNOTAVAIL, ""))


# -- send and fetch against a running lab ----------------------------------------------
@pytest.fixture(scope="module")
def offset() -> Iterator[int]:
    """A lab on fixed ports (as the commands compute them), at a random offset."""
    base = random.Random(os.getpid()).randrange(20000, 38000, 100)
    settings = LabSettings(ports=PortMap("offset", base), drop_hold_s=0.3)
    with BackgroundLab(load_scenario(None, ["policy=op25b+587"]), settings):
        yield base


def run(*args: str) -> int:
    return main(list(args))


def test_send_then_fetch(offset: int, capsys: pytest.CaptureFixture[str]) -> None:
    common = ["--offset", str(offset), *OP25B]
    status = run("send", *common, "--server", "isp-a", "--port", "587", "--from-address",
                 "10.1.0.5", "--user", "user5", "--password", "pw-isp-a.example-5",
                 "--mail-from", "user5@isp-a.example", "--to", "user5@isp-b.example")
    out = capsys.readouterr().out
    assert status == 0, out
    assert f"connect 127.1.0.5 → 127.2.0.1:{offset + 587}" in out
    assert "C: EHLO h10-1-0-5.isp-a.dynamic.example" in out and "S: 235 2.7.0" in out
    assert "C: This is a test mail" in out and "accepted for user5@isp-b.example" in out
    for _ in range(100):   # the relay delivers in the background
        status = run("fetch", *common, "--server", "isp-b", "--user", "user5", "--password",
                     "pw-isp-b.example-5", "--keep")
        out = capsys.readouterr().out
        if "1 message(s) retrieved" in out:
            break
        time.sleep(0.05)
    assert status == 0 and "C: RETR 1" in out and "S: This is a test mail" in out, out
    assert run("fetch", *common, "--server", "isp-b", "--user", "user5@isp-b.example",
               "--password", "pw-isp-b.example-5", "--apop") == 0
    out = capsys.readouterr().out
    assert "C: APOP user5@isp-b.example" in out and "deleted at QUIT" in out


def test_send_on_25_from_the_pool_is_filtered(offset: int,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    status = run("send", "--offset", str(offset), *OP25B, "--server", "isp-b",
                 "--from-address", "127.1.0.6", "--timeout", "2", "--mail-from",
                 "user6@isp-a.example", "--to", "user6@isp-b.example")
    out = capsys.readouterr().out
    assert status == 1 and "filtered (OP25B" in out and "S:" not in out


def test_fetch_with_a_wrong_password(offset: int, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("fetch", "--offset", str(offset), *OP25B, "--server", "isp-a", "--user",
               "user1", "--password", "nope") == 1
    assert "failed: -ERR [AUTH]" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["--server", "nope"], "no such ISP"),
    (["--server", "isp-a", "--from-address", "8.8.8.8"], "no network"),
    (["--server", "isp-a", "--user", "user1"], "go together"),
    (["--server", "isp-a", "--to", "not an address"], "not an address"),
])
def test_send_user_errors(args: list[str], message: str,
                          capsys: pytest.CaptureFixture[str]) -> None:
    base = ["send", "--mail-from", "a@isp-a.example", "--to", "b@isp-b.example"]
    assert run(*base, *args) == 2
    assert message in capsys.readouterr().err


def test_no_submission_port_is_a_user_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("send", "--set", "policy=op25b", "--server", "isp-a", "--port", "587",
               "--mail-from", "a@isp-a.example", "--to", "b@isp-b.example") == 2
    assert "offers no service on port 587" in capsys.readouterr().err


def test_serve_reports_a_port_in_use(offset: int, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("serve", "--offset", str(offset), "--quiet") == 2
    assert "in use" in capsys.readouterr().err


# -- serve as a process ----------------------------------------------------------------
def test_serve_prints_its_table_and_stops_on_sigint(tmp_path: Path) -> None:
    base = random.Random(os.getpid() + 1).randrange(40000, 50000, 100)
    capture = tmp_path / "lab.pcap"
    process = subprocess.Popen(
        [sys.executable, "-m", "netsim.cli", "serve", "--offset", str(base), *OP25B,
         "--quiet", "--pcap", str(capture)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    try:
        assert process.stdout is not None
        lines = []
        for _ in range(40):   # the table ends with one line of accounts a server
            lines.append(process.stdout.readline())
            if lines[-1].startswith("  user0@isp-c.example"):
                break
        table = "".join(lines)
        assert "mail.isp-a.example  127.2.0.1" in table and "OP25B (drop), 587+AUTH" in table
        with socket.create_connection(("127.2.0.1", base + 25), timeout=5) as sock:
            assert sock.recv(100).startswith(b"220 mail.isp-a.example")
        with socket.create_connection(("127.2.0.1", base + 143), timeout=5) as sock:
            assert sock.recv(100).startswith(b"* OK [CAPABILITY IMAP4rev2")
        started = time.monotonic()
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=10)
        assert process.returncode == 0, err
        assert "lab stopped" in out and time.monotonic() - started < 5
        # two connections: each a handshake (3), a greeting (1) and a close (3)
        assert f"capture: 14 packet(s) in {capture}" in out
        assert capture.stat().st_size > 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_bind_all_listens_on_every_interface() -> None:
    settings = LabSettings(ports=PortMap("ephemeral"), bind_all=True)
    background = BackgroundLab(load_scenario(), settings)
    with background as lab:
        host, port = lab.exposed[(1, "smtp")]
        assert host == "0.0.0.0"
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            assert sock.recv(100).startswith(b"220 mail.isp-b.example")
        assert "ALSO ON EVERY INTERFACE" in banner(lab)


def test_banner_lists_servers_networks_and_accounts() -> None:
    background = BackgroundLab(load_scenario(None, ["policy=op25b+587"]),
                               LabSettings(ports=PortMap("ephemeral")))
    with background as lab:
        table = banner(lab)
    assert "mail.isp-b.example  127.4.0.1" in table
    assert "isp-a.dynamic    dynamic  10.1.0.0/16        → 127.1.0.0/16" in table
    assert "user0@isp-a.example / pw-isp-a.example-0" in table
    assert "POP3   995    IMAP   993" in table and "IMAP LOGIN" in table
    assert "127.0.0.1 and anything else is outside every network" in table
