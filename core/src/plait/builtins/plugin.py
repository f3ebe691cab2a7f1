"""Plait's built-in plugin: local storage, metadata and compute, the built-in decorators,
and the router that hands the task lifecycle hooks to the decorators of the running step.

It is registered through the same hooks an external plugin implements.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from plait.hookspecs import hookimpl
from plait.records import (
    ComputeBackendRecord,
    DatastoreRecord,
    MetadataProviderRecord,
    StepDecoratorRecord,
)
from plait.runtime.context import TaskContext

_DECOS = "plait.builtins.step_decorators"


@hookimpl
def plait_step_decorators() -> list[StepDecoratorRecord]:
    return [
        StepDecoratorRecord("retry", f"{_DECOS}:RetryDecorator"),
        StepDecoratorRecord("catch", f"{_DECOS}:CatchDecorator"),
        StepDecoratorRecord("timeout", f"{_DECOS}:TimeoutDecorator"),
        StepDecoratorRecord("environment", f"{_DECOS}:EnvironmentDecorator"),
        StepDecoratorRecord("resources", f"{_DECOS}:ResourcesDecorator"),
    ]


@hookimpl
def plait_datastores() -> list[DatastoreRecord]:
    return [DatastoreRecord("local", "plait.datastore.local:LocalStorage")]


@hookimpl
def plait_metadata_providers() -> list[MetadataProviderRecord]:
    return [MetadataProviderRecord("local", "plait.metadata.local:LocalMetadataProvider")]


@hookimpl
def plait_compute_backends() -> list[ComputeBackendRecord]:
    return [ComputeBackendRecord("local", "plait.builtins.local_compute:LocalCompute")]


# -- the decorator router: lifecycle hooks -> methods of the step's decorators ------------------
@hookimpl
def plait_task_pre_step(task: TaskContext) -> None:
    for deco in task.decorators:
        deco.task_pre_step(task)


@hookimpl
def plait_task_decorate(task: TaskContext, step_func: Callable[[], Any]) -> Callable[[], Any]:
    for deco in task.decorators:
        step_func = deco.task_decorate(step_func, task)
    return step_func


@hookimpl
def plait_task_post_step(task: TaskContext) -> None:
    for deco in task.decorators:
        deco.task_post_step(task)


@hookimpl
def plait_task_exception(task: TaskContext, exception: BaseException) -> bool | None:
    handled = False
    for deco in task.decorators:
        handled = deco.task_exception(exception, task) or handled
    return True if handled else None


@hookimpl
def plait_task_finished(task: TaskContext, success: bool) -> None:
    for deco in task.decorators:
        deco.task_finished(task, success)
