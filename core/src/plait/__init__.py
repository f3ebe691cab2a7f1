"""Plait: flows as Python classes, with Metaflow's API on a small pluggy core.

Only the flow-definition API is imported eagerly; the runtime, CLI, client and plugins load
on first use so that ``import plait`` stays fast.
"""

from __future__ import annotations

from typing import Any

from plait.current import current
from plait.exceptions import MetaflowException, PlaitException
from plait.flowspec import FlowSpec, step
from plait.parameters import IncludeFile, JSONType, Parameter
from plait.version import __version__

__all__ = [
    "FlowSpec", "step", "Parameter", "IncludeFile", "JSONType", "current",
    "PlaitException", "MetaflowException", "__version__",
    "retry", "catch", "timeout", "environment", "resources",
]


def __getattr__(name: str) -> Any:
    """Decorators (built-in or from plugins) and plugin-provided names, loaded on demand."""
    if name.startswith("__"):
        raise AttributeError(name)
    from plait.lazy_names import resolve

    value = resolve(name)
    globals()[name] = value
    return value
