"""Which decorators a step carries, including those attached from the CLI with ``--with``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from plait.decorators import BadDecoratorError, StepDecorator, parse_with_spec

if TYPE_CHECKING:
    from plait.graph import FlowGraph


def step_decorators(flow_cls: type, step: str) -> list[StepDecorator]:
    """The decorator instances attached to ``step`` (statically or with ``--with``)."""
    return list(getattr(getattr(flow_cls, step), "decorators", []))


def attach_with_decorators(flow_cls: type, graph: FlowGraph, specs: list[str]) -> None:
    """Attach ``--with name:k=v`` decorators to every step that does not have one already.

    Idempotent: running it twice in one process (fork children, tests) attaches once.
    """
    from plait.plugins import get_plugin_manager

    pm = get_plugin_manager()
    for spec in specs:
        name, attrs = parse_with_spec(spec)
        cls: type[StepDecorator] = pm.get("step_decorators", name).load()
        for node in graph:
            func: Any = getattr(flow_cls, node.name)
            if any(d.name == cls.name for d in func.decorators):
                continue
            func.decorators.append(cls(attrs, statically_defined=False))


def init_decorators(flow_cls: type, graph: FlowGraph) -> None:
    """Let every decorator validate itself against the graph, before anything runs."""
    for node in graph:
        for deco in step_decorators(flow_cls, node.name):
            try:
                deco.step_init(flow_cls, graph, node.name)
            except BadDecoratorError as exc:
                raise BadDecoratorError(f"Step '{node.name}': {exc}", exc.lineno, exc.source_file) from None
    for fdeco in getattr(flow_cls, "_flow_decorators", []):
        fdeco.flow_init(flow_cls, graph)


def retry_limits(flow_cls: type, step: str) -> tuple[int, int]:
    """(user retries, fallback attempts) for a step: the largest any decorator asks for."""
    user = fallback = 0
    for deco in step_decorators(flow_cls, step):
        u, f = deco.retry_counts()
        user, fallback = max(user, u), max(fallback, f)
    return user, fallback
