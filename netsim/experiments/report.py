"""report.md: the study's question, its set-up, tables with intervals, paired differences
against the baseline arm, and the figures. Rebuilt from stored results at any time."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from netsim.experiments.decomposition import (
    common_runs,
    headline,
    legit_table,
    paired_runs,
    spam_table,
)
from netsim.experiments.figures import draw_figures
from netsim.experiments.stats import (
    METHOD,
    difference_range,
    mean_interval,
    metric_range,
    paired_difference,
)
from netsim.experiments.study import Study
from netsim.world.results import write_text


def _points(runs: pd.DataFrame, study: Study) -> list[dict[str, object]]:
    if not study.grid:
        return [{}]
    records = runs[list(study.grid)].drop_duplicates().to_dict("records")
    return [{str(k): v for k, v in p.items()} for p in records]


def _select(runs: pd.DataFrame, point: dict[str, object]) -> pd.DataFrame:
    for key, value in point.items():
        runs = runs[runs[key] == value]
    return runs


def metric_table(runs: pd.DataFrame, study: Study) -> str:
    """Markdown: per metric, each arm's mean [95 % CI] and its paired difference from the
    baseline arm (replications paired by common random numbers)."""
    base = study.baseline_arm
    lines = []
    for metric in study.table:
        if metric not in runs:
            lines += [f"*{metric}: not produced by these runs*", ""]
            continue
        grid = list(study.grid)
        head = ["arm", *grid, "n", f"{metric}: mean [95 % CI]", f"− {base}: mean [95 % CI]"]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for point in _points(runs, study):
            part = _select(runs, point)
            for arm in study.arms:
                mine = part[part["arm"] == arm]
                ci = mean_interval(mine[metric].to_numpy(dtype=float),
                                   bounds=metric_range(metric))
                if arm == base:
                    diff = "—"
                else:   # the replications both arms have: pairs of common random numbers
                    a, b = paired_runs(part, arm, base)
                    diff = paired_difference(a[metric].to_numpy(dtype=float),
                                             b[metric].to_numpy(dtype=float),
                                             bounds=difference_range(metric)).format()
                cells = [arm, *(str(point[k]) for k in grid), str(ci.n), ci.format(), diff]
                lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


PRECISION = "precision.json"


def write_precision(out: Path, data: dict[str, Any] | None) -> None:
    """Where sequential replication stopped (None: the study ran a fixed count)."""
    path = out / PRECISION
    if data is None:
        path.unlink(missing_ok=True)
    else:
        write_text(path, json.dumps(data, indent=2) + "\n")


def precision_table(out: Path) -> str:
    """Markdown: the replications each arm and grid point needed, and its widest interval
    relative to its mean; empty when the study ran a fixed count."""
    path = out / PRECISION
    if not path.exists():
        return ""
    data = json.loads(path.read_text())
    lines = [f"Replicated until every table metric's 95 % interval is within "
             f"±{data['target'] * 100:g} % of its mean, at most {data['cap']} replications:", "",
             "| arm | grid point | replications | widest interval (half-width / mean) | "
             "stopped |", "|---|---|---|---|---|"]
    for c in data["cells"]:
        stopped = "precise" if c["precise"] else f"**cap of {data['cap']} reached**"
        lines.append(f"| {c['arm']} | {c['grid_index']} | {c['replications']} | "
                     f"{c['widest'] or '—'} ±{c['relative_half_width'] * 100:.1f} % | "
                     f"{stopped} |")
    return "\n".join(lines) + "\n"


# what the study does about the heavy tail of bots' rates (netsim.world.spam.bot_rates)
VARIANCE = ("each botnet's per-bot rates are the means of equally likely strata of their "
            "log-normal distribution, in random order (scenario field spam.bot_rates), so a "
            "botnet's total rate is the same in every replication and only who sends it varies")


def _by_point(runs: pd.DataFrame, study: Study,
              table: Callable[[pd.DataFrame, Study], str]) -> list[str]:
    """A table for each grid point (one when the study has no grid)."""
    out = []
    for point in _points(runs, study):
        if point:
            out += [f"Grid point {', '.join(f'`{k}={v}`' for k, v in point.items())}:", ""]
        out += [table(common_runs(_select(runs, point), list(study.arms)), study), ""]
    return out


def findings(out: Path) -> list[str]:
    """The report's findings as markdown lines: the headline, the metric tables, the
    precision reached, who lost what and where spam went (what ``netsim sweep`` prints)."""
    study = Study.model_validate(json.loads((out / "study.json").read_text())["study"])
    runs = pd.read_parquet(out / "runs.parquet")
    precision = precision_table(out)
    return [
        "## Headline", "", headline(runs, study),
        "Changes in % of the baseline's mean and in percentage points, with the 95 % "
        "interval of the mean paired difference.", "",
        "## Results", "",
        "Means over replications with their 95 % intervals; the last column is the mean "
        f"paired difference from the baseline arm `{study.baseline_arm}` with its interval.",
        "", metric_table(runs, study),
        *(["## Precision", "", precision] if precision else []),
        "## Who lost what, and why", "",
        "Legitimate recipients lost a run (mean over the replications every arm has) by "
        "sender group, how the mail was submitted and what stopped it; in brackets the "
        f"change from the baseline arm `{study.baseline_arm}`. The parts add up to the "
        "total lost (attempted − delivered).", "", *_by_point(runs, study, legit_table),
        "## Where spam went", "",
        "Spam recipients a run (the same replications) by the path they took, attempted and "
        "delivered to inboxes; in brackets the change from the baseline (displacement: spam "
        "that moves to a path when another closes).", "",
        *_by_point(runs, study, lambda r, s: "Attempted:\n\n" + spam_table(r, s, "attempted")
                   + "\nDelivered:\n\n" + spam_table(r, s, "delivered")),
    ]


def write_report(out: Path) -> Path:
    """Figures and report.md from DIR/study.json, runs.parquet and timeseries.parquet."""
    meta = json.loads((out / "study.json").read_text())
    study = Study.model_validate(meta["study"])
    runs = pd.read_parquet(out / "runs.parquet")
    ts = pd.read_parquet(out / "timeseries.parquet")
    figures = draw_figures(runs, ts, study, out / "figures")
    arms = "\n".join(f"- **{arm}**: " + (", ".join(f"`{k}={v}`" for k, v in overlay.items())
                                         or "the base scenario") for arm, overlay in
                     study.arms.items())
    grid = "\n".join(f"- `{k}`: {', '.join(str(v) for v in values)}"
                     for k, values in study.grid.items()) or "- none"
    counts = runs.groupby("arm")["replication"].nunique()
    replications = (f"{counts.iloc[0]} replications of every arm and grid point"
                    if counts.nunique() == 1 else
                    "replications until each arm was precise (the table under Precision)")
    sections = [
        f"# {study.title or study.name}", "", study.description.strip(), "",
        "## Set-up", "",
        f"Study file `{meta['source']}`; base scenario `{study.scenario}`"
        + (f" with {', '.join(f'`{k}={v}`' for k, v in study.set.items())}" if study.set else "")
        + f"; seed {study.seed}; {replications}, replication r of every arm sharing its random "
        "numbers (common random numbers), so differences between arms are paired. Intervals: "
        f"{METHOD}. Spam: {VARIANCE}.", "",
        "Arms:", arms, "", "Grid:", grid, "",
        *findings(out),
        "## Figures", "",
        *[f"![{f.stem}](figures/{f.name}) ([SVG](figures/{f.stem}.svg))\n" for f in figures],
        f"Runs: `runs.parquet` ({len(runs)} rows); hourly series: `timeseries.parquet`.", "",
    ]
    path = out / "report.md"
    write_text(path, "\n".join(sections))
    return path
