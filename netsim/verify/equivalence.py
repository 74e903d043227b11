"""Do two fidelities give a world the same outcomes? Recipient by recipient.

:func:`compare` runs one world at two fidelities (``session`` and ``flow`` by default) and
sets their recipients side by side. A sent message (legitimate or spam) is the same on both
paths when it has the same kind, origin ISP, creation instant (to the microsecond: the
engine path's clock may put it one rounding step away) and recipient domain; a recipient is
its place in the message. Bounces are compared by their counts: a bounce is made at the
instant its failure is known, which a DNS answer taken from the cache on one path and not
on the other can move (docs/fidelity.md). ``netsim compare`` prints the report.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import pandas as pd

from netsim.scenario import Scenario
from netsim.world import World, simulate

SAME_MESSAGE = ["kind", "origin_isp", "created_s", "rcpt_index", "rcpt_domain"]
#: What must agree for every recipient.
DECIDED = ("outcome", "stopped_by", "reply_code", "sent_out", "accepted_outside")


@dataclass
class Comparison:
    """Two runs of one world. ``joined`` holds the sent recipients of both, one row each,
    their columns suffixed with the fidelity (``outcome_session``, ``outcome_flow``);
    ``counts`` each run's recipients by kind and outcome."""

    fidelities: tuple[str, str]
    joined: pd.DataFrame
    counts: tuple[dict[str, dict[str, int]], dict[str, dict[str, int]]]
    summaries: tuple[dict[str, Any], dict[str, Any]]

    def column(self, name: str, which: int) -> pd.Series:
        return self.joined[f"{name}_{self.fidelities[which]}"]

    @property
    def unmatched(self) -> int:
        """Sent recipients present in one run only."""
        return int((self.joined["_merge"] != "both").sum())

    def differing(self, columns: tuple[str, ...] = DECIDED) -> pd.DataFrame:
        """The matched recipients that differ in any of ``columns``."""
        both = self.joined[self.joined["_merge"] == "both"]
        differs = pd.Series(False, index=both.index)
        for name in columns:
            a, b = (both[f"{name}_{f}"] for f in self.fidelities)
            differs |= ~((a == b) | (a.isna() & b.isna()))
        return both[differs]

    def shift(self, name: str) -> pd.Series:
        """How far an instant (``delivered_s``, ``finished_s``, ...) moved between the runs,
        for the matched recipients that have it in both [s]."""
        both = self.joined[self.joined["_merge"] == "both"]
        gap = (both[f"{name}_{self.fidelities[1]}"] - both[f"{name}_{self.fidelities[0]}"])
        return gap.dropna()

    def report(self) -> str:
        """What differs, in a few lines: the share of sent recipients, by what."""
        a, b = self.fidelities
        sent = len(self.joined)
        diff = self.differing()
        lines = [f"{sent} sent recipients compared ({a} against {b}): "
                 f"{len(diff)} differ in outcome, stopped_by, reply code, sent_out or "
                 "accepted_outside "
                 f"({len(diff) / max(sent, 1):.4%}); {self.unmatched} unmatched"]
        if len(diff):
            by = diff.groupby([f"outcome_{a}", f"stopped_by_{a}", f"outcome_{b}",
                               f"stopped_by_{b}"], observed=True).size()
            for key, n in by.sort_values(ascending=False).items():
                oa, sa, ob, sb = (str(x) for x in cast(tuple[Any, ...], key))
                lines.append(f"  {n:>7}  {oa} ({sa or '-'}) at {a}, {ob} ({sb or '-'}) at {b}")
        for name in ("delivered_s", "finished_s", "retrieved_s"):
            gap = self.shift(name).abs()
            if len(gap):
                lines.append(f"  {name}: {(gap <= 1e-6).mean():.2%} equal, largest shift "
                             f"{gap.max():.3f} s")
        bounces = [sum(c.get("bounce", {}).values()) for c in self.counts]
        lines.append(f"  bounces: {bounces[0]} at {a}, {bounces[1]} at {b}")
        for fidelity, summary in zip(self.fidelities, self.summaries, strict=True):
            late = summary["sim"].get("out_of_order")
            if late:
                asks = ", ".join(f"{name} {n}" for name, n in late.items())
                lines.append(f"  asked out of time order at {fidelity}: {asks}")
        return "\n".join(lines)


def compare(scenario: Scenario, fidelities: tuple[str, str] = ("session", "flow"), *,
            setup: Callable[[World], None] | None = None) -> Comparison:
    """Run ``scenario`` at both fidelities (``setup`` as :func:`netsim.world.simulate`
    takes it) and set their recipients side by side."""
    runs = [simulate(scenario.model_copy(update={"fidelity": f}), setup=setup)
            for f in fidelities]
    frames = []
    for run in runs:
        frame = run.recipients_frame()
        for name in frame.select_dtypes("category"):
            frame[name] = frame[name].astype(str)
        frame["created_s"] = frame["created_s"].round(6)
        frames.append(frame[frame["kind"] != "bounce"])
    joined = frames[0].merge(frames[1], on=SAME_MESSAGE, how="outer",
                             suffixes=(f"_{fidelities[0]}", f"_{fidelities[1]}"),
                             indicator=True)
    return Comparison(fidelities, joined, (runs[0].summary["counts"], runs[1].summary["counts"]),
                      (runs[0].summary, runs[1].summary))
