"""``current``: where the running task is (flow, run, step, task, attempt, user, tags).

Outside a running task every field reads as None (``is_running_flow`` is False), as users
of Metaflow expect when they import a flow module in a notebook.
"""

from __future__ import annotations

from typing import Any


class Current:
    """A read-only view of the running task; the task runner fills it in."""

    def __init__(self) -> None:
        self._fields: dict[str, Any] = {}
        self._extra: dict[str, Any] = {}

    def _set(self, **fields: Any) -> None:
        self._fields = dict(fields)

    def _update(self, **fields: Any) -> None:
        self._fields.update(fields)

    def _clear(self) -> None:
        self._fields = {}

    def _add(self, name: str, value: Any) -> None:
        """Plugins add objects (``current.card``-style) under a new name."""
        self._extra[name] = value

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        if name in self._extra:
            return self._extra[name]
        if name in _FIELDS:
            return self._fields.get(name)
        raise AttributeError(f"current has no attribute {name!r} (known: {', '.join(_FIELDS)})")

    @property
    def is_running_flow(self) -> bool:
        return bool(self._fields.get("run_id"))

    @property
    def pathspec(self) -> str | None:
        f = self._fields
        if not f.get("task_id"):
            return None
        return f"{f['flow_name']}/{f['run_id']}/{f['step_name']}/{f['task_id']}"

    def get(self, name: str, default: Any = None) -> Any:
        value = getattr(self, name, None)
        return default if value is None else value

    def __contains__(self, name: str) -> bool:
        return name in self._extra or self._fields.get(name) is not None

    def __repr__(self) -> str:
        return f"current({self.pathspec or 'not running'})"


_FIELDS = (
    "flow_name",
    "run_id",
    "step_name",
    "task_id",
    "retry_count",
    "origin_run_id",
    "namespace",
    "username",
    "tags",
    "parameter_names",
    "is_production",
    "graph",
    "flow",
)

current = Current()
