"""What ``S3(run=self)`` needs to know inside a running task: the datastore root of this run.

Set by the ``plait_task_pre_step`` hook in the task process (forked or spawned alike).
"""

from __future__ import annotations

_task_root: list[str | None] = [None]


def set_task_root(root: str | None) -> None:
    _task_root[0] = root


def task_root() -> str | None:
    return _task_root[0]
