"""Plait: flows as Python classes, with Metaflow's API on a small pluggy core.

Only the flow-definition API is imported eagerly; the runtime, CLI, client (``Flow``,
``Run``, ``namespace``...), Runner and plugins load on first use so ``import plait`` stays fast.
"""

from __future__ import annotations

from typing import Any

from plait.runtime.prestart import start_early as _start_early

_start_early()  # first: helpers the last run of this flow used start while the rest imports

from plait.current import current  # noqa: E402
from plait.exceptions import MetaflowException, PlaitException  # noqa: E402
from plait.flowspec import FlowSpec, step  # noqa: E402
from plait.parameters import IncludeFile, JSONType, Parameter  # noqa: E402
from plait.version import __version__  # noqa: E402

__all__ = [
    "FlowSpec", "step", "Parameter", "IncludeFile", "JSONType", "current",
    "PlaitException", "MetaflowException", "__version__",
    "retry", "catch", "timeout", "environment", "resources",
    "Metaflow", "Flow", "Run", "Step", "Task", "DataArtifact", "namespace", "get_namespace",
    "default_namespace", "get_metadata", "default_metadata", "Runner", "NBRunner", "ExecutingRun",
]


def __getattr__(name: str) -> Any:
    """Decorators (built-in or from plugins) and plugin-provided names, loaded on demand."""
    if name.startswith("__"):
        raise AttributeError(name)
    from importlib.util import find_spec

    if find_spec(f"plait.{name}") is not None:  # a submodule (`from plait import config`)
        from importlib import import_module

        return import_module(f"plait.{name}")
    from plait.lazy_names import resolve

    value = resolve(name)
    globals()[name] = value
    return value
