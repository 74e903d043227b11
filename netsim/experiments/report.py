"""report.md: the study's question, its set-up, tables with intervals, paired differences
against the baseline arm, and the figures. Rebuilt from stored results at any time."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

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
            reference = part[part["arm"] == base].sort_values("replication")
            for arm in study.arms:
                mine = part[part["arm"] == arm].sort_values("replication")
                ci = mean_interval(mine[metric].to_numpy(dtype=float),
                                   bounds=metric_range(metric))
                if arm == base:
                    diff = "—"
                elif list(mine["replication"]) == list(reference["replication"]):
                    diff = paired_difference(mine[metric].to_numpy(dtype=float),
                                             reference[metric].to_numpy(dtype=float),
                                             bounds=difference_range(metric)).format()
                else:
                    diff = "unpaired"
                cells = [arm, *(str(point[k]) for k in grid), str(ci.n), ci.format(), diff]
                lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


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
    sections = [
        f"# {study.title or study.name}", "", study.description.strip(), "",
        "## Set-up", "",
        f"Study file `{meta['source']}`; base scenario `{study.scenario}`"
        + (f" with {', '.join(f'`{k}={v}`' for k, v in study.set.items())}" if study.set else "")
        + f"; seed {study.seed}; {runs['replication'].nunique()} replications of every arm and "
        "grid point, replication r of every arm sharing its random numbers (common random "
        f"numbers), so differences between arms are paired. Intervals: {METHOD}.", "",
        "Arms:", arms, "", "Grid:", grid, "",
        "## Results", "",
        "Means over replications with 95 % Student-t intervals; the last column is the mean "
        f"paired difference from the baseline arm `{study.baseline_arm}` with its interval.",
        "", metric_table(runs, study),
        "## Figures", "",
        *[f"![{f.stem}](figures/{f.name}) ([SVG](figures/{f.stem}.svg))\n" for f in figures],
        f"Runs: `runs.parquet` ({len(runs)} rows); hourly series: `timeseries.parquet`.", "",
    ]
    path = out / "report.md"
    write_text(path, "\n".join(sections))
    return path
