"""What every client object shares: pathspec parsing, the namespace check, tags, identity."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from plait.exceptions import NamespaceMismatch, PlaitException, PlaitNotFound

if TYPE_CHECKING:
    from plait.client.store import ClientStore
    from plait.metadata.provider import RunRecord

PARAMETERS_STEP = "_parameters"  # the pseudo-step holding a run's parameters; hidden when iterating
PARAMETERS_TASK = "0"
NAMES = ("flow", "run", "step", "task", "artifact")
SHAPES = ("FlowName", "FlowName/RunID", "FlowName/RunID/StepName", "FlowName/RunID/StepName/TaskID",
          "FlowName/RunID/StepName/TaskID/ArtifactName")


class InvalidPathspec(PlaitException):
    headline = "Invalid pathspec"


MetaflowInvalidPathspec = InvalidPathspec


def to_datetime(ts: float | None) -> datetime | None:
    """Epoch seconds -> local naive datetime (what Metaflow's client returns)."""
    return None if ts is None else datetime.fromtimestamp(ts)


class MetaflowObject:
    """Base of Flow, Run, Step, Task and DataArtifact: built from a pathspec, or by a parent.

    ``MetaflowObject(pathspec)`` looks the object up (PlaitNotFound if it does not exist) and
    checks that its run is in the current namespace (NamespaceMismatch otherwise). Children
    reached from a parent (iteration, ``obj[id]``) reuse what the parent already fetched.
    """

    _NAME = "base"
    _DEPTH = 0
    _ATTEMPTS = False  # only Task and DataArtifact take attempt=

    _run_record: RunRecord | None

    def __init__(self, pathspec: str | None = None, attempt: int | None = None, *,
                 _namespace_check: bool = True, _current_namespace: str | None = None,
                 _store: ClientStore | None = None) -> None:
        from plait.client.namespace import current_store, get_namespace

        if pathspec is None:
            raise InvalidPathspec(f"{type(self).__name__}() needs a pathspec: {type(self).__name__}('"
                                  f"{SHAPES[self._DEPTH - 1]}').")
        ids = str(pathspec).strip("/").split("/")
        if len(ids) != self._DEPTH or not all(ids):
            raise InvalidPathspec(f"{type(self).__name__}({pathspec!r}): expects "
                                  f"{type(self).__name__}('{SHAPES[self._DEPTH - 1]}').")
        self._init_common(ids, _store or current_store(), _namespace_check,
                          _current_namespace if _current_namespace is not None else get_namespace(),
                          self._check_attempt(attempt))
        self._lookup()
        if self._namespace_check and not self._is_in_namespace(self._current_namespace):
            raise NamespaceMismatch(self._mismatch_message())

    def _init_common(self, ids: list[str], store: ClientStore, check: bool, ns: str | None,
                     attempt: int | None) -> None:
        self._components = ids
        self.id = ids[-1]
        self._store = store
        self._current_namespace = ns
        self._namespace_check = check and ns is not None
        self._attempt = attempt
        self._parent_obj: MetaflowObject | None = None
        self._run_record = None

    @classmethod
    def _child(cls, parent: MetaflowObject | None, ids: list[str], store: ClientStore,
               run_record: RunRecord | None, attempt: int | None = None) -> Any:
        """Build an object whose data the caller already has (no lookup, no namespace query)."""
        obj = cls.__new__(cls)
        check = parent._namespace_check if parent is not None else False
        ns = parent._current_namespace if parent is not None else None
        obj._init_common(ids, store, check, ns, attempt)
        obj._parent_obj = parent
        obj._run_record = run_record
        return obj

    def _check_attempt(self, attempt: Any) -> int | None:
        if attempt is None:
            return None
        if not self._ATTEMPTS:
            raise PlaitNotFound("Attempts can only be given for a Task or a DataArtifact.")
        try:
            value = int(attempt)
        except (TypeError, ValueError):
            raise PlaitNotFound(f"attempt must be an integer, got {attempt!r}.") from None
        if value < 0:
            raise PlaitNotFound(f"attempt must be >= 0, got {value}.")
        return value

    def _lookup(self) -> None:
        """Fetch what the object needs; raise PlaitNotFound when it does not exist."""
        raise NotImplementedError

    def _fetch_run_record(self) -> RunRecord:
        flow, run_id = self._components[0], self._components[1]
        record = self._store.md.get_run(flow, run_id)
        if record is None:
            raise PlaitNotFound(f"Run('{flow}/{run_id}') does not exist in the metadata at "
                                f"{self._store.describe()}. Check the run id (Flow('{flow}').runs() lists "
                                f"them), or point the client elsewhere with metadata('local@ROOT').")
        return record

    def _not_found(self) -> PlaitNotFound:
        return PlaitNotFound(f"{self!r} does not exist.")

    # -- namespace --------------------------------------------------------------------------
    def _is_in_namespace(self, ns: str | None) -> bool:
        return ns is None or ns in self.tags

    def is_in_namespace(self) -> bool:
        """Whether this object is visible in the current namespace."""
        from plait.client.namespace import get_namespace

        return self._is_in_namespace(get_namespace())

    def _mismatch_message(self) -> str:
        users = sorted(t for t in self.system_tags if t.startswith("user:"))
        hint = f"namespace('{users[0]}') to work in its namespace, or " if users else ""
        return (f"{self!r} is not in the current namespace '{self._current_namespace}' "
                f"(it belongs to {', '.join(users) or 'no user namespace'}). Call {hint}namespace(None) "
                f"to see every run.")

    # -- tags: a run's, shared by everything inside it ---------------------------------------
    @property
    def tags(self) -> frozenset[str]:
        """User and system tags of the run this object belongs to."""
        return self.user_tags | self.system_tags

    @property
    def user_tags(self) -> frozenset[str]:
        rec = self._run_record
        return frozenset(rec.tags) if rec is not None else frozenset()

    @property
    def system_tags(self) -> frozenset[str]:
        rec = self._run_record
        return frozenset(rec.system_tags) if rec is not None else frozenset()

    # -- identity ---------------------------------------------------------------------------
    @property
    def pathspec(self) -> str:
        return "/".join(self._components)

    @property
    def path_components(self) -> list[str]:
        return list(self._components)

    @property
    def parent(self) -> MetaflowObject | None:
        """The containing object (a Run's parent is its Flow); None for a Flow."""
        if self._DEPTH <= 1:
            return None
        if self._parent_obj is None:
            from plait.client import objects

            cls = getattr(objects, NAMES[self._DEPTH - 2].capitalize())
            attempt = self._attempt if self._NAME == "artifact" else None
            self._parent_obj = cls("/".join(self._components[:-1]), attempt=attempt,
                                   _namespace_check=False, _store=self._store)
        return self._parent_obj

    def __repr__(self) -> str:
        if self._attempt is not None:
            return f"{type(self).__name__}('{self.pathspec}', attempt={self._attempt})"
        return f"{type(self).__name__}('{self.pathspec}')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return (type(other) is type(self) and other.pathspec == self.pathspec  # type: ignore[attr-defined]
                and other._attempt == self._attempt)  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.pathspec, self._attempt))

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickles as its pathspec; unpickling looks it up again in the current store."""
        return (_rebuild, (type(self), self.pathspec, self._attempt))

    # -- children ---------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Any]:
        raise NotImplementedError

    def _filtered_children(self, *tags: str) -> Iterator[Any]:
        for child in self:
            if all(tag in child.tags for tag in tags):
                yield child

    def _ipython_key_completions_(self) -> list[str]:
        return [child.id for child in self]


def _rebuild(cls: type, pathspec: str, attempt: int | None) -> Any:
    if attempt is None:
        return cls(pathspec, _namespace_check=False)
    return cls(pathspec, attempt=attempt, _namespace_check=False)
