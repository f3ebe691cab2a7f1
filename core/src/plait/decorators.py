"""Step and flow decorators: the base classes plugin authors subclass.

A decorator is applied above ``@step`` (``@retry(times=2)`` or bare ``@retry``); it never
wraps the function, it records an instance on ``func.decorators``. At run time the built-in
router plugin calls the lifecycle methods of the decorators attached to the running step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from plait.exceptions import PlaitException

if TYPE_CHECKING:
    from plait.graph import FlowGraph
    from plait.runtime.context import RunContext, TaskContext, TaskSpec


class BadDecoratorError(PlaitException):
    headline = "Invalid decorator"


class StepDecorator:
    """Base class of step decorators. Override only the hooks you need."""

    name: str = ""
    defaults: dict[str, Any] = {}
    allow_multiple: bool = False
    #: compute backend that launches this decorator's step ("local" when None).
    compute_backend: str | None = None

    def __init__(self, attributes: dict[str, Any] | None = None, statically_defined: bool = True) -> None:
        attributes = dict(attributes or {})
        unknown = sorted(set(attributes) - set(self.defaults))
        if unknown:
            raise BadDecoratorError(
                f"@{self.name} does not take {', '.join(repr(u) for u in unknown)}; it accepts "
                f"{', '.join(self.defaults) or 'no arguments'}."
            )
        self.attributes = {**self.defaults, **attributes}
        self.statically_defined = statically_defined

    # -- scheduler side -------------------------------------------------------------------
    def step_init(self, flow_cls: type, graph: FlowGraph, step_name: str) -> None:
        """Validate attributes once the graph is known (raise BadDecoratorError)."""

    def retry_counts(self) -> tuple[int, int]:
        """(user retries, extra fallback attempts) this decorator asks for."""
        return 0, 0

    def runtime_task_created(self, run: RunContext, task: TaskSpec) -> None:
        """The scheduler is about to launch ``task`` (or a retry of it)."""

    def retry_delay(self, retry_count: int) -> float:
        """Seconds the scheduler waits before launching retry number ``retry_count``."""
        return 0.0

    def hard_timeout(self) -> float | None:
        """Seconds after which the scheduler kills the task outright, if any."""
        return None

    # -- task side ------------------------------------------------------------------------
    def task_pre_step(self, task: TaskContext) -> None:
        """Inside the task, before the step function runs."""

    def task_decorate(self, step_func: Callable[[], Any], task: TaskContext) -> Callable[[], Any]:
        """Return the step function, possibly wrapped."""
        return step_func

    def task_post_step(self, task: TaskContext) -> None:
        """Inside the task, after the step returned, before its artifacts are persisted."""

    def task_exception(self, exception: BaseException, task: TaskContext) -> bool:
        """Return True to handle the step's exception (the task then succeeds)."""
        return False

    def task_finished(self, task: TaskContext, success: bool) -> None:
        """Inside the task, after everything was persisted."""

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.attributes.items() if v != self.defaults.get(k))
        return f"@{self.name}({args})"


class FlowDecorator:
    """Base class of flow-level decorators (applied to the FlowSpec subclass)."""

    name: str = ""
    defaults: dict[str, Any] = {}

    def __init__(self, attributes: dict[str, Any] | None = None) -> None:
        self.attributes = {**self.defaults, **(attributes or {})}

    def flow_init(self, flow_cls: type, graph: FlowGraph) -> None:
        """Validate and prepare once the graph is known."""


def make_step_decorator(cls: type[StepDecorator]) -> Callable[..., Any]:
    """The user-facing function for a StepDecorator class: ``@deco`` or ``@deco(**attrs)``."""

    def attach(func: Callable[..., Any], attributes: dict[str, Any]) -> Callable[..., Any]:
        if not getattr(func, "is_step", False):
            where = f"{func.__code__.co_filename}:{func.__code__.co_firstlineno}" if hasattr(func, "__code__") else ""
            raise BadDecoratorError(
                f"{where} @{cls.name} is applied to '{getattr(func, '__name__', func)}', which is "
                f"not a step. Put @{cls.name} above @step."
            )
        deco = cls(attributes)
        existing: list[StepDecorator] = func.decorators  # type: ignore[attr-defined]
        if not cls.allow_multiple and any(d.name == cls.name for d in existing):
            raise BadDecoratorError(f"Step '{func.__name__}' has @{cls.name} twice; keep one.")
        existing.append(deco)
        return func

    def decorator(func: Callable[..., Any] | None = None, **attributes: Any) -> Any:
        if func is not None and callable(func):
            return attach(func, attributes)
        return lambda f: attach(f, attributes)

    decorator.__name__ = cls.name
    decorator.__doc__ = cls.__doc__
    decorator.decorator_class = cls  # type: ignore[attr-defined]
    return decorator


def make_flow_decorator(cls: type[FlowDecorator]) -> Callable[..., Any]:
    """The user-facing function for a FlowDecorator class: ``@deco`` or ``@deco(**attrs)``."""

    def attach(flow_cls: type, attributes: dict[str, Any]) -> type:
        decos = list(getattr(flow_cls, "_flow_decorators", []))
        decos.append(cls(attributes))
        flow_cls._flow_decorators = decos  # type: ignore[attr-defined]
        return flow_cls

    def decorator(flow_cls: type | None = None, **attributes: Any) -> Any:
        if isinstance(flow_cls, type):
            return attach(flow_cls, attributes)
        return lambda c: attach(c, attributes)

    decorator.__name__ = cls.name
    decorator.__doc__ = cls.__doc__
    return decorator


def parse_with_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``--with retry:times=3,minutes_between_retries=0`` -> ("retry", {...})."""
    name, _, rest = spec.partition(":")
    attrs: dict[str, Any] = {}
    for part in filter(None, rest.split(",")):
        key, eq, value = part.partition("=")
        if not eq:
            raise BadDecoratorError(f"--with {spec}: expected key=value, got {part!r}.")
        attrs[key.strip()] = _literal(value.strip())
    return name.strip(), attrs


def _literal(text: str) -> Any:
    import ast

    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text
