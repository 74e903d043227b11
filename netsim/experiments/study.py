"""Study files: a base scenario, named arms, an optional grid, replications, figures.

A study expands into runs: every arm × grid point × replication. Replication r of every arm
and grid point draws from the same named streams (common random numbers), so differences
between arms are paired. Every run's scenario is validated before any simulation starts.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from netsim.scenario import ScenarioError, ScenarioProblem
from netsim.scenario.load import nearest_field, read_raw, set_values, validate
from netsim.scenario.schema import Strict

FIGURES = ("spam_per_hour", "spam_outcomes", "legit_delivery", "adoption", "displacement",
           "traveller", "strategies_over_time", "credentials", "defences", "decomposition")


class Experiment(Strict):
    """What a study and a sensitivity analysis share: a name, the base scenario and its
    overrides, the seed, and named arms."""

    name: str = Field(description="Short name; results go to results/<name>/.")
    title: str = Field("", description="Title of the report.")
    description: str = Field("", description="What it asks, for the report.")
    scenario: str = Field("default", description="`default` (the embedded world) or a scenario "
                          "file, relative to this file.")
    set: dict[str, Any] = Field(default_factory=dict, description="Overrides of the base "
                                "scenario, dotted key → value.")
    seed: int = Field(1, ge=0, description="Base seed of every run.")
    arms: dict[str, dict[str, Any]] = Field(min_length=1, description="Named overlays, "
                                            "dotted key → value.")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,62}", value):
            raise ValueError("must be lower-case letters, digits, '-' and '_'")
        return value

    @field_validator("arms")
    @classmethod
    def _arm_names(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for arm in value:
            if not re.fullmatch(r"[A-Za-z0-9+_.-]{1,40}", arm):
                raise ValueError(f"arm name {arm!r}: letters, digits and + _ . - only")
        return value


def base_scenario(experiment: Experiment, path: str | Path,
                  overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The raw base scenario of a study-like file: its scenario, its ``set``, the command
    line's overrides, its seed."""
    base_path = None if experiment.scenario == "default" else Path(path).parent / \
        experiment.scenario
    _, base = read_raw(base_path)
    base = set_values(base, experiment.set, str(path), "set:")
    if overrides:
        base = set_values(base, overrides, str(path))
    base["seed"] = experiment.seed
    return base


class Study(Experiment):
    """One study (experiments/<name>.yaml)."""

    replications: int = Field(3, ge=1, description="Replications of every arm and grid point "
                              "(with precision: the first round's).")
    precision: float | None = Field(None, gt=0, lt=1, description="Replicate each arm and grid "
                                    "point until every table metric's 95 % interval half-width "
                                    "is within this share of its mean (0.05: ±5 %), or "
                                    "max_replications; none: exactly `replications`.")
    max_replications: int = Field(20, ge=2, description="Cap of replications per arm and grid "
                                  "point under precision; the report names the arms that hit it.")
    baseline: str | None = Field(None, description="Arm the others are compared with "
                                 "(paired differences); default: the first arm.")
    grid: dict[str, list[Any]] = Field(default_factory=dict, description="Parameters to vary "
                                       "in every arm: dotted key → values.")
    figures: list[str] = Field(default_factory=lambda: ["spam_per_hour", "spam_outcomes"],
                               description=f"Figures to draw: {', '.join(FIGURES)}.")
    table: list[str] = Field(default_factory=lambda: ["spam_delivered", "legit_delivery_ratio"],
                             description="Metrics (runs.parquet columns) in the report's "
                             "tables.")

    @field_validator("figures")
    @classmethod
    def _figures(cls, value: list[str]) -> list[str]:
        unknown = [f for f in value if f not in FIGURES]
        if unknown:
            raise ValueError(f"unknown figure(s) {unknown}; known: {', '.join(FIGURES)}")
        return value

    @field_validator("grid")
    @classmethod
    def _grid(cls, value: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in value.items():
            if not values:
                raise ValueError(f"grid key {key!r} has no values")
        return value

    @model_validator(mode="after")
    def _baseline(self) -> Study:
        if self.baseline is not None and self.baseline not in self.arms:
            raise ValueError(f"baseline: unknown arm {self.baseline!r} (arms: "
                             f"{', '.join(self.arms)})")
        return self

    @property
    def baseline_arm(self) -> str:
        return self.baseline or next(iter(self.arms))

    def grid_points(self) -> list[dict[str, Any]]:
        keys = list(self.grid)
        return [dict(zip(keys, values, strict=True))
                for values in itertools.product(*(self.grid[k] for k in keys))]


@dataclass(frozen=True)
class RunSpec:
    """One run: plain, picklable data (it crosses process and machine boundaries)."""

    study: str
    arm: str
    grid: dict[str, Any]
    grid_index: int
    replication: int
    seed: int
    scenario: dict[str, Any]

    @property
    def run_id(self) -> str:
        return f"{self.arm}__g{self.grid_index}__r{self.replication}"

    @property
    def scenario_hash(self) -> str:
        text = json.dumps(self.scenario, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def labels(self) -> dict[str, Any]:
        return {"study": self.study, "arm": self.arm, **self.grid,
                "replication": self.replication, "seed": self.seed}


@dataclass(frozen=True)
class Plan:
    study: Study
    source: str
    runs: list[RunSpec]


def read_mapping(path: str | Path, what: str) -> dict[str, Any]:
    """A study-like file as a mapping; errors name the file."""
    source = str(path)
    try:
        data = yaml.safe_load(Path(path).read_text("utf-8"))
    except OSError as exc:
        raise ScenarioError(source, [ScenarioProblem("", exc.strerror or str(exc))]) from None
    except yaml.YAMLError as exc:
        raise ScenarioError(source, [ScenarioProblem("", f"not valid YAML: {exc}")]) from None
    if not isinstance(data, dict):
        raise ScenarioError(source, [ScenarioProblem("", f"{what} must be a YAML mapping")])
    return data


def load_study(path: str | Path) -> Study:
    """Read and validate a study file; errors name the file and the field."""
    source = str(path)
    data = read_mapping(path, "a study")
    if "isps" in data and "arms" not in data:
        raise ScenarioError(source, [ScenarioProblem(
            "", "this is a scenario (it has isps), not a study: run it with `netsim run`")])
    if "parameters" in data:
        raise ScenarioError(source, [ScenarioProblem(
            "", "this is a sensitivity analysis (it has parameters): run it with "
            "`netsim sensitivity`")])
    try:
        return Study.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(source, study_problems(Study, exc)) from None


def study_problems(model: type[BaseModel], exc: ValidationError) -> list[ScenarioProblem]:
    """A study-like file's validation errors, each at its field, an unknown field with the
    nearest known name."""
    problems = []
    for err in exc.errors():
        message = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            near = nearest_field(model, tuple(err["loc"]))
            message = f"unknown field (did you mean {near!r}?)" if near else "unknown field"
        problems.append(ScenarioProblem(".".join(str(p) for p in err["loc"]), message))
    return problems


def plan(path: str | Path, *, replications: int | None = None,
         overrides: dict[str, Any] | None = None) -> Plan:
    """Expand a study into its runs, validating every distinct scenario first."""
    study = load_study(path)
    if replications is not None:
        if replications < 1:
            raise ScenarioError(str(path), [ScenarioProblem("--reps", "must be at least 1")])
        study = study.model_copy(update={"replications": replications})
    base = base_scenario(study, path, overrides)
    runs = []
    for arm, overlay in study.arms.items():
        arm_data = set_values(base, overlay, str(path), f"arms.{arm}:")
        for g, point in enumerate(study.grid_points()):
            data = set_values(arm_data, point, str(path), "grid:")
            where = f"{path} (arm {arm}" + (f", grid {point}" if point else "") + ")"
            validate(data, where)
            runs += [RunSpec(study.name, arm, point, g, r, study.seed, data)
                     for r in range(study.replications)]
    return Plan(study, str(path), runs)
