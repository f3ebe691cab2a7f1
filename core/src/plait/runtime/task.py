"""Run one task: load its inputs, run the step, persist its outputs, record its metadata.

This is the only task semantics there is. The local backend calls :func:`execute_task` in a
forked child of the scheduler; every other path (another interpreter, a container) runs the
``step`` command, which calls the same function. The attempt's index in the datastore is
written last: it is the commit point that makes the attempt visible as finished.
"""

from __future__ import annotations

import sys
import time
import traceback
from typing import TYPE_CHECKING, Any

from plait.current import current
from plait.datastore.types import ArtifactRef, AttemptIndex
from plait.exceptions import InvalidNextError, PlaitException, UnpicklableArtifactError
from plait.flowspec import FlowSpec, Inputs, TaskState
from plait.runtime.context import TaskContext, TaskSpec
from plait.runtime.crash import enable_crash_report

if TYPE_CHECKING:
    from plait.datastore.flow_store import FlowDataStore
    from plait.graph import FlowGraph
    from plait.metadata.provider import MetadataProvider

FOREACH_STACK = "_foreach_stack"
PARAMETERS_STEP = "_parameters"


def _parent_index(ds: FlowDataStore, flow: str, path: str) -> AttemptIndex:
    run_id, step, task_id = path.split("/")
    index = ds.read_index(flow, run_id, step, task_id)
    if index is None or not index.success:
        raise PlaitException(f"Input task {flow}/{path} has no successful attempt in the datastore.")
    return index


def _frames(ds: FlowDataStore, refs: dict[str, ArtifactRef]) -> list[tuple[str, int, int, Any]]:
    ref = refs.get(FOREACH_STACK)
    return list(ds.load_artifact(ref)) if ref is not None else []


def build_flow(flow_cls: type[FlowSpec], graph: FlowGraph, spec: TaskSpec, ds: FlowDataStore,
               parameter_names: frozenset[str]) -> tuple[FlowSpec, Inputs | None]:
    """The step's ``self`` (and ``inputs`` for a join), with artifacts by reference."""
    node = graph[spec.step]
    parents = [_parent_index(ds, spec.flow, p) for p in spec.input_paths]
    loader = ds.load_artifact
    if node.is_join:
        views = [
            flow_cls._plait_new(TaskState(dict(p.artifacts), loader, _frames(ds, p.artifacts), p.step,
                                          read_only=True, parameter_names=parameter_names))
            for p in parents
        ]
        in_frames = views[0]._plait.foreach_frames if views else []
        closed = node.matching_split
        frames = in_frames[:-1] if in_frames and in_frames[-1][0] == closed else in_frames
        first = parents[0].artifacts if parents else {}
        refs = {k: v for k, v in first.items() if k in parameter_names}
        state = TaskState(refs, loader, frames, spec.step, parameter_names=parameter_names, is_join=True)
        flow = flow_cls._plait_new(state)
        if frames:
            object.__setattr__(flow, FOREACH_STACK, frames)
        return flow, Inputs(views)
    (parent,) = parents
    refs = dict(parent.artifacts)
    frames = _frames(ds, refs)
    state = TaskState(refs, loader, frames, spec.step, parameter_names=parameter_names)
    flow = flow_cls._plait_new(state)
    if spec.split_index is not None:
        var = parent.control["foreach_var"]
        values = ds.load_artifact(parent.artifacts[var])
        item = _nth(values, spec.split_index)
        frames = frames + [(parent.step, spec.split_index, parent.control["foreach_num_splits"], item)]
        state.foreach_frames = frames
        object.__setattr__(flow, FOREACH_STACK, frames)
    return flow, None


def _nth(values: Any, i: int) -> Any:
    try:
        return values[i]
    except (TypeError, KeyError):
        for n, v in enumerate(values):
            if n == i:
                return v
        raise


def resolve_transition(flow: FlowSpec, graph: FlowGraph, spec: TaskSpec) -> dict[str, Any]:
    """Check ``self.next`` against the static graph and return the control record."""
    node = graph[spec.step]
    t = flow._plait.transition
    here = f"Step '{spec.step}'"
    if node.type == "end":
        if t is not None:
            raise InvalidNextError(f"{here} is the end step: it must not call self.next().")
        return {"next": []}
    if t is None:
        raise InvalidNextError(f"{here} finished without calling self.next(); end it with self.next(...).")
    if node.type == "split-switch":
        if t.condition != node.condition or t.switch_cases != node.switch_cases:
            raise InvalidNextError(f"{here} called a switch self.next() that differs from the one in its source.")
        value = getattr(flow, t.condition)  # type: ignore[arg-type]
        cases = t.switch_cases or {}
        target = cases.get(value, cases.get(str(value)))
        if target is None:
            raise InvalidNextError(
                f"{here}: switch condition self.{t.condition} is {value!r}, which matches none of the "
                f"cases {sorted(map(str, cases))}. Set it to one of them."
            )
        return {"next": [target], "switch_value": str(value)}
    if t.targets != list(node.out_funcs) or t.foreach != node.foreach_param:
        raise InvalidNextError(
            f"{here} called self.next({', '.join(t.targets)}"
            + (f", foreach={t.foreach!r}" if t.foreach else "")
            + f") but its source says self.next({', '.join(node.out_funcs)}"
            + (f", foreach={node.foreach_param!r}" if node.foreach_param else "")
            + "). The transition must match the graph."
        )
    control: dict[str, Any] = {"next": list(t.targets)}
    if t.foreach:
        num = len(getattr(flow, t.foreach))
        if num > spec.max_num_splits:
            raise InvalidNextError(
                f"{here}: foreach over '{t.foreach}' yields {num} tasks, more than --max-num-splits "
                f"{spec.max_num_splits}. Raise --max-num-splits if this is intended."
            )
        control.update(foreach_var=t.foreach, foreach_num_splits=num)
    return control


def _fallback_control(graph: FlowGraph, step: str) -> dict[str, Any]:
    """Where a step whose exception was handled (``@catch``) continues: its static targets."""
    node = graph[step]
    if node.type == "split-switch":
        raise PlaitException(f"Step '{step}' failed and is a switch: @catch cannot choose a branch for it.")
    control: dict[str, Any] = {"next": list(node.out_funcs)}
    if node.foreach_param:
        control.update(foreach_var=node.foreach_param, foreach_num_splits=0)
    return control


def persist(flow: FlowSpec, spec: TaskSpec, ds: FlowDataStore, strict: bool) -> dict[str, ArtifactRef]:
    """Save what the step set or touched; keep references to what it did not."""
    state = flow._plait
    refs = dict(state.refs)
    values = {k: v for k, v in flow.__dict__.items() if k != "_plait" and k not in state.parameter_names}
    if strict:
        refs.update(ds.save_artifacts(values, spec.step))
        return refs
    for name, value in values.items():  # failing attempt: keep whatever can be kept
        try:
            refs.update(ds.save_artifacts({name: value}, spec.step))
        except UnpicklableArtifactError:
            refs.pop(name, None)
    return refs


def execute_task(flow_cls: type[FlowSpec], graph: FlowGraph, spec: TaskSpec, ds: FlowDataStore,
                 metadata: MetadataProvider, hook: Any, record_metadata: bool = True) -> int:
    """Run one attempt of one task end to end. Returns the process exit code (0 = success).

    Everything the attempt produced, its outcome included, goes into its datastore index.
    ``record_metadata=False`` when a scheduler launched the task: the scheduler records the
    attempt in the metadata provider from that index, so the task never opens the database.
    """
    from plait.parameters import flow_parameters
    from plait.runtime.decorators import step_decorators

    started = time.time()
    enable_crash_report()
    if record_metadata:
        metadata.new_task(spec.flow, spec.run_id, spec.step, spec.task_id, spec.foreach_key, spec.input_paths)
        metadata.start_attempt(spec.flow, spec.run_id, spec.step, spec.task_id, spec.retry_count)
    param_names = frozenset(attr for attr, _ in flow_parameters(flow_cls))
    decorators = step_decorators(flow_cls, spec.step)
    flow, inputs = build_flow(flow_cls, graph, spec, ds, param_names)
    extra = sum(d.retry_counts()[1] for d in decorators)
    ctx = TaskContext(spec, flow, graph, ds, metadata, decorators,
                      is_fallback=extra > 0 and spec.retry_count > spec.max_user_retries)
    current._set(flow_name=spec.flow, run_id=spec.run_id, step_name=spec.step, task_id=spec.task_id,
                 retry_count=spec.retry_count, origin_run_id=spec.origin_run_id,
                 namespace=spec.namespace if spec.namespace is not None else f"user:{spec.user}",
                 username=spec.user, tags=set(spec.tags), parameter_names=sorted(param_names),
                 is_production=False, graph=graph, flow=flow)
    success, error_text, control = False, None, {}
    try:
        hook.plait_task_pre_step(task=ctx)
        bound = getattr(flow, spec.step)
        func = (lambda: bound(inputs)) if inputs is not None else bound
        if ctx.is_fallback:
            def func() -> None:
                raise PlaitException(f"Step '{spec.step}' crashed in every attempt (see the earlier attempts' logs).")
        for impl in reversed(hook.plait_task_decorate.get_hookimpls()):  # compose in order
            func = impl.function(task=ctx, step_func=func) or func
        func()
        hook.plait_task_post_step(task=ctx)
        control = resolve_transition(flow, graph, spec)
        refs = persist(flow, spec, ds, strict=True)
        success = True
    except BaseException as exc:  # noqa: BLE001 - the task boundary: every failure is recorded
        if isinstance(exc, KeyboardInterrupt):
            raise
        ctx.exception = exc
        handled = bool(hook.plait_task_exception(task=ctx, exception=exc))
        if handled:  # the flow goes on, but the step itself did not succeed (Metaflow's _success)
            control = _fallback_control(graph, spec.step)
            refs = persist(flow, spec, ds, strict=False)
            success = True
            ctx.extra.setdefault("metadata", {})["caught"] = f"{type(exc).__name__}: {exc}"
        else:
            error_text = _report(exc, spec)
            refs = persist(flow, spec, ds, strict=False)
    task_metadata = ctx.extra.get("metadata") or {}
    ds.write_index(AttemptIndex(spec.flow, spec.run_id, spec.step, spec.task_id, spec.retry_count,
                                refs, control, success, time.time(), started_at=started,
                                exception=error_text, metadata=task_metadata))
    if record_metadata:
        metadata.finish_attempt(spec.flow, spec.run_id, spec.step, spec.task_id, spec.retry_count,
                                success, error_text, task_metadata)
    hook.plait_task_finished(task=ctx, success=success)
    current._clear()
    return 0 if success else 1


def describe_exception(exc: BaseException) -> str:
    """The user-facing text of a step's exception: Plait's own errors as one message, others
    as a traceback of the user's frames only (never Plait's)."""
    if isinstance(exc, PlaitException):
        return f"{exc.headline}: {exc}"
    tb = traceback.extract_tb(exc.__traceback__)
    user = [f for f in tb if "/plait/" not in f.filename.replace("\\", "/")] or list(tb)
    text = "Traceback (most recent call last):\n" + "".join(traceback.format_list(user))
    return text + "".join(traceback.format_exception_only(type(exc), exc))


def _report(exc: BaseException, spec: TaskSpec) -> str:
    """Print the user-facing error to stderr and return it for the metadata."""
    text = describe_exception(exc)
    sys.stderr.write(text.rstrip("\n") + "\n")
    sys.stderr.flush()
    return text
