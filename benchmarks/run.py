"""Run the benchmark at every scale given and print one JSON object a line.

    .venv/bin/python benchmarks/run.py small medium

Each scale runs in a fresh process, so peak memory is that scale's own.
"""

import subprocess
import sys

for scale in sys.argv[1:] or ["small"]:
    subprocess.run([sys.executable, "-m", "netsim.cli", "bench", "--scale", scale, "--json"],
                   check=True)
