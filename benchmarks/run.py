#!/usr/bin/env python3
"""Run the same flows under Plait and under Metaflow, side by side, and compare.

    python3 benchmarks/run.py [--repeat N] [--only NAME] [--quick]

Standard library only: the frameworks live in their own venvs (benchmarks/.venv-plait,
benchmarks/.venv-metaflow), created or brought up to date on each invocation.
See benchmarks/README.md for what each workload measures.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import os
import platform
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from plaitbench.envs import EnvError, Framework, ensure_metaflow, ensure_plait
from plaitbench.flowrun import Context, RunFailed, run_flow
from plaitbench.report import Results, Sample, failures, format_table, summarize, write_json
from plaitbench.workloads import FULL, QUICK, Metrics, Workload, build_workloads

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, help="runs of each workload per framework (default 3, 1 with --quick)")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help="run only this workload (repeatable or comma-separated): "
        "hello, linear10, foreach, big_array, dedup, import",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke check (foreach 100, 32 MiB)")
    parser.add_argument(
        "--metaflow-foreach-repeat",
        type=int,
        default=1,
        metavar="N",
        help="runs of the foreach workload under Metaflow (default 1: it takes minutes)",
    )
    parser.add_argument("--frameworks", default="plait,metaflow", help="comma-separated subset of plait,metaflow")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds before one run is killed")
    parser.add_argument("--keep-failed", action="store_true", help="keep the scratch dirs of failed runs")
    parser.add_argument("--output", type=Path, default=BENCH_DIR / "results" / "latest.json")
    return parser.parse_args(argv)


def select(workloads: list[Workload], only: list[str]) -> list[Workload]:
    """The workloads named by --only; "foreach" also names foreach1000 / foreach100."""
    wanted = {name.strip() for item in only for name in item.split(",") if name.strip()}
    if not wanted:
        return workloads
    aliases = {wl.name: {wl.name, "foreach" if wl.name.startswith("foreach") else wl.name} for wl in workloads}
    unknown = wanted - set().union(*aliases.values())
    if unknown:
        choices = ", ".join("foreach" if wl.name.startswith("foreach") else wl.name for wl in workloads)
        sys.exit(f"unknown workload(s): {', '.join(sorted(unknown))}; choose from {choices}")
    return [wl for wl in workloads if aliases[wl.name] & wanted]


def prepare_frameworks(names: list[str]) -> tuple[list[Framework], dict[str, str]]:
    """The usable frameworks, and for each unusable one why (its runs are then reported FAIL)."""
    makers = {
        "plait": lambda: ensure_plait(BENCH_DIR, REPO_DIR / "core"),
        "metaflow": lambda: ensure_metaflow(BENCH_DIR),
    }
    ready, broken = [], {}
    for name in names:
        try:
            ready.append(makers[name]())
        except EnvError as exc:
            broken[name] = f"environment could not be set up: {exc}"
    return ready, broken


def warm_up(frameworks: list[Framework], ctx: Context) -> None:
    """One untimed hello run each: compiles bytecode and warms the page cache."""
    for fw in frameworks:
        try:
            run_flow(fw, ctx, "hello_flow.py")
        except RunFailed as exc:
            print(f"[warm-up] {fw.name} hello failed: {exc}", flush=True)


def run_all(
    workloads: list[Workload],
    frameworks: list[Framework],
    broken: dict[str, str],
    repeat: int,
    ctx: Context,
) -> tuple[Results, list[float]]:
    """Every sample, and the machine's load average as each repeat started."""
    results: Results = {wl.name: {} for wl in workloads}
    loads: list[float] = []  # 1-minute load average as each repeat starts: other work on the machine is noise
    for rep in range(repeat):
        loads.append(os.getloadavg()[0])
        # Alternate who goes first so slow drift on a noisy machine hits both sides alike.
        order = frameworks if rep % 2 == 0 else frameworks[::-1]
        for wl in workloads:
            sides = results[wl.name]
            if wl.floor is not None:
                floor = _attempt(functools.partial(wl.floor, ctx), f"{wl.name} raw floor", rep, repeat)
                sides.setdefault("floor", []).append(floor)
            for fw in order:
                if fw.name == "metaflow" and wl.metaflow_max_runs is not None and rep >= wl.metaflow_max_runs:
                    continue
                sample = _attempt(functools.partial(wl.run, fw, ctx), f"{wl.name} {fw.name}", rep, repeat)
                sides.setdefault(fw.name, []).append(sample)
            for name, why in broken.items():
                sides.setdefault(name, []).append(Sample(False, {}, why))
    return results, loads


def _attempt(run: Callable[[], Metrics], label: str, rep: int, repeat: int) -> Sample:
    print(f"[{rep + 1}/{repeat}] {label} ...", end=" ", flush=True)
    try:
        metrics = run()
    except RunFailed as exc:
        print("FAIL", flush=True)
        return Sample(False, {}, str(exc))
    shown = ", ".join(f"{key}={value:.3f}" for key, value in metrics.items())
    print(shown, flush=True)
    return Sample(True, metrics)


def notes(
    workloads: list[Workload],
    frameworks: list[Framework],
    repeat: int,
    loads: list[float],
    args: argparse.Namespace,
) -> list[str]:
    lines = [f"{fw.name} {fw.version} from {fw.source} ({fw.python})" for fw in frameworks]
    for wl in workloads:
        if wl.metaflow_max_runs is not None and wl.metaflow_max_runs < repeat:
            lines.append(
                f"{wl.name}: Metaflow ran {wl.metaflow_max_runs} of the {repeat} repeats "
                "(it takes minutes there; --metaflow-foreach-repeat N for more)"
            )
    if args.quick:
        lines.append("--quick: reduced sizes, for smoke-checking only; do not quote these numbers")
    if max(loads, default=0.0) > (os.cpu_count() or 1) / 2:
        lines.append(f"the machine was busy (1-min load average up to {max(loads):.1f}): expect noise")
    lines.append("lower is better everywhere; Metaflow/Plait > 1 means Plait is better")
    return lines


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    repeat = args.repeat or (1 if args.quick else 3)
    sizes = QUICK if args.quick else FULL
    workloads = select(build_workloads(sizes, args.metaflow_foreach_repeat), args.only)
    names = [name.strip() for name in args.frameworks.split(",") if name.strip()]
    frameworks, broken = prepare_frameworks(names)
    scratch = Path(tempfile.mkdtemp(prefix="plaitbench-"))
    ctx = Context(BENCH_DIR / "flows", scratch, args.timeout, args.keep_failed)
    try:
        warm_up(frameworks, ctx)
        results, loads = run_all(workloads, frameworks, broken, repeat, ctx)
    finally:
        if not args.keep_failed:
            shutil.rmtree(scratch, ignore_errors=True)
    print()
    print(format_table(workloads, results))
    print()
    for line in notes(workloads, frameworks, repeat, loads, args):
        print("note: " + line)
    for line in failures(results):
        print("FAILED: " + line)
    document = {
        "generated": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": sys.version.split()[0],
            "load_average_per_repeat": loads,
        },
        "config": {
            "repeat": repeat,
            "quick": args.quick,
            "sizes": sizes.__dict__,
            "metaflow_foreach_repeat": args.metaflow_foreach_repeat,
        },
        "frameworks": {fw.name: {"version": fw.version, "source": fw.source} for fw in frameworks}
        | {name: {"error": why} for name, why in broken.items()},
        "workloads": summarize(workloads, results),
    }
    write_json(args.output, document)
    print(f"\nresults written to {args.output}")
    return 1 if failures(results) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
