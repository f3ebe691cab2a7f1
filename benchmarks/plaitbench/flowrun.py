"""Run one benchmark flow under one framework in a fresh scratch directory."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .envs import Framework
from .measure import Measured, dir_size_mib, run_measured

RESULT_FILE = "bench_result.json"  # written by each flow's end step into its cwd
_IMPORT_LINE = re.compile(r"^from metaflow import ", re.MULTILINE)
_USER = "plaitbench"


class RunFailed(Exception):
    """A run exited non-zero, timed out, or produced a wrong result."""


@dataclass(frozen=True)
class Context:
    """What every run needs to know about this invocation."""

    flows_dir: Path
    scratch: Path  # every run gets a fresh directory under this
    timeout_s: float
    keep_failed: bool


@dataclass(frozen=True)
class FlowOutcome:
    measured: Measured
    result: dict[str, Any]  # what the end step wrote
    datastore_mib: float  # size of .plait / .metaflow after the run


def to_plait(source: str) -> str:
    """The Plait copy of a Metaflow flow: only the import line changes."""
    converted, count = _IMPORT_LINE.subn("from plait import ", source)
    if count != 1 or re.search(r"\bmetaflow\b", converted):
        raise ValueError("a benchmark flow must mention metaflow exactly once, in its import line")
    return converted


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of every run: no framework config leaking in from the caller's shell."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("METAFLOW_", "PLAIT_")) and key not in ("PYTHONPATH", "VIRTUAL_ENV")
    }
    env.update(USER=_USER, USERNAME=_USER)
    env.update(extra or {})
    return env


def run_flow(
    framework: Framework,
    ctx: Context,
    flow_file: str,
    args: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
    sample_tree_rss: bool = False,
) -> FlowOutcome:
    """`python <flow> run <args>` in a fresh cwd; RunFailed unless it exits 0 with a result."""
    run_dir = Path(tempfile.mkdtemp(prefix=f"{Path(flow_file).stem}-{framework.name}-", dir=ctx.scratch))
    work = run_dir / "work"
    work.mkdir()
    source = (ctx.flows_dir / flow_file).read_text()
    (work / flow_file).write_text(to_plait(source) if framework.name == "plait" else source)
    # An empty METAFLOW_HOME keeps any ~/.metaflowconfig out: Metaflow runs on its defaults.
    home = run_dir / "metaflow-home"
    home.mkdir()
    run_env = clean_env({"METAFLOW_HOME": str(home), **(env or {})})
    argv = [str(framework.python), flow_file, "run", *args]
    measured = run_measured(argv, work, run_env, run_dir, ctx.timeout_s, sample_tree_rss)
    where = f" (kept in {run_dir})" if ctx.keep_failed else ""
    try:
        result = _check_run(measured, work, run_dir, where)
    except RunFailed:
        if not ctx.keep_failed:
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    outcome = FlowOutcome(measured, result, dir_size_mib(work / framework.datastore_dir))
    shutil.rmtree(run_dir, ignore_errors=True)
    return outcome


def _check_run(measured: Measured, work: Path, run_dir: Path, where: str) -> dict[str, Any]:
    if measured.timed_out:
        raise RunFailed(f"timed out after {measured.wall_s:.0f} s{where}")
    if measured.returncode != 0:
        raise RunFailed(f"exit code {measured.returncode}{where}\n{_tail(run_dir)}")
    result_path = work / RESULT_FILE
    if not result_path.exists():
        raise RunFailed(f"exit code 0 but the end step wrote no {RESULT_FILE}{where}\n{_tail(run_dir)}")
    result: dict[str, Any] = json.loads(result_path.read_text())
    return result


def expect(result: dict[str, Any], key: str, wanted: object) -> None:
    """Raise RunFailed unless the flow's result has result[key] == wanted."""
    got = result.get(key)
    if got != wanted:
        raise RunFailed(f"wrong result: {key} = {got!r}, expected {wanted!r}")


def _tail(run_dir: Path, lines: int = 8) -> str:
    text = ""
    for name in ("stderr.log", "stdout.log"):
        path = run_dir / name
        if path.exists():
            text += path.read_text(errors="replace")
    return "\n".join("    " + line for line in text.strip().splitlines()[-lines:])
