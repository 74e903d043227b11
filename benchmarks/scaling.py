"""Scaling: wall time and peak memory against messages (fixed subscribers) and against
subscribers (fixed messages). Each point runs in a fresh process; prints one JSON line each.

    .venv/bin/python benchmarks/scaling.py messages 1e5 1e6
    .venv/bin/python benchmarks/scaling.py subscribers 1e4 1e5 1e6
"""

import json
import resource
import subprocess
import sys
import time

FIXED_SUBSCRIBERS = 100_000
FIXED_MESSAGES = 100_000


def point(subscribers: int, messages: int) -> dict:
    """Ten equal ISPs of users only (no spam), one day, sending ``messages`` in all."""
    from netsim.scenario import Scenario
    from netsim.world import simulate

    per_isp = subscribers // 10
    scenario = Scenario.model_validate({
        "name": "scaling", "seed": 3, "duration_s": 86_400,
        "isps": [{"name": f"isp-{i}", "domain": f"isp-{i}.example", "subscribers": per_isp,
                  "dynamic_pool": f"10.{16 * i}.0.0/12", "server_network": f"198.18.{i}.0/28"}
                 for i in range(10)],
        "topology": {"generator": "complete"},
        "users": {"sends_per_day": messages / (10 * per_isp), "recipients_pmf": [1.0]}})
    started = time.perf_counter()
    result = simulate(scenario)
    wall = time.perf_counter() - started
    return {"subscribers": 10 * per_isp, "messages": result.summary["sim"]["messages"],
            "events": result.summary["sim"]["events"], "wall_s": round(wall, 2),
            "us_per_message": round(wall / result.summary["sim"]["messages"] * 1e6, 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


if __name__ == "__main__":
    if sys.argv[1] == "point":
        print(json.dumps(point(int(float(sys.argv[2])), int(float(sys.argv[3])))), flush=True)
    else:
        for value in sys.argv[2:]:
            n = int(float(value))
            subs, msgs = (FIXED_SUBSCRIBERS, n) if sys.argv[1] == "messages" else \
                (n, FIXED_MESSAGES)
            subprocess.run([sys.executable, __file__, "point", str(subs), str(msgs)],
                           check=True)
