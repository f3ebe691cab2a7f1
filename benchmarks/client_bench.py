#!/usr/bin/env python3
"""Client API on a big store: Plait vs Metaflow, same flow, same number of runs.

    python3 benchmarks/client_bench.py [--runs 2000] [--repeat 20] [--store DIR]

For each framework: run a trivial flow through its real CLI a few times, then replicate
those runs up to --runs (Plait through its metadata provider and datastore APIs; Metaflow by
copying its own local metadata/datastore layout, see REPLICATE_METAFLOW), then time, in one
warm process per framework, ``Flow(F).latest_run``, ``latest_successful_run``, iterating
every run, and loading an artifact, and print the ratios. Standard library only; the
frameworks run in their own venvs (benchmarks/.venv-plait and .venv-metaflow, shared with
run.py), or in interpreters given with --plait-python / --metaflow-python.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
FLOW = "ClientBenchFlow"
USER = "clientbench"
CLI_RUNS = 3

FLOW_SOURCE = """\
from metaflow import FlowSpec, Parameter, step


class ClientBenchFlow(FlowSpec):
    alpha = Parameter("alpha", default=1)

    @step
    def start(self):
        self.x = self.alpha + 41
        self.values = list(range(1000))  # a real blob, not an inline value
        self.next(self.end)

    @step
    def end(self):
        self.total = sum(self.values)


if __name__ == "__main__":
    ClientBenchFlow()
"""

# Runs in Plait's interpreter, in the store directory: copies the newest CLI run N times
# through the public metadata provider and datastore APIs (new run id, same artifact blobs).
REPLICATE_PLAIT = """
import sys
from plait.datastore.types import AttemptIndex
from plait.services import Settings, open_datastore, open_metadata

flow, target = sys.argv[1], int(sys.argv[2])
settings = Settings.resolve()
ds = open_datastore(settings)
md = open_metadata(settings, ds)
existing = md.list_runs(flow)
tpl = existing[0]
tasks = md.list_tasks(flow, tpl.run_id)
indexes = {t.task_id: ds.read_index(flow, tpl.run_id, t.step, t.task_id) for t in tasks}
params = ds.read_index(flow, tpl.run_id, "_parameters", "0", 0)

def moved(index, run_id):
    return AttemptIndex(flow, run_id, index.step, index.task_id, index.attempt, dict(index.artifacts),
                        dict(index.control), index.success, index.finished_at, index.origin,
                        index.started_at, index.exception, dict(index.metadata))

for _ in range(target - len(existing)):
    run_id = md.new_run(flow, tpl.user, tpl.tags, tpl.system_tags)
    md.set_run_parameters(flow, run_id, tpl.parameters)
    ds.write_index(moved(params, run_id))
    for t in tasks:
        inputs = [run_id + "/" + p.split("/", 1)[1] for p in t.input_paths]
        md.new_task(flow, run_id, t.step, t.task_id, t.foreach_key, inputs)
        md.start_attempt(flow, run_id, t.step, t.task_id, 0)
        ds.write_index(moved(indexes[t.task_id], run_id))
        md.finish_attempt(flow, run_id, t.step, t.task_id, 0, True, None, t.attempts[-1].metadata)
    md.finish_run(flow, run_id, True)
print(len(md.list_runs(flow)))
"""

# Runs in Metaflow's interpreter: copies the newest CLI run's directory N times under new run
# ids, rewriting the run id (and shifting the timestamps) in every metadata JSON file: the
# layout Metaflow's own local metadata provider writes. Artifacts stay shared (content-addressed).
REPLICATE_METAFLOW = """
import json, os, shutil, sys
flow, target = sys.argv[1], int(sys.argv[2])
root = os.path.join(".metaflow", flow)
runs = sorted(d for d in os.listdir(root) if d.isdigit())
tpl = runs[-1]
next_id = int(tpl) + 1
for i in range(target - len(runs)):
    run_id = str(next_id + i)
    dest = os.path.join(root, run_id)
    shutil.copytree(os.path.join(root, tpl), dest)
    for folder, _, files in os.walk(dest):
        if os.path.basename(folder) != "_meta":
            continue
        for name in files:
            path = os.path.join(folder, name)
            with open(path) as f:
                obj = json.load(f)
            if isinstance(obj, dict):
                if "run_number" in obj:
                    obj["run_number"] = run_id
                if "run_id" in obj:
                    obj["run_id"] = run_id
                if isinstance(obj.get("ts_epoch"), int):
                    obj["ts_epoch"] += 1 + i
            with open(path, "w") as f:
                json.dump(obj, f)
print(len([d for d in os.listdir(root) if d.isdigit()]))
"""

# Runs in each framework's interpreter: the same code, only the module differs.
MEASURE = """
import json, statistics, sys, time
module, flow, repeat, budget = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
t0 = time.perf_counter()
api = __import__(module)
Flow, Run = api.Flow, api.Run
import_s = time.perf_counter() - t0
t0 = time.perf_counter()
latest = Flow(flow).latest_run.id
first_query_s = time.perf_counter() - t0
ops = {
    "latest_run": lambda: Flow(flow).latest_run.id,
    "latest_successful_run": lambda: Flow(flow).latest_successful_run.id,
    "iterate_runs": lambda: sum(1 for _ in Flow(flow)),
    "run_data": lambda: Run(flow + "/" + latest).data.total,
}
out = {"import_s": import_s, "first_query_s": first_query_s, "runs": ops["iterate_runs"]()}
for name, op in ops.items():
    start = time.perf_counter(); op(); first = time.perf_counter() - start
    n = max(3, min(repeat, int(budget / max(first, 1e-6))))
    samples = []
    for _ in range(n):
        start = time.perf_counter(); op(); samples.append(time.perf_counter() - start)
    out[name] = {"first_s": first, "warm_median_s": statistics.median(samples), "samples": n}
print(json.dumps(out))
"""


def env_for(store: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("METAFLOW_", "PLAIT_")) and k not in ("PYTHONPATH", "VIRTUAL_ENV")
    }
    env.update(
        USER=USER,
        USERNAME=USER,
        PLAIT_USER=USER,
        METAFLOW_USER=USER,
        PLAIT_HOME=str(store / "home"),
        METAFLOW_HOME=str(store / "home"),
    )
    return env


def check(argv: list[str], cwd: Path, env: dict[str, str], what: str) -> str:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{what} failed (exit {done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done.stdout


def build_store(name: str, python: str, store: Path, runs: int) -> None:
    """CLI runs first (if the store is new), then replication up to ``runs``."""
    store.mkdir(parents=True, exist_ok=True)
    env = env_for(store)
    flow_file = store / "client_bench_flow.py"
    source = FLOW_SOURCE if name == "metaflow" else FLOW_SOURCE.replace("from metaflow ", "from plait ")
    flow_file.write_text(source)
    marker = store / ".cli-runs-done"
    if not marker.exists():
        for i in range(CLI_RUNS):
            print(f"[{name}] CLI run {i + 1}/{CLI_RUNS}", flush=True)
            check([python, str(flow_file), "run", "--alpha", str(i)], store, env, f"{name} CLI run")
        marker.write_text("")
    print(f"[{name}] replicating to {runs} runs ...", flush=True)
    script = REPLICATE_METAFLOW if name == "metaflow" else REPLICATE_PLAIT
    count = check([python, "-c", script, FLOW, str(runs)], store, env, f"{name} replication").strip()
    print(f"[{name}] store has {count} runs", flush=True)


def measure(name: str, python: str, store: Path, repeat: int, budget: float) -> dict:
    out = check(
        [python, "-c", MEASURE, name, FLOW, str(repeat), str(budget)], store, env_for(store), f"{name} measurement"
    )
    return json.loads(out.strip().splitlines()[-1])


def pythons(args: argparse.Namespace) -> dict[str, str]:
    chosen = {"plait": args.plait_python, "metaflow": args.metaflow_python}
    missing = [n for n, p in chosen.items() if not p]
    if missing:
        sys.path.insert(0, str(BENCH_DIR))
        from plaitbench.envs import ensure_metaflow, ensure_plait

        if "plait" in missing:
            chosen["plait"] = str(ensure_plait(BENCH_DIR, REPO_DIR / "core").python)
        if "metaflow" in missing:
            chosen["metaflow"] = str(ensure_metaflow(BENCH_DIR).python)
    return chosen  # type: ignore[return-value]


def fmt(seconds: float) -> str:
    return f"{seconds * 1000:9.2f} ms" if seconds < 10 else f"{seconds:9.2f} s "


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=2000, help="runs in each store (default 2000)")
    parser.add_argument("--repeat", type=int, default=20, help="warm samples per operation (default 20)")
    parser.add_argument("--budget", type=float, default=20.0, help="max seconds of samples per operation")
    parser.add_argument(
        "--store", type=Path, default=None, help="keep the stores here and reuse them next time (default: a temp dir)"
    )
    parser.add_argument("--plait-python", default=None, help="interpreter with plait (default: benchmarks/.venv-plait)")
    parser.add_argument("--metaflow-python", default=None, help="interpreter with metaflow (default: .venv-metaflow)")
    parser.add_argument("--output", type=Path, default=None, help="also write the numbers as JSON here")
    args = parser.parse_args(argv)
    interpreters = pythons(args)
    tmp = None
    root = args.store
    if root is None:
        tmp = tempfile.mkdtemp(prefix="plait-client-bench-")
        root = Path(tmp)
    results = {}
    try:
        for name in ("plait", "metaflow"):
            store = root.resolve() / name
            build_store(name, interpreters[name], store, args.runs)
            results[name] = measure(name, interpreters[name], store, args.repeat, args.budget)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    p, m = results["plait"], results["metaflow"]
    print(f"\nClient API with {p['runs']} (Plait) / {m['runs']} (Metaflow) runs of one flow, warm process")
    print(f"{'operation':<24}{'plait':>14}{'metaflow':>14}{'metaflow/plait':>16}   (first call: plait, metaflow)")
    for op in ("latest_run", "latest_successful_run", "iterate_runs", "run_data"):
        pw, mw = p[op]["warm_median_s"], m[op]["warm_median_s"]
        print(
            f"{op:<24}{fmt(pw):>14}{fmt(mw):>14}{mw / pw:>15.1f}x   ({fmt(p[op]['first_s']).strip()}, "
            f"{fmt(m[op]['first_s']).strip()})"
        )
    print(f"{'import client':<24}{fmt(p['import_s']):>14}{fmt(m['import_s']):>14}")
    print(
        f"{'first latest_run':<24}{fmt(p['first_query_s']):>14}{fmt(m['first_query_s']):>14}"
        "   (new process: opens the store, loads plugins)"
    )
    ok = (
        p["latest_run"]["warm_median_s"] < 0.050
        and m["latest_run"]["warm_median_s"] >= 10 * p["latest_run"]["warm_median_s"]
    )
    print(f"\ntarget (latest_run < 50 ms warm and >= 10x faster than Metaflow): {'met' if ok else 'NOT met'}")
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(results, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
