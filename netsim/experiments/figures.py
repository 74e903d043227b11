"""The studies' figures, drawn from runs.parquet and timeseries.parquet alone.

Every figure shows means over replications with the 95 % intervals of the report's tables
(``netsim.experiments.stats``: inside each metric's range; bands or error bars), its
axes carry units with plain tick labels, its title says how many replications each mean
has (n), and an arm has the same colour, line style, marker and hatch in every figure of
every study: arms are told apart without colour too.
"""

from __future__ import annotations

import itertools
import re
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from netsim.experiments.decomposition import common_runs, legit_losses, spam_paths
from netsim.experiments.stats import Bounds, mean_interval, metric_range
from netsim.experiments.study import Study

_PALETTE = [tuple(c[:3]) for c in plt.get_cmap("tab10")(np.arange(10))]
_KNOWN = {"none": 7, "no-blocking": 7, "op25b": 1, "op25b+587": 0, "op25b+587+leaks": 3}


def arm_colours(arms: Sequence[str]) -> dict[str, tuple[float, ...]]:
    """Distinct colours for a study's arms: the presets always have theirs; every other arm
    takes, in the study's order, the first free colour from a stable hash of its name."""
    taken = {_KNOWN[a] for a in arms if a in _KNOWN}
    out = {}
    for arm in arms:
        index = _KNOWN.get(arm)
        if index is None:
            index = zlib.crc32(arm.encode()) % len(_PALETTE)
            while index in taken and len(taken) < len(_PALETTE):
                index = (index + 1) % len(_PALETTE)
            taken.add(index)
        out[arm] = _PALETTE[index]
    return out


def arm_colour(arm: str, arms: Sequence[str] | None = None) -> tuple[float, ...]:
    """The colour of an arm among a study's ``arms`` (the same in every figure)."""
    return arm_colours(arms if arms is not None else [arm])[arm]


# what tells arms apart without colour: a line style, a marker and a bar hatch, the study's
# i-th arm the i-th of each
_LINES = ("-", "--", ":", "-.")
_MARKERS = ("o", "s", "^", "D", "v", "P")
_HATCHES = ("", "//", "..", "xx", "\\\\", "++")


def arm_style(arm: str, arms: Sequence[str]) -> dict[str, str]:
    """Line style, marker and hatch of an arm among a study's ``arms``."""
    i = list(arms).index(arm)
    return {"linestyle": _LINES[i % len(_LINES)], "marker": _MARKERS[i % len(_MARKERS)],
            "hatch": _HATCHES[i % len(_HATCHES)]}


def _colour(study: Study, arm: str) -> tuple[float, ...]:
    return arm_colour(arm, list(study.arms))


def _style(study: Study, arm: str) -> dict[str, str]:
    return arm_style(arm, list(study.arms))


def _n(runs: pd.DataFrame, study: Study) -> str:
    """How many replications each mean has (each arm and grid point), for a title."""
    if not len(runs):
        return "n = 0"
    counts = runs.groupby(["arm", *study.grid])["replication"].nunique()
    low, high = int(counts.min()), int(counts.max())
    return f"n = {low}" if low == high else f"n = {low}–{high}"


def _plain(ax: Axes) -> None:
    """Tick labels as plain numbers: no offset, no scientific notation."""
    ax.ticklabel_format(axis="y", style="plain", useOffset=False)


COUNTS: Bounds = (0.0, np.inf)


def _scaled(metric: str, scale: float) -> Bounds:
    """A metric's range, in the units a figure draws it in."""
    low, high = metric_range(metric)
    return (low * scale, high * scale)


def _intervals(frame: pd.DataFrame, by: list[str], value: str,
               bounds: Bounds = COUNTS) -> pd.DataFrame:
    """Mean and 95 % interval of ``value`` over replications, per group."""
    rows = []
    for key, group in frame.groupby(by, sort=True):
        ci = mean_interval(group[value].to_numpy(dtype=float), bounds=bounds)
        rows.append({**dict(zip(by, key if isinstance(key, tuple) else (key,), strict=True)),
                     "mean": ci.mean, "low": ci.low, "high": ci.high})
    return pd.DataFrame(rows)


def _hourly(ts: pd.DataFrame, study: Study, kind: str, outcome: str,
            strategy: str | None = None) -> pd.DataFrame:
    """Per arm, grid point, replication and hour: the count (hours with none are zeros)."""
    labels = ["arm", *study.grid, "replication"]
    selected = ts[(ts["kind"] == kind) & (ts["outcome"] == outcome)]
    if strategy is not None:
        selected = selected[selected["strategy"] == strategy]
    counts = selected.groupby([*labels, "interval"])["count"].sum()
    hours = np.arange(int(ts["interval"].max()) + 1 if len(ts) else 0)
    runs = ts[labels].drop_duplicates()
    index = pd.MultiIndex.from_tuples(
        [(*run, h) for run in runs.itertuples(index=False) for h in hours],
        names=[*labels, "interval"])
    return counts.reindex(index, fill_value=0).rename("count").reset_index()


def _grid_label(study: Study, row: pd.Series) -> str:
    return ", ".join(f"{k.rsplit('.', 1)[-1]}={row[k]}" for k in study.grid)


def _band(ax: Axes, x: np.ndarray, ci: pd.DataFrame, colour: object, label: str,
          style: dict[str, str] | None = None) -> None:
    """The mean as a line (its style and markers tell it apart) and its interval as a
    band."""
    line = {"linestyle": "-", "marker": "o", **(style or {})}
    ax.plot(x, ci["mean"], linestyle=line["linestyle"], marker=line["marker"], markersize=4,
            markevery=max(1, len(x) // 12), color=colour, label=label)
    ax.fill_between(x, ci["low"], ci["high"], color=colour, alpha=0.2, linewidth=0)
    _plain(ax)


def spam_per_hour(runs: pd.DataFrame, ts: pd.DataFrame, study: Study) -> Figure:
    hourly = _hourly(ts, study, "spam", "delivered")
    points = hourly[list(study.grid)].drop_duplicates() if study.grid else pd.DataFrame([{}])
    fig, axes = plt.subplots(1, len(points), figsize=(6 * len(points), 4), squeeze=False,
                             sharey=True)
    for ax, (_, point) in zip(axes[0], points.iterrows(), strict=True):
        part = hourly
        for key in study.grid:
            part = part[part[key] == point[key]]
        for arm in study.arms:
            ci = _intervals(part[part["arm"] == arm], ["interval"], "count")
            if len(ci):
                _band(ax, ci["interval"].to_numpy() + 0.5, ci, _colour(study, arm), arm,
                      _style(study, arm))
        ax.set_xlabel("simulated time [h]")
        ax.set_title(_grid_label(study, point) if study.grid else "")
    axes[0][0].set_ylabel("spam delivered to inboxes [recipients/h]")
    axes[0][0].legend(title="arm")
    fig.suptitle(f"Spam delivered per hour (mean, 95 % CI, {_n(runs, study)})")
    return fig


def _grouped_bars(ax: Axes, runs: pd.DataFrame, study: Study, metrics: dict[str, str],
                  scale: float = 1.0) -> None:
    arms = list(study.arms)
    width = 0.8 / len(arms)
    x = np.arange(len(metrics))
    for i, arm in enumerate(arms):
        cis = [mean_interval(runs.loc[runs["arm"] == arm, m].to_numpy(dtype=float) * scale,
                             bounds=_scaled(m, scale))
               if m in runs else mean_interval([]) for m in metrics]
        means = np.array([c.mean for c in cis])
        errors = np.array([[c.mean - c.low, c.high - c.mean] for c in cis]).T
        # an edge keeps a bar of zero visible (a line at 0) and draws the hatch
        ax.bar(x + (i - (len(arms) - 1) / 2) * width, means, width, color=_colour(study, arm),
               edgecolor="black", linewidth=0.8, hatch=_style(study, arm)["hatch"],
               label=arm, yerr=np.nan_to_num(errors), capsize=3)
    ax.set_xticks(x, list(metrics.values()))
    _plain(ax)


def spam_outcomes(runs: pd.DataFrame, ts: pd.DataFrame, study: Study) -> Figure:
    fig, ax = plt.subplots(figsize=(8, 4))
    metrics = {f"spam_{o}": o for o in ("delivered", "junked", "blocked", "rejected",
                                        "expired", "pending")}
    _grouped_bars(ax, runs, study, metrics)
    ax.set_ylabel("spam recipients per run")
    ax.set_title(f"What happened to spam (mean, 95 % CI, {_n(runs, study)})")
    ax.legend(title="arm")
    return fig


# a legitimate sender group's delivery (netsim.experiments.metrics.flatten): who, and how
# the mail was submitted (mua_25_auth, mua_587, provider_587, mta_direct, ...)
_GROUP_RATIO = re.compile(r"(home|roaming)_((?:mua|provider|mta)_.+)_delivery_ratio")


def legit_delivery(runs: pd.DataFrame, ts: pd.DataFrame, study: Study) -> Figure:
    groups = [m for c in runs.columns if (m := _GROUP_RATIO.fullmatch(c))
              and runs[c].notna().any()]
    groups.sort(key=lambda m: (m.group(1) != "home", m.group(2)))
    metrics = {m.group(0): f"{m.group(1)}\n{m.group(2)}" for m in groups}
    fig, ax = plt.subplots(figsize=(max(8, 1.3 * len(metrics) + 2), 4))
    _grouped_bars(ax, runs, study, metrics, scale=100)
    ax.set_ylabel("legitimate mail delivered [%]")
    ax.set_ylim(0, 105)
    ax.set_title("Legitimate delivery by where users are and how their mail is submitted "
                 f"({_n(runs, study)})")
    ax.legend(title="arm", loc="upper center", bbox_to_anchor=(0.5, -0.18),
              ncol=len(study.arms))
    return fig


def decomposition(runs: pd.DataFrame, ts: pd.DataFrame, study: Study) -> Figure:
    """Stacked bars an arm: legitimate mail lost by sender, path and cause; spam delivered
    by path (the report's tables, over the replications every arm has)."""
    arms = list(study.arms)
    shared = common_runs(runs, arms)
    lost = legit_losses(shared)
    parts = (lost.assign(part=lost["sender"] + " " + lost["path"] + ": " + lost["cause"])
             .groupby(["part", "arm"])["lost"].mean().unstack("arm")
             .reindex(columns=arms).fillna(0))
    parts = parts[(parts >= 0.5).any(axis=1)]
    paths = spam_paths(shared)
    spam = (shared.groupby("arm")[[f"spam_delivered_via_{p}" for p in paths]].mean()
            .reindex(arms).fillna(0).T)
    spam.index = paths
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, table, title, unit in (
            (axes[0], parts, "Legitimate mail lost, by sender, path and cause",
             "legitimate recipients lost per run"),
            (axes[1], spam, "Spam delivered to inboxes, by path", "spam recipients per run")):
        bottom = np.zeros(len(arms))
        colours = plt.get_cmap("tab20")(np.arange(max(1, len(table))) % 20)
        for (name, row), colour, hatch in zip(table.iterrows(), colours,
                                              itertools.cycle(_HATCHES), strict=False):
            ax.bar(arms, row.to_numpy(), bottom=bottom, color=colour, edgecolor="black",
                   linewidth=0.6, hatch=hatch, label=str(name))
            bottom += row.to_numpy()
        ax.set_title(title)
        ax.set_ylabel(unit)
        ax.set_ylim(0, max(float(bottom.max(initial=0)), 1) * 1.35)   # room for the legend
        ax.tick_params(axis="x", labelrotation=15)
        ax.legend(fontsize="x-small", loc="upper right")
        _plain(ax)
    n = shared.groupby("arm")["replication"].nunique()
    fig.suptitle(f"Who lost what, and where spam went (means, n = {int(n.min()) if len(n) else 0}"
                 " replications every arm has)")
    return fig


def _sweep(ax: Axes, runs: pd.DataFrame, study: Study, metric: str, arm: str,
           label: str, colour: object, style: dict[str, str] | None = None,
           scale: float = 1.0) -> None:
    key = next(iter(study.grid), None)
    if key is None or metric not in runs:
        return   # nothing to sweep, or no run produced this metric
    part = runs[runs["arm"] == arm].assign(value=lambda f: f[metric] * scale)
    ci = _intervals(part, [key], "value", _scaled(metric, scale))
    if len(ci):
        _band(ax, ci[key].to_numpy(dtype=float), ci, colour, label,
              style or _style(study, arm))


def _grid_axis(study: Study) -> str:
    key = next(iter(study.grid), "")
    return {"policy_adoption.share": "share of ISPs blocking port 25",
            "users.roaming_share": "share of users on visited networks"}.get(key, key)


def adoption(runs: pd.DataFrame, ts: pd.DataFrame, study: Study) -> Figure:
    fig, ax = plt.subplots(figsize=(7, 4))
    for arm in study.arms:
        _sweep(ax, runs, study, "spam_delivered", arm, arm, _colour(study, arm))
    ax.set_xlabel(_grid_axis(study))
    ax.set_ylabel("spam delivered to inboxes [recipients/run]")
    ax.set_title("Spam delivered as OP25B adoption grows "
                 f"(mean, 95 % CI, {_n(runs, study)})")
    ax.legend(title="arm")
    return fig


def displacement(runs: pd.DataFrame, ts: pd.DataFrame, study: Study) -> Figure:
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4), sharey=False)
    for arm in study.arms:
        _sweep(left, runs, study, "spam_sent_out_per_open_isp", arm, arm, _colour(study, arm))
        _sweep(right, runs, study, "spam_sent_out_from_blocking_isps", arm, arm,
               _colour(study, arm))
    left.set_ylabel("spam sent out of each ISP [recipients/run]")
    left.set_title("ISPs that do not block port 25 (per ISP)")
    right.set_ylabel("spam sent out [recipients/run]")
    right.set_title("ISPs that block port 25 (all together)")
    for ax in (left, right):
        ax.set_xlabel(_grid_axis(study))
    left.legend(title="arm")
    fig.suptitle("Displacement: where the spam that leaves its ISP comes from "
                 f"(mean, 95 % CI, {_n(runs, study)})")
    return fig


def traveller(runs: pd.DataFrame, ts: pd.DataFrame, study: Study) -> Figure:
    fig, ax = plt.subplots(figsize=(7, 4))
    for arm in study.arms:
        for port, line in ((25, "--"), (587, "-")):   # the port by line, the arm by marker
            _sweep(ax, runs, study, f"roaming_{port}_delivery_ratio", arm,
                   f"{arm}, MUA on {port}", _colour(study, arm),
                   {**_style(study, arm), "linestyle": line}, scale=100)
    ax.set_xlabel(_grid_axis(study))
    ax.set_ylabel("roaming users' mail delivered [%]")
    ax.set_ylim(-5, 105)
    ax.set_title("The traveller: delivery from visited networks "
                 f"(mean, 95 % CI, {_n(runs, study)})")
    ax.legend(fontsize="small")
    return fig


def _alike(ts: pd.DataFrame, study: Study, kind: str) -> list[list[str]]:
    """The study's arms grouped where their hourly series of ``kind`` are the same in every
    replication they share: one panel for arms that do not differ."""
    series = {arm: ts[(ts["kind"] == kind) & (ts["arm"] == arm)].groupby(
        ["replication", "strategy", "outcome", "interval"])["count"].sum()
        for arm in study.arms}
    groups: list[list[str]] = []
    for arm in study.arms:
        for group in groups:
            a, b = series[group[0]], series[arm]
            shared = set(a.index.get_level_values(0)) & set(b.index.get_level_values(0))
            a = a[a.index.get_level_values(0).isin(shared)]
            b = b[b.index.get_level_values(0).isin(shared)]
            if shared and a.sort_index().equals(b.sort_index()):
                group.append(arm)
                break
        else:
            groups.append([arm])
    return groups


def strategies_over_time(runs: pd.DataFrame, ts: pd.DataFrame, study: Study) -> Figure:
    spam = ts[(ts["kind"] == "spam") & (ts["outcome"] == "delivered")]
    strategies = sorted(spam["strategy"].unique())
    panels = _alike(ts, study, "spam")
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False,
                             sharey=True)
    colours = dict(zip(strategies, plt.get_cmap("Set2")(np.arange(8)), strict=False))
    for strategy in strategies:
        hourly = _hourly(ts, study, "spam", "delivered", strategy)
        for ax, arms in zip(axes[0], panels, strict=True):
            ci = _intervals(hourly[hourly["arm"] == arms[0]], ["interval"], "count")
            if len(ci):
                _band(ax, ci["interval"].to_numpy() + 0.5, ci, colours[strategy], strategy)
    for ax, arms in zip(axes[0], panels, strict=True):
        ax.set_title(" = ".join(arms), color=_colour(study, arms[0]))
        ax.set_xlabel("simulated time [h]")
    axes[0][0].set_ylabel("spam delivered [recipients/h]")
    axes[0][0].legend(title="strategy", loc="upper left", fontsize="small")
    fig.suptitle(f"Spam by strategy as botnets adapt (mean, 95 % CI, {_n(runs, study)}; "
                 "arms whose spam is the same share a panel)")
    return fig


Panel = tuple[dict[str, str], str, str]   # metrics → bar labels, y label, title


def _bar_panels(runs: pd.DataFrame, study: Study, *panels: Panel) -> Figure:
    """Side-by-side panels of grouped bars, one bar per arm, the legend in the first."""
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), squeeze=False)
    for ax, (metrics, ylabel, title) in zip(axes[0], panels, strict=True):
        _grouped_bars(ax, runs, study, metrics)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
    axes[0][0].legend(title="arm")
    fig.suptitle(f"Mean, 95 % CI, {_n(runs, study)}")
    return fig


def credentials(runs: pd.DataFrame, ts: pd.DataFrame, study: Study) -> Figure:
    return _bar_panels(
        runs, study,
        ({"credentials_captured_pop3": "captured\n(POP3)",
          "credentials_captured_smtp_auth": "captured\n(SMTP AUTH)",
          "credentials_accounts_used": "accounts\nabused"},
         "accounts per run", "Credentials captured and abused"),
        ({"spam_attempted_via_stolen_587": "attempted",
          "spam_delivered_via_stolen_587": "delivered"},
         "spam recipients per run", "Spam through stolen submission accounts"))


def defences(runs: pd.DataFrame, ts: pd.DataFrame, study: Study) -> Figure:
    return _bar_panels(
        runs, study,
        ({"spam_delivered": "spam\ndelivered", "spam_junked": "spam\njunked"},
         "spam recipients per run", "Spam reaching inboxes and junk folders"),
        ({"legit_delivery_median_s": "median", "legit_delivery_p90_s": "90th percentile"},
         "legitimate delivery time [s]", "What defences cost legitimate mail"))


DRAW: dict[str, Callable[[pd.DataFrame, pd.DataFrame, Study], Figure]] = {
    "spam_per_hour": spam_per_hour, "spam_outcomes": spam_outcomes,
    "legit_delivery": legit_delivery, "adoption": adoption, "displacement": displacement,
    "traveller": traveller, "strategies_over_time": strategies_over_time,
    "credentials": credentials, "defences": defences, "decomposition": decomposition,
}


def draw_figures(runs: pd.DataFrame, ts: pd.DataFrame, study: Study, folder: Path,
                 ) -> list[Path]:
    """Every figure the study asks for, as PNG and SVG; returns the PNG paths."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name in study.figures:
        fig = DRAW[name](runs, ts, study)
        fig.tight_layout()
        for suffix in (".png", ".svg"):
            fig.savefig(folder / f"{name}{suffix}", dpi=120)
        plt.close(fig)
        written.append(folder / f"{name}.png")
    return written
