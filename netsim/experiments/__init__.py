"""The experiments layer: studies, replications, sweeps on local processes or Dask,
confidence intervals, figures and reports."""

from netsim.experiments.report import metric_table, write_report
from netsim.experiments.runner import gather, run_one, run_plan
from netsim.experiments.stats import Interval, mean_interval, paired_difference
from netsim.experiments.study import Plan, RunSpec, Study, load_study, plan

__all__ = [
    "Interval", "Plan", "RunSpec", "Study", "gather", "load_study", "mean_interval",
    "metric_table", "paired_difference", "plan", "run_one", "run_plan", "write_report",
]
