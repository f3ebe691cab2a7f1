"""The workloads: what each runs, how its result is checked, which numbers it reports."""

from __future__ import annotations

import functools
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .envs import Framework
from .flowrun import Context, RunFailed, clean_env, expect, run_flow
from .measure import MIB, run_quick

Metrics = dict[str, float]
SEED = 20240501  # the flows' default BENCH_SEED; passed explicitly so both sides agree
IMPORT_RUNS = 5  # interpreter starts per repeat for the import workload (they are short)


@dataclass(frozen=True)
class Sizes:
    foreach_n: int
    array_mib: int
    dedup_mib: int


FULL = Sizes(foreach_n=1000, array_mib=256, dedup_mib=100)
QUICK = Sizes(foreach_n=100, array_mib=32, dedup_mib=16)


@dataclass(frozen=True)
class Target:
    """A goal from the issue: ratio_min (Metaflow/Plait >= value), plait_max (Plait <= value),
    or floor_factor (Plait <= value x the raw-I/O floor)."""

    kind: str
    value: float
    text: str


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str  # "s", "ms" or "MiB"; ms metrics are stored in ms
    targets: tuple[Target, ...] = ()
    compare: bool = True  # False for reference rows where a Metaflow/Plait ratio means nothing


@dataclass(frozen=True)
class Workload:
    name: str
    summary: str
    run: Callable[[Framework, Context], Metrics]
    metrics: tuple[Metric, ...]
    metaflow_max_runs: int | None = None  # cap on Metaflow repeats (foreach is slow there)
    floor: Callable[[Context], Metrics] | None = None  # framework-free reference, once a repeat


def build_workloads(sizes: Sizes, metaflow_foreach_runs: int | None) -> list[Workload]:
    n, array, dedup = sizes.foreach_n, sizes.array_mib, sizes.dedup_mib
    wall = Metric("wall_s", "wall", "s")
    return [
        Workload(
            "hello",
            "start -> end, process start to exit",
            _run_hello,
            (Metric("wall_s", "wall", "s", (Target("ratio_min", 5, ">=5x faster"),)),),
        ),
        Workload("linear10", "start, 10 linear steps, end", _run_linear10, (wall,)),
        Workload(
            f"foreach{n}",
            f"foreach over range({n}), --max-workers 2",
            functools.partial(_run_foreach, n=n),
            (
                Metric("wall_s", "wall", "s", (Target("ratio_min", 30, ">=30x faster"),)),
                Metric("per_task_ms", "wall / task", "ms"),
                Metric("cpu_s", "CPU user+sys", "s"),
            ),
            metaflow_max_runs=metaflow_foreach_runs,
        ),
        Workload(
            "big_array",
            f"{array} MiB random uint8 array: made in start, summed in the next step",
            functools.partial(_run_big_array, mib=array),
            (
                wall,
                Metric(
                    "data_path_s",
                    "write+read (derived)",
                    "s",
                    (
                        Target("floor_factor", 2, "<=2x floor"),
                        Target("ratio_min", 2, ">=2x faster"),
                    ),
                ),
                Metric("max_proc_rss_mib", "peak RSS, largest process", "MiB"),
                Metric("tree_rss_mib", "peak RSS sum, tree (20 ms polls)", "MiB"),
            ),
            floor=functools.partial(_raw_floor, mib=array),
        ),
        Workload(
            "dedup",
            f"{dedup} MiB artifact passed unchanged through 5 steps",
            functools.partial(_run_dedup, mib=dedup),
            (
                wall,
                Metric(
                    "datastore_mib",
                    "datastore growth",
                    "MiB",
                    (Target("plait_max", 1.5 * dedup, f"~{dedup} MiB (<={1.5 * dedup:.0f})"),),
                ),
            ),
        ),
        Workload(
            "import",
            "interpreter start + `import <framework>`",
            _run_import,
            (
                Metric(
                    "importtime_ms",
                    "-X importtime total",
                    "ms",
                    (Target("plait_max", 100, "<100 ms"),),
                ),
                Metric("import_wall_ms", "python -c 'import x'", "ms"),
                Metric("python_wall_ms", "python -c pass (baseline)", "ms", compare=False),
            ),
        ),
    ]


def _run_hello(fw: Framework, ctx: Context) -> Metrics:
    outcome = run_flow(fw, ctx, "hello_flow.py")
    expect(outcome.result, "checksum", "hello")
    return {"wall_s": outcome.measured.wall_s, "cpu_s": outcome.measured.cpu_s}


def _run_linear10(fw: Framework, ctx: Context) -> Metrics:
    outcome = run_flow(fw, ctx, "linear10_flow.py")
    expect(outcome.result, "checksum", 10)
    return {"wall_s": outcome.measured.wall_s, "cpu_s": outcome.measured.cpu_s}


def _run_foreach(fw: Framework, ctx: Context, n: int) -> Metrics:
    args = ("--max-workers", "2", "--max-num-splits", str(max(n, 100)))
    outcome = run_flow(fw, ctx, "foreach_flow.py", args, env={"BENCH_N": str(n)})
    expect(outcome.result, "count", n)
    expect(outcome.result, "checksum", sum(i * i for i in range(n)))
    wall = outcome.measured.wall_s
    return {"wall_s": wall, "per_task_ms": 1000 * wall / n, "cpu_s": outcome.measured.cpu_s}


def _run_big_array(fw: Framework, ctx: Context, mib: int) -> Metrics:
    """The full run, plus the same flow with an empty array, so the difference in wall time
    minus the flow's own compute is what writing and reading the artifact cost."""
    empty = _array_run(fw, ctx, 0, sample_tree_rss=False)
    full = _array_run(fw, ctx, mib, sample_tree_rss=True)
    data_path = (full["wall_s"] - empty["wall_s"]) - (full["compute_s"] - empty["compute_s"])
    return {**full, "empty_wall_s": empty["wall_s"], "data_path_s": data_path}


def _array_run(fw: Framework, ctx: Context, mib: int, sample_tree_rss: bool) -> Metrics:
    env = {"BENCH_MB": str(mib), "BENCH_SEED": str(SEED)}
    outcome = run_flow(fw, ctx, "big_array_flow.py", env=env, sample_tree_rss=sample_tree_rss)
    wanted = _reference_sum(fw.python, mib)
    expect(outcome.result, "expected", wanted)
    expect(outcome.result, "checksum", wanted)
    measured = outcome.measured
    return {
        "wall_s": measured.wall_s,
        "cpu_s": measured.cpu_s,
        "compute_s": float(outcome.result["compute_s"]),
        "tree_rss_mib": measured.tree_rss_mib or 0.0,
        "max_proc_rss_mib": measured.max_proc_rss_mib,
    }


def _run_dedup(fw: Framework, ctx: Context, mib: int) -> Metrics:
    outcome = run_flow(fw, ctx, "dedup_flow.py", env={"BENCH_MB": str(mib), "BENCH_SEED": str(SEED)})
    expect(outcome.result, "checksum", _reference_sum(fw.python, mib))
    expect(outcome.result, "bytes_seen", 5 * mib * MIB)
    return {"wall_s": outcome.measured.wall_s, "datastore_mib": outcome.datastore_mib}


@functools.cache
def _reference_sum(python: Path, mib: int) -> int:
    """The sum the flows must report, computed once, outside any framework, with the same numpy."""
    code = (
        "import numpy as np\n"
        f"a = np.random.default_rng({SEED}).integers(0, 256, size={mib} * 2**20, dtype=np.uint8)\n"
        "print(int(a.sum(dtype=np.uint64)))\n"
    )
    done = run_quick([str(python), "-c", code])
    if done.returncode != 0:
        raise RunFailed(f"could not compute the reference checksum:\n{done.stderr}")
    return int(done.stdout)


_IMPORTTIME_LINE = re.compile(r"^import time:\s+\d+\s+\|\s+(\d+)\s+\|\s?(\S.*)$")


def _run_import(fw: Framework, ctx: Context) -> Metrics:
    with tempfile.TemporaryDirectory(dir=ctx.scratch) as cwd:  # nothing local to shadow imports
        env = clean_env()
        python = str(fw.python)
        profile = [python, "-X", "importtime", "-c", f"import {fw.module}"]
        cumulative_us = [_importtime_total(_in_dir(cwd, profile, env).stderr, fw.module) for _ in range(IMPORT_RUNS)]
        import_wall = [_timed(cwd, [python, "-c", f"import {fw.module}"], env) for _ in range(IMPORT_RUNS)]
        bare_wall = [_timed(cwd, [python, "-c", "pass"], env) for _ in range(IMPORT_RUNS)]
    return {
        "importtime_ms": statistics.median(cumulative_us) / 1000,
        "import_wall_ms": 1000 * statistics.median(import_wall),
        "python_wall_ms": 1000 * statistics.median(bare_wall),
    }


def _importtime_total(stderr: str, module: str) -> int:
    """The cumulative microseconds of the top-level `import module` line of -X importtime."""
    for line in stderr.splitlines():
        match = _IMPORTTIME_LINE.match(line)
        if match and match.group(2) == module:  # unindented: the top-level import
            return int(match.group(1))
    raise RunFailed(f"`import {module}` failed or printed no importtime line:\n{stderr[-2000:]}")


def _in_dir(cwd: str, argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RunFailed(f"{' '.join(argv[1:])} exited {done.returncode}:\n{done.stderr[-2000:]}")
    return done


def _timed(cwd: str, argv: list[str], env: dict[str, str]) -> float:
    began = time.perf_counter()
    _in_dir(cwd, argv, env)
    return time.perf_counter() - began


def _raw_floor(ctx: Context, mib: int) -> Metrics:
    """The least a datastore could do with the array (see floor.py), in a process of its own."""
    done = run_quick([sys.executable, str(Path(__file__).with_name("floor.py")), str(ctx.scratch), str(mib)])
    if done.returncode != 0:
        raise RunFailed(f"raw floor failed:\n{done.stderr}")
    metrics: Metrics = json.loads(done.stdout)
    return metrics
