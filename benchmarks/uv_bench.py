#!/usr/bin/env python3
"""plait-uv: time to first task of a step in a uv environment, cold and warm, against a
plain step and against bare ``uv venv && uv pip install``.

    python3 scripts/dev.py setup                 # plait + plait-uv into .venv
    .venv/bin/python benchmarks/uv_bench.py [--repeat 5] [--index offline|pypi] [--tasks 20]

``--index offline`` (default) resolves against a local folder of wheels made on the spot (a
tiny package plus Plait's runtime dependencies repacked from this interpreter), so only local
work is measured. ``--index pypi`` installs ``--package`` (default ``six==1.16.0``) from the
real index, with a cold uv cache as well (downloads included).

Metaflow's ``@pypi`` is not measured: it bootstraps micromamba from micro.mamba.pm and Python
itself from conda-forge, neither of which is reachable here (see benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TTFT_FLOW = """
import os, time
from plait import FlowSpec, step{imports}

class TtftFlow(FlowSpec):
{deco}    @step
    def start(self):
        with open(os.environ["BENCH_MARK"], "w") as f:
            f.write(repr(time.time()))
        import {module}
        self.next(self.end)

    @step
    def end(self):
        pass

if __name__ == "__main__":
    TtftFlow()
"""

FOREACH_FLOW = """
import os
from plait import FlowSpec, step{imports}

class ForeachFlow(FlowSpec):
    @step
    def start(self):
        self.items = list(range(int(os.environ["BENCH_TASKS"])))
        self.next(self.work, foreach="items")

{deco}    @step
    def work(self):
        import {module}
        self.square = self.input ** 2
        self.next(self.join)

    @step
    def join(self, inputs):
        self.total = sum(i.square for i in inputs)
        self.next(self.end)

    @step
    def end(self):
        pass

if __name__ == "__main__":
    ForeachFlow()
"""


def write_flow(folder: Path, template: str, name: str, package: str | None, module: str) -> Path:
    deco = f"    @uv(packages=[{package!r}])\n" if package else ""
    imports = ", uv" if package else ""
    path = folder / f"{name}.py"
    path.write_text(template.format(deco=deco, imports=imports, module=module))
    return path


class Bench:
    def __init__(self, args: argparse.Namespace, scratch: Path) -> None:
        self.args = args
        self.scratch = scratch
        self.uv_cache = scratch / "uv-cache-warm"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("PLAIT_", "UV_"))}
        for k in ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE"):
            self.env.pop(k, None)
        self.env.update({"PLAIT_HOME": str(scratch / "home"), "PLAIT_USER": "bench", "UV_PYTHON_DOWNLOADS": "never",
                         "PLAIT_CACHE_DIR": str(scratch / "plait-cache")})
        self.index_args: list[str] = []
        if args.index == "offline":
            from plait_uv.testing import make_wheel, runtime_wheelhouse

            wheels = scratch / "wheels"
            runtime_wheelhouse(wheels)
            make_wheel(wheels, "benchpkg", "1.0", modules={"benchpkg/data.py": "X = 1\n" * 200})
            self.package, self.module = "benchpkg==1.0", "benchpkg"
            self.env.update({"PLAIT_UV_FIND_LINKS": str(wheels), "PLAIT_UV_NO_INDEX": "1"})
            self.index_args = ["--find-links", str(wheels), "--no-index"]
        else:
            self.package = args.package
            self.module = args.module or args.package.split("==")[0].replace("-", "_")
        from plait_uv.runtime import runtime_dists, runtime_requirements
        from plait_uv.uvcmd import uv_bin

        self.runtime = list(runtime_requirements(runtime_dists(), set()))
        self.uv = uv_bin()
        self.n = 0

    def fresh(self, name: str) -> Path:
        self.n += 1
        d = self.scratch / f"{name}-{self.n}"
        d.mkdir()
        return d

    def run_flow(
        self, flow: Path, env_cache: Path, datastore: Path, uv_cache: Path, extra: dict[str, str] | None = None
    ) -> tuple[float, float]:
        """(seconds to the first line of the first task, seconds for the whole run)."""
        mark = self.scratch / f"mark-{self.n}"
        env = {
            **self.env,
            "PLAIT_UV_CACHE": str(env_cache),
            "PLAIT_DATASTORE_ROOT": str(datastore),
            "UV_CACHE_DIR": str(uv_cache),
            "BENCH_MARK": str(mark),
            "BENCH_TASKS": str(self.args.tasks),
            **(extra or {}),
        }
        start = time.time()
        proc = subprocess.run(
            [sys.executable, str(flow), "run", "--max-workers", "2"],
            cwd=self.scratch,
            env=env,
            capture_output=True,
            text=True,
        )
        total = time.time() - start
        if proc.returncode != 0:
            raise SystemExit(f"run of {flow.name} failed:\n{proc.stdout}\n{proc.stderr}")
        first = float(mark.read_text()) - start if mark.exists() else float("nan")
        if mark.exists():
            mark.unlink()
        return first, total

    def bare_uv(self, uv_cache: Path, with_runtime: bool) -> float:
        """``uv venv D && uv pip install --python D/bin/python PACKAGE``: the baseline."""
        target = self.fresh("bare") / "venv"
        env = {**self.env, "UV_CACHE_DIR": str(uv_cache)}
        packages = [self.package, *(self.runtime if with_runtime else [])]
        start = time.perf_counter()
        subprocess.run([self.uv, "venv", "--quiet", "--python", sys.executable, str(target)], env=env, check=True)
        subprocess.run(
            [
                self.uv,
                "pip",
                "install",
                "--quiet",
                "--python",
                str(target / "bin" / "python"),
                *self.index_args,
                *packages,
            ],
            env=env,
            check=True,
        )
        return time.perf_counter() - start

    def plait_create(self, uv_cache: Path) -> float:
        """Resolve + lock + build one environment (what a cold run does before its first task)."""
        code = (
            "import sys, time; from plait.datastore.local import LocalStorage; "
            "from plait_uv.envs import EnvManager; from plait_uv.spec import EnvSpec, IndexSettings; "
            "from plait_uv.runtime import runtime_dists, runtime_requirements, ensure_overlay; "
            "d = runtime_dists(); "
            f"spec = EnvSpec(({self.package!r},), '{{}}.{{}}'.format(*sys.version_info[:2]), IndexSettings.from_config(), "
            "runtime_requirements(d, set())); "
            "t = time.perf_counter(); m = EnvManager(LocalStorage(sys.argv[1])); p = m.ensure(spec, ['start']); "
            "ensure_overlay(m.cache_dir, d); print(time.perf_counter() - t, p.action)"
        )
        env = {**self.env, "PLAIT_UV_CACHE": str(self.fresh("cache")), "UV_CACHE_DIR": str(uv_cache)}
        out = subprocess.run(
            [sys.executable, "-c", code, str(self.fresh("ds"))], env=env, capture_output=True, text=True, check=True
        )
        seconds, action = out.stdout.split()
        assert action == "resolved", out.stdout
        return float(seconds)


def med(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:7.0f} ms (min {min(values) * 1000:.0f}, n={len(values)})"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--index", choices=["offline", "pypi"], default="offline")
    parser.add_argument("--package", default="six==1.16.0", help="with --index pypi: the one package")
    parser.add_argument("--module", default=None, help="its import name (default: from the package name)")
    parser.add_argument("--tasks", type=int, default=20, help="foreach width for the per-task overhead")
    parser.add_argument("--output", default=None, help="write the raw samples as JSON here")
    args = parser.parse_args(argv)

    scratch = Path(tempfile.mkdtemp(prefix="plait-uv-bench-"))
    try:
        bench = Bench(args, scratch)
        flows = scratch / "flows"
        flows.mkdir()
        ttft_plain = write_flow(flows, TTFT_FLOW, "ttft_plain", None, "json")
        ttft_uv = write_flow(flows, TTFT_FLOW, "ttft_uv", bench.package, bench.module)
        # Cold runs use their own flow file: a run of a flow remembers its environment's fork
        # server for the next run of that file (plait.runtime.prestart), and a cold run's
        # server lives in a throwaway cache, useless to the warm runs of ttft_uv.
        ttft_uv_cold = write_flow(flows, TTFT_FLOW, "ttft_uv_cold", bench.package, bench.module)
        each_plain = write_flow(flows, FOREACH_FLOW, "each_plain", None, "json")
        each_uv = write_flow(flows, FOREACH_FLOW, "each_uv", bench.package, bench.module)

        # Warm everything once: bytecode, uv's cache of the package, one built environment.
        warm_cache, warm_ds = scratch / "env-cache-warm", scratch / "ds-warm"
        for flow in (ttft_plain, ttft_uv, each_plain, each_uv):
            bench.run_flow(flow, warm_cache, warm_ds, bench.uv_cache)
        bench.bare_uv(bench.uv_cache, True)

        s: dict[str, list[float]] = {
            k: []
            for k in (
                "ttft_plain",
                "ttft_uv_warm",
                "ttft_uv_warm_new_file",
                "ttft_uv_cold",
                "ttft_uv_cold_uvcache",
                "run_plain",
                "run_uv_warm",
                "each_plain",
                "each_uv_warm",
                "each_uv_spawn",
                "create_plait",
                "bare_uv",
                "bare_uv_runtime",
                "create_plait_cold_uvcache",
                "bare_uv_cold_uvcache",
                "bare_uv_runtime_cold_uvcache",
            )
        }
        for _ in range(args.repeat):
            t, total = bench.run_flow(ttft_plain, warm_cache, warm_ds, bench.uv_cache)
            s["ttft_plain"].append(t)
            s["run_plain"].append(total)
            t, total = bench.run_flow(ttft_uv, warm_cache, warm_ds, bench.uv_cache)
            s["ttft_uv_warm"].append(t)
            s["run_uv_warm"].append(total)
            # The same environment, but a flow file never run before: nothing was remembered.
            new_file = write_flow(bench.fresh("flow"), TTFT_FLOW, "ttft_uv_new", bench.package, bench.module)
            s["ttft_uv_warm_new_file"].append(bench.run_flow(new_file, warm_cache, warm_ds, bench.uv_cache)[0])
            s["ttft_uv_cold"].append(
                bench.run_flow(ttft_uv_cold, bench.fresh("cache"), bench.fresh("ds"), bench.uv_cache)[0]
            )
            s["ttft_uv_cold_uvcache"].append(
                bench.run_flow(ttft_uv_cold, bench.fresh("cache"), bench.fresh("ds"), bench.fresh("uvc"))[0]
            )
            s["each_plain"].append(bench.run_flow(each_plain, warm_cache, warm_ds, bench.uv_cache)[1])
            s["each_uv_warm"].append(bench.run_flow(each_uv, warm_cache, warm_ds, bench.uv_cache)[1])
            s["each_uv_spawn"].append(
                bench.run_flow(each_uv, warm_cache, warm_ds, bench.uv_cache, {"PLAIT_UV_FORK_SERVER": "0"})[1]
            )
            s["create_plait"].append(bench.plait_create(bench.uv_cache))
            s["bare_uv"].append(bench.bare_uv(bench.uv_cache, False))
            s["bare_uv_runtime"].append(bench.bare_uv(bench.uv_cache, True))
            s["create_plait_cold_uvcache"].append(bench.plait_create(bench.fresh("uvc")))
            s["bare_uv_cold_uvcache"].append(bench.bare_uv(bench.fresh("uvc"), False))
            s["bare_uv_runtime_cold_uvcache"].append(bench.bare_uv(bench.fresh("uvc"), True))

        m = {k: statistics.median(v) for k, v in s.items()}
        n = args.tasks
        print(
            f"\nplait-uv benchmark: one step with {bench.package} ({args.index} index), python "
            f"{sys.version.split()[0]}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}, repeat {args.repeat}\n"
        )
        print("Time to first task (process start -> first line of the step)")
        print(f"  plain step (forked)                      {med(s['ttft_plain'])}")
        print(f"  @uv step, warm env cache                 {med(s['ttft_uv_warm'])}")
        print(f"  @uv step, warm env cache, new flow file  {med(s['ttft_uv_warm_new_file'])}")
        print(f"  @uv step, cold env cache (uv cache warm) {med(s['ttft_uv_cold'])}")
        print(f"  @uv step, cold env cache + cold uv cache {med(s['ttft_uv_cold_uvcache'])}")
        print(f"  => warm overhead of the first @uv task:  {(m['ttft_uv_warm'] - m['ttft_plain']) * 1000:.0f} ms "
              f"({(m['ttft_uv_warm_new_file'] - m['ttft_plain']) * 1000:.0f} ms in a flow file's first run)")
        print(f"\nPer-task overhead, foreach of {n} tasks in the step (whole run)")
        print(f"  plain                                    {med(s['each_plain'])}")
        print(f"  @uv, warm (env fork server)              {med(s['each_uv_warm'])}")
        print(f"  @uv, warm, PLAIT_UV_FORK_SERVER=0        {med(s['each_uv_spawn'])}")
        print(
            f"  => per task: fork server {(m['each_uv_warm'] - m['each_plain']) / n * 1000:.1f} ms, "
            f"spawning {(m['each_uv_spawn'] - m['each_plain']) / n * 1000:.1f} ms"
        )
        print("\nCold environment: resolve + lock + build (plait) vs bare uv venv && uv pip install")
        print(f"  plait-uv (uv cache warm)                 {med(s['create_plait'])}")
        print(f"  bare uv, the package alone               {med(s['bare_uv'])}")
        print(f"  bare uv, package + Plait's runtime deps  {med(s['bare_uv_runtime'])}")
        print(f"  plait-uv (uv cache cold)                 {med(s['create_plait_cold_uvcache'])}")
        print(f"  bare uv, the package alone (cache cold)  {med(s['bare_uv_cold_uvcache'])}")
        print(f"  bare uv, same package set (cache cold)   {med(s['bare_uv_runtime_cold_uvcache'])}")
        print(
            f"  => plait/bare, warm uv cache: {m['create_plait'] / m['bare_uv']:.2f}x vs the package alone, "
            f"{m['create_plait'] / m['bare_uv_runtime']:.2f}x vs the same package set"
        )
        print(
            f"  => plait/bare, cold uv cache: {m['create_plait_cold_uvcache'] / m['bare_uv_cold_uvcache']:.2f}x vs "
            f"the package alone, {m['create_plait_cold_uvcache'] / m['bare_uv_runtime_cold_uvcache']:.2f}x vs "
            "the same package set"
        )
        if args.output:
            Path(args.output).write_text(json.dumps({"args": vars(args), "samples": s}, indent=1))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
