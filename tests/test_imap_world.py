"""Users who retrieve by IMAP: mail stays on the server, logins can be overheard, and every
fidelity times the retrievals alike."""

from __future__ import annotations

import numpy as np
import pytest

from netsim.cli import main
from netsim.scenario import Scenario, scenario_yaml
from netsim.verify.equivalence import compare
from netsim.world import World, simulate
from tests.conftest import tiny_scenario


def _world(imap_share: tuple[float, float], security: str = "plaintext",
           **changes: object) -> Scenario:
    isps = tiny_scenario().model_dump(mode="json")["isps"]
    for isp, share in zip(isps, imap_share, strict=True):
        isp["imap_share"] = share
        isp["mail_server"] = {"imap_security": security}
    users = {"sends_per_day": 48.0, **changes.pop("users", {})}   # type: ignore[dict-item]
    return tiny_scenario(isps=isps, users=users, duration_s=3 * 3600, **changes)


def test_imap_users_leave_their_mail_on_the_server_pop3_users_take_it():
    built: list[World] = []
    result = simulate(_world((0.0, 1.0)), setup=built.append)
    world = built[0]
    frame = result.recipients_frame()
    delivered = frame[frame["outcome"] == "delivered"]
    held = result.summary["mailboxes"]
    for domain, server in (("isp-a.example", world.servers[0]),
                           ("isp-b.example", world.servers[1])):
        mine = delivered[delivered["rcpt_domain"] == domain]
        assert mine["retrieved_s"].notna().mean() > 0.9   # both kinds of client retrieve
        stored = sum(server.maildrops.count(u) for u in server.maildrops.users())
        if domain == "isp-b.example":   # IMAP: everything delivered is still there, seen
            assert stored == len(mine) == held["imap"]["messages"]
            waiting = sum(server.maildrops.waiting(u) for u in server.maildrops.users())
            assert waiting == mine["retrieved_s"].isna().sum()
        else:                            # POP3: only what arrived since the last check
            assert stored == mine["retrieved_s"].isna().sum() == held["pop3"]["messages"]
    assert held["imap"]["bytes"] > 10 * held["pop3"]["bytes"] > 0


@pytest.mark.parametrize("security", ["plaintext", "starttls", "imaps"])
def test_imap_retrievals_are_timed_alike_at_every_fidelity(security):
    scenario = _world((0.5, 0.5), security)
    for pair in (("session", "flow"), ("command", "session")):
        result = compare(scenario, pair)
        assert result.unmatched == 0 and not len(result.differing())
        a, b = (result.column("retrieved_s", i) for i in (0, 1))
        assert a.notna().sum() > 300 and (a.isna() == b.isna()).all()
        assert np.allclose(a.dropna(), b.dropna(), rtol=0, atol=1e-6)
        assert result.summaries[0]["mailboxes"] == result.summaries[1]["mailboxes"]


@pytest.mark.parametrize(("security", "overheard"), [("plaintext", True), ("imaps", False)])
def test_an_eavesdropper_overhears_imap_logins_in_plain_text_only(security, overheard):
    scenario = _world((1.0, 1.0), security, users={"roaming_share": 0.3}, visited_networks=[
        {"name": "hotel", "prefix": "172.16.0.0/24", "upstream": "isp-a",
         "eavesdrop_probability": 1.0}])
    credentials = simulate(scenario).summary["credentials"]
    assert credentials["captured_pop3"] == 0   # nobody retrieves by POP3 here
    assert (credentials["captured_imap"] > 10) is overheard
    assert overheard or credentials["captured_imap"] == 0


def test_the_trace_shows_an_imap_retrieval_line_by_line(tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_text(scenario_yaml(_world((1.0, 1.0), users={
        "other_isp_share": 1.0, "mistyped_user_share": 0, "mistyped_domain_share": 0})))
    assert main(["trace", str(path), "--first", "legit"]) == 0
    out = capsys.readouterr().out
    for expected in (":143 open", "S: * OK [CAPABILITY IMAP4rev2", "C: A1 LOGIN user",
                     "C: A2 SELECT INBOX", "C: A3 UID SEARCH UNSEEN",
                     "C: A4 UID FETCH", "BODY[] {", "This is a test mail", "C: A5 LOGOUT"):
        assert expected in out, expected
    assert "C: USER" not in out
