"""plait-uv's hook implementations (the ``uv`` entry point of the ``plait`` group).

Kept import-light: this module loads in every Plait process, tasks included; everything
else is imported when a run actually has environment steps.
"""

from __future__ import annotations

import sys
from typing import Any

from plait.hookspecs import hookimpl
from plait.records import (
    CliCommandRecord,
    ComputeBackendRecord,
    EnvironmentRecord,
    FlowDecoratorRecord,
    StepDecoratorRecord,
)
from plait.runtime import prestart

_DECOS = "plait_uv.decorators"
STATE_KEY = "plait_uv"
#: Who the environment servers started at ``import plait`` belong to (plait.runtime.prestart).
PRESTART_OWNER = "uv"


@hookimpl
def plait_step_decorators() -> list[StepDecoratorRecord]:
    return [StepDecoratorRecord("pypi", f"{_DECOS}:PyPIStepDecorator"),
            StepDecoratorRecord("uv", f"{_DECOS}:UvStepDecorator")]


@hookimpl
def plait_flow_decorators() -> list[FlowDecoratorRecord]:
    return [FlowDecoratorRecord("pypi_base", f"{_DECOS}:PyPIFlowDecorator"),
            FlowDecoratorRecord("uv_base", f"{_DECOS}:UvFlowDecorator")]


@hookimpl
def plait_environments() -> list[EnvironmentRecord]:
    return [EnvironmentRecord("uv", "plait_uv.environment:UvEnvironment"),
            EnvironmentRecord("pypi", "plait_uv.environment:UvEnvironment")]


@hookimpl
def plait_compute_backends() -> list[ComputeBackendRecord]:
    return [ComputeBackendRecord("uv", "plait_uv.launcher:UvLocalCompute")]


@hookimpl
def plait_cli_commands() -> list[CliCommandRecord]:
    return [CliCommandRecord("environment", "plait_uv.cli:environment")]


@hookimpl
def plait_runtime_init(run: Any) -> None:
    """Resolve and build every environment the run needs before its first task: a bad spec,
    a missing Python or a package that does not build fails here, naming the step."""
    from plait_uv.args import ENVIRONMENT_NAMES, FLOW_DECORATORS, STEP_DECORATORS, option

    args = list(run.top_level_args)
    environment = option(args, "--environment")
    # Decided by name, without importing the heavier modules: most runs use no environment.
    uses = environment in ENVIRONMENT_NAMES or any(
        d.name in FLOW_DECORATORS for d in getattr(run.flow_cls, "_flow_decorators", [])
    ) or any(d.name in STEP_DECORATORS for node in run.graph
             for d in getattr(getattr(run.flow_cls, node.name), "decorators", []))
    if not uses:
        _forget_servers(run.flow_file)
        return
    from plait.services import compute_backend

    from plait_uv.environment import UvEnvironment, say

    state = UvEnvironment(run.flow_cls, run.graph, run.datastore.storage, environment,
                          option(args, "--datastore"), option(args, "--metadata"))
    if not state:
        _forget_servers(run.flow_file)
        return
    state.prepare(say=say)
    run.extra[STATE_KEY] = state
    from plait_uv.launcher import SERVER_ENV, server_for

    backend: Any = compute_backend("uv")
    base = [sys.executable, "-m", "plait", "_flow", run.flow_file, *args, "step"]
    servers = []
    for step in dict((python, step) for step, python in state.pythons.items()).values():
        command = state.command(step, base)
        if command is not None and backend.warm(command):
            servers.append(server_for(command))
    prestart.discard_unclaimed(PRESTART_OWNER)  # started early for an older version of the flow
    # The next run of this flow starts these servers at ``import plait``.
    unset, extra = SERVER_ENV
    prestart.remember(run.flow_file, PRESTART_OWNER,
                      [{"command": c, "unset": list(unset), "env": extra} for c in servers if c])


def _forget_servers(flow_file: str) -> None:
    """A run with no environment steps: stop and forget servers an older version started."""
    prestart.discard_unclaimed(PRESTART_OWNER)
    prestart.remember(flow_file, PRESTART_OWNER, [])


@hookimpl
def plait_task_command(run: Any, task: Any, command: list[str]) -> list[str] | None:
    state = run.extra.get(STATE_KEY)
    if state is None:
        return None
    result: list[str] | None = state.command(task.step, command)
    return result


@hookimpl
def plait_run_finished(run: Any, success: bool) -> None:
    run.extra.pop(STATE_KEY, None)
    if "plait_uv.launcher" in sys.modules:  # fork servers were (maybe) started: stop them
        from plait.services import compute_backend

        compute_backend("uv").shutdown()
