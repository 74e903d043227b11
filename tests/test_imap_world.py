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


def test_a_quota_bounces_mail_for_a_full_imap_mailbox_with_552():
    """Mail stays in an IMAP user's mailbox until the quota refuses more (552 5.2.2 at
    RCPT, bounced to the sender); a POP3 user's mailbox empties at each check."""
    data = _world((0.0, 1.0), users={"sends_per_day": 96.0}).model_dump(mode="json")
    for isp in data["isps"]:
        isp["mail_server"]["mailbox_quota_bytes"] = 100_000
    result = simulate(Scenario.model_validate(data))
    frame = result.recipients_frame()
    full = frame[frame["stopped_by"] == "mailbox_full"]
    by_domain = full["rcpt_domain"].value_counts()
    # IMAP mailboxes fill; a POP3 one only while a large message waits for the next check
    assert by_domain["isp-b.example"] > 10 * by_domain.get("isp-a.example", 0) > 0
    assert (full["reply_code"] == 552).all() and (full["outcome"] == "rejected").all()
    # mail that isp-a's server relayed is bounced to its senders; isp-b's own users were
    # refused as they submitted
    relayed = full[(full["origin_isp"] == "isp-a") & (full["rcpt_domain"] == "isp-b.example")]
    bounces = frame[(frame["kind"] == "bounce") & (frame["rcpt_domain"] == "isp-a.example")]
    assert len(bounces) >= relayed["message_id"].nunique() > 100
    # a full mailbox takes nothing more, so it holds about the quota
    held = result.summary["mailboxes"]["imap"]["bytes"] / 30
    assert 100_000 <= held < 100_000 + 3 * 100_000


def test_a_mailbox_holds_what_was_delivered_until_its_pop3_client_checks():
    from netsim.mail.mailbox import MailboxUsage

    def drained(users, at):   # user 0 retrieves by POP3 every 600 s; user 1 by IMAP
        return np.where(users == 0, (at // 600 + 1) * 600, np.inf)

    usage = MailboxUsage(drained)
    usage.add(np.array([0, 1]), np.array([100.0, 100.0]), np.array([5_000, 7_000]))
    assert usage.held(0, 99.0) == 0 and usage.held(0, 100.0) == 5_000
    assert usage.held(0, 599.0) == 5_000 and usage.held(0, 600.0) == 0
    assert usage.held(1, 10_000.0) == 7_000
    assert usage.late == 0
    usage.add(np.array([1]), np.array([50.0]), np.array([1]))   # before an instant asked
    assert usage.late == 1
