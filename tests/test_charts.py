"""Charts: the world map and the sequence chart of a journey.

No image comparison: the SVGs keep their text as text, so each test reads what was drawn
(labels, legend entries, one element per arrow) and checks it against the world or the trace.
"""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from matplotlib.figure import Figure

from netsim.charts import Row, draw_sequence, draw_world, save_figure, sequence_rows
from netsim.mail import TraceLine, Tracer
from netsim.scenario import Scenario, load_scenario
from netsim.world import World, simulate
from tests.conftest import tiny_scenario

SVG = "{http://www.w3.org/2000/svg}"


def svg_texts(path: Path) -> list[str]:
    """Every text element's content; the file must parse as XML."""
    root = ET.parse(path).getroot()
    return ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]


def svg_ids(path: Path, prefix: str) -> list[str]:
    root = ET.parse(path).getroot()
    return [e.get("id", "") for e in root.iter() if e.get("id", "").startswith(prefix)]


def overlapping_texts(fig: Figure) -> list[tuple[str, str]]:
    """Pairs of texts on the figure's axes whose boxes overlap."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    boxes = [(t.get_text(), t.get_window_extent(renderer))
             for ax in fig.axes for t in ax.texts if t.get_text()]
    return [(a, b) for (a, x), (b, y) in itertools.combinations(boxes, 2) if x.overlaps(y)]


# --- the world map --------------------------------------------------------------------------

def test_world_map_of_the_default_world_names_isps_links_and_networks(tmp_path):
    path = tmp_path / "world.svg"
    fig = draw_world(World(load_scenario()), path)
    assert isinstance(fig, Figure)
    texts = svg_texts(path)
    joined = "\n".join(texts)
    for expected in ("isp-a", "isp-b", "isp-c", "mail.isp-a.example", "1500 subs, 2 % bots",
                     "10 ms", "19 ms", "39 ms", "hotel", "hosting", "eavesdropper: 2 % of logins",
                     "3 spammer servers", "1 open relay", "587: submission with SMTP AUTH",
                     "netsim world: default"):
        assert expected in joined, expected
    assert "OP25B" not in joined   # nobody blocks in the default world
    assert overlapping_texts(fig) == []


def test_world_map_marks_op25b_only_where_it_is_in_force(tmp_path):
    path = tmp_path / "op25b.svg"
    draw_world(World(load_scenario(overrides=["policy=op25b+587"])), path)
    texts = svg_texts(path)
    assert "OP25B (port 25 blocked)" in texts
    assert sum(t.startswith("OP25B (drop)") for t in texts) == 3   # one per ISP label
    path = tmp_path / "some.svg"
    scenario = load_scenario(overrides=["policy_presets=[{preset: op25b, isps: [isp-b]}]"])
    draw_world(World(scenario), path)
    texts = svg_texts(path)
    assert texts.count("OP25B (drop)") == 1 and "OP25B (port 25 blocked)" in texts
    assert "587: submission with SMTP AUTH" in texts   # isp-a and isp-c keep 587


def ten_isps() -> Scenario:
    return Scenario.model_validate({
        "name": "ten", "seed": 3,
        "isps": [{"name": f"isp-{i}", "domain": f"isp-{i}.example", "subscribers": 100 * (i + 1),
                  "dynamic_pool": f"10.{i}.0.0/20", "server_network": f"192.168.{i}.0/28",
                  "policies": {"op25b": {} if i % 3 == 0 else None}} for i in range(10)],
        "topology": {"generator": "barabasi_albert"},
        "visited_networks": [{"name": "hotel", "prefix": "172.16.0.0/24", "upstream": "isp-1"}],
        "hosting_networks": [{"name": "hosting", "prefix": "100.64.0.0/24",
                              "upstream": "isp-2"}],
    })


def test_world_map_of_ten_generated_isps_is_readable(tmp_path):
    world = World(ten_isps())
    path = tmp_path / "ten.svg"
    fig = draw_world(world, path)
    texts = svg_texts(path)
    assert all(f"isp-{i}" in texts for i in range(10))
    assert sum(t.endswith(" ms") for t in texts) == world.topology.graph.number_of_edges()
    assert texts.count("OP25B (drop)") == 4   # isp-0, 3, 6 and 9
    assert overlapping_texts(fig) == []


def test_world_map_saves_png_by_suffix_and_refuses_unknown_suffixes(tmp_path):
    fig = draw_world(World(load_scenario()), tmp_path / "world.png")
    assert (tmp_path / "world.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="unknown chart format"):
        save_figure(fig, tmp_path / "world.jpeg")


def test_saving_the_same_map_twice_gives_the_same_svg(tmp_path):
    world = World(load_scenario())
    draw_world(world, tmp_path / "a.svg")
    draw_world(world, tmp_path / "b.svg")
    assert (tmp_path / "a.svg").read_bytes() == (tmp_path / "b.svg").read_bytes()


# --- sequence rows --------------------------------------------------------------------------

def L(at: float, topic: str, text: str, src: str = "", dst: str = "") -> TraceLine:
    return TraceLine(at, topic, text, src, dst)


def test_rows_collapse_replies_and_bodies_and_mark_blocked_connections():
    mua, mx = "10.1.0.5", "mail.isp-a.example"
    lines = [
        L(0.0, "message", "message 1 (legit, 900 bytes) from u@isp-a.example to v@isp-b.example",
          "u@isp-a.example"),
        L(0.0, "connect", "MUA 10.1.0.5 → 192.0.2.1:25 open", mua, mx),
        L(0.1, "smtp", "S: 220 mail.isp-a.example ESMTP", mx, mua),
        L(0.1, "smtp", "C: EHLO h", mua, mx),
        L(0.2, "smtp", "S: 250-mail.isp-a.example", mx, mua),
        L(0.2, "smtp", "S: 250 8BITMIME", mx, mua),
        L(0.2, "smtp", "C: DATA", mua, mx),
        L(0.3, "smtp", "S: 354 go ahead", mua, mx),   # logged client → server: still a reply
        L(0.3, "smtp", "C: Subject: hi", mua, mx),
        L(0.3, "smtp", "C: ", mua, mx),
        L(0.3, "smtp", "C: body", mua, mx),
        L(0.3, "smtp", "C: .", mua, mx),
        L(0.4, "smtp", "S: 250 queued", mx, mua),
        L(5.0, "dns", "bot resolver: isp-b.example MX → 10 mail.isp-b.example", "bot", "DNS"),
        L(5.0, "connect", "10.1.0.9 → 198.51.100.1:25 dropped by op25b (egress:isp-a, drop)",
          "10.1.0.9", "mail.isp-b.example"),
        L(35.0, "outcome", "v@isp-b.example: blocked (op25b)", "u@isp-a.example"),
    ]
    rows = sequence_rows(lines)
    assert [(r.role, r.src, r.dst, r.label, r.lines) for r in rows] == [
        ("note", mua, "", lines[0].text, 1),
        ("connect", mua, mx, "TCP 192.0.2.1:25 open", 1),
        ("reply", mx, mua, "220 mail.isp-a.example ESMTP", 1),
        ("command", mua, mx, "EHLO h", 1),
        ("reply", mx, mua, "250-mail.isp-a.example (+1 lines)", 2),
        ("command", mua, mx, "DATA", 1),
        ("reply", mx, mua, "354 go ahead", 1),
        ("data", mua, mx, "message (3 lines)", 4),
        ("reply", mx, mua, "250 queued", 1),
        ("dns", "DNS", "10.1.0.9", "isp-b.example MX → 10 mail.isp-b.example", 1),
        ("connect", "10.1.0.9", "mail.isp-b.example",
         "TCP 198.51.100.1:25 dropped at egress:isp-a", 1),
        ("note", mua, "", "v@isp-b.example: blocked (op25b)", 1),
    ]
    assert [r for r in rows if r.blocked] == [
        Row(5.0, "connect", "10.1.0.9", "mail.isp-b.example",
            "TCP 198.51.100.1:25 dropped at egress:isp-a", blocked=True, rule="op25b",
            topic="connect")]
    assert sum(r.lines for r in rows) == len(lines)   # every trace line is in some row


def test_rows_shorten_long_labels_and_long_recipient_lists():
    to = ", ".join(f"user{i}@isp-b.example" for i in range(32))
    rows = sequence_rows([
        L(0, "message", f"message 2 (spam, 929 bytes) from x@isp-b.example to {to}", "x"),
        L(0, "connect", "10.2.0.1 → 192.0.2.1:25 open", "10.2.0.1", "mail.isp-a.example"),
        L(0, "smtp", "C: MAIL FROM:<" + "a" * 80 + "@isp-b.example>", "10.2.0.1",
          "mail.isp-a.example")])
    assert rows[0].label.endswith("to user0@isp-b.example and 31 more")
    assert rows[0].src == "10.2.0.1"    # the sender's note stands at the host that connects
    assert len(rows[2].label) <= 46 and rows[2].label.endswith("…")


# --- sequence charts of real traces ---------------------------------------------------------

def trace(scenario: Scenario, kind: str) -> list[TraceLine]:
    tracer = Tracer(first_kind=kind)
    simulate(scenario, tracer=tracer)
    assert tracer.followed
    return tracer.ordered()


@pytest.fixture(scope="module")
def legit_trace() -> list[TraceLine]:
    return trace(tiny_scenario(users={"sends_per_day": 48.0, "other_isp_share": 1.0,
                                      "mistyped_user_share": 0, "mistyped_domain_share": 0}),
                 "legit")


def test_rows_of_a_real_journey(legit_trace):
    rows = sequence_rows(legit_trace)
    assert sum(r.lines for r in rows) == len(legit_trace)
    servers = {r.dst for r in rows if r.role == "command"}
    assert servers and all(s.startswith("mail.isp-") for s in servers)
    replies = [r for r in rows if r.role == "reply"]
    assert replies and all(r.src in servers for r in replies)   # replies come from servers
    for prev, row in itertools.pairwise(rows):   # ... back to whoever sent the command
        if row.role == "reply" and prev.role == "command":
            assert (row.src, row.dst) == (prev.dst, prev.src)
    data = [r for r in rows if r.role == "data"]
    assert len(data) == 2   # submission and relay each send the body once
    assert all(r.label == f"message ({r.lines - 1} lines)" for r in data)
    sent = [line for line in legit_trace if line.topic == "smtp" and line.text.startswith("C: ")]
    commands = [r for r in rows if r.role == "command" and r.topic == "smtp"]
    assert len(sent) == len(commands) + sum(r.lines for r in data)   # bodies collapsed
    retr = [r for r in rows if r.carries_message]
    assert retr and all("+ message (" in r.label for r in retr)   # the RETRs


def test_sequence_chart_of_a_real_journey(tmp_path, legit_trace):
    path = tmp_path / "journey.svg"
    fig = draw_sequence(legit_trace, path)
    assert isinstance(fig, Figure)
    rows = sequence_rows(legit_trace)
    texts = "\n".join(svg_texts(path))
    for expected in ("MAIL FROM", "354", "RETR", "mail.isp-a.example", "mail.isp-b.example",
                     "DNS", "message (", "later", "time [s]"):
        assert expected in texts, expected
    assert len(svg_ids(path, "arrow-")) == sum(r.is_arrow for r in rows)
    assert len(svg_ids(path, "note-")) == sum(not r.is_arrow for r in rows)
    draw_sequence(legit_trace, tmp_path / "journey.png")
    assert (tmp_path / "journey.png").stat().st_size > 10_000


def test_sequence_chart_stops_at_max_rows_and_says_how_much_is_left(tmp_path, legit_trace):
    rows = sequence_rows(legit_trace)
    path = tmp_path / "short.svg"
    draw_sequence(legit_trace, path, max_rows=10)
    left = sum(r.lines for r in rows[10:])
    assert f"({left} more lines)" in svg_texts(path)
    assert len(svg_ids(path, "arrow-")) + len(svg_ids(path, "note-")) == 10


def test_sequence_chart_of_spam_stopped_by_op25b(tmp_path):
    # bots at a small isp-a: nearly all their spam is for isp-b, so OP25B drops the first
    isps = [{"name": "isp-a", "domain": "isp-a.example", "subscribers": 10, "bot_fraction": 0.5,
             "dynamic_pool": "10.1.0.0/24", "server_network": "192.0.2.0/28"},
            {"name": "isp-b", "domain": "isp-b.example", "subscribers": 600,
             "dynamic_pool": "10.2.0.0/22", "server_network": "198.51.100.0/28"}]
    scenario = tiny_scenario(isps=isps, policy="op25b", spam={"botnets": [
        {"name": "direct", "share": 1.0, "strategies": ["direct"]}]})
    lines = trace(scenario, "spam")
    rows = sequence_rows(lines)
    blocked = [r for r in rows if r.blocked]
    assert len(blocked) == 1 and blocked[0].rule == "op25b" and blocked[0].role == "connect"
    assert not any(r.role in ("command", "reply") for r in rows)   # no dialogue after the drop
    path = tmp_path / "blocked.svg"
    draw_sequence(lines, path)
    texts = svg_texts(path)
    assert "op25b" in texts   # the rule's name beside the ✕
    assert any("dropped at egress:isp-" in t for t in texts)
    assert any(t.endswith("blocked (op25b)") for t in texts)


def test_a_bounce_stands_at_the_server_whose_delivery_failed():
    lines = trace(tiny_scenario(users={"sends_per_day": 48.0, "other_isp_share": 1.0,
                                       "mistyped_user_share": 1.0, "mistyped_domain_share": 0,
                                       "recipients_pmf": [1.0]}), "legit")
    notes = [r for r in sequence_rows(lines) if r.role == "note"]
    failed = next(r for r in notes if "rejected (user_unknown, 550)" in r.text)
    bounce = next(r for r in notes if "(bounce," in r.text)
    assert failed.src.startswith("mail.isp-") and bounce.src == failed.src
    assert notes[0].src[0].isdigit()   # the message itself starts at the sender's MUA host
