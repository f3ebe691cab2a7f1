"""Per-task data: attempt indexes (the commit points) and logs, next to the shared blobs.

Layout under the root::

    blobs/<sha[:2]>/<sha>                                      shared by every flow
    <flow>/<run_id>/<step>/<task_id>/<attempt>.index.json      written last, atomically
    <flow>/<run_id>/<step>/<task_id>/<attempt>.<stdout|stderr>.log

An attempt exists for readers exactly when its index file exists.
"""

from __future__ import annotations

import json
import os
import re

from .content import ContentStore
from .types import AttemptIndex

_INDEX_RE = re.compile(r"^(\d+)\.index\.json$")
STREAMS = ("stdout", "stderr")


def _check_component(kind: str, value: str) -> str:
    value = str(value)
    if not value or "/" in value or "\\" in value or value in (".", "..") or value.startswith("."):
        raise ValueError(f"Invalid {kind} {value!r} for a datastore path")
    return value


class FlowDataStore(ContentStore):
    """Artifacts (via :class:`ContentStore`) plus attempt indexes and logs for tasks."""

    # -- paths -------------------------------------------------------------------------------

    def task_dir(self, flow: str, run_id: str, step: str, task_id: str) -> str:
        parts = [("flow", flow), ("run id", run_id), ("step", step), ("task id", task_id)]
        return "/".join(_check_component(k, v) for k, v in parts)

    def index_path(self, flow: str, run_id: str, step: str, task_id: str, attempt: int) -> str:
        return f"{self.task_dir(flow, run_id, step, task_id)}/{int(attempt)}.index.json"

    def log_path(self, flow: str, run_id: str, step: str, task_id: str, attempt: int, stream: str) -> str:
        """Storage-relative path of one log stream."""
        if stream not in STREAMS:
            raise ValueError(f"Log stream must be one of {STREAMS}, got {stream!r}")
        return f"{self.task_dir(flow, run_id, step, task_id)}/{int(attempt)}.{stream}.log"

    def local_log_path(self, flow: str, run_id: str, step: str, task_id: str, attempt: int, stream: str) -> str | None:
        """OS path a live writer can append to (parent dir created), or None if not local.

        When None, capture the stream to a local temp file and :meth:`save_log` it at the end.
        """
        path = self.storage.local_path(self.log_path(flow, run_id, step, task_id, attempt, stream))
        if path is not None:
            os.makedirs(os.path.dirname(path), exist_ok=True)
        return path

    # -- indexes -----------------------------------------------------------------------------

    def write_index(self, index: AttemptIndex) -> None:
        """Commit an attempt. Call it after every blob and log of the attempt is written."""
        path = self.index_path(index.flow, index.run_id, index.step, index.task_id, index.attempt)
        data = json.dumps(index.to_json(), separators=(",", ":"), sort_keys=True).encode()
        self.storage.write_atomic(path, [data])

    def read_index(
        self, flow: str, run_id: str, step: str, task_id: str, attempt: int | None = None
    ) -> AttemptIndex | None:
        """A committed attempt's index; ``attempt=None`` means the highest committed attempt.

        None if that attempt (or any attempt) has not committed.
        """
        if attempt is None:
            attempts = self.list_attempts(flow, run_id, step, task_id)
            if not attempts:
                return None
            attempt = attempts[-1]
        try:
            data = self.storage.read(self.index_path(flow, run_id, step, task_id, attempt))
        except FileNotFoundError:
            return None
        return AttemptIndex.from_json(json.loads(data))

    def list_attempts(self, flow: str, run_id: str, step: str, task_id: str) -> list[int]:
        """Committed attempt numbers, ascending."""
        names = self.storage.list_dir(self.task_dir(flow, run_id, step, task_id))
        return sorted(int(m.group(1)) for m in map(_INDEX_RE.match, names) if m)

    def list_tasks(self, flow: str, run_id: str, step: str) -> list[str]:
        """Task ids with any data (committed or not) under a step."""
        path = "/".join(_check_component(k, v) for k, v in (("flow", flow), ("run id", run_id), ("step", step)))
        return self.storage.list_dir(path)

    def list_steps(self, flow: str, run_id: str) -> list[str]:
        """Step names with any data under a run."""
        return self.storage.list_dir(f"{_check_component('flow', flow)}/{_check_component('run id', run_id)}")

    # -- logs --------------------------------------------------------------------------------

    def save_log(self, flow: str, run_id: str, step: str, task_id: str, attempt: int, stream: str, data: bytes) -> None:
        """Store a whole log stream atomically (replaces any previous content)."""
        self.storage.write_atomic(self.log_path(flow, run_id, step, task_id, attempt, stream), [data])

    def load_log(self, flow: str, run_id: str, step: str, task_id: str, attempt: int, stream: str) -> bytes:
        """A log stream's bytes, ``b""`` if none was written."""
        try:
            return self.storage.read(self.log_path(flow, run_id, step, task_id, attempt, stream))
        except FileNotFoundError:
            return b""
