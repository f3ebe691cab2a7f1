"""Metaflow, Flow, Run and Step: the containers of the client object tree.

Everything here reads run and task *metadata* only (a few indexed SQLite queries for the
local provider); no artifact, index or log is read until a Task's data is touched.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING

from plait.client.base import PARAMETERS_STEP, PARAMETERS_TASK, MetaflowObject, to_datetime
from plait.client.task import DataArtifact, MetaflowData, Task
from plait.exceptions import NamespaceMismatch, PlaitException, PlaitNotFound

if TYPE_CHECKING:
    from plait.client.code import MetaflowCode
    from plait.client.store import ClientStore
    from plait.metadata.provider import RunRecord, TaskRecord

__all__ = ["Metaflow", "Flow", "Run", "Step", "Task", "DataArtifact", "MetaflowData"]


class Metaflow:
    """Every flow with at least one run in the current namespace: ``[f.id for f in Metaflow()]``."""

    def __init__(self, _store: ClientStore | None = None) -> None:
        from plait.client.namespace import current_store

        self._store = _store or current_store()

    @property
    def flows(self) -> list[Flow]:
        return list(self)

    def __iter__(self) -> Iterator[Flow]:
        for name in self._store.md.list_flows():
            try:
                yield Flow(name, _store=self._store)
            except (NamespaceMismatch, PlaitNotFound):
                continue

    def __getitem__(self, name: str) -> Flow:
        return Flow(name, _store=self._store)

    def __contains__(self, name: str) -> bool:
        return name in self._store.md.list_flows()

    def __str__(self) -> str:
        return "Metaflow()"

    __repr__ = __str__

    def _ipython_key_completions_(self) -> list[str]:
        return [f.id for f in self]


class Flow(MetaflowObject):
    """All runs of one flow class. In a namespace when at least one of its runs is."""

    _NAME = "flow"
    _DEPTH = 1

    def _lookup(self) -> None:
        md, name = self._store.md, self.id
        self._in_ns = True
        if self._namespace_check:
            if next(md.iter_runs(name, [self._current_namespace], page_size=1), None) is not None:  # type: ignore[list-item]
                return
            self._in_ns = False
        if not md.list_runs(name, limit=1):
            raise PlaitNotFound(f"Flow('{name}') does not exist: no run of it is recorded in the metadata at "
                                f"{self._store.describe()}. Check the name (Metaflow().flows lists them) "
                                f"and the datastore root (PLAIT_DATASTORE_ROOT, metadata('local@ROOT')).")

    def _is_in_namespace(self, ns: str | None) -> bool:
        if ns is None:
            return True
        if ns == self._current_namespace and hasattr(self, "_in_ns"):
            return self._in_ns
        return next(self._store.md.iter_runs(self.id, [ns], page_size=1), None) is not None

    def _mismatch_message(self) -> str:
        return (f"Flow('{self.id}') has no run in the current namespace '{self._current_namespace}'. "
                f"Call namespace(None) to see every run, or namespace('user:NAME') for someone else's.")

    def _ns_tags(self, tags: Iterable[str]) -> list[str]:
        ns = [self._current_namespace] if self._namespace_check else []
        return [*ns, *tags]  # type: ignore[list-item]

    def _run(self, record: RunRecord) -> Run:
        return Run._child(self, [self.id, record.run_id], self._store, record)

    @property
    def latest_run(self) -> Run | None:
        """The newest run in the namespace (running, failed or successful)."""
        record = next(self._store.md.iter_runs(self.id, self._ns_tags(()), page_size=1), None)
        return None if record is None else self._run(record)

    @property
    def latest_successful_run(self) -> Run | None:
        """The newest run in the namespace that finished successfully."""
        record = next(self._store.md.iter_runs(self.id, self._ns_tags(()), success=True, page_size=1), None)
        return None if record is None else self._run(record)

    def runs(self, *tags: str) -> Iterator[Run]:
        """Runs newest first, in the namespace and carrying every tag in ``tags``."""
        for record in self._store.md.iter_runs(self.id, self._ns_tags(tags)):
            yield self._run(record)

    def __iter__(self) -> Iterator[Run]:
        return self.runs()

    def __getitem__(self, run_id: str) -> Run:
        record = self._store.md.get_run(self.id, str(run_id))
        if record is None:
            raise KeyError(run_id)
        run = self._run(record)
        if run._namespace_check and not run._is_in_namespace(run._current_namespace):
            raise NamespaceMismatch(run._mismatch_message())
        return run

    def __contains__(self, run_id: str) -> bool:
        return self._store.md.get_run(self.id, str(run_id)) is not None

    @property
    def created_at(self) -> datetime | None:
        """When the first recorded run of the flow was created."""
        oldest = None
        for record in self._store.md.iter_runs(self.id, page_size=2000):
            oldest = record.created_at
        return to_datetime(oldest)


class Run(MetaflowObject):
    """One execution of a flow: a container of steps (newest first; ``_parameters`` hidden)."""

    _NAME = "run"
    _DEPTH = 2

    def _lookup(self) -> None:
        self._run_record = self._fetch_run_record()

    @property
    def _record(self) -> RunRecord:
        assert self._run_record is not None
        return self._run_record

    # -- children -----------------------------------------------------------------------------
    def _step(self, name: str, tasks: list[TaskRecord]) -> Step:
        step = Step._child(self, [*self._components, name], self._store, self._run_record)
        step._task_records = tasks
        return step

    def __iter__(self) -> Iterator[Step]:
        by_step: dict[str, list[TaskRecord]] = {}
        for task in self._store.md.list_tasks(self._components[0], self.id):
            by_step.setdefault(task.step, []).append(task)
        for name in reversed(list(by_step)):
            if not name.startswith("_"):
                yield self._step(name, by_step[name])

    def steps(self, *tags: str) -> Iterator[Step]:
        return self._filtered_children(*tags)

    def _step_tasks(self, name: str) -> list[TaskRecord]:
        tasks = self._store.md.list_tasks(self._components[0], self.id, name)
        if not tasks and name == PARAMETERS_STEP:
            tasks = _parameters_task(self)
        return tasks

    def __getitem__(self, name: str) -> Step:
        tasks = self._step_tasks(name)
        if not tasks:
            raise KeyError(name)
        return self._step(name, tasks)

    def __contains__(self, name: str) -> bool:
        return bool(self._step_tasks(name))

    # -- outcome ------------------------------------------------------------------------------
    @property
    def end_task(self) -> Task | None:
        """The task of the ``end`` step, or None if it has not run (yet)."""
        try:
            return self["end"].task
        except KeyError:
            return None

    @property
    def data(self) -> MetaflowData | None:
        """The end task's artifacts (``run.data.x``); None if ``end`` has not run."""
        end = self.end_task
        return end.data if end is not None else None

    @property
    def successful(self) -> bool:
        """True when the run finished successfully (its ``end`` step succeeded)."""
        if self._record.success is not None:
            return bool(self._record.success)
        end = self.end_task
        return bool(end is not None and end.successful)

    @property
    def finished(self) -> bool:
        """True when the ``end`` step completed (as in Metaflow, a failed run is not finished)."""
        if self._record.success is False:
            return False
        end = self.end_task
        return bool(end is not None and end.finished)

    @property
    def finished_at(self) -> datetime | None:
        """When the ``end`` step finished; None if it did not."""
        end = self.end_task
        return end.finished_at if end is not None else None

    @property
    def created_at(self) -> datetime:
        return to_datetime(self._record.created_at)  # type: ignore[return-value]

    @property
    def code(self) -> MetaflowCode | None:
        """The flow script this run executed (None for runs that stored none)."""
        from plait.client.code import load_code

        return load_code(self._store, self._components[0], self.id)

    @property
    def trigger(self) -> None:
        return None

    @property
    def origin_pathspec(self) -> str | None:
        """``Flow/run`` this run resumed, or None."""
        origin = self._record.origin_run_id
        return f"{self._components[0]}/{origin}" if origin else None

    # -- tags -----------------------------------------------------------------------------------
    def add_tag(self, tag: str | Iterable[str]) -> None:
        """Add a user tag (a tag that is already a system tag is silently not added)."""
        self.replace_tags([], _tags(tag, single=True))

    def add_tags(self, tags: Iterable[str]) -> None:
        self.replace_tags([], tags)

    def remove_tag(self, tag: str | Iterable[str]) -> None:
        """Remove a user tag (removing one that is not there does nothing; a system tag: error)."""
        self.replace_tags(_tags(tag, single=True), [])

    def remove_tags(self, tags: Iterable[str]) -> None:
        self.replace_tags(tags, [])

    def replace_tag(self, tag_to_remove: str | Iterable[str], tag_to_add: str | Iterable[str]) -> None:
        self.replace_tags(_tags(tag_to_remove, single=True), _tags(tag_to_add, single=True))

    def replace_tags(self, tags_to_remove: Iterable[str], tags_to_add: Iterable[str]) -> None:
        """Remove then add, in one step: other processes see the old tags or the new ones."""
        remove, add = _tags(tags_to_remove), _tags(tags_to_add)
        latest = self._store.md.get_run(self._components[0], self.id) or self._record
        system = [t for t in remove if t in latest.system_tags]
        if system:
            raise PlaitException(f"Cannot remove {', '.join(repr(t) for t in system)} from {self!r}: "
                                 "system tags are fixed; only user tags can be removed.")
        user_tags = self._store.md.replace_tags(self._components[0], self.id, remove, add)
        from dataclasses import replace

        self._run_record = replace(latest, tags=list(user_tags))


def _tags(value: object, single: bool = False) -> list[str]:
    """A list of valid tags from a tag (``single``) or an iterable of tags."""
    if isinstance(value, str) and single:
        items: list[object] = [value]
    elif isinstance(value, (str, bytes)):
        raise PlaitException("add_tags/remove_tags/replace_tags take lists of tags; use add_tag, "
                             "remove_tag or replace_tag for a single tag.")
    elif isinstance(value, Iterable):
        items = list(value)
    else:
        items = [value]
    for tag in items:
        if not isinstance(tag, str) or not tag:
            raise PlaitException(f"Invalid tag {tag!r}: a tag is a non-empty string.")
    return items  # type: ignore[return-value]


class Step(MetaflowObject):
    """The tasks of one step of a run (newest first; one task unless in a foreach)."""

    _NAME = "step"
    _DEPTH = 3
    _task_records: list[TaskRecord]

    def _lookup(self) -> None:
        self._run_record = self._fetch_run_record()
        run = Run._child(None, self._components[:2], self._store, self._run_record)
        self._task_records = run._step_tasks(self.id)
        if not self._task_records:
            raise self._not_found()

    def _task(self, record: TaskRecord) -> Task:
        return Task._from_record(self, record, self._store, self._run_record)

    def __iter__(self) -> Iterator[Task]:
        for record in reversed(self._task_records):
            yield self._task(record)

    def tasks(self, *tags: str) -> Iterator[Task]:
        return self._filtered_children(*tags)

    @property
    def task(self) -> Task | None:
        """A task of the step (the newest): the only one outside a foreach."""
        return next(iter(self), None)

    def __getitem__(self, task_id: str) -> Task:
        for record in self._task_records:
            if record.task_id == str(task_id):
                return self._task(record)
        found = self._store.md.get_task(self._components[0], self._components[1], self.id, str(task_id))
        if found is None:
            raise KeyError(task_id)
        return self._task(found)

    def __contains__(self, task_id: str) -> bool:
        try:
            self[task_id]
        except KeyError:
            return False
        return True

    @property
    def created_at(self) -> datetime | None:
        return to_datetime(min(r.created_at for r in self._task_records))

    @property
    def finished_at(self) -> datetime | None:
        """When the last task of the step finished; None while any task has not."""
        times = [r.latest_attempt.finished_at if r.latest_attempt else None for r in self._task_records]
        if not times or any(t is None for t in times):
            return None
        return to_datetime(max(times))  # type: ignore[type-var]

    @property
    def environment_info(self) -> None:
        return None

    @property
    def origin_pathspec(self) -> str | None:
        rec = self._run_record
        if rec is None or not rec.origin_run_id:
            return None
        return f"{self._components[0]}/{rec.origin_run_id}/{self.id}"

    def _run_tasks(self) -> list[TaskRecord]:
        return self._store.md.list_tasks(self._components[0], self._components[1])

    def _related(self, names: list[str]) -> Iterator[Step]:
        for name in names:
            yield Step(f"{self._components[0]}/{self._components[1]}/{name}", _namespace_check=False,
                       _store=self._store)

    @property
    def parent_steps(self) -> Iterator[Step]:
        """Steps whose tasks fed this step, as the run executed them."""
        names: dict[str, None] = {}
        for record in self._task_records:
            for path in record.input_paths:
                step = path.split("/")[1]
                if not step.startswith("_"):
                    names[step] = None
        return self._related(list(names))

    @property
    def child_steps(self) -> Iterator[Step]:
        """Steps that took this step's tasks as inputs, as the run executed them."""
        mine = {f"{r.run_id}/{r.step}/{r.task_id}" for r in self._task_records}
        names: dict[str, None] = {}
        for record in self._run_tasks():
            if any(p in mine for p in record.input_paths):
                names[record.step] = None
        return self._related(list(names))


def _parameters_task(run: Run) -> list[TaskRecord]:
    """The ``_parameters`` pseudo-task, which has an index in the datastore but no metadata."""
    from plait.metadata.provider import AttemptRecord, TaskRecord

    flow = run._components[0]
    index = run._store.ds.read_index(flow, run.id, PARAMETERS_STEP, PARAMETERS_TASK, 0)
    if index is None:
        return []
    created = run._record.created_at
    attempt = AttemptRecord(0, index.started_at or created, index.finished_at or created, index.success)
    return [TaskRecord(flow, run.id, PARAMETERS_STEP, PARAMETERS_TASK, created, attempts=[attempt])]

