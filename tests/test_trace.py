"""`netsim trace`: one message's journey as on the wire."""

from __future__ import annotations

from netsim.cli import main
from netsim.scenario import scenario_yaml
from tests.conftest import tiny_scenario


def _scenario_file(tmp_path, **changes):
    path = tmp_path / "s.yaml"
    path.write_text(scenario_yaml(tiny_scenario(**changes)))
    return str(path)


def test_trace_first_legit_shows_dns_connections_and_both_dialogues(tmp_path, capsys):
    path = _scenario_file(tmp_path, users={"sends_per_day": 48.0, "other_isp_share": 1.0,
                                           "mistyped_user_share": 0,
                                           "mistyped_domain_share": 0})
    assert main(["trace", path, "--first", "legit"]) == 0
    out = capsys.readouterr().out
    for expected in ("message 1 (legit", "MX → 10 mail.isp-", "A → ", ":25 open",
                     "C: EHLO ", "S: 220 ", "C: MAIL FROM:<user", "S: 250", "C: RCPT TO:<",
                     "C: DATA", "S: 354", "This is a test mail", "C: QUIT", "S: 221",
                     ":110 open", "C: USER user", "C: PASS ", "C: RETR 1", "S: +OK",
                     "C: DELE 1", "delivered to maildrop"):
        assert expected in out, expected
    times = [float(line.split()[0]) for line in out.splitlines()]
    assert times == sorted(times)


def test_trace_by_message_id_and_missing_message(tmp_path, capsys):
    path = _scenario_file(tmp_path)
    assert main(["trace", path, "--message", "3"]) == 0
    assert "message 3 (" in capsys.readouterr().out
    assert main(["trace", path, "--message", "999999"]) == 2
    assert "does not occur" in capsys.readouterr().err


def test_trace_follows_the_bounce_of_a_mistyped_recipient(tmp_path, capsys):
    path = _scenario_file(tmp_path, users={"sends_per_day": 48.0, "other_isp_share": 1.0,
                                           "mistyped_user_share": 1.0, "mistyped_domain_share": 0,
                                           "recipients_pmf": [1.0]})
    assert main(["trace", path, "--first", "legit"]) == 0
    out = capsys.readouterr().out
    assert "S: 550 5.1.1" in out and "rejected (user_unknown, 550)" in out
    assert "(bounce," in out and "from <>" in out


def test_trace_svg_and_draw_write_charts(tmp_path, capsys):
    path = _scenario_file(tmp_path)
    chart = tmp_path / "journey.svg"
    assert main(["trace", path, "--first", "legit", "--svg", str(chart)]) == 0
    assert "MAIL FROM" in chart.read_text()
    world = tmp_path / "world.png"
    assert main(["draw", path, "--out", str(world)]) == 0
    assert world.read_bytes()[:4] == b"\x89PNG"
    capsys.readouterr()
    assert main(["draw", path, "--out", str(tmp_path / "world.txt")]) == 2
    assert "a chart is .svg, .png or .pdf" in capsys.readouterr().err
    assert main(["trace", path, "--first", "legit", "--svg", str(tmp_path / "x.gif")]) == 2


def test_trace_of_a_flow_world_follows_the_message_through_the_engines(tmp_path, capsys):
    path = _scenario_file(tmp_path, fidelity="flow",
                          users={"sends_per_day": 48.0, "other_isp_share": 1.0})
    assert main(["trace", path, "--first", "legit"]) == 0
    out = capsys.readouterr().out
    for expected in ("C: RCPT TO:<", "S: 250", "C: RETR 1"):
        assert expected in out, expected
