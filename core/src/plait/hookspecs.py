"""Every hook a Plait plugin can implement.

Registration hooks are called once per process when the plugin manager starts; they return
lists of typed records (see :mod:`plait.records`) and never mutate core state. Lifecycle hooks
follow one task's life, on the scheduler side (``plait_runtime_*``) and inside the task process
(``plait_task_*``). A plugin is a module (or object) with functions decorated by
:data:`hookimpl`, listed under the ``plait`` entry point group.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from plait.records import (
        CliCommandRecord,
        ComputeBackendRecord,
        DatastoreRecord,
        EnvironmentRecord,
        FlowDecoratorRecord,
        MetadataProviderRecord,
        SerializerRecord,
        StepDecoratorRecord,
    )
    from plait.runtime.context import RunContext, TaskContext, TaskSpec

PROJECT = "plait"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# -- registration -----------------------------------------------------------------------------
@hookspec
def plait_step_decorators() -> list[StepDecoratorRecord]:
    """Called once at start-up. Return the step decorators this plugin provides
    (``@retry``, ``@kubernetes``); each becomes importable as ``from plait import <name>``."""


@hookspec
def plait_flow_decorators() -> list[FlowDecoratorRecord]:
    """Called once at start-up. Return the flow-level decorators this plugin provides."""


@hookspec
def plait_cli_commands() -> list[CliCommandRecord]:
    """Called when the flow CLI is built. Return click commands/groups to add to it
    (``python flow.py <command>``)."""


@hookspec
def plait_datastores() -> list[DatastoreRecord]:
    """Called once at start-up. Return storage backends, selectable with ``--datastore NAME``
    or ``PLAIT_DATASTORE``."""


@hookspec
def plait_metadata_providers() -> list[MetadataProviderRecord]:
    """Called once at start-up. Return metadata providers, selectable with ``--metadata NAME``
    or ``PLAIT_METADATA``."""


@hookspec
def plait_compute_backends() -> list[ComputeBackendRecord]:
    """Called once at start-up. Return compute backends that can launch tasks; a step
    decorator selects one for its step through ``StepDecorator.compute_backend``."""


@hookspec
def plait_environments() -> list[EnvironmentRecord]:
    """Called once at start-up. Return environment managers, selectable with
    ``--environment NAME`` (per-step Python environments)."""


@hookspec
def plait_serializers() -> list[SerializerRecord]:
    """Called once at start-up. Return artifact serializers; they are tried before the
    built-in pickle serializer, in registration order."""


@hookspec
def plait_exports() -> dict[str, str]:
    """Called on ``from plait import NAME`` for a name the core does not define. Return
    ``{"NAME": "module:attribute"}`` for the names this plugin adds (``S3``)."""


# -- scheduler side ---------------------------------------------------------------------------
@hookspec
def plait_runtime_init(run: RunContext) -> None:
    """Called in the scheduler once the run id is allocated, before any task starts."""


@hookspec
def plait_runtime_task_created(run: RunContext, task: TaskSpec) -> None:
    """Called in the scheduler when a task (or a retry of it) is about to be launched."""


@hookspec
def plait_task_command(run: RunContext, task: TaskSpec, command: list[str]) -> list[str] | None:
    """Called when a task must run as a self-contained command (another interpreter, a
    container). Return a replacement command (e.g. wrapped in an environment), or None."""


@hookspec
def plait_run_finished(run: RunContext, success: bool) -> None:
    """Called in the scheduler after the last task, with whether the run succeeded."""


# -- task side ----------------------------------------------------------------------------------
@hookspec
def plait_task_pre_step(task: TaskContext) -> None:
    """Called inside the task process after inputs are loaded, before the step runs."""


@hookspec
def plait_task_decorate(task: TaskContext, step_func: Callable[[], Any]) -> Callable[[], Any] | None:
    """Called inside the task process; return a wrapped step function (or None to keep it).
    Wrappers compose: each plugin receives the function the previous one returned."""


@hookspec
def plait_task_post_step(task: TaskContext) -> None:
    """Called inside the task process after the step returned successfully, before persist."""


@hookspec(firstresult=True)
def plait_task_exception(task: TaskContext, exception: BaseException) -> bool | None:
    """Called inside the task process when the step raised. Return True to mark the exception
    handled (the task then succeeds, e.g. ``@catch``); the first True wins."""


@hookspec
def plait_task_finished(task: TaskContext, success: bool) -> None:
    """Called inside the task process after outputs and metadata are persisted."""


HOOKSPEC_NAMES: tuple[str, ...] = tuple(
    name for name in list(globals()) if name.startswith("plait_")
)
