"""The client API: look at past and running flows, exactly as with Metaflow's client.

    from plait import Flow, Run, namespace
    run = Flow("HelloFlow").latest_successful_run
    run.data.result, run["work"].task.stdout

Objects are built from pathspecs (``Run("HelloFlow/1732")``), are iterable (a Flow yields
runs, a Run steps, a Step tasks, a Task artifacts), indexable and support ``in``.
"""

from __future__ import annotations

from plait.client.base import InvalidPathspec, MetaflowInvalidPathspec, MetaflowObject
from plait.client.namespace import (
    default_metadata,
    default_namespace,
    get_metadata,
    get_namespace,
    metadata,
    namespace,
)
from plait.client.objects import Flow, Metaflow, Run, Step
from plait.client.task import DataArtifact, Metadata, MetaflowData, Task, TaskException

__all__ = [
    "Metaflow", "Flow", "Run", "Step", "Task", "DataArtifact", "MetaflowData", "MetaflowObject",
    "Metadata", "TaskException", "InvalidPathspec", "MetaflowInvalidPathspec",
    "namespace", "get_namespace", "default_namespace", "metadata", "get_metadata", "default_metadata",
]
