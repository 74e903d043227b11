"""The experiments layer: studies, replications, sweeps on local processes or Dask,
confidence intervals, figures and reports.

Its names are imported when first used: a process that only runs simulations (a sweep's
worker) does not load the plotting and statistics libraries the report needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from netsim.lazy import lazy_names

if TYPE_CHECKING:
    from netsim.experiments.report import metric_table, write_report
    from netsim.experiments.runner import gather, run_one, run_plan
    from netsim.experiments.stats import Interval, mean_interval, paired_difference
    from netsim.experiments.study import Plan, RunSpec, Study, load_study, plan

_WHERE = {
    "metric_table": "report", "write_report": "report",
    "gather": "runner", "run_one": "runner", "run_plan": "runner",
    "Interval": "stats", "mean_interval": "stats", "paired_difference": "stats",
    "Plan": "study", "RunSpec": "study", "Study": "study", "load_study": "study",
    "plan": "study",
}

__all__ = [
    "Interval", "Plan", "RunSpec", "Study", "gather", "load_study", "mean_interval",
    "metric_table", "paired_difference", "plan", "run_one", "run_plan", "write_report",
]


__getattr__ = lazy_names(__name__, _WHERE)
