"""`netsim trace --pcap`: a journey as packets that a capture tool reads back whole."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections import defaultdict

import pytest
from scapy.layers.dns import DNS
from scapy.layers.inet import IP, TCP, UDP
from scapy.utils import rdpcap

from netsim.cli import main
from netsim.mail import Tracer
from netsim.net.capture import Opened, Sent
from netsim.net.pcap import MSS, SYN_RETRIES_S, write_pcap
from netsim.scenario import scenario_yaml
from netsim.world.build import World
from tests.conftest import tiny_scenario

LEGIT = {"sends_per_day": 48.0, "other_isp_share": 1.0, "mistyped_user_share": 0,
         "mistyped_domain_share": 0}


def _journey(first: str, **changes: object) -> Tracer:
    tracer = Tracer(first_kind=first)
    World(tiny_scenario(**changes), tracer=tracer).env.run(until=3600)
    assert tracer.followed
    return tracer


def _flows(packets) -> dict[tuple[str, int, str, int], list]:
    """TCP packets by connection (client address and port, server address and port)."""
    flows = defaultdict(list)
    for p in packets:
        if TCP in p:
            ip, tcp = p[IP], p[TCP]
            client = tcp.sport >= 49152
            key = ((ip.src, tcp.sport, ip.dst, tcp.dport) if client
                   else (ip.dst, tcp.dport, ip.src, tcp.sport))
            flows[key].append(p)
    return flows


def test_each_connection_carries_its_dialogue_with_sound_numbers(tmp_path):
    tracer = _journey("legit", users=LEGIT)
    out = tmp_path / "journey.pcap"
    count = write_pcap(out, tracer.capture.events)
    packets = rdpcap(str(out))
    assert len(packets) == count
    times = [float(p.time) for p in packets]
    assert times == sorted(times)
    # checksums as a receiver computes them
    for p in packets:
        rebuilt = p[IP].__class__(bytes(p[IP]))
        layer = TCP if TCP in p else UDP
        del rebuilt.chksum, rebuilt[layer].chksum
        rebuilt = rebuilt.__class__(bytes(rebuilt))
        assert (rebuilt.chksum, rebuilt[layer].chksum) == (p[IP].chksum, p[layer].chksum)
    # what each side sent, in order, is what the tracer recorded for that connection
    sent: dict[int, dict[bool, bytes]] = defaultdict(lambda: {True: b"", False: b""})
    opened = {e.flow: e for e in tracer.capture.events if isinstance(e, Opened)}
    for e in tracer.capture.events:
        if isinstance(e, Sent):
            sent[e.flow][e.from_client] += e.data
    flows = _flows(packets)
    assert {k[3] for k in flows} >= {25, 110}   # the relay and the retrieval at least
    assert len(flows) == len(opened)
    for flow, (key, segments) in zip(sorted(opened), sorted(flows.items(),
                                                            key=lambda kv: kv[1][0].time),
                                     strict=True):
        assert key[3] == opened[flow].port
        first = {True: 0, False: 0}
        carried = {True: b"", False: b""}
        fin = {True: 0, False: 0}
        for p in segments:
            tcp = p[TCP]
            side = tcp.sport == key[1]
            if "S" in tcp.flags:
                first[side] = tcp.seq + 1
                if "A" in tcp.flags:
                    assert tcp.ack == first[not side]
                continue
            payload = bytes(tcp.payload)
            assert len(payload) <= MSS
            # no gap, no overlap; each segment acknowledges all the other side sent
            assert tcp.seq == first[side] + len(carried[side]) + fin[side]
            assert tcp.ack == first[not side] + len(carried[not side]) + fin[not side]
            carried[side] += payload
            fin[side] += "F" in tcp.flags
        assert carried == sent[flow]
        assert [str(p[TCP].flags) for p in segments][-3:] == ["FA", "FA", "A"]
    client_lines = b"".join(sent[f][True] for f in sorted(sent)).decode().split("\r\n")
    assert "DATA" in client_lines and "QUIT" in client_lines and "RETR 1" in client_lines


def test_dns_lookups_are_queries_and_answers_to_the_isps_resolver(tmp_path):
    tracer = _journey("legit", users=LEGIT)
    out = tmp_path / "journey.pcap"
    write_pcap(out, tracer.capture.events)
    dns = [p for p in rdpcap(str(out)) if DNS in p]
    queries = [p for p in dns if p[DNS].qr == 0]
    answers = {p[DNS].id: p for p in dns if p[DNS].qr == 1}
    assert queries and len(answers) == len(queries)
    first = queries[0]
    # the MX of the recipient's domain (every recipient is at the other ISP)
    domain = first[DNS].qd[0].qname
    assert domain in (b"isp-a.example.", b"isp-b.example.") and first[DNS].qd[0].qtype == 15
    answer = answers[first[DNS].id]
    assert answer[IP].src == first[IP].dst and answer[UDP].dport == first[UDP].sport
    assert answer[DNS].an[0].exchange == b"mail." + domain
    assert answer.time > first.time


@pytest.mark.parametrize("action", ["drop", "reject"])
def test_a_blocked_connection_is_unanswered_syns_or_a_reset(tmp_path, action):
    isps = tiny_scenario().model_dump(mode="json")["isps"]
    isps[0]["bot_fraction"] = 0.1   # the bots of isp-a send direct to isp-b's MX
    isps[0]["policies"] = {"op25b": {"action": action}}
    tracer = _journey("spam", isps=isps, spam={"botnets": [
        {"name": "b", "share": 1.0, "strategies": ["direct"], "recipients_per_session": 4}]})
    out = tmp_path / "blocked.pcap"
    write_pcap(out, tracer.capture.events)
    opened = [e for e in tracer.capture.events if isinstance(e, Opened) and e.port == 25]
    assert opened and opened[0].verdict == {"drop": "dropped", "reject": "rejected"}[action]
    flows = _flows(rdpcap(str(out)))
    first = min((segments for key, segments in flows.items() if key[3] == 25),
                key=lambda segments: segments[0].time)
    flags = [str(p[TCP].flags) for p in first]
    if action == "drop":   # the SYN again after 1, 2, 4 … s, while the connect timeout lasts
        tries = sum(1 for k in range(len(SYN_RETRIES_S) + 1)
                    if sum(SYN_RETRIES_S[:k]) < opened[0].waited)
        assert tries > 1 and flags == ["S"] * tries
        assert len({p[TCP].seq for p in first}) == 1
        assert float(first[-1].time) - float(first[0].time) < opened[0].waited
    else:
        assert flags == ["S", "RA"]
        assert first[1][TCP].ack == first[0][TCP].seq + 1


NEED_TSHARK = pytest.mark.skipif(
    shutil.which("tshark") is None and not os.environ.get("NETSIM_NEED_TSHARK"),
    reason="tshark is not installed (make test installs it)")


def _tshark(capture, *args: str) -> str:
    return subprocess.run(["tshark", "-r", str(capture), *args], capture_output=True,
                          text=True, check=True).stdout


def _capture(tmp_path, capsys, scenario) -> object:
    path = tmp_path / "s.yaml"
    path.write_text(scenario_yaml(scenario))
    out = tmp_path / "journey.pcap"
    assert main(["trace", str(path), "--first", "legit", "--pcap", str(out)]) == 0
    capsys.readouterr()
    return out


@NEED_TSHARK
def test_tshark_dissects_the_journey_with_no_errors(tmp_path, capsys):
    out = _capture(tmp_path, capsys, tiny_scenario(users=LEGIT))
    shown = _tshark(out, "-Y", "smtp || pop || dns")
    for expected in ("Standard query", "MX isp-", "C: EHLO", "C: MAIL FROM:<user",
                     "S: 250", "C: DATA", "C: USER user", "C: RETR 1", "S: +OK"):
        assert expected in shown, expected
    assert _tshark(out, "-Y", "_ws.malformed || _ws.expert.severity >= error") == ""
    assert "Errors" not in _tshark(out, "-q", "-z", "expert")


@NEED_TSHARK
def test_tshark_dissects_an_imap_retrieval(tmp_path, capsys):
    isps = tiny_scenario().model_dump(mode="json")["isps"]
    for isp in isps:
        isp["imap_share"] = 1.0
    out = _capture(tmp_path, capsys, tiny_scenario(isps=isps, users=LEGIT))
    shown = _tshark(out, "-Y", "imap")
    for expected in ("IMAP", "LOGIN", "SELECT INBOX", "UID SEARCH UNSEEN", "UID FETCH",
                     "LOGOUT"):
        assert expected in shown, expected
    assert _tshark(out, "-Y", "_ws.malformed || _ws.expert.severity >= error") == ""
