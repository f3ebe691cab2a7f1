"""Task, DataArtifact and MetaflowData: one task's attempts, artifacts, logs and metadata.

A Task reads its attempt index (one small file) only when its artifacts are first needed,
and an artifact's value only when ``.data`` is touched; both are cached on the object, and
blob bytes are shared through the store's cache.
"""

from __future__ import annotations

import json
import re
from collections import namedtuple
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, NamedTuple

from plait.client.base import PARAMETERS_STEP, MetaflowObject, to_datetime
from plait.exceptions import PlaitNotFound

if TYPE_CHECKING:
    from plait.client.code import MetaflowCode
    from plait.client.store import ClientStore
    from plait.datastore.types import ArtifactRef, AttemptIndex
    from plait.metadata.provider import AttemptRecord, RunRecord, TaskRecord

FOREACH_STACK = "_foreach_stack"
_MISSING: Any = object()
_TYPE_RE = re.compile(r"^[A-Za-z_][\w.]*$")


class Metadata(NamedTuple):
    """One metadata entry of a task (``Task.metadata``)."""

    name: str
    value: str
    created_at: float
    type: str
    task: Any


class TaskException:
    """What ``Task.exception`` returns for a failed attempt: the error as the task reported it.

    ``str()`` is the whole report (traceback included); ``type`` and ``message`` come from its
    last line (``ValueError`` / ``kaboom``); ``stacktrace`` is the whole report too.
    """

    def __init__(self, text: str) -> None:
        self.stacktrace = text
        lines = [line for line in text.strip().splitlines() if line.strip()]
        last = lines[-1].strip() if lines else ""
        prefix, sep, message = last.partition(": ")
        if sep and _TYPE_RE.match(prefix):
            self.type, self.message = prefix, message
        else:
            self.type, self.message = "PlaitException", last
        self.exception = last

    def __str__(self) -> str:
        return self.stacktrace

    def __repr__(self) -> str:
        return f"TaskException({self.exception!r})"


class MetaflowData:
    """A task's artifacts by attribute: ``task.data.model``; ``"model" in task.data``."""

    def __init__(self, artifacts: dict[str, DataArtifact]) -> None:
        self._artifacts = artifacts

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "_artifacts":
            raise AttributeError(name)
        artifact = self._artifacts.get(name)
        if artifact is None:
            raise AttributeError(f"No artifact '{name}' in this task (it has: "
                                 f"{', '.join(self._artifacts) or 'none'}).")
        return artifact.data

    def __contains__(self, name: str) -> bool:
        return name in self._artifacts

    def __dir__(self) -> list[str]:
        return [*self._artifacts, *object.__dir__(self)]

    def __str__(self) -> str:
        return f"<MetaflowData: {', '.join(self._artifacts)}>"

    __repr__ = __str__


class Task(MetaflowObject):
    """One execution of a step. ``Task(pathspec, attempt=k)`` looks at a specific attempt;
    otherwise the latest attempt (its artifacts come from the latest finished one)."""

    _NAME = "task"
    _DEPTH = 4
    _ATTEMPTS = True
    _record: TaskRecord

    def _lookup(self) -> None:
        self._run_record = self._fetch_run_record()
        flow, run_id, step, task_id = self._components
        if step == PARAMETERS_STEP:
            from plait.client.objects import Run, _parameters_task

            run = Run._child(None, self._components[:2], self._store, self._run_record)
            records = [r for r in _parameters_task(run) if r.task_id == task_id]
            record = records[0] if records else None
        else:
            record = self._store.md.get_task(flow, run_id, step, task_id)
        if record is None:
            raise self._not_found()
        self._setup(record)

    @classmethod
    def _from_record(cls, parent: MetaflowObject | None, record: TaskRecord, store: ClientStore,
                     run_record: RunRecord | None) -> Task:
        task = cls._child(parent, [record.flow, record.run_id, record.step, record.task_id], store, run_record)
        task._setup(record)
        return task

    def _setup(self, record: TaskRecord) -> None:
        self._record = record
        self._index_cache: AttemptIndex | None = _MISSING
        self._artifact_cache: dict[str, DataArtifact] | None = None
        if self._attempt is not None and self._attempt_record() is None:
            known = ", ".join(str(a.attempt) for a in record.attempts) or "none"
            raise PlaitNotFound(f"{self!r} does not exist: the task's attempts are {known}.")

    # -- attempts -----------------------------------------------------------------------------
    def _attempt_record(self) -> AttemptRecord | None:
        attempts = self._record.attempts
        if self._attempt is not None:
            return next((a for a in attempts if a.attempt == self._attempt), None)
        return attempts[-1] if attempts else None

    @property
    def current_attempt(self) -> int:
        """The attempt this object looks at: the one asked for, else the latest started."""
        if self._attempt is not None:
            return self._attempt
        latest = self._attempt_record()
        return latest.attempt if latest is not None else 0

    def _index(self) -> AttemptIndex | None:
        if self._index_cache is _MISSING or self._index_cache is None:
            ds = self._store.ds
            flow, run_id, step, task_id = self._components
            if self._attempt is not None:
                index = ds.read_index(flow, run_id, step, task_id, self._attempt)
            else:
                done = [a.attempt for a in self._record.attempts if a.finished_at is not None]
                index = ds.read_index(flow, run_id, step, task_id, done[-1]) if done else None
                if index is None:
                    index = ds.read_index(flow, run_id, step, task_id)
            self._index_cache = index
        return self._index_cache

    # -- artifacts ----------------------------------------------------------------------------
    def _artifacts(self) -> dict[str, DataArtifact]:
        if self._artifact_cache is not None:
            return self._artifact_cache
        index = self._index()
        out: dict[str, DataArtifact] = {}
        if index is not None:
            for name, ref in index.artifacts.items():
                out[name] = DataArtifact._from_ref(self, name, ref, index.finished_at)
            self._artifact_cache = out
        return out

    def __iter__(self) -> Iterator[DataArtifact]:
        """The task's artifacts, except private ones (names starting with ``_``)."""
        return iter([a for name, a in self._artifacts().items() if not name.startswith("_")])

    def __getitem__(self, name: str) -> DataArtifact:
        artifact = self._artifacts().get(name)
        if artifact is None:
            raise KeyError(name)
        return artifact

    def __contains__(self, name: str) -> bool:
        return name in self._artifacts()

    @property
    def data(self) -> MetaflowData:
        """Artifacts by attribute (``task.data.x``); each is loaded when first touched."""
        return MetaflowData({n: a for n, a in self._artifacts().items() if not n.startswith("_")})

    @property
    def artifacts(self) -> Any:
        """A named tuple of the task's DataArtifact objects (``task.artifacts.x.data``)."""
        arts = list(self)
        cls = namedtuple("MetaflowArtifacts", [a.id for a in arts], rename=True)  # type: ignore[misc]
        return cls._make(arts)

    @property
    def index(self) -> int | None:
        """The task's position in its innermost enclosing foreach, or None outside one."""
        try:
            frames = self[FOREACH_STACK].data
        except KeyError:
            return None
        if not frames:
            return None
        frame = frames[-1]
        return int(frame.index if hasattr(frame, "index") and not isinstance(frame, tuple) else frame[1])

    # -- outcome ------------------------------------------------------------------------------
    @property
    def successful(self) -> bool:
        """True when the step succeeded. A failure that ``@catch`` handled is not a success
        (as in Metaflow), though the task is ``finished`` and the flow went on."""
        a = self._attempt_record()
        return bool(a is not None and a.success and not a.metadata.get("caught"))

    @property
    def finished(self) -> bool:
        """True when the attempt completed without an unhandled error (Metaflow's meaning:
        a failed task is not ``finished``, but it has a ``finished_at``)."""
        a = self._attempt_record()
        return bool(a is not None and a.finished_at is not None and a.success)

    @property
    def finished_at(self) -> datetime | None:
        """When the attempt ended, successfully or not; None while it runs."""
        a = self._attempt_record()
        return to_datetime(a.finished_at) if a is not None else None

    @property
    def exception(self) -> TaskException | None:
        """The error that failed the attempt (its ``str()`` is the full report), or None."""
        a = self._attempt_record()
        if a is None or not a.exception or a.success:
            return None
        return TaskException(a.exception)

    @property
    def created_at(self) -> datetime:
        return to_datetime(self._record.created_at)  # type: ignore[return-value]

    @property
    def origin_pathspec(self) -> str | None:
        """The task this one was cloned from by ``resume``, or None."""
        return self._record.cloned_from

    @property
    def code(self) -> MetaflowCode | None:
        """The flow script this task's run executed."""
        from plait.client.code import load_code

        return load_code(self._store, self._components[0], self._components[1])

    @property
    def environment_info(self) -> None:
        return None

    @property
    def runtime_name(self) -> str | None:
        for tag in self.system_tags:
            if tag.startswith("runtime:"):
                return tag.split(":", 1)[1]
        return None

    # -- metadata -----------------------------------------------------------------------------
    @property
    def metadata(self) -> list[Metadata]:
        """Every metadata entry of the task, oldest first, over all its attempts."""
        rec, run, settings = self._record, self._run_record, self._store.settings
        out: list[Metadata] = []
        created = rec.created_at

        def add(name: str, value: Any, ts: float, kind: str = "plait") -> None:
            text = value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)
            out.append(Metadata(name, text, ts, kind, self))

        if run is not None:
            add("user", run.user, created)
            for tag in run.system_tags:
                name, sep, value = tag.partition(":")
                if sep and name != "user":
                    add(name, value, created)
            add("origin-run-id", str(run.origin_run_id), created)
        add("ds-type", settings.datastore, created)
        add("ds-root", settings.datastore_root or "", created)
        add("foreach-key", rec.foreach_key, created)
        if rec.cloned_from:
            add("origin-task-id", rec.cloned_from.rsplit("/", 1)[-1], created)
            add("origin-pathspec", rec.cloned_from, created)
        for a in rec.attempts:
            if self._attempt is not None and a.attempt > self._attempt:
                break
            add("attempt", str(a.attempt), a.started_at)
            for key, value in a.metadata.items():
                add(str(key), value, a.started_at, "attempt")
            if a.finished_at is not None:
                add("attempt-done", str(a.attempt), a.finished_at)
                add("attempt_ok", str(bool(a.success)), a.finished_at)
        return out

    @property
    def metadata_dict(self) -> dict[str, str]:
        """The latest value of every metadata entry, e.g. ``{"attempt": "1", ...}``."""
        return {m.name: m.value for m in sorted(self.metadata, key=lambda m: m.created_at)}

    # -- logs ---------------------------------------------------------------------------------
    def _log(self, stream: str) -> bytes:
        if stream not in ("stdout", "stderr"):
            raise ValueError(f"stream must be 'stdout' or 'stderr', got {stream!r}")
        flow, run_id, step, task_id = self._components
        return self._store.ds.load_log(flow, run_id, step, task_id, self.current_attempt, stream)

    @property
    def stdout(self) -> str:
        """What the attempt printed to stdout (kept once the attempt ends)."""
        from plait.runtime.logs import log_text

        return log_text(self._log("stdout"))

    @property
    def stderr(self) -> str:
        from plait.runtime.logs import log_text

        return log_text(self._log("stderr"))

    @property
    def stdout_size(self) -> int:
        return len(self.stdout.encode())

    @property
    def stderr_size(self) -> int:
        return len(self.stderr.encode())

    def loglines(self, stream: str, as_unicode: bool = True,
                 meta_dict: dict[str, Any] | None = None) -> Iterator[tuple[datetime | None, Any]]:
        """``(utc timestamp, line)`` for every line the attempt printed to ``stream``."""
        from plait.runtime.logs import parse_log

        for ts, line in parse_log(self._log(stream)):
            when = None if ts is None else datetime.fromtimestamp(ts, timezone.utc).replace(tzinfo=None)
            yield when, (line if as_unicode else line.encode())

    # -- neighbours ---------------------------------------------------------------------------
    def _related(self, records: list[TaskRecord]) -> Iterator[Task]:
        runs: dict[str, RunRecord | None] = {self._components[1]: self._run_record}
        for record in records:
            if record.run_id not in runs:
                runs[record.run_id] = self._store.md.get_run(record.flow, record.run_id)
            yield Task._from_record(None, record, self._store, runs[record.run_id])

    @property
    def parent_tasks(self) -> Iterator[Task]:
        """The tasks whose outputs this task took as inputs (none for ``start``)."""
        flow = self._components[0]
        wanted: dict[tuple[str, str], list[str]] = {}
        for path in self._record.input_paths:
            run_id, step, task_id = path.split("/")
            if not step.startswith("_"):
                wanted.setdefault((run_id, step), []).append(task_id)
        records: list[TaskRecord] = []
        for (run_id, step), ids in wanted.items():
            by_id = {r.task_id: r for r in self._store.md.list_tasks(flow, run_id, step)}
            records += [by_id[i] for i in ids if i in by_id]
        return self._related(records)

    @property
    def child_tasks(self) -> Iterator[Task]:
        """The tasks that took this task's outputs as inputs."""
        flow, run_id, step, task_id = self._components
        me = f"{run_id}/{step}/{task_id}"
        records = [r for r in self._store.md.list_tasks(flow, run_id) if me in r.input_paths]
        return self._related(records)


class DataArtifact(MetaflowObject):
    """One artifact of a task. ``.data`` loads (and caches) the value; ``sha``, ``size`` and
    ``finished_at`` need no load."""

    _NAME = "artifact"
    _DEPTH = 5
    _ATTEMPTS = True
    _ref: ArtifactRef
    _finished: float
    _value: Any

    def _lookup(self) -> None:
        task = Task("/".join(self._components[:4]), attempt=self._attempt, _namespace_check=False,
                    _store=self._store)
        self._run_record = task._run_record
        source = task._artifacts().get(self.id)
        if source is None:
            raise self._not_found()
        self._ref, self._finished, self._value = source._ref, source._finished, _MISSING
        self._parent_obj = task

    @classmethod
    def _from_ref(cls, task: Task, name: str, ref: ArtifactRef, finished: float) -> DataArtifact:
        art = cls._child(task, [*task._components, name], task._store, task._run_record, task._attempt)
        art._ref, art._finished, art._value = ref, finished, _MISSING
        return art

    @property
    def data(self) -> Any:
        """The value, loaded from the datastore on first access and kept on this object."""
        if self._value is _MISSING:
            self._value = self._store.load_artifact(self._ref, self.id)
        return self._value

    @property
    def sha(self) -> str:
        """Content hash of the stored value (also its blob key)."""
        return self._ref.sha

    @property
    def size(self) -> int:
        """Bytes of the stored (serialized) value."""
        return int(self._ref.size)

    @property
    def type(self) -> str:
        """Type name of the value as it was stored, e.g. ``numpy.ndarray``."""
        return self._ref.type

    @property
    def created_at(self) -> datetime | None:
        return to_datetime(self._finished) if self._finished else None

    @property
    def finished_at(self) -> datetime | None:
        """When the task attempt that stored this artifact finished."""
        return self.created_at
