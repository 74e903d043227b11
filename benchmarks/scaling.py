"""Scaling: wall time and peak memory against messages (fixed subscribers) and against
subscribers (fixed messages). Each point runs in a fresh process; prints one JSON line each.

    .venv/bin/python benchmarks/scaling.py messages 1e5 1e6 1e7
    .venv/bin/python benchmarks/scaling.py subscribers 1e5 1e6 1e7
    .venv/bin/python benchmarks/scaling.py messages 1e5 1e6 --fidelity session
"""

import json
import resource
import subprocess
import sys
import time

FIXED_SUBSCRIBERS = 1_000_000
FIXED_MESSAGES = 1_000_000


def point(subscribers: int, messages: int, fidelity: str) -> dict:
    """Ten equal ISPs of users only (no spam), one day, sending ``messages`` in all."""
    from netsim.scenario import Scenario
    from netsim.world import simulate

    per_isp = subscribers // 10
    scenario = Scenario.model_validate({
        "name": "scaling", "seed": 3, "duration_s": 86_400, "fidelity": fidelity,
        "isps": [{"name": f"isp-{i}", "domain": f"isp-{i}.example", "subscribers": per_isp,
                  "dynamic_pool": f"10.{16 * i}.0.0/12", "server_network": f"198.18.{i}.0/28"}
                 for i in range(10)],
        "topology": {"generator": "complete"},
        "users": {"sends_per_day": messages / (10 * per_isp), "recipients_pmf": [1.0]}})
    started = time.perf_counter()
    result = simulate(scenario, records="summary")
    wall = time.perf_counter() - started
    return {"fidelity": fidelity, "subscribers": 10 * per_isp,
            "messages": result.summary["sim"]["messages"],
            "events": result.summary["sim"]["events"], "wall_s": round(wall, 2),
            "us_per_message": round(wall / result.summary["sim"]["messages"] * 1e6, 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


if __name__ == "__main__":
    args = sys.argv[1:]
    fidelity = "flow"
    if "--fidelity" in args:
        at = args.index("--fidelity")
        fidelity = args[at + 1]
        del args[at: at + 2]
    if args[0] == "point":
        print(json.dumps(point(int(float(args[1])), int(float(args[2])), fidelity)),
              flush=True)
    else:
        for value in args[1:]:
            n = int(float(value))
            subs, msgs = (FIXED_SUBSCRIBERS, n) if args[0] == "messages" else \
                (n, FIXED_MESSAGES)
            subprocess.run([sys.executable, __file__, "point", str(subs), str(msgs),
                            "--fidelity", fidelity], check=True)
