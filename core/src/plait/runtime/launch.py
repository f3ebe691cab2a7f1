"""Start a run (or a resume) from the CLI, and run one task from the ``step`` command."""

from __future__ import annotations

import json
import platform
import sys
import time
from typing import TYPE_CHECKING, Any

from plait import config
from plait.datastore.types import AttemptIndex
from plait.exceptions import PlaitException
from plait.parameters import ParameterContext, flow_parameters, resolve_parameters
from plait.runtime import prestart
from plait.runtime.context import RunContext
from plait.runtime.decorators import attach_with_decorators, init_decorators
from plait.runtime.logs import console_time
from plait.runtime.task import PARAMETERS_STEP
from plait.services import compute_backend, open_datastore, open_metadata
from plait.version import __version__

if TYPE_CHECKING:
    from plait.cli import FlowState
    from plait.runtime.context import TaskSpec

PARAMETERS_TASK = "0"


def _say(text: str) -> None:
    sys.stdout.write(f"{console_time()} {text}\n")
    sys.stdout.flush()


def _display(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return repr(value)


def _snapshot_code(ds: Any, flow_file: str) -> dict[str, Any]:
    """Store the flow script (content-addressed: unchanged code costs nothing) for Run.code."""
    import os

    with open(flow_file, encoding="utf-8") as f:
        source = f.read()
    snapshot = {"script_name": os.path.basename(flow_file), "source": source, "plait_version": __version__}
    return ds.save_artifacts({"code": snapshot}, PARAMETERS_STEP)["code"].to_json()  # type: ignore[no-any-return]


def start_run(state: FlowState, given: dict[str, Any], tags: list[str], max_workers: int,
              max_num_splits: int, run_id_file: str | None, namespace: str | None,
              resume: tuple[str | None, str | None] | None = None) -> bool:
    """Lint, allocate the run, store its parameters and drive it. True when it succeeded."""
    from plait.plugins import get_plugin_manager
    from plait.runtime.resume import ResumePlan
    from plait.runtime.scheduler import Scheduler

    flow_cls, graph = state.flow_cls, state.graph
    flow = flow_cls.__name__
    attach_with_decorators(flow_cls, graph, state.with_)
    init_decorators(flow_cls, graph)
    user = config.username()
    ds = open_datastore(state.settings)
    md = open_metadata(state.settings, ds)
    pm = get_plugin_manager()

    plan = None
    origin_run_id = None
    if resume is not None:
        origin_run_id, resume_step = resume
        if origin_run_id is None:
            latest = md.list_runs(flow, limit=1)
            if not latest:
                raise PlaitException(f"There is no earlier run of {flow} to resume; run it first.")
            origin_run_id = latest[0].run_id
        plan = ResumePlan(flow, origin_run_id, graph, ds, md, resume_step)
        params_index = ds.read_index(flow, origin_run_id, PARAMETERS_STEP, PARAMETERS_TASK)
        if params_index is None:
            raise PlaitException(f"Run {flow}/{origin_run_id} has no stored parameters; it cannot be resumed.")
        param_refs = params_index.artifacts
        display = (md.get_run(flow, origin_run_id) or None)
        param_display = display.parameters if display else {}
    else:
        user_name = user
        values = resolve_parameters(flow_cls, given, lambda name: ParameterContext(
            flow, user_name, name, lambda *a, **k: None, state.settings.datastore))
        param_refs = ds.save_artifacts(values, PARAMETERS_STEP)
        param_display = {p.name: _display(values[attr]) for attr, p in flow_parameters(flow_cls)}

    system_tags = [f"user:{user}", "runtime:dev", f"python_version:{platform.python_version()}",
                   f"plait_version:{__version__}"]
    run_id = md.new_run(flow, user, tags, system_tags, origin_run_id=origin_run_id)
    if run_id_file:
        with open(run_id_file, "w", encoding="utf-8") as f:
            f.write(run_id)
    md.set_run_parameters(flow, run_id, param_display)
    ds.write_index(AttemptIndex(flow, run_id, PARAMETERS_STEP, PARAMETERS_TASK, 0, dict(param_refs),
                                {"next": ["start"], "code": _snapshot_code(ds, state.flow_file)},
                                True, time.time()))
    ctx = RunContext(flow_cls, graph, run_id, ds, md, state.flow_file, user, tags, origin_run_id,
                     state.top_level_args(), extra={"namespace": namespace})
    verb = f"Resuming run {origin_run_id} as" if origin_run_id else "Workflow starting"
    _say(f"{verb} (run-id {run_id}):")
    scheduler = Scheduler(ctx, pm.hook, compute_backend, max_workers, max_num_splits,
                          echo=not state.quiet, resume=plan)
    ok = False
    try:
        ok = scheduler.run(f"{run_id}/{PARAMETERS_STEP}/{PARAMETERS_TASK}")
    finally:
        md.finish_run(flow, run_id, ok)
        pm.hook.plait_run_finished(run=ctx, success=ok)
        prestart.discard_unclaimed()
    if ok:
        _say("Done!" + (f" ({plan.cloned} tasks cloned from run {origin_run_id})" if plan else ""))
    return ok


def run_task_command(state: FlowState, spec: TaskSpec, record_metadata: bool = True) -> int:
    """The ``step`` command: run one attempt of one task in this process."""
    from plait.plugins import get_plugin_manager
    from plait.runtime.task import execute_task

    attach_with_decorators(state.flow_cls, state.graph, state.with_)
    ds = open_datastore(state.settings)
    md = open_metadata(state.settings, ds)
    return execute_task(state.flow_cls, state.graph, spec, ds, md, get_plugin_manager().hook, record_metadata)
