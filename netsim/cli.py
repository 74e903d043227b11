"""The ``netsim`` command: run, trace, draw, sweep, sensitivity, report, bench, check, compare,
validate, schema, and the live lab's serve, send and fetch.

A user's mistake (a bad scenario, a missing file, an unwritable folder) exits with status 2
and a message naming what is wrong and where; no traceback reaches the user for it.

Each command imports the layers it uses when it runs: a sweep's parent process, which only
plans, gathers and reports, does not load the simulator.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from netsim import __version__
from netsim.errors import ConservationError, UserError
from netsim.mail.message import Kind
from netsim.scenario import Scenario, ScenarioError, load_scenario

if TYPE_CHECKING:
    from netsim.mail import Tracer
    from netsim.world.estimate import Estimate

USER_ERROR = 2
CHART_SUFFIXES = (".svg", ".png", ".pdf")


def _scenario_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scenario", nargs="?", help="scenario YAML file (default: the embedded "
                        "default world)")
    parser.add_argument("--seed", type=int, help="base seed (overrides the scenario's)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="override a scenario field, e.g. "
                        "users.mua_587_share=0.8 (repeatable)")


def _load(args: argparse.Namespace) -> Scenario:
    overrides = list(args.overrides)
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    return load_scenario(args.scenario, overrides)


def _format_counts(summary: dict) -> str:
    from netsim.mail.recipients import Outcome

    outcomes = [o.value for o in Outcome if o is not Outcome.PENDING] + [Outcome.PENDING.value]
    head = f"{'kind':<8}" + "".join(f"{o:>11}" for o in outcomes) + f"{'total':>11}"
    lines = [head, "-" * len(head)]
    for kind in Kind:
        row = summary["counts"][kind.value]
        lines.append(f"{kind.value:<8}" + "".join(f"{row[o]:>11}" for o in outcomes)
                     + f"{sum(row.values()):>11}")
    lines.append("")
    lines += _format_extras(summary)
    sim = summary["sim"]
    lines.append("")
    lines.append(f"messages {sim['messages']}, recipients {sim['recipients']}, sessions "
                 f"{sim['sessions']}, events {sim['events']}, simulated {sim['sim_seconds']:g} s "
                 f"in {sim['wall_seconds']:.1f} s")
    if sim.get("out_of_order"):
        asks = ", ".join(f"{name} {n}" for name, n in sim["out_of_order"].items())
        lines.append(f"asked out of time order (fidelity flow; docs/fidelity.md): {asks}")
    return "\n".join(lines)


def _format_extras(summary: dict) -> list[str]:
    lines = []
    stopped = summary["stopped_by"]
    for kind in ("legit", "spam"):
        if stopped.get(kind):
            causes = ", ".join(f"{c} {n}" for c, n in sorted(stopped[kind].items(),
                                                             key=lambda kv: -kv[1]))
            lines.append(f"{kind} stopped by: {causes}")
    groups = summary["legit_groups"]
    if groups:
        lines.append("legit delivered, by sender and how they submit (what stopped the rest):")
        for who, paths in groups.items():
            for path, d in paths.items():
                why = ", ".join(f"{c} {n}" for c, n in sorted(d["stopped_by"].items(),
                                                             key=lambda kv: -kv[1]))
                lines.append(f"  {who:<8} {path:<13} {d['ratio']:>7.1%} of {d['attempted']:>8}"
                             + (f"  ({why})" if why else ""))
    spam = sorted(summary["spam_by_origin"], key=lambda r: -r["attempted"])
    if spam:
        lines.append("spam by origin and strategy: attempted / sent out of the origin's "
                     "networks / accepted outside it / delivered")
        for r in spam:
            lines.append(f"  {r['origin']:<10} {r['strategy']:<11} {r['attempted']:>9} "
                         f"{r['sent_out']:>9} {r['accepted_outside']:>9} "
                         f"{r.get('delivered', 0):>9}")
    c = summary["credentials"]
    if c["pool"]:
        lines.append(f"credentials: {c['compromised']} compromised, {c['captured_pop3']} "
                     f"captured from POP3, {c['captured_imap']} from IMAP, "
                     f"{c['captured_smtp_auth']} from SMTP AUTH; "
                     f"{c['used_sessions']} spam sessions used {c['accounts_used']} of them")
    return lines


def cmd_run(args: argparse.Namespace) -> int:
    from netsim.world import simulate, write_results
    from netsim.world.estimate import advice

    scenario = _load(args)
    out = Path(args.out) if args.out else Path("results") / scenario.name
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: exists and is not a folder")
    expected = _fits(scenario, args.records, args.force, where=args.scenario)
    print(f"{scenario.name}: {expected.describe()}", file=sys.stderr)
    rows, made = None, not out.exists()
    try:
        if args.records == "full":   # every row written as it comes to rest, beside the rest
            out.mkdir(parents=True, exist_ok=True)
            rows = out / f".recipients.parquet.{os.getpid()}.tmp"
        try:
            result = simulate(scenario, records=args.records, recipients_file=rows)
        except MemoryError:
            raise UserError(f"{scenario.name}: out of memory; the estimate was "
                            f"{expected.describe()}. Use {advice(expected)}") from None
        write_results(result, out, args.records)
    except OSError as exc:
        raise UserError(f"--out {out}: cannot write results ({exc.strerror or exc})") from None
    finally:   # a run that did not finish leaves nothing behind
        if rows is not None:
            rows.unlink(missing_ok=True)
            if made and not any(out.iterdir()):
                out.rmdir()
    print(f"scenario {scenario.name}, seed {scenario.seed}\n")
    print(_format_counts(result.summary))
    recipients = {"full": "recipients.parquet, ", "sample": "recipients.parquet (1 % of "
                  "messages), ", "summary": ""}[args.records]
    print(f"\nresults in {out}/ (summary.json, {recipients}timeseries.parquet, scenario.yaml)")
    return 0


def cmd_trace(args: argparse.Namespace) -> int:
    from netsim.mail import Tracer
    from netsim.world import simulate

    scenario = _load(args)
    tracer = Tracer(message_id=args.message, first_kind=args.first)
    simulate(scenario, tracer=tracer)
    if not tracer.followed:
        what = f"message {args.message}" if args.message is not None else \
            f"a {args.first} message"
        raise UserError(f"{what} does not occur in scenario {scenario.name} "
                        f"(seed {scenario.seed})")
    if args.pcap:   # the files first: the printed journey may go to a reader that stops
        _write_capture(tracer, Path(args.pcap))
    print(tracer.render())
    if args.svg:
        from netsim.charts import draw_sequence  # matplotlib only when drawing

        out = _chart_path(args.svg, "--svg")
        try:
            draw_sequence(tracer.ordered(), out)
        except OSError as exc:
            raise UserError(f"--svg {out}: cannot write the chart ({exc.strerror or exc})"
                            ) from None
    return 0


def _write_capture(tracer: Tracer, out: Path) -> None:
    """The journey as a pcap file; written beside and renamed, so that a failed write
    leaves no partial capture."""
    from netsim.net.pcap import write_pcap  # scapy only when capturing

    partial = out.with_name(f".{out.name}.partial")
    try:
        count = write_pcap(partial, tracer.capture.events)
        partial.replace(out)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise UserError(f"--pcap {out}: cannot write the capture ({exc.strerror or exc})"
                        ) from None
    print(f"{count} packets in {out}", file=sys.stderr)


def _chart_path(name: str, option: str) -> Path:
    out = Path(name)
    if out.suffix.lower() not in CHART_SUFFIXES:
        raise UserError(f"{option} {out}: a chart is .svg, .png or .pdf")
    return out


def cmd_draw(args: argparse.Namespace) -> int:
    from netsim.charts import draw_world  # matplotlib only when drawing
    from netsim.world import World

    scenario = _load(args)
    out = _chart_path(args.out or f"{scenario.name}.svg", "--out")
    try:
        draw_world(World(scenario), out)
    except OSError as exc:
        raise UserError(f"--out {out}: cannot write the chart ({exc.strerror or exc})") from None
    print(f"world map in {out}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    import pandas as pd

    from netsim.experiments import Plan, plan, run_plan, write_report
    from netsim.experiments.precision import replicate
    from netsim.experiments.report import findings, write_precision
    from netsim.experiments.runner import local_pool
    from netsim.scenario.load import parse_overrides

    if args.jobs < 1:
        raise UserError("--jobs must be at least 1")
    overrides = parse_overrides(args.overrides, args.study)
    study_plan = plan(args.study, replications=args.reps, overrides=overrides)
    out = _results_folder(args.out, study_plan.study.name)
    study = study_plan.study
    target = args.precision if args.precision is not None else study.precision
    cap = args.max_reps if args.max_reps is not None else study.max_replications
    if target is not None and not 0 < target < 1:
        raise UserError("--precision must be between 0 and 1 (0.05: ±5 % of the mean)")
    if cap < 2:
        raise UserError("--max-reps must be at least 2")
    client = _client(args)
    # the same workers for every round of replications
    pool = local_pool(args.jobs) if args.executor == "local" and args.jobs > 1 else None
    simulated = 0

    def run(p: Plan) -> pd.DataFrame:
        nonlocal simulated
        simulated += run_plan(p, out, jobs=args.jobs, executor=args.executor, client=client,
                              pool=pool)
        runs = pd.read_parquet(out / "runs.parquet")
        runs["grid_index"] = [spec.grid_index for spec in p.runs]
        return runs

    try:
        if target is None:
            run(study_plan)
            write_precision(out, None)
        else:
            study_plan, cells = replicate(study_plan, run, list(study.table), target, cap)
            write_precision(out, {"target": target, "cap": cap,
                                  "metrics": list(study.table),
                                  "cells": [c.as_dict() for c in cells.values()]})
    finally:
        if client is not None:
            client.close()
        if pool is not None:
            pool.shutdown(wait=False)
    report = write_report(out)
    total = len(study_plan.runs)
    print(f"study {study.name}: {total} runs ({simulated} simulated now, "
          f"{total - simulated} already done)\n")
    print("\n".join(findings(out)))
    print(f"results in {out}/: runs.parquet, timeseries.parquet, figures/, {report.name}")
    return 0


def _results_folder(given: str | None, name: str) -> Path:
    out = Path(given) if given else Path("results") / name
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: exists and is not a folder")
    return out


def _client(args: argparse.Namespace) -> Any:
    """The Dask client of --executor dask (None for local processes)."""
    from netsim.experiments.runner import ExecutorError, connect_dask

    if args.executor != "dask":
        if args.scheduler:
            raise UserError("--scheduler goes with --executor dask")
        return None
    try:
        return connect_dask(args.scheduler)
    except ExecutorError as exc:
        raise UserError(str(exc)) from None


def cmd_sensitivity(args: argparse.Namespace) -> int:
    import pandas as pd

    from netsim.experiments import run_plan
    from netsim.experiments.sensitivity import (
        analyse,
        draw,
        indices_table,
        output_values,
        report,
        sensitivity_plan,
    )
    from netsim.scenario.load import parse_overrides
    from netsim.world.results import write_text

    if args.jobs < 1:
        raise UserError("--jobs must be at least 1")
    if args.samples is not None and args.samples < 2:
        raise UserError("--samples must be at least 2")
    overrides = parse_overrides(args.overrides, args.file)
    sa, sa_plan, x = sensitivity_plan(args.file, samples=args.samples, overrides=overrides)
    out = _results_folder(args.out, sa.name)
    client = _client(args)
    try:
        ran = run_plan(sa_plan, out, jobs=args.jobs, executor=args.executor, client=client)
    finally:
        if client is not None:
            client.close()
    runs = pd.read_parquet(out / "runs.parquet")
    runs["grid_index"] = [spec.grid_index for spec in sa_plan.runs]
    try:
        indices = analyse(sa, x, output_values(sa, runs, len(x)))
    except ValueError as exc:
        raise UserError(f"{args.file}: {exc}") from None
    (out / "figures").mkdir(exist_ok=True)
    draw(sa, indices, out / "figures" / "sensitivity")
    write_text(out / "indices.csv", indices.to_csv(index=False))
    write_text(out / "sensitivity.md", report(sa, args.file, indices, len(sa_plan.runs)))
    print(f"sensitivity {sa.name}: {len(x)} sample points × {len(sa.arms)} arms, "
          f"{len(sa_plan.runs)} runs ({ran} simulated now, {len(sa_plan.runs) - ran} "
          "already done)\n")
    print(indices_table(sa, indices))
    print(f"results in {out}/: sensitivity.md, indices.csv, figures/sensitivity.png, "
          "runs.parquet")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from netsim.experiments import write_report

    out = Path(args.dir)
    missing = [n for n in ("study.json", "runs.parquet", "timeseries.parquet")
               if not (out / n).exists()]
    if missing:
        raise UserError(f"{out}: not a sweep's results folder (missing {', '.join(missing)})")
    print(f"wrote {write_report(out)}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    import json

    from netsim.experiments.bench import bench_scenario, format_table, run_bench

    if args.duration is not None and args.duration <= 0:
        raise UserError("--duration must be positive")
    try:
        scenario = bench_scenario(args.scale, args.duration or 86_400, args.fidelity)
    except ValueError as exc:
        raise UserError(f"--scale: {exc}") from None
    expected = _fits(scenario, "summary", args.force, "bench")   # it keeps its counts only
    print(f"{scenario.name}: {expected.describe()}", file=sys.stderr)
    figures = run_bench(args.scale, args.duration or 86_400, args.fidelity, scenario)
    print(json.dumps(figures) if args.json else format_table(figures))
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from netsim.verify import CHECKS, run_checks

    unknown = [n for n in args.checks if n not in CHECKS]
    if unknown:
        raise UserError(f"unknown check(s) {', '.join(unknown)}; known: {', '.join(CHECKS)}")
    failed = 0
    for check in run_checks(args.checks or None):
        print(check.line(), flush=True)
        failed += not check.ok
    print(f"{len(args.checks or CHECKS) - failed} passed, {failed} failed")
    return 1 if failed else 0


def cmd_compare(args: argparse.Namespace) -> int:
    from netsim.verify.equivalence import compare
    from netsim.verify.worlds import random_world

    fidelities = (args.fidelities[0], args.fidelities[1])
    if args.random:
        if args.scenario is not None:
            raise UserError("give a scenario or --random N, not both")
        worlds = [Scenario.model_validate(random_world(seed)) for seed in range(args.random)]
    else:
        worlds = [_load(args)]
    differing = sent = 0
    for scenario in worlds:
        result = compare(scenario, fidelities)
        print(f"{scenario.name} (seed {scenario.seed}): {result.report()}\n", flush=True)
        differing += len(result.differing()) + result.unmatched
        sent += len(result.joined)
    if len(worlds) > 1:
        print(f"{len(worlds)} worlds: {differing} of {sent} sent recipients differ "
              f"({differing / max(sent, 1):.4%})")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    scenario = _load(args)
    subscribers = sum(i.subscribers for i in scenario.isps)
    source = args.scenario or "the embedded default world"
    if args.overrides:
        source += " with " + " ".join(f"--set {o}" for o in args.overrides)
    print(f"{source}: valid scenario {scenario.name!r}: {len(scenario.isps)} ISPs, "
          f"{subscribers} subscribers, {len(scenario.visited_networks)} visited and "
          f"{len(scenario.hosting_networks)} hosting networks, {scenario.duration_s:g} s")
    expected = _fits(scenario, args.records, where=args.scenario)
    print(f"run at --records {args.records}: {expected.describe()}")
    return 0


def _fits(scenario: Scenario, records: str, force: bool = False,
          command: str = "run", where: str | None = None) -> Estimate:
    """The run's estimate; refused (exit 2) when it would not fit in this machine's
    memory, unless ``force`` (``netsim <command> --force``). ``where``: the scenario's
    file, named in the refusal."""
    from netsim.world.estimate import advice, estimate, memory_limit

    expected = estimate(scenario, records)
    limit, source = memory_limit()
    if expected.peak_bytes > limit and not force:
        named = f"{where}: scenario {scenario.name}" if where else scenario.name
        raise UserError(f"{named} would not fit in memory:\n  {expected.describe()}: more "
                        f"than {source} ({limit / 1e9:.1f} GB) allows. Use {advice(expected)}; or "
                        f"`netsim {command} --force` to run it anyway")
    return expected


def cmd_schema(args: argparse.Namespace) -> int:
    from netsim.scenario.docs import json_schema, scenario_markdown

    print(scenario_markdown() if args.markdown else json_schema())
    return 0


def _runs_args(command: argparse.ArgumentParser) -> None:
    """Where a study's runs execute, and overrides of its base scenario."""
    command.add_argument("--jobs", type=int, default=1, help="parallel processes (local)")
    command.add_argument("--executor", choices=["local", "dask"], default="local")
    command.add_argument("--scheduler", help="Dask scheduler address (default: a local "
                         "cluster)")
    command.add_argument("--set", dest="overrides", action="append", default=[],
                         metavar="KEY=VALUE", help="override a field of the base scenario")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="netsim", description="Simulate Internet mail: SMTP, POP3, "
                                "spam, OP25B and the submission port.")
    p.add_argument("--version", action="version", version=f"netsim {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="simulate a scenario and write its results")
    _scenario_args(run)
    run.add_argument("--out", help="results folder (default: results/<scenario name>)")
    run.add_argument("--records", choices=["summary", "sample", "full"], default="full",
                     help="recipients.parquet: every recipient (full), those of 1 %% of the "
                     "messages (sample), or none (summary); the summary and the hourly series "
                     "are exact at every level")
    run.add_argument("--force", action="store_true", help="run even when the estimate of "
                     "its peak memory exceeds this machine's")
    run.set_defaults(func=cmd_run)
    trace = sub.add_parser("trace", help="print one message's journey, as on the wire")
    _scenario_args(trace)
    which = trace.add_mutually_exclusive_group(required=True)
    which.add_argument("--message", type=int, metavar="ID", help="message id (as in "
                       "recipients.parquet)")
    which.add_argument("--first", choices=[k.value for k in Kind], help="the first message "
                       "of this kind")
    trace.add_argument("--svg", metavar="FILE", help="also draw the journey as a sequence "
                       "chart (.svg, .png or .pdf)")
    trace.add_argument("--pcap", metavar="FILE", help="also write the journey as a packet "
                       "capture (pcap) that Wireshark and tshark open")
    trace.set_defaults(func=cmd_trace)
    draw = sub.add_parser("draw", help="draw the world: ISPs, links and latencies, policies, "
                          "visited and hosting networks")
    _scenario_args(draw)
    draw.add_argument("--out", metavar="FILE", help="picture to write: .svg, .png or .pdf "
                      "(default: <scenario name>.svg)")
    draw.set_defaults(func=cmd_draw)
    sweep = sub.add_parser("sweep", help="run a study: arms × grid × replications, with "
                           "figures and a report")
    sweep.add_argument("study", help="study file, e.g. experiments/policy-comparison.yaml")
    sweep.add_argument("--out", help="results folder (default: results/<study name>)")
    sweep.add_argument("--reps", type=int, help="replications (overrides the study's; with "
                       "--precision, the first round's)")
    sweep.add_argument("--precision", type=float, help="replicate each arm until every table "
                       "metric's 95 %% interval is within this share of its mean (0.05: "
                       "±5 %%; overrides the study's)")
    sweep.add_argument("--max-reps", type=int, help="cap of replications per arm under "
                       "--precision (overrides the study's max_replications)")
    _runs_args(sweep)
    sweep.set_defaults(func=cmd_sweep)
    sens = sub.add_parser("sensitivity", help="global sensitivity analysis (SALib Morris or "
                          "Sobol) over the parameters a sensitivity file declares")
    sens.add_argument("file", help="sensitivity file, e.g. experiments/sensitivity-op25b.yaml")
    sens.add_argument("--out", help="results folder (default: results/<name>)")
    sens.add_argument("--samples", type=int, help="Morris trajectories or Sobol base samples "
                      "(overrides the file's)")
    _runs_args(sens)
    sens.set_defaults(func=cmd_sensitivity)
    report = sub.add_parser("report", help="rebuild a sweep's figures and report.md from its "
                            "stored results")
    report.add_argument("dir", help="the sweep's results folder")
    report.set_defaults(func=cmd_report)
    bench = sub.add_parser("bench", help="benchmark a generated country against SimPy's floor")
    bench.add_argument("--scale", default="small",
                       help="small: 10,000 subscribers; medium: 100,000; national: 1,000,000; "
                       "japan: 30,000,000; or a number of subscribers (2e6)")
    bench.add_argument("--force", action="store_true", help="run even when the estimate of "
                       "its peak memory exceeds this machine's")
    bench.add_argument("--duration", type=float, metavar="SECONDS",
                       help="simulated time (default: one day)")
    bench.add_argument("--fidelity", choices=["flow", "session", "command"], default="flow",
                       help="users' mail in bulk (default), one event per session, or one "
                       "per SMTP/POP3 exchange")
    bench.add_argument("--json", action="store_true", help="print the figures as one JSON "
                       "object")
    bench.set_defaults(func=cmd_bench)
    check = sub.add_parser("check", help="verify the simulator against theory: one line a "
                           "check, with the measured figure and its bound")
    check.add_argument("checks", nargs="*", metavar="CHECK", help="checks to run (default: all)")
    check.set_defaults(func=cmd_check)
    compare = sub.add_parser("compare", help="run a world at two fidelities and report, "
                             "recipient by recipient, what differs (docs/fidelity.md)")
    _scenario_args(compare)
    compare.add_argument("--fidelities", nargs=2, default=["session", "flow"],
                         choices=["command", "session", "flow"], metavar="FIDELITY",
                         help="the two fidelities (default: session flow)")
    compare.add_argument("--random", type=int, metavar="N", help="compare N random worlds "
                         "with every mechanism on or off (netsim/verify/worlds.py) instead")
    compare.set_defaults(func=cmd_compare)
    validate = sub.add_parser("validate", help="check a scenario (with its --set overrides, "
                              "as run would apply them) and explain each error")
    _scenario_args(validate)
    validate.add_argument("--records", choices=["summary", "sample", "full"], default="full",
                          help="the records level to estimate a run's memory at (as run's)")
    validate.set_defaults(func=cmd_validate)
    schema = sub.add_parser("schema", help="print the JSON Schema of a scenario")
    schema.add_argument("--markdown", action="store_true", help="print the scenario reference "
                        "(docs/scenario.md) instead")
    schema.set_defaults(func=cmd_schema)
    _register_lab(sub)
    return p


def _register_lab(sub: argparse._SubParsersAction) -> None:
    """The live lab's commands: serve, send, fetch."""
    from netsim.lab.commands import register

    register(sub, _scenario_args, _load)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ScenarioError as exc:
        print(f"netsim: {exc}", file=sys.stderr)
        return USER_ERROR
    except UserError as exc:
        print(f"netsim: {exc}", file=sys.stderr)
        return USER_ERROR
    except ConservationError as exc:
        print(f"netsim: internal error, results not written: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        # finished sweep runs are on disk already: the same command resumes
        print("netsim: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (``netsim trace | head``): nothing more to say to it
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
