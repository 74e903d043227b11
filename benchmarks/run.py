"""Run the benchmark at every scale given and print one JSON object a line.

    .venv/bin/python benchmarks/run.py small medium [--fidelity command]

Each scale runs in a fresh process, so peak memory is that scale's own.
"""

import subprocess
import sys

args = sys.argv[1:]
extra = args[args.index("--fidelity"):args.index("--fidelity") + 2] if "--fidelity" in args else []
scales = [a for a in args if a not in extra] or ["small"]
for scale in scales:
    subprocess.run([sys.executable, "-m", "netsim.cli", "bench", "--scale", scale, "--json",
                    *extra], check=True)
