"""A run's summary flattened into one tidy row of metrics (runs.parquet columns).

Counts are recipients unless named otherwise; ``*_ratio`` columns are shares in [0, 1].
"""

from __future__ import annotations

from typing import Any

# causes that are the sender's own mistakes (a mistyped user or domain), not the network's
SENDERS_ERRORS = ("user_unknown", "nxdomain")


def flatten(summary: dict[str, Any]) -> dict[str, float]:
    """Every summary figure as ``name → number``."""
    row: dict[str, float] = {}
    for kind, outcomes in summary["counts"].items():
        row[f"{kind}_attempted"] = sum(outcomes.values())
        for outcome, n in outcomes.items():
            row[f"{kind}_{outcome}"] = n
    for kind, causes in summary["stopped_by"].items():
        for cause, n in causes.items():
            row[f"{kind}_stopped_{cause}"] = n
    spam = summary["counts"]["spam"]
    tried = sum(spam.values())
    row["spam_delivered_ratio"] = spam["delivered"] / tried if tried else float("nan")
    legit = summary["counts"]["legit"]
    attempted = sum(legit.values())
    row["legit_delivery_ratio"] = legit["delivered"] / attempted if attempted else float("nan")
    for who, ports in summary["legit_delivery"].items():
        delivered = sum(p["delivered"] for p in ports.values())
        tried = sum(p["attempted"] for p in ports.values())
        row[f"{who}_delivery_ratio"] = delivered / tried if tried else float("nan")
        # of the mail its sender addressed to a user that exists: what the network delivered
        typos = sum(p["stopped_by"].get(c, 0) for p in ports.values() for c in SENDERS_ERRORS)
        row[f"{who}_addressed_delivery_ratio"] = (delivered / (tried - typos) if tried > typos
                                                  else float("nan"))
        for port, d in ports.items():
            row[f"{who}_{port}_attempted"] = d["attempted"]
            row[f"{who}_{port}_delivery_ratio"] = d["ratio"]
    for who, paths in summary["legit_groups"].items():
        for path, d in paths.items():
            name = path.replace(":", "_").replace("+", "_")   # mua:25+pop → mua_25_pop
            row[f"{who}_{name}_attempted"] = d["attempted"]
            row[f"{who}_{name}_delivery_ratio"] = d["ratio"]
            # who lost what, and why (netsim.experiments.decomposition)
            for cause, n in d["stopped_by"].items():
                row[f"legit_lost_{who}_{name}__{cause}"] = n
    for origin, d in summary["legit_by_origin"].items():
        row[f"legit_delivery_ratio_from_{origin}"] = d["ratio"]
    row["spam_sent_out"] = row["spam_accepted_outside"] = 0
    for r in summary["spam_by_origin"]:
        for key in ("attempted", "sent_out", "accepted_outside", "delivered", "blocked"):
            n = r.get(key, 0)
            row[f"spam_{key}_from_{r['origin']}"] = row.get(
                f"spam_{key}_from_{r['origin']}", 0) + n
            row[f"spam_{key}_via_{r['strategy']}"] = row.get(
                f"spam_{key}_via_{r['strategy']}", 0) + n
        row["spam_sent_out"] += r["sent_out"]
        row["spam_accepted_outside"] += r["accepted_outside"]
    # displacement: spam sent out of ISPs that block port 25 and ISPs that do not, per ISP
    isps = summary["params"]["isps"]
    blocking = {i["name"] for i in isps if i["policies"]["op25b"] is not None}
    open_isps = {i["name"] for i in isps} - blocking
    for group, names in (("blocking", blocking), ("open", open_isps)):
        out = sum(r["sent_out"] for r in summary["spam_by_origin"] if r["origin"] in names)
        row[f"spam_sent_out_from_{group}_isps"] = out
        row[f"spam_sent_out_per_{group}_isp"] = out / len(names) if names else float("nan")
        row[f"{group}_isps"] = len(names)
    for key, seconds in summary["legit_delay"].items():
        row[f"legit_{key}"] = seconds
    for key, n in summary["credentials"].items():
        row[f"credentials_{key}"] = n
    for key, n in summary["sim"].items():
        if isinstance(n, dict):   # counts by name (out_of_order)
            row.update({f"sim_{key}_{name}": v for name, v in n.items()})
        else:
            row[f"sim_{key}"] = n
    return row


def is_count(column: str) -> bool:
    """Counts missing from a run are zeros; ratios, times and per-ISP means missing are
    undefined."""
    return not column.endswith(("_ratio", "_s", "_isp"))
