"""The faster path gives the same outcomes as the per-command path on the same seeded world.

Fidelity ``session`` runs each dialogue through the same engines in one step; only what other
processes could observe mid-session may differ: mail delivered during a POP3 session is
collected at the next one.
"""

from __future__ import annotations

import numpy as np

from netsim.scenario import Scenario
from netsim.verify.fingerprint import FINGERPRINT_SCENARIO
from netsim.world import simulate


def test_session_fidelity_gives_the_same_outcomes_with_fewer_events():
    runs = {f: simulate(Scenario.model_validate({**FINGERPRINT_SCENARIO, "fidelity": f,
                                                 "duration_s": 6 * 3600}))
            for f in ("command", "session")}
    a, b = (runs[f].recipients_frame() for f in ("command", "session"))
    assert len(a) == len(b) > 1000
    for column in ("message_id", "kind", "sender", "path", "rcpt_domain", "outcome",
                   "stopped_by", "reply_code", "left_origin"):
        assert (a[column].astype(str) == b[column].astype(str)).all(), column
    for column in ("created_s", "delivered_s", "finished_s"):
        assert np.allclose(a[column].fillna(-1), b[column].fillna(-1), rtol=0, atol=1e-9)
    same = np.isclose(a["retrieved_s"].fillna(-1), b["retrieved_s"].fillna(-1), rtol=0,
                      atol=1e-9)
    assert same.mean() > 0.99
    # a message can only wait for a later check, or change places within one POP3 session
    shift = b.loc[~same, "retrieved_s"] - a.loc[~same, "retrieved_s"]
    assert (shift > -1.0).all()
    assert runs["session"].summary["counts"] == runs["command"].summary["counts"]
    events = {f: r.summary["sim"]["events"] for f, r in runs.items()}
    assert events["session"] < 0.6 * events["command"]


def test_both_fidelities_agree_on_the_benchmark_country():
    """Rate limits, adaptive bots, a content filter, policies in many ISPs: every
    recipient's outcome is the same at both fidelities."""
    from netsim.experiments.bench import bench_scenario

    runs = {f: simulate(bench_scenario("small", 2 * 3600, f)) for f in ("command", "session")}
    assert runs["command"].summary["counts"] == runs["session"].summary["counts"]
    a, b = (runs[f].recipients_frame() for f in ("command", "session"))
    assert (a["outcome"].astype(str) == b["outcome"].astype(str)).all()
    assert (a["stopped_by"].astype(str) == b["stopped_by"].astype(str)).all()
