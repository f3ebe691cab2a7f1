"""Resume: decide which tasks of an earlier run are cloned (by reference) and which re-run.

Tasks are matched by step and position in the run (``foreach_key``: foreach indices plus
loop visit), never by task id. With ``resume STEP`` that step and everything reachable from
it re-run; without it, every step downstream of a failed or unfinished step re-runs, and
everything that succeeded is cloned, including successful siblings of a failed foreach task.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from plait.datastore.types import AttemptIndex
from plait.exceptions import PlaitException

if TYPE_CHECKING:
    from plait.datastore.flow_store import FlowDataStore
    from plait.graph import FlowGraph
    from plait.metadata.provider import MetadataProvider
    from plait.runtime.context import TaskSpec


def descendants(graph: FlowGraph, roots: set[str]) -> set[str]:
    """Every step reachable from ``roots`` (roots included)."""
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(graph[name].out_funcs)
    return seen


class ResumePlan:
    """Answers, for each task the scheduler is about to run, whether to clone it instead."""

    def __init__(self, flow: str, origin_run_id: str, graph: FlowGraph, ds: FlowDataStore,
                 md: MetadataProvider, step: str | None = None) -> None:
        self.flow = flow
        self.origin_run_id = origin_run_id
        self.ds = ds
        if md.get_run(flow, origin_run_id) is None:
            raise PlaitException(f"Cannot resume: run {flow}/{origin_run_id} does not exist.")
        if step is not None and step not in graph:
            raise PlaitException(f"Cannot resume from step '{step}': the flow has no such step.")
        self.successful: dict[tuple[str, str], str] = {}
        failed: set[str] = set()
        for task in md.list_tasks(flow, origin_run_id):
            if task.successful:
                self.successful[(task.step, task.foreach_key)] = task.task_id
            else:
                failed.add(task.step)
        if step is not None:
            self.rerun = descendants(graph, {step})
        else:
            self.rerun = descendants(graph, {s for f in failed for s in graph[f].out_funcs if f in graph})
        self.cloned = 0

    def clone_source(self, spec: TaskSpec) -> AttemptIndex | None:
        """The origin attempt to clone for ``spec``, or None to run it."""
        if spec.step in self.rerun:
            return None
        task_id = self.successful.get((spec.step, spec.foreach_key))
        if task_id is None:
            return None
        index = self.ds.read_index(self.flow, self.origin_run_id, spec.step, task_id)
        if index is None or not index.success:
            return None
        self.cloned += 1
        return index
