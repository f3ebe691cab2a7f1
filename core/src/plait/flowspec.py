"""FlowSpec and @step: a flow is a class, a step is a decorated method.

Artifacts are plain instance attributes. A task's instance starts with references to its
parent's artifacts (loaded lazily on first access, never copied); whatever the step assigns,
or reads and may have mutated, is persisted when the step ends. Internal state lives in the
single attribute ``_plait`` so it never collides with, or is persisted as, a user artifact.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from plait.exceptions import InvalidNextError, MergeArtifactsError, PlaitException

if TYPE_CHECKING:
    from plait.datastore.types import ArtifactRef

F = TypeVar("F", bound=Callable[..., Any])

#: Attribute names a step or artifact may not use: they are FlowSpec's own API.
RESERVED_NAMES = frozenset(
    {"next", "input", "index", "foreach_stack", "merge_artifacts", "name", "cmd", "script_name",
     "run", "resume", "show", "check", "step", "_plait"}
)

#: Artifacts the runtime itself keeps on a task; never merged by ``merge_artifacts``. Other
#: names starting with ``_`` are user artifacts and merge like any other (as in Metaflow).
INTERNAL_ARTIFACTS = frozenset({"_foreach_stack"})


def step(f: F) -> F:
    """Mark a method of a FlowSpec subclass as a step of the flow."""
    f.is_step = True  # type: ignore[attr-defined]
    f.decorators = []  # type: ignore[attr-defined]
    f.name = f.__name__  # type: ignore[attr-defined]
    return f


class Transition:
    """What a step's ``self.next(...)`` asked for."""

    __slots__ = ("targets", "foreach", "condition", "switch_cases")

    def __init__(self, targets: list[str], foreach: str | None = None, condition: str | None = None,
                 switch_cases: dict[Any, str] | None = None) -> None:
        self.targets = targets
        self.foreach = foreach
        self.condition = condition
        self.switch_cases = switch_cases


class TaskState:
    """Per-instance internals: inherited artifact refs, the loader, foreach frames, transition."""

    __slots__ = ("refs", "loader", "foreach_frames", "transition", "step_name", "read_only",
                 "parameter_names", "is_join", "accessed")

    def __init__(self, refs: dict[str, ArtifactRef] | None = None,
                 loader: Callable[[ArtifactRef], Any] | None = None,
                 foreach_frames: list[tuple[str, int, int, Any]] | None = None,
                 step_name: str = "", read_only: bool = False,
                 parameter_names: frozenset[str] = frozenset(), is_join: bool = False) -> None:
        self.refs: dict[str, ArtifactRef] = refs or {}
        self.loader = loader
        self.foreach_frames = foreach_frames or []  # (step, index, num_splits, value)
        self.transition: Transition | None = None
        self.step_name = step_name
        self.read_only = read_only
        self.parameter_names = parameter_names
        self.is_join = is_join
        self.accessed: set[str] = set()


class FlowSpec:
    """Base class of every flow. ``MyFlow()`` in a script's ``__main__`` starts the CLI."""

    _flow_decorators: list[Any] = []

    def __init__(self, use_cli: bool = True) -> None:
        object.__setattr__(self, "_plait", TaskState())
        if use_cli:
            from plait.cli import run_flow_cli

            run_flow_cli(type(self))

    @classmethod
    def _plait_new(cls, state: TaskState) -> FlowSpec:
        """An instance for the runtime or for join inputs, without starting the CLI."""
        obj = cls.__new__(cls)
        object.__setattr__(obj, "_plait", state)
        return obj

    # -- artifacts --------------------------------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        # Only called when normal lookup fails: i.e. an artifact not loaded yet.
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        state: TaskState = object.__getattribute__(self, "_plait")
        ref = state.refs.get(name)
        if ref is None or state.loader is None:
            raise AttributeError(
                f"Flow {type(self).__name__} has no attribute or artifact '{name}'"
                + (f" in step '{state.step_name}'" if state.step_name else "")
                + (" (a join step inherits no artifacts: read them from `inputs` or call "
                   "self.merge_artifacts(inputs))" if state.is_join else "")
            )
        value = state.loader(ref)
        self.__dict__[name] = value  # cached; persisted again in case it is mutated
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        state: TaskState = object.__getattribute__(self, "_plait")
        if state.read_only:
            raise PlaitException(
                f"Cannot set '{name}' on an input of a join step: inputs are read-only. Assign to "
                f"self.{name} in the join step instead."
            )
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        state: TaskState = object.__getattribute__(self, "_plait")
        found = state.refs.pop(name, None) is not None
        if name in self.__dict__:
            object.__delattr__(self, name)
            found = True
        if not found:
            raise AttributeError(name)

    def _plait_parameter_value(self, name: str) -> Any:
        if name in self.__dict__:
            return self.__dict__[name]
        return self.__getattr__(name)

    def _plait_artifact_names(self) -> list[str]:
        """Names of every artifact this instance holds: loaded or still by reference."""
        names = [k for k in self.__dict__ if k != "_plait"]
        names += [k for k in self._plait.refs if k not in self.__dict__]
        return names

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        for name in self._plait_artifact_names():
            yield name, getattr(self, name)

    @property
    def name(self) -> str:
        return type(self).__name__

    @property
    def script_name(self) -> str:
        import inspect
        import os

        return os.path.basename(inspect.getfile(type(self)))

    # -- foreach ----------------------------------------------------------------------------
    @property
    def index(self) -> int | None:
        frames = self._plait.foreach_frames
        return frames[-1][1] if frames else None

    @property
    def input(self) -> Any:
        frames = self._plait.foreach_frames
        return frames[-1][3] if frames else None

    def foreach_stack(self) -> list[tuple[int, int, Any]]:
        """(index, number of splits, value) for each enclosing foreach, outermost first."""
        return [(index, num, value) for _, index, num, value in self._plait.foreach_frames]

    # -- transitions ------------------------------------------------------------------------
    def next(self, *dsts: Any, foreach: str | None = None, condition: str | None = None,
             num_parallel: int | None = None) -> None:
        """Say which step(s) run after this one. Must be the step's last statement."""
        state = self._plait
        here = f"Step '{state.step_name}'"
        if state.transition is not None:
            raise InvalidNextError(f"{here} called self.next() more than once; call it exactly once, last.")
        if num_parallel is not None:
            raise InvalidNextError(f"{here}: num_parallel is not supported by Plait; use foreach.")
        if len(dsts) == 1 and isinstance(dsts[0], dict):
            if condition is None:
                raise InvalidNextError(f"{here}: a switch self.next({{...}}) needs condition='<artifact>'.")
            cases = {key: self._target_name(fn, here) for key, fn in dsts[0].items()}
            state.transition = Transition(sorted(set(cases.values())), condition=condition, switch_cases=cases)
            return
        targets = [self._target_name(d, here) for d in dsts]
        if not targets:
            raise InvalidNextError(f"{here} called self.next() without a target step.")
        if foreach is not None:
            if not isinstance(foreach, str):
                raise InvalidNextError(f"{here}: foreach= must name an artifact as a string, e.g. foreach='items'.")
            try:
                values = getattr(self, foreach)
            except AttributeError:
                raise InvalidNextError(
                    f"{here}: foreach='{foreach}' names no artifact; assign self.{foreach} = [...] first."
                ) from None
            try:
                len(values)
            except TypeError:
                raise InvalidNextError(
                    f"{here}: foreach='{foreach}' must be a sized collection (list, tuple, range, "
                    f"dict...), not {type(values).__name__}."
                ) from None
        state.transition = Transition(targets, foreach=foreach, condition=condition)

    @staticmethod
    def _target_name(dst: Any, here: str) -> str:
        func = getattr(dst, "__func__", dst)
        if not getattr(func, "is_step", False):
            raise InvalidNextError(f"{here}: self.next() target {dst!r} is not a step; pass self.<step_name>.")
        return str(func.__name__)

    # -- joins ------------------------------------------------------------------------------
    def merge_artifacts(self, inputs: Inputs, exclude: list[str] | None = None,
                        include: list[str] | None = None) -> None:
        """Carry over artifacts from a join's inputs where they agree (same content hash).

        An artifact with different values in different inputs is a conflict unless the join
        already set it itself, or it is excluded; ``include`` restricts the merge to names.
        """
        state = self._plait
        here = f"merge_artifacts in step '{state.step_name}'"
        if not state.is_join:
            raise MergeArtifactsError(f"{here}: only a join step (one with an `inputs` argument) can merge.")
        if include and exclude:
            raise MergeArtifactsError(f"{here}: pass include= or exclude=, not both.")
        exclude_set = set(exclude or [])
        candidates: dict[str, list[ArtifactRef]] = {}
        for inp in inputs:
            for name, ref in inp._plait.refs.items():
                if name in INTERNAL_ARTIFACTS or name in state.parameter_names:
                    continue
                candidates.setdefault(name, []).append(ref)
            for name in inp.__dict__:
                if name != "_plait" and name not in inp._plait.refs:
                    raise MergeArtifactsError(f"{here}: input artifact '{name}' is not persisted.")
        if include:
            missing = [n for n in include if n not in candidates]
            if missing:
                raise MergeArtifactsError(
                    f"{here}: include names {', '.join(missing)}, which no input has.", missing)
            names = list(include)
        else:
            names = [n for n in candidates if n not in exclude_set]
        conflicts: list[str] = []
        for name in names:
            if name in self.__dict__ or name in state.refs:
                continue  # the join set it itself: its value wins
            shas = {ref.sha for ref in candidates[name]}
            if len(shas) == 1:
                state.refs[name] = candidates[name][0]
            else:
                conflicts.append(name)
        if conflicts:
            raise MergeArtifactsError(
                f"{here}: artifacts {', '.join(sorted(conflicts))} have different values in different "
                f"inputs. Set them in the join (e.g. self.{sorted(conflicts)[0]} = inputs[0]."
                f"{sorted(conflicts)[0]}) or pass exclude=[...] before calling merge_artifacts.",
                sorted(conflicts),
            )


class Inputs:
    """The ``inputs`` of a join: iterable, indexable by position, and by step name."""

    def __init__(self, flows: list[FlowSpec]) -> None:
        self._flows = flows
        self._by_step = {f._plait.step_name: f for f in flows}

    def __iter__(self) -> Iterator[FlowSpec]:
        return iter(self._flows)

    def __len__(self) -> int:
        return len(self._flows)

    def __getitem__(self, key: int | str) -> FlowSpec:
        if isinstance(key, str):
            return self._by_step[key]
        return self._flows[key]

    def __getattr__(self, name: str) -> FlowSpec:
        try:
            return self.__dict__["_by_step"][name]
        except KeyError:
            raise AttributeError(f"This join has no input from a step named '{name}'.") from None
