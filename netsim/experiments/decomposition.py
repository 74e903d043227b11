"""What each arm changed against the baseline, taken apart: legitimate mail lost by sender
group (home or roaming users, by submission path) and cause, spam by the path it took (where
it went when a path closed: displacement), and a headline paragraph written from the numbers.

Every figure is a mean over an arm's replications of runs.parquet columns; the parts of a
decomposition add up to its total (legitimate mail lost: attempted − delivered; spam by
path: the spam totals).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from netsim.experiments.metrics import SENDERS_ERRORS
from netsim.experiments.stats import difference_range, paired_difference
from netsim.experiments.study import Study

# runs.parquet columns (netsim.experiments.metrics.flatten)
LOST = re.compile(r"legit_lost_(home|roaming)_(.+)__(.+)")
VIA = re.compile(r"spam_(attempted|delivered)_via_(.+)")


def paired_runs(runs: pd.DataFrame, arm: str, base: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The runs of ``arm`` and of ``base`` that share a replication (and grid point), in
    the same order: the pairs common random numbers make."""
    keys = [k for k in ("grid_index", "replication") if k in runs]
    mine = runs[runs["arm"] == arm].set_index(keys)
    theirs = runs[runs["arm"] == base].set_index(keys)
    common = mine.index.intersection(theirs.index).sort_values()
    return mine.loc[common].reset_index(), theirs.loc[common].reset_index()


def legit_losses(runs: pd.DataFrame) -> pd.DataFrame:
    """Legitimate recipients lost per run: columns sender, path, cause, one row per run
    and part (the runs' labels kept)."""
    labels = [c for c in ("arm", "grid_index", "replication") if c in runs]
    parts = [(c, *m.groups()) for c in runs.columns if (m := LOST.fullmatch(c))]
    # a sender's own addressing mistakes are the same whatever the path: one part a sender
    frames = [runs[labels].assign(sender=who, path="any" if cause in SENDERS_ERRORS else path,
                                  cause=cause, lost=runs[column].fillna(0).to_numpy())
              for column, who, path, cause in parts]
    if not frames:
        return pd.DataFrame(columns=[*labels, "sender", "path", "cause", "lost"])
    lost = pd.concat(frames, ignore_index=True)
    return lost.groupby([*labels, "sender", "path", "cause"], sort=False)["lost"].sum(
        ).reset_index()


def common_runs(runs: pd.DataFrame, arms: list[str]) -> pd.DataFrame:
    """The runs of the replications every arm has (with sequential replication arms stop
    at different counts): a decomposition's changes are then paired throughout."""
    shared = set.intersection(*(set(runs.loc[runs["arm"] == a, "replication"]) for a in arms))
    return runs[runs["replication"].isin(shared)]


def spam_paths(runs: pd.DataFrame, measure: str = "delivered") -> list[str]:
    """The spam paths (strategies) runs.parquet has a ``measure`` column for."""
    return sorted(m.group(2) for c in runs.columns
                  if (m := VIA.fullmatch(c)) and m.group(1) == measure)


def _cell(mean: float, delta: float | None) -> str:
    if delta is None or round(delta) == 0:
        return f"{mean:,.0f}"
    return f"{mean:,.0f} ({delta:+,.0f})"


def legit_table(runs: pd.DataFrame, study: Study) -> str:
    """Markdown: legitimate recipients lost a run by sender, path and cause in each arm, with
    the change from the baseline in brackets; the last row is the total lost (attempted −
    delivered). Parts lost in no arm are left out."""
    lost = legit_losses(runs)
    arms, base = list(study.arms), study.baseline_arm
    if lost.empty:
        return "*no legitimate mail lost in any arm*\n"
    # every run has every part (a part a run lacks is a zero): means over the arm's runs
    means = (lost.groupby(["sender", "path", "cause", "arm"])["lost"].mean()
             .unstack("arm").reindex(columns=arms).fillna(0))
    means = means[(means >= 0.5).any(axis=1)]   # a part that rounds to 0 in every arm
    change = means.sub(means[base], axis=0).abs().max(axis=1)
    head = ["sender", "path", "cause", *arms]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key in change.sort_values(ascending=False, kind="stable").index:
        row = means.loc[key]
        cells = [_cell(row[a], None if a == base else row[a] - row[base]) for a in arms]
        lines.append("| " + " | ".join(map(str, key)) + " | " + " | ".join(cells) + " |")
    totals = (runs["legit_attempted"] - runs["legit_delivered"]).groupby(runs["arm"]).mean()
    cells = [_cell(totals[a], None if a == base else totals[a] - totals[base]) for a in arms]
    lines.append("| **all** | | | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def spam_table(runs: pd.DataFrame, study: Study, measure: str = "delivered") -> str:
    """Markdown: spam recipients a run by path in each arm (``measure``: attempted or
    delivered), with the change from the baseline; the last row is the total."""
    arms, base = list(study.arms), study.baseline_arm
    paths = spam_paths(runs, measure)
    means = runs.groupby("arm")[[f"spam_{measure}_via_{p}" for p in paths]].mean()
    means = means.reindex(arms).fillna(0)
    head = ["path", *arms]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for p in paths:
        column = means[f"spam_{measure}_via_{p}"]
        cells = [_cell(column[a], None if a == base else column[a] - column[base])
                 for a in arms]
        lines.append(f"| {p} | " + " | ".join(cells) + " |")
    total = runs.groupby("arm")[f"spam_{measure}"].mean().reindex(arms)
    cells = [_cell(total[a], None if a == base else total[a] - total[base]) for a in arms]
    lines.append("| **all** | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _relative(runs: pd.DataFrame, arm: str, base: str, metric: str) -> str:
    """The paired change of a count in % of the baseline mean, with its interval."""
    mine, theirs = paired_runs(runs, arm, base)
    reference = float(theirs[metric].mean()) if len(theirs) else np.nan
    if not reference or np.isnan(reference):
        return "n/a"
    ci = paired_difference(mine[metric].to_numpy(dtype=float),
                           theirs[metric].to_numpy(dtype=float),
                           bounds=(-reference, np.inf))
    if ci.mean == 0 and not ci.high > ci.low:
        return "no change"
    scale = 100 / reference
    if np.isnan(ci.low):
        return f"{ci.mean * scale:+.1f} %"
    return f"{ci.mean * scale:+.1f} % [{ci.low * scale:+.1f}, {ci.high * scale:+.1f}]"


def _points(runs: pd.DataFrame, arm: str, base: str, metric: str) -> str:
    """The paired change of a share in percentage points, with its interval."""
    if metric not in runs:
        return "n/a"
    mine, theirs = paired_runs(runs, arm, base)
    a, b = mine[metric].to_numpy(dtype=float), theirs[metric].to_numpy(dtype=float)
    keep = ~(np.isnan(a) | np.isnan(b))
    if not keep.any():
        return "n/a"
    ci = paired_difference(a[keep], b[keep], bounds=difference_range(metric))
    if ci.mean == 0 and not ci.high > ci.low:
        return "no change"
    if np.isnan(ci.low):
        return f"{ci.mean * 100:+.1f} points"
    return f"{ci.mean * 100:+.1f} points [{ci.low * 100:+.1f}, {ci.high * 100:+.1f}]"


def _against(runs: pd.DataFrame, arm: str, base: str) -> str:
    return (f"spam delivered to inboxes {_relative(runs, arm, base, 'spam_delivered')}; "
            f"legitimate delivery {_points(runs, arm, base, 'legit_delivery_ratio')} (home "
            f"users {_points(runs, arm, base, 'home_delivery_ratio')}, roaming users "
            f"{_points(runs, arm, base, 'roaming_delivery_ratio')})")


def headline(runs: pd.DataFrame, study: Study) -> str:
    """One paragraph an arm: what it did to spam and to legitimate mail against the
    baseline (and against the arm before it, where that is another), who lost most and
    why, and where spam moved."""
    arms, base = list(study.arms), study.baseline_arm
    lost = legit_losses(runs)
    lost = lost[~lost["cause"].isin(SENDERS_ERRORS)]
    paragraphs = []
    for i, arm in enumerate(arms):
        if arm == base:
            continue
        text = f"**{arm}** against **{base}**: {_against(runs, arm, base)}."
        before = arms[i - 1]
        if i > 0 and before != base:
            text += f" Against **{before}**: {_against(runs, arm, before)}."
        if not lost.empty:
            per = lost.groupby(["arm", "sender", "path", "cause"])["lost"].mean()
            mine = per.get(arm, pd.Series(dtype=float))
            theirs = per.get(base, pd.Series(dtype=float))
            change = mine.sub(theirs, fill_value=0)
            if len(change) and float(change.max()) >= 1:
                who, path, cause = change.idxmax()
                text += (f" Most lost: {who} users submitting by {path}, stopped by {cause} "
                         f"({float(change.max()):+,.0f} recipients a run).")
        paths = spam_paths(runs, "delivered")
        if paths:
            means = runs.groupby("arm")[[f"spam_delivered_via_{p}" for p in paths]].mean()
            moved = pd.Series(means.loc[arm] - means.loc[base], dtype=float)
            if float(moved.max()) >= 1:
                to = str(moved.idxmax()).removeprefix("spam_delivered_via_")
                text += f" Spam moved to {to} ({float(moved.max()):+,.0f} delivered a run)."
        paragraphs.append(text)
    return "\n\n".join(paragraphs) + ("\n" if paragraphs else "")
