"""`netsim trace`: one message's journey as on the wire."""

from __future__ import annotations

import pytest

from netsim.cli import main
from netsim.mail import Tracer
from netsim.scenario import Scenario, scenario_yaml
from netsim.world import simulate
from netsim.world.build import World
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


def _busy_world(fidelity: str, **changes) -> Scenario:
    """The tiny world with bots at isp-a and mistyped recipients, for an hour: legitimate
    mail, spam to several maildrops at once, and bounces."""
    isps = tiny_scenario().model_dump(mode="json")["isps"]
    isps[0]["bot_fraction"] = 0.1
    return tiny_scenario(
        fidelity=fidelity, isps=isps,
        spam={"botnets": [{"name": "b", "share": 1.0, "strategies": ["direct"],
                           "recipients_per_session": 4}]},
        users={"sends_per_day": 48.0, "mistyped_user_share": 0.2}, **changes)


def _full_length(scenario: Scenario, tracer: Tracer) -> Tracer:
    """``tracer`` after the world ran to its end: the trace with no early stop."""
    world = World(scenario, tracer=tracer)
    world.env.run(until=scenario.duration_s)
    return tracer


@pytest.mark.parametrize("fidelity", ["command", "session"])
@pytest.mark.parametrize(("changes", "target"), [
    ({}, {"first_kind": "legit"}),
    ({}, {"first_kind": "spam"}),           # four recipients, two maildrops
    ({}, {"first_kind": "bounce"}),
    ({}, {"message_id": 39}),               # created eight minutes into the run
    ({"policy": "op25b"}, {"first_kind": "spam"}),   # blocked: no maildrop, no POP3
], ids=["legit", "spam", "bounce", "message-39", "spam-blocked"])
def test_a_trace_stops_once_the_journey_is_over_and_shows_what_a_full_run_shows(
        fidelity, changes, target):
    scenario = _busy_world(fidelity, **changes)
    tracer = Tracer(**target)
    result = simulate(scenario, tracer=tracer)
    assert tracer.render() == _full_length(scenario, Tracer(**target)).render()
    lines = tracer.ordered()
    clock = result.summary["sim"]["sim_seconds"]
    assert lines[-1].at <= clock + 1e-9 and clock < scenario.duration_s / 4
    # the journey's last step: the POP3 session of a delivery, else the final outcome
    if any("delivered to maildrop" in line.text for line in lines):
        assert lines[-1].text.startswith("S: +OK POP3 server signing off")
    else:
        assert lines[-1].topic == "outcome" and "blocked (op25b)" in lines[-1].text


def test_a_trace_whose_delivered_mail_is_not_collected_in_time_runs_to_the_end():
    # a POP3 check every 30 days: a user's first one falls in the run's hour with odds 1:720
    scenario = tiny_scenario(users={"sends_per_day": 48.0, "other_isp_share": 1.0,
                                    "mistyped_user_share": 0, "mistyped_domain_share": 0,
                                    "pop3_check_interval_s": 30 * 86_400})
    tracer = Tracer(first_kind="legit")
    result = simulate(scenario, tracer=tracer)
    assert result.summary["sim"]["sim_seconds"] == scenario.duration_s
    assert "delivered to maildrop" in tracer.render() and "C: RETR" not in tracer.render()


def test_every_pending_recipient_is_held_at_the_end_of_every_instant():
    # what lets a trace stop at the end of any instant and still check conservation
    world = World(_busy_world("command"))
    env, ledger = world.env, world.ledger
    instants = in_flight = 0
    while env.peek() < 1800:
        env.step()
        if env.peek() > env.now:
            ledger.check_conservation(world.held_rows())
            instants += 1
            in_flight += bool(ledger.pending_rows())
    assert instants > 1000 and in_flight > 1000   # checked often with recipients in flight
