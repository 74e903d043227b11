"""Statistical regression: the headline figures of a study against stored reference values.

The reference holds each arm's mean and 95 % interval of the headline metrics of the
policy-comparison study at a small scale. A change to the model that moves a figure further
than the two intervals allow fails the test; updating the reference is a deliberate act::

    python -m netsim.verify.reference --update tests/data/reference.json
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from netsim.experiments import mean_interval, plan, run_plan
from netsim.verify.stored import print_or_update

STUDY = Path(__file__).resolve().parents[2] / "experiments" / "policy-comparison.yaml"
REPLICATIONS = 4
OVERRIDES = {"duration_s": 7200}
HEADLINES = ("spam_delivered_ratio", "spam_sent_out", "legit_delivery_ratio",
             "home_delivery_ratio", "roaming_delivery_ratio")


def headline_figures(jobs: int = 2) -> dict[str, dict[str, dict[str, float]]]:
    """``{arm: {metric: {mean, half_width}}}`` from a fresh small sweep."""
    study_plan = plan(STUDY, replications=REPLICATIONS, overrides=OVERRIDES)
    with tempfile.TemporaryDirectory() as folder:
        run_plan(study_plan, Path(folder), jobs=jobs, progress=False)
        import pandas as pd

        runs = pd.read_parquet(Path(folder) / "runs.parquet")
    out: dict[str, dict[str, dict[str, float]]] = {}
    for arm, group in runs.groupby("arm"):
        out[str(arm)] = {}
        for metric in HEADLINES:
            ci = mean_interval(group[metric].to_numpy(dtype=float))
            out[str(arm)][metric] = {"mean": ci.mean, "half_width": ci.half_width}
    return out


def compare(current: dict[str, Any], reference: dict[str, Any]) -> list[str]:
    """Figures whose means differ by more than the two intervals' half-widths together
    (plus 1 % of the reference, for figures with no spread)."""
    problems = []
    for arm, metrics in reference.items():
        for metric, ref in metrics.items():
            now = current[arm][metric]
            allowed = ref["half_width"] + now["half_width"] + 0.01 * abs(ref["mean"])
            if abs(now["mean"] - ref["mean"]) > allowed:
                problems.append(f"{arm} {metric}: {now['mean']:.4g} vs reference "
                                f"{ref['mean']:.4g} (allowed ± {allowed:.3g})")
    return problems


if __name__ == "__main__":
    print_or_update(headline_figures, "reference", __doc__)
