"""What a run reports beyond the counts: stopped_by, spam by origin and strategy, legitimate
delivery for home and roaming users by MUA port, credentials, and the hourly series.

Computed once, after the run, from the recipient table (never on the simulation's hot path).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

INTERVAL_S = 3600


def stopped_by(frame: pd.DataFrame) -> dict[str, dict[str, int]]:
    """``{kind: {mechanism: recipients}}`` over final outcomes that name a mechanism."""
    stopped = frame[frame["stopped_by"] != ""]
    counts = stopped.groupby(["kind", "stopped_by"], observed=True).size().reset_index()
    out: dict[str, dict[str, int]] = {}
    for kind, cause, n in counts.itertuples(index=False):
        out.setdefault(str(kind), {})[str(cause)] = int(n)
    return out


def spam_by_origin(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Spam by origin (ISP or hosting network) and strategy: attempted, what left the origin
    ISP's network, and every outcome."""
    spam = frame[frame["kind"] == "spam"]
    rows = []
    for (origin, strategy), group in spam.groupby(["origin_isp", "path"], observed=True):
        outcomes = group["outcome"].value_counts()
        rows.append({"origin": str(origin), "strategy": str(strategy),
                     "attempted": len(group), "left_origin": int(group["left_origin"].sum()),
                     **{str(o): int(n) for o, n in outcomes.items() if n}})
    return rows


def legit_delivery(frame: pd.DataFrame) -> dict[str, dict[str, dict[str, float]]]:
    """Legitimate delivery ratio (delivered ÷ attempted) for home and roaming users, by the
    MUA's submission port."""
    legit = frame[(frame["kind"] == "legit")]
    out: dict[str, dict[str, dict[str, float]]] = {}
    for who, group in (("home", legit[legit["sender"] == "user"]),
                       ("roaming", legit[legit["sender"] == "roaming"])):
        out[who] = {}
        for port, by_port in group.groupby("first_hop_port"):
            delivered = int((by_port["outcome"] == "delivered").sum())
            out[who][str(port)] = {"attempted": len(by_port), "delivered": delivered,
                                   "ratio": round(delivered / len(by_port), 6)}
    return out


def legit_delay(frame: pd.DataFrame) -> dict[str, float]:
    """How long delivered legitimate mail took [s]: to the maildrop, and to the recipient's
    first POP3 retrieval."""
    legit = frame[(frame["kind"] == "legit") & (frame["outcome"] == "delivered")]
    delivery = (legit["delivered_s"] - legit["created_s"]).dropna()
    retrieval = (legit["retrieved_s"] - legit["created_s"]).dropna()
    out: dict[str, float] = {}
    for name, values in (("delivery", delivery), ("retrieval", retrieval)):
        if len(values):
            out[f"{name}_mean_s"] = round(float(values.mean()), 6)
            out[f"{name}_median_s"] = round(float(values.median()), 6)
            out[f"{name}_p90_s"] = round(float(values.quantile(0.9)), 6)
    return out


def timeseries(frame: pd.DataFrame) -> pa.Table:
    """Hourly counts: ``interval`` (hour index), kind, origin ISP, strategy (the submission
    path), outcome, count. Recipients are counted as ``created`` in the hour they were
    attempted and under their outcome in the hour it became final; pending ones only as
    created."""
    columns = ["kind", "origin_isp", "path", "outcome", "at"]
    created = frame.assign(outcome="created", at=frame["created_s"])
    final = frame[frame["outcome"] != "pending"].assign(at=lambda f: f["finished_s"])
    both = pd.concat([created[columns], final[columns]], ignore_index=True)
    both = both.rename(columns={"path": "strategy"})
    for column in ("kind", "origin_isp", "strategy", "outcome"):
        both[column] = both[column].astype(str)
    both["interval"] = np.floor(both["at"] / INTERVAL_S).astype(np.int32)
    counts = (both.groupby(["interval", "kind", "origin_isp", "strategy", "outcome"]).size()
              .rename("count").reset_index())
    counts["count"] = counts["count"].astype(np.int64)
    return pa.Table.from_pandas(counts, preserve_index=False)
