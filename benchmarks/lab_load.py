"""The live lab under load: many concurrent SMTP clients, each sending messages one session
at a time to the default world's isp-b server on port 25 (strangers, local recipients).
Prints one JSON line: messages accepted a second, and the latency of a whole session
(connect to 221) at the median, 90th and 99th percentile.

    .venv/bin/python benchmarks/lab_load.py [CLIENTS] [MESSAGES_EACH]

Clients come from CLIENTS // 10 + 1 loopback addresses (each address may hold half a
server's session slots); a client refused for want of a slot (421) waits 50 ms and tries
again, as a sending MTA would later, and the retry counts in its latency.
"""

import json
import logging
import smtplib
import statistics
import sys
import threading
import time

from netsim.lab import BackgroundLab, LabSettings, PortMap
from netsim.scenario import load_scenario


def main(clients: int = 200, each: int = 5) -> dict:
    logging.getLogger("netsim.lab").setLevel(logging.ERROR)   # 421s under load are expected
    background = BackgroundLab(load_scenario(None, ["policy=op25b+587"]),
                               LabSettings(ports=PortMap("ephemeral"), tls=False))
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    with background:
        host, port = background.lab.endpoint("isp-b", "smtp")

        def client(n: int) -> None:
            source = f"127.0.{n // 10}.{n % 10 + 2}"
            for m in range(each):
                start = time.monotonic()
                while True:
                    try:
                        with smtplib.SMTP(host, port, local_hostname="load.example",
                                          source_address=(source, 0), timeout=30) as smtp:
                            smtp.sendmail("load@elsewhere.example",
                                          [f"user{(n * each + m) % 1000}@isp-b.example"],
                                          f"Subject: {n}.{m}\r\n\r\nload\r\n".encode())
                        break
                    except smtplib.SMTPConnectError:   # 421: no slot now
                        time.sleep(0.05)
                    except (OSError, smtplib.SMTPException) as exc:
                        with lock:
                            failures.append(f"{type(exc).__name__}: {exc}")
                        return
                with lock:
                    latencies.append(time.monotonic() - start)

        threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
        began = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.monotonic() - began
    cuts = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    return {"clients": clients, "messages": len(latencies), "failures": len(failures),
            "wall_s": round(wall, 3), "accepted_per_s": round(len(latencies) / wall, 1),
            "latency_p50_s": round(cuts[49], 4), "latency_p90_s": round(cuts[89], 4),
            "latency_p99_s": round(cuts[98], 4)}


if __name__ == "__main__":
    print(json.dumps(main(*(int(a) for a in sys.argv[1:3]))))
