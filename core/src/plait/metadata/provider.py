"""The metadata provider interface: what the runtime records and the client queries.

A provider stores runs, steps, tasks and attempts with their flags, tags and timestamps. It
never stores artifact values (that is the datastore's job). Implementations must be safe when
many processes (forked tasks, concurrent runs) write at once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass
class RunRecord:
    flow: str
    run_id: str
    user: str
    created_at: float
    tags: list[str] = field(default_factory=list)  # user tags, mutable
    system_tags: list[str] = field(default_factory=list)  # "user:alice", "runtime:local", ...
    finished_at: float | None = None
    success: bool | None = None  # None while running / unknown
    origin_run_id: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)  # JSON-able display values


@dataclass
class AttemptRecord:
    attempt: int
    started_at: float
    finished_at: float | None = None
    success: bool | None = None
    exception: str | None = None  # formatted traceback / message when it failed
    metadata: dict[str, Any] = field(default_factory=dict)  # free-form: resources, pid, host...


@dataclass
class TaskRecord:
    flow: str
    run_id: str
    step: str
    task_id: str
    created_at: float
    foreach_key: str = ""  # identity inside the run: foreach indices + visit number ("0.3#1")
    input_paths: list[str] = field(default_factory=list)  # "run/step/task"
    attempts: list[AttemptRecord] = field(default_factory=list)
    cloned_from: str | None = None  # pathspec of the origin task when cloned by resume

    @property
    def pathspec(self) -> str:
        return f"{self.flow}/{self.run_id}/{self.step}/{self.task_id}"

    @property
    def latest_attempt(self) -> AttemptRecord | None:
        return self.attempts[-1] if self.attempts else None

    @property
    def successful(self) -> bool:
        a = self.latest_attempt
        return bool(a and a.success)

    @property
    def finished(self) -> bool:
        a = self.latest_attempt
        return bool(a and a.finished_at is not None)


class MetadataProvider(ABC):
    """Records and answers questions about runs. One instance per process per root."""

    name: str = "abstract"

    def __init__(self, root: str) -> None:
        self.root = root

    # -- runs -----------------------------------------------------------------------------
    @abstractmethod
    def new_run(
        self,
        flow: str,
        user: str,
        tags: Iterable[str] = (),
        system_tags: Iterable[str] = (),
        origin_run_id: str | None = None,
        run_id: str | None = None,
    ) -> str:
        """Create a run and return its id. Distinct even for concurrent callers.

        ``run_id`` asks for a specific id; it raises :class:`plait.exceptions.PlaitException`
        if that id exists already.
        """

    @abstractmethod
    def set_run_parameters(self, flow: str, run_id: str, parameters: dict[str, Any]) -> None:
        """Record the run's parameter values (JSON-able display form)."""

    @abstractmethod
    def finish_run(self, flow: str, run_id: str, success: bool) -> None:
        """Mark the run finished (successfully or not) now."""

    @abstractmethod
    def get_run(self, flow: str, run_id: str) -> RunRecord | None:
        """The run, or None if it does not exist."""

    @abstractmethod
    def list_runs(self, flow: str, tags: Iterable[str] = (), limit: int | None = None) -> list[RunRecord]:
        """Runs of ``flow`` newest first, restricted to runs carrying all ``tags``
        (user or system tags). Must not read per-task data."""

    @abstractmethod
    def list_flows(self) -> list[str]:
        """Names of every flow with at least one run."""

    @abstractmethod
    def add_tags(self, flow: str, run_id: str, tags: Iterable[str]) -> None:
        """Add user tags to a run (idempotent)."""

    @abstractmethod
    def remove_tags(self, flow: str, run_id: str, tags: Iterable[str]) -> None:
        """Remove user tags from a run; system tags cannot be removed."""

    # -- read-side helpers for the client (defaults built on the methods above) -------------
    def iter_runs(self, flow: str, tags: Iterable[str] = (), success: bool | None = None,
                  page_size: int = 100) -> Iterator[RunRecord]:
        """Runs of ``flow`` newest first, lazily, restricted to runs carrying all ``tags``
        and, when ``success`` is not None, whose recorded outcome is ``success``.

        Taking the first item must not cost more than a page. The default pages through
        :meth:`list_runs` by growing ``limit``; providers override it with a real cursor.
        """
        tags = list(tags)
        seen = 0
        limit = max(int(page_size), 1)
        while True:
            page = self.list_runs(flow, tags, limit=limit)
            for record in page[seen:]:
                if success is None or record.success is success:
                    yield record
            if len(page) < limit:
                return
            seen = len(page)
            limit *= 4

    def replace_tags(self, flow: str, run_id: str, remove: Iterable[str], add: Iterable[str]) -> list[str]:
        """Remove then add user tags; returns the run's user tags afterwards. Tags that are
        already system tags of the run are not added. Providers make this atomic when they can."""
        if isinstance(remove, (str, bytes)) or isinstance(add, (str, bytes)):
            from plait.exceptions import PlaitException

            raise PlaitException("replace_tags takes lists of tags, not a string: wrap it in a list.")
        add = list(add)
        self.remove_tags(flow, run_id, remove)
        record = self.get_run(flow, run_id)
        system = set(record.system_tags) if record is not None else set()
        self.add_tags(flow, run_id, [t for t in add if t not in system])
        record = self.get_run(flow, run_id)
        return list(record.tags) if record is not None else []

    # -- tasks ----------------------------------------------------------------------------
    @abstractmethod
    def new_task(
        self,
        flow: str,
        run_id: str,
        step: str,
        task_id: str,
        foreach_key: str = "",
        input_paths: Iterable[str] = (),
        cloned_from: str | None = None,
    ) -> None:
        """Register a task (idempotent for the same ids)."""

    @abstractmethod
    def start_attempt(self, flow: str, run_id: str, step: str, task_id: str, attempt: int,
                      metadata: dict[str, Any] | None = None) -> None:
        """Record that ``attempt`` of the task started now."""

    @abstractmethod
    def finish_attempt(self, flow: str, run_id: str, step: str, task_id: str, attempt: int,
                       success: bool, exception: str | None = None,
                       metadata: dict[str, Any] | None = None) -> None:
        """Record the attempt's outcome. Only called after the datastore committed it."""

    @abstractmethod
    def list_steps(self, flow: str, run_id: str) -> list[str]:
        """Step names that have at least one task in the run, in first-created order."""

    @abstractmethod
    def list_tasks(self, flow: str, run_id: str, step: str | None = None) -> list[TaskRecord]:
        """Tasks of the run (or of one step), with their attempts, in creation order."""

    @abstractmethod
    def get_task(self, flow: str, run_id: str, step: str, task_id: str) -> TaskRecord | None:
        """One task with its attempts, or None."""
