"""The shape of netsim's memory: what a subscriber costs, and that recipients are not objects.

docs/model.md "Scale": per-host state lives in arrays, so a country's memory grows with its
subscribers only by those arrays, and the ledger keeps recipients in typed columns.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from netsim.mail.column_buffer import ColumnBuffer
from netsim.scenario import Scenario
from netsim.world import World, simulate


def _country(subscribers: int, fidelity: str = "flow") -> Scenario:
    return Scenario.model_validate({
        "name": "shape", "seed": 3, "fidelity": fidelity, "duration_s": 600,
        "isps": [{"name": n, "domain": f"{n}.example", "subscribers": subscribers,
                  "dynamic_pool": pool, "server_network": static, "bot_fraction": 0}
                 for n, pool, static in (("isp-a", "10.0.0.0/8", "192.168.1.0/28"),
                                         ("isp-b", "11.0.0.0/8", "192.168.2.0/28"))],
        "links": [{"a": "isp-a", "b": "isp-b", "latency_s": 0.01}]})


def _subscriber_arrays(world: World) -> int:
    """Bytes of the arrays kept per subscriber: each workload's send rates, MUA ports and
    POP3 check phases, and (engines) each user's checking flag."""
    total = sum(w.cumulative_rate.nbytes + w.mua_587.nbytes + w.check_phase.nbytes
                for w in world.workloads)
    return total + sum(p.checking.nbytes for p in world.populations)


def test_a_subscriber_costs_the_bytes_the_design_says():
    for fidelity, per_subscriber in (("flow", 17), ("session", 18)):
        world = World(_country(50_000, fidelity))
        assert _subscriber_arrays(world) == per_subscriber * 100_000, fidelity


def test_building_a_country_grows_with_subscribers_only_by_their_arrays():
    """Ten times the subscribers: the world takes about 17 bytes more a subscriber added
    (the arrays above, and nothing per subscriber besides them)."""
    traced = {}
    for n in (20_000, 200_000):
        tracemalloc.start()
        world = World(_country(n))
        traced[n] = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        del world
    per_added = (traced[200_000] - traced[20_000]) / (2 * 180_000)
    assert 16 < per_added < 20


def test_recipients_are_typed_columns_not_objects():
    world = World(_country(200))
    world.env.run(until=600)
    ledger = world.ledger
    assert len(ledger) > 0
    columns = [v for v in vars(ledger).values() if isinstance(v, ColumnBuffer)]
    assert len(columns) == 17 and all(len(c) == len(ledger) for c in columns)
    # 53 bytes a recipient (the ledger's columns), whatever else the run holds
    assert sum(c.dtype.itemsize for c in columns) == 53


def test_a_flow_run_conserves_recipients_and_reports_them():
    result = simulate(_country(2_000))
    counts = result.summary["counts"]["legit"]
    assert sum(counts.values()) == result.summary["sim"]["recipients"] - sum(
        result.summary["counts"]["bounce"].values())
    assert counts["delivered"] > 0
    assert np.isfinite(result.summary["legit_delay"]["retrieval_median_s"])


def test_a_large_key_space_is_counted_by_the_keys_seen():
    """The report's tally counts a small key space in one array and a large one by the
    distinct keys seen, chunk by chunk: the same counts either way."""
    from netsim.world.report import Tally

    rng = np.random.default_rng(1)
    keys = [rng.integers(0, 50, 10_000), rng.integers(0, 7, 10_000)]
    dense = Tally((50, 7))
    dense.add(keys)
    sparse = Tally((50, 7))
    sparse.dense = None                    # as a key space too large for one array is
    for half in (slice(0, 5_000), slice(5_000, None)):
        sparse.add([k[half] for k in keys])
    for got, want in zip(sparse.result(), dense.result(), strict=True):
        assert (got == want).all()
    assert dense.result()[1].sum() == 10_000


def test_a_benchmark_scale_is_a_name_or_a_number_of_subscribers():
    from netsim.experiments.bench import bench_scenario, subscribers_of

    assert subscribers_of("national") == 1_000_000 and subscribers_of("japan") == 30_000_000
    assert subscribers_of("2e6") == subscribers_of("2_000_000") == 2_000_000
    for bad in ("3.5", "10", "huge"):
        with pytest.raises(ValueError, match="scale"):
            subscribers_of(bad)
    # up to national every ISP's pool is a /14 of 10/8, as the measured worlds had them
    assert [i.dynamic_pool.prefixlen for i in bench_scenario("national").isps] == [14] * 50
    japan = bench_scenario("japan")   # the schema checks that each pool holds its ISP
    assert sum(i.subscribers for i in japan.isps) == pytest.approx(30_000_000, abs=50)
    assert max(i.subscribers for i in japan.isps) > 2**18


def test_a_benchmark_too_large_for_the_machine_is_refused(monkeypatch, capsys):
    from netsim.cli import main

    monkeypatch.setattr("netsim.world.estimate.memory_limit", lambda: (4e9, "the test's limit"))
    assert main(["bench", "--scale", "japan"]) == 2
    error = capsys.readouterr().err
    assert "bench-japan would not fit" in error and "`netsim bench --force`" in error
    assert main(["bench", "--scale", "many"]) == 2
    assert "--scale:" in capsys.readouterr().err
