"""Named random streams: independent of creation order and of each other."""

from __future__ import annotations

from netsim.world import Streams


def test_same_name_same_draws_whatever_else_exists():
    a = Streams(5)
    first = a["users.send.isp-a"].random(5)
    b = Streams(5)
    b["something.new"].random(100)          # a new component's stream
    assert (b["users.send.isp-a"].random(5) == first).all()


def test_replications_and_names_differ():
    base = Streams(5)["x"].random(3)
    assert not (Streams(5, replication=1)["x"].random(3) == base).any()
    assert not (Streams(5)["y"].random(3) == base).any()
    assert not (Streams(6)["x"].random(3) == base).any()
