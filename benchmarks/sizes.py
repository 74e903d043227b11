"""The benchmark world at several sizes, with the helper thread and without: wall seconds,
µs a message, and the marginal µs a message between sizes (with the helper). Each run is a
fresh process; a size's two runs alternate, ``--pairs`` times. One JSON line a run, then
the marginal costs.

    .venv/bin/python benchmarks/sizes.py 250000 500000 national 2000000 4000000
    .venv/bin/python benchmarks/sizes.py medium 250000 500000 national --pairs 3
    .venv/bin/python benchmarks/sizes.py small --duration 3600
"""

import itertools
import json
import statistics
import subprocess
import sys
import time


def point(scale: str, threaded: bool, duration_s: float) -> dict:
    from netsim.experiments.bench import bench_scenario
    from netsim.world import simulate
    from netsim.world.estimate import estimate

    scenario = bench_scenario(scale, duration_s)
    started = time.perf_counter()
    result = simulate(scenario, records="summary", threaded=threaded)
    wall = time.perf_counter() - started
    messages = result.summary["sim"]["messages"]
    return {"scale": scale, "threaded": threaded,
            "expected_recipients_a_minute": round(estimate(scenario).recipients
                                                  / (duration_s / 60)),
            "messages": messages, "wall_s": round(wall, 2),
            "us_per_message": round(wall / messages * 1e6, 2)}


def option(args: list[str], name: str, default: str) -> str:
    if name not in args:
        return default
    at = args.index(name)
    value = args[at + 1]
    del args[at:at + 2]
    return value


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[0] == "point":
        print(json.dumps(point(args[1], args[2] == "1", float(args[3]))), flush=True)
        sys.exit()
    pairs = int(option(args, "--pairs", "1"))
    duration = option(args, "--duration", "86400")
    walls: dict[str, list[float]] = {}
    messages: dict[str, int] = {}
    for scale in args:
        for _ in range(pairs):
            for threaded in ("1", "0"):
                out = subprocess.run([sys.executable, __file__, "point", scale, threaded,
                                      duration], check=True, capture_output=True,
                                     text=True).stdout
                print(out, end="", flush=True)
                if threaded == "1":
                    figures = json.loads(out)
                    walls.setdefault(scale, []).append(figures["wall_s"])
                    messages[scale] = figures["messages"]
    for a, b in itertools.pairwise(args):
        extra = statistics.median(walls[b]) - statistics.median(walls[a])
        print(f"{a} → {b}: {extra / (messages[b] - messages[a]) * 1e6:.2f} µs a message more "
              "(medians, with the helper)")
