"""The built-in step decorators: retry, catch, timeout, environment, resources."""

from __future__ import annotations

import os
import signal
import sys
import traceback
from collections.abc import Callable
from typing import Any

from plait.decorators import BadDecoratorError, StepDecorator
from plait.exceptions import StepTimeoutError
from plait.runtime.context import TaskContext


class RetryDecorator(StepDecorator):
    """Retry the step when it fails (an exception, a crash, a kill)."""

    name = "retry"
    defaults = {"times": 3, "minutes_between_retries": 2}

    def step_init(self, flow_cls: type, graph: Any, step_name: str) -> None:
        times = self.attributes["times"]
        if not isinstance(times, int) or isinstance(times, bool) or times < 0:
            raise BadDecoratorError(f"@retry(times={times!r}): times must be a non-negative integer.")
        minutes = self.attributes["minutes_between_retries"]
        if not isinstance(minutes, (int, float)) or minutes < 0:
            raise BadDecoratorError(f"@retry(minutes_between_retries={minutes!r}) must be a number >= 0.")

    def retry_counts(self) -> tuple[int, int]:
        return int(self.attributes["times"]), 0

    def retry_delay(self, retry_count: int) -> float:
        return float(self.attributes["minutes_between_retries"]) * 60.0


class ExceptionWrapper:
    """What ``@catch(var=...)`` stores: a picklable description of the step's exception."""

    def __init__(self, exc: BaseException | None = None, message: str = "") -> None:
        self.type = f"{type(exc).__module__}.{type(exc).__qualname__}" if exc is not None else "plait.Crash"
        self.message = str(exc) if exc is not None else message
        self.stacktrace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)) if exc else message
        self.exception = repr(exc) if exc is not None else message

    def __str__(self) -> str:
        return f"{self.type}: {self.message}"

    def __repr__(self) -> str:
        return f"ExceptionWrapper({self})"


class CatchDecorator(StepDecorator):
    """Turn a failure of the step's last attempt into an artifact, and let the flow go on."""

    name = "catch"
    defaults = {"var": None, "print_exception": True}

    def step_init(self, flow_cls: type, graph: Any, step_name: str) -> None:
        node = graph[step_name]
        if node.type == "split-switch":
            raise BadDecoratorError("@catch cannot be used on a switch step: it would not know which branch to take.")
        if node.type == "end":
            raise BadDecoratorError("@catch cannot be used on the end step; there is nothing to continue to.")

    def retry_counts(self) -> tuple[int, int]:
        return 0, 1  # one fallback attempt that records a crash without running the step

    def task_exception(self, exception: BaseException, task: TaskContext) -> bool:
        if task.retry_count < task.spec.max_user_retries:
            return False  # let @retry try again first
        if self.attributes["print_exception"]:
            from plait.runtime.task import describe_exception

            sys.stderr.write(f"@catch caught an exception from step '{task.step_name}':\n")
            sys.stderr.write(describe_exception(exception).rstrip("\n") + "\n")
        var = self.attributes["var"]
        if var:
            object.__setattr__(task.flow, var, ExceptionWrapper(exception))
        return True


class TimeoutDecorator(StepDecorator):
    """Fail the step if it runs longer than the given time (then @retry may retry it)."""

    name = "timeout"
    defaults = {"seconds": 0, "minutes": 0, "hours": 0}

    @property
    def total_seconds(self) -> float:
        a = self.attributes
        return float(a["seconds"]) + 60.0 * float(a["minutes"]) + 3600.0 * float(a["hours"])

    def step_init(self, flow_cls: type, graph: Any, step_name: str) -> None:
        if self.total_seconds <= 0:
            raise BadDecoratorError("@timeout needs a positive seconds=, minutes= or hours=.")

    def hard_timeout(self) -> float | None:
        return self.total_seconds + 10.0  # the scheduler's backstop if the step ignores SIGALRM

    def task_decorate(self, step_func: Callable[[], Any], task: TaskContext) -> Callable[[], Any]:
        limit = self.total_seconds

        def on_alarm(signum: int, frame: Any) -> None:
            raise StepTimeoutError(f"Step '{task.step_name}' exceeded its @timeout of {limit:g} seconds.")

        def timed() -> Any:
            previous = signal.signal(signal.SIGALRM, on_alarm)
            signal.setitimer(signal.ITIMER_REAL, limit)
            try:
                return step_func()
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, previous)

        return timed


class EnvironmentDecorator(StepDecorator):
    """Set environment variables for the step."""

    name = "environment"
    defaults: dict[str, Any] = {"vars": {}}

    def step_init(self, flow_cls: type, graph: Any, step_name: str) -> None:
        if not isinstance(self.attributes["vars"], dict):
            raise BadDecoratorError("@environment(vars=...) must be a dict of names to values.")

    def task_pre_step(self, task: TaskContext) -> None:
        os.environ.update({str(k): str(v) for k, v in self.attributes["vars"].items()})


class ResourcesDecorator(StepDecorator):
    """Declare what the step needs; remote backends size their containers from it."""

    name = "resources"
    defaults = {"cpu": 1, "gpu": None, "disk": None, "memory": 4096, "shared_memory": None}

    def task_pre_step(self, task: TaskContext) -> None:
        task.extra.setdefault("metadata", {})["resources"] = dict(self.attributes)
