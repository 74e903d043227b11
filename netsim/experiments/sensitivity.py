"""Global sensitivity analysis of a study (SALib): which parameters decide a figure.

A sensitivity file declares parameters with ranges (``[low, high]``) or lists of values
(``{values: [...]}``: a choice, such as a policy on or off), the arms every sample point runs
(paired by common random numbers: every point uses replication 0's streams), and the outputs
to explain: a metric in one arm, or its change from another arm (a count's relative change,
a share's difference). Sample points are runs of a sweep (``netsim.experiments.runner``):
stored as they finish, skipped when done, on local processes or Dask. Morris elementary
effects screen many parameters cheaply (r·(k+1) points); Sobol indices (first order and
total, Saltelli's sampling: N·(k+2) points) apportion the variance where affordable.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from netsim.experiments.study import (
    Experiment,
    Plan,
    RunSpec,
    Study,
    base_scenario,
    read_mapping,
    study_problems,
)
from netsim.scenario import ScenarioError, ScenarioProblem
from netsim.scenario.load import set_values, validate
from netsim.scenario.schema import Strict


class Choice(BaseModel):
    """A parameter that takes one of a list of values (None for a policy that is off)."""

    model_config = ConfigDict(extra="forbid")
    values: list[Any] = Field(min_length=2, description="The values, in order.")


class Output(Strict):
    """A figure to explain: ``metric`` in ``arm``, or its change from ``change_from``."""

    metric: str = Field(description="A runs.parquet column (e.g. spam_delivered).")
    arm: str = Field(description="The arm it is read in.")
    change_from: str | None = Field(None, description="Another arm: the output is then the "
                                    "change from it (a count's relative change, arm ÷ other "
                                    "− 1; a share's difference, arm − other).")

    @property
    def name(self) -> str:
        if self.change_from is None:
            return f"{self.metric} ({self.arm})"
        return f"{self.metric} ({self.arm} vs {self.change_from})"


class Sensitivity(Experiment):
    """One sensitivity analysis (experiments/<name>.yaml with ``parameters``): every sample
    point runs every arm (``{}`` for the sampled scenario as it is); the seed is also the
    sampling's."""

    parameters: dict[str, list[float] | Choice] = Field(
        min_length=2, description="Dotted key → [low, high] or {values: [...]}.")
    method: Literal["morris", "sobol"] = Field("morris", description="morris: elementary "
                                               "effects (screening); sobol: variance-based "
                                               "indices.")
    samples: int = Field(10, ge=2, description="Morris trajectories r, or Sobol's base "
                         "sample N (a power of 2).")
    levels: int = Field(4, ge=2, description="Morris grid levels.")
    outputs: list[Output] = Field(min_length=1, description="The figures to explain.")

    @model_validator(mode="after")
    def _consistent(self) -> Sensitivity:
        for key, spec in self.parameters.items():
            if isinstance(spec, list) and not (len(spec) == 2 and spec[0] < spec[1]):
                raise ValueError(f"parameters.{key}: a range is [low, high] with low < high")
        for i, out in enumerate(self.outputs):
            for arm in (out.arm, out.change_from):
                if arm is not None and arm not in self.arms:
                    raise ValueError(f"outputs[{i}]: unknown arm {arm!r} (arms: "
                                     f"{', '.join(self.arms)})")
        return self

    def problem(self) -> dict[str, Any]:
        """SALib's problem: a choice of k values is sampled on [0, k) and floored."""
        return {"num_vars": len(self.parameters), "names": list(self.parameters),
                "bounds": [[0.0, float(len(s.values))] if isinstance(s, Choice) else
                           [float(s[0]), float(s[1])] for s in self.parameters.values()]}

    def decode(self, x: np.ndarray) -> dict[str, Any]:
        """The scenario values of one sample row."""
        out = {}
        for (key, spec), value in zip(self.parameters.items(), x, strict=True):
            if isinstance(spec, Choice):
                out[key] = spec.values[min(int(value), len(spec.values) - 1)]
            else:
                out[key] = float(value)
        return out


def load_sensitivity(path: str | Path) -> Sensitivity:
    """Read and validate a sensitivity file; errors name the file and the field."""
    source = str(path)
    data = read_mapping(path, "a sensitivity analysis")
    if "parameters" not in data:
        what = ("a scenario: run it with `netsim run`" if "isps" in data else
                "a study: run it with `netsim sweep`" if "arms" in data else
                "add the parameters to vary")
        raise ScenarioError(source, [ScenarioProblem(
            "", f"not a sensitivity analysis (it has no parameters): {what}")])
    try:
        return Sensitivity.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(source, study_problems(Sensitivity, exc)) from None


def sample(sa: Sensitivity) -> np.ndarray:
    """The sample points (rows), reproducible from the seed."""
    if sa.method == "morris":
        from SALib.sample import morris

        return np.asarray(morris.sample(sa.problem(), sa.samples, num_levels=sa.levels,
                                        seed=sa.seed))
    from SALib.sample import sobol

    return np.asarray(sobol.sample(sa.problem(), sa.samples, calc_second_order=False,
                                   seed=sa.seed))


def sensitivity_plan(path: str | Path, *, samples: int | None = None,
                     overrides: dict[str, Any] | None = None) -> tuple[Sensitivity, Plan,
                                                                        np.ndarray]:
    """Every sample point × arm as a run (labels: the point's index and its sampled x
    values), each scenario validated before any simulation."""
    sa = load_sensitivity(path)
    if samples is not None:
        sa = sa.model_copy(update={"samples": samples})
    base = base_scenario(sa, path, overrides)
    x = sample(sa)
    runs = []
    for i, row in enumerate(x):
        point = set_values(base, sa.decode(row), str(path), f"sample {i}:")
        labels = {f"x.{k}": float(v) for k, v in zip(sa.parameters, row, strict=True)}
        for arm, overlay in sa.arms.items():
            data = set_values(point, overlay, str(path), f"arms.{arm}:")
            validate(data, f"{path} (sample {i}, arm {arm})")
            runs.append(RunSpec(sa.name, arm, labels, i, 0, sa.seed, data))
    study = Study(name=sa.name, title=sa.title, description=sa.description,
                  scenario=sa.scenario, set=sa.set, seed=sa.seed, replications=1,
                  arms=sa.arms, figures=[], table=sorted({o.metric for o in sa.outputs}))
    return sa, Plan(study, str(path), runs), x


def output_values(sa: Sensitivity, runs: pd.DataFrame, points: int) -> dict[str, np.ndarray]:
    """Each output's value at every sample point (runs: runs.parquet with grid_index)."""
    out = {}
    for o in sa.outputs:
        if o.metric not in runs:
            raise ValueError(f"output {o.name}: the runs have no metric {o.metric!r}")
        wide = runs.pivot_table(index="grid_index", columns="arm", values=o.metric,
                                dropna=False).reindex(range(points))
        y = wide[o.arm].to_numpy(dtype=float)
        if o.change_from is not None:
            other = wide[o.change_from].to_numpy(dtype=float)
            with np.errstate(divide="ignore", invalid="ignore"):
                y = y - other if o.metric.endswith("_ratio") else y / other - 1
        out[o.name] = y
    return out


def analyse(sa: Sensitivity, x: np.ndarray, outputs: dict[str, np.ndarray]) -> pd.DataFrame:
    """One row per output and parameter: the indices and their 95 % intervals (bootstrap,
    SALib; bounds clipped to each index's range: μ* ≥ 0, Sobol indices in [0, 1])."""
    problem, rows = sa.problem(), []
    for name, y in outputs.items():
        if not np.all(np.isfinite(y)):
            raise ValueError(f"output {name}: undefined at {int((~np.isfinite(y)).sum())} "
                             "sample points (a change from an arm where the metric is 0?)")
        if sa.method == "morris":
            from SALib.analyze import morris

            r = morris.analyze(problem, x, y, num_resamples=1000, conf_level=0.95,
                               num_levels=sa.levels, seed=sa.seed)
            for i, key in enumerate(problem["names"]):
                mu, half = float(r["mu_star"][i]), float(r["mu_star_conf"][i])
                rows.append({"output": name, "parameter": key, "mu_star": mu,
                             "mu_star_low": max(0.0, mu - half), "mu_star_high": mu + half,
                             "mu": float(r["mu"][i]), "sigma": float(r["sigma"][i])})
        else:
            from SALib.analyze import sobol

            r = sobol.analyze(problem, y, calc_second_order=False, num_resamples=1000,
                              conf_level=0.95, seed=sa.seed)
            for i, key in enumerate(problem["names"]):
                row: dict[str, Any] = {"output": name, "parameter": key}
                for index in ("S1", "ST"):
                    v, half = float(r[index][i]), float(r[f"{index}_conf"][i])
                    row |= {index: v, f"{index}_low": min(1.0, max(0.0, v - half)),
                            f"{index}_high": min(1.0, max(0.0, v + half))}
                rows.append(row)
    return pd.DataFrame(rows)


def main_index(method: str) -> str:
    return "mu_star" if method == "morris" else "ST"


def indices_table(sa: Sensitivity, indices: pd.DataFrame) -> str:
    """Markdown: per output, parameters by importance with their indices and intervals."""
    key = main_index(sa.method)
    lines = []
    for name, part in indices.groupby("output", sort=False):
        part = part.sort_values(key, ascending=False)
        if sa.method == "morris":
            lines += [f"**{name}**", "", "| parameter | μ* [95 % CI] | μ | σ |",
                      "|---|---|---|---|"]
            lines += [f"| `{r.parameter}` | {r.mu_star:.3g} [{r.mu_star_low:.3g}, "
                      f"{r.mu_star_high:.3g}] | {r.mu:.3g} | {r.sigma:.3g} |"
                      for r in part.itertuples()]
        else:
            lines += [f"**{name}**", "", "| parameter | S1 [95 % CI] | ST [95 % CI] |",
                      "|---|---|---|"]
            lines += [f"| `{r.parameter}` | {r.S1:.3g} [{r.S1_low:.3g}, {r.S1_high:.3g}] | "
                      f"{r.ST:.3g} [{r.ST_low:.3g}, {r.ST_high:.3g}] |"
                      for r in part.itertuples()]
        lines.append("")
    return "\n".join(lines)


def draw(sa: Sensitivity, indices: pd.DataFrame, path: Path) -> list[Path]:
    """One panel an output: each parameter's main index with its interval, largest on
    top; PNG and SVG."""
    import matplotlib.pyplot as plt

    key = main_index(sa.method)
    outputs = list(dict.fromkeys(indices["output"]))
    fig, axes = plt.subplots(1, len(outputs), figsize=(6 * len(outputs), 0.5 *
                             len(sa.parameters) + 1.8), squeeze=False)
    for ax, name in zip(axes[0], outputs, strict=True):
        part = indices[indices["output"] == name].sort_values(key)
        y = np.arange(len(part))
        low, high = part[f"{key}_low"].to_numpy(), part[f"{key}_high"].to_numpy()
        means = part[key].to_numpy()
        ax.barh(y, means, color="#4c72b0", edgecolor="black", linewidth=0.6,
                xerr=np.array([means - np.minimum(low, means), np.maximum(high, means) - means]),
                capsize=3)
        ax.set_yticks(y, [re.sub(r"^isps\.\*\.policies\.", "isps' ", p)
                          for p in part["parameter"]])
        ax.set_xlabel("μ* (mean |elementary effect|)" if key == "mu_star"
                      else "total-order Sobol index ST")
        ax.set_xlim(left=0)
        ax.set_title(name, fontsize="medium")
        ax.ticklabel_format(axis="x", style="plain", useOffset=False)
    n = len(indices) and sample_count(sa)
    fig.suptitle(f"{sa.title or sa.name}: {sa.method} (95 % CI, {n} sample points × "
                 f"{len(sa.arms)} arms)")
    fig.tight_layout()
    written = []
    for suffix in (".png", ".svg"):
        fig.savefig(path.with_suffix(suffix), dpi=120)
        written.append(path.with_suffix(suffix))
    plt.close(fig)
    return written


def sample_count(sa: Sensitivity) -> int:
    k = len(sa.parameters)
    return sa.samples * (k + 1) if sa.method == "morris" else sa.samples * (k + 2)


def report(sa: Sensitivity, source: str, indices: pd.DataFrame, runs: int) -> str:
    """sensitivity.md: the question, the parameters and their ranges, the indices."""
    params = "\n".join(
        f"- `{k}`: " + (f"one of {', '.join(map(str, s.values))}" if isinstance(s, Choice)
                        else f"{s[0]:g} to {s[1]:g}") for k, s in sa.parameters.items())
    arms = "\n".join(f"- **{a}**: " + (", ".join(f"`{k}={v}`" for k, v in o.items())
                                       or "the sampled scenario") for a, o in sa.arms.items())
    method = ("Morris elementary effects: μ* is the mean absolute change of the output for a "
              "step of one parameter across its range (the larger, the more it matters), σ "
              "their spread (interactions or non-linearity)" if sa.method == "morris" else
              "Sobol indices: S1 the share of the output's variance a parameter explains "
              "alone, ST with its interactions")
    return "\n".join([
        f"# {sa.title or sa.name}", "", sa.description.strip(), "",
        "## Set-up", "",
        f"File `{source}`; base scenario `{sa.scenario}`"
        + (f" with {', '.join(f'`{k}={v}`' for k, v in sa.set.items())}" if sa.set else "")
        + f"; seed {sa.seed}; {sample_count(sa)} sample points ({sa.method}, "
        f"{sa.samples} {'trajectories' if sa.method == 'morris' else 'base samples'}), each "
        f"running every arm with the same random numbers: {runs} runs.", "",
        "Parameters:", params, "", "Arms:", arms, "",
        "## Indices", "",
        f"{method}. Intervals: 95 % bootstrap over the sample (SALib, 1,000 resamples), "
        "bounds kept inside each index's range.", "",
        indices_table(sa, indices),
        "![sensitivity](figures/sensitivity.png) ([SVG](figures/sensitivity.svg))", "",
        "Runs: `runs.parquet` (labels `x.<parameter>`: the sampled values); indices: "
        "`indices.csv`.", ""])

