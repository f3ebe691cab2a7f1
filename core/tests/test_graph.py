"""FlowGraph: parsing each flow shape into nodes, order, split parents and descriptions."""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from plait.exceptions import LintError
from plait.flowspec import FlowSpec, step
from plait.graph import DAGNode, FlowGraph
from plait.lint import lint, lint_all


def retry(func: Callable[..., Any]) -> Callable[..., Any]:
    """Stand-in for a decorator stacked above @step: it only records itself."""
    func.decorators.append("retry")  # type: ignore[attr-defined]
    return func


class LinearFlow(FlowSpec):
    """A flow that goes straight through."""

    @step
    def start(self) -> None:
        """Begin here.

        Second paragraph.
        """
        self.x = 1
        self.next(self.middle)

    @retry
    @step
    def middle(self) -> None:
        self.next(self.end)

    @step
    def end(self) -> None:
        """Done."""


class BranchFlow(FlowSpec):
    @step
    def start(self) -> None:
        self.next(self.a, self.b)

    @step
    def a(self) -> None:
        self.next(self.join)

    @step
    def b(self) -> None:
        self.next(self.join)

    @step
    def join(self, inputs: Any) -> None:
        self.next(self.end)

    @step
    def end(self) -> None:
        pass


class NestedBranchFlow(FlowSpec):
    @step
    def start(self) -> None:
        self.next(self.outer_a, self.outer_b)

    @step
    def outer_a(self) -> None:
        self.next(self.inner_a, self.inner_b)

    @step
    def inner_a(self) -> None:
        self.next(self.inner_join)

    @step
    def inner_b(self) -> None:
        self.next(self.inner_join)

    @step
    def inner_join(self, inputs: Any) -> None:
        self.next(self.outer_join)

    @step
    def outer_b(self) -> None:
        self.next(self.outer_join)

    @step
    def outer_join(self, inputs: Any) -> None:
        self.next(self.end)

    @step
    def end(self) -> None:
        pass


class ForeachFlow(FlowSpec):
    @step
    def start(self) -> None:
        self.items = [1, 2, 3]
        self.next(self.work, foreach="items")

    @step
    def work(self) -> None:
        self.next(self.join)

    @step
    def join(self, inputs: Any) -> None:
        self.next(self.end)

    @step
    def end(self) -> None:
        pass


class NestedForeachFlow(FlowSpec):
    @step
    def start(self) -> None:
        self.rows = [1, 2]
        self.next(self.row, foreach="rows")

    @step
    def row(self) -> None:
        self.cols = [1, 2]
        self.next(self.cell, foreach="cols")

    @step
    def cell(self) -> None:
        self.next(self.join_cols)

    @step
    def join_cols(self, inputs: Any) -> None:
        self.next(self.join_rows)

    @step
    def join_rows(self, inputs: Any) -> None:
        self.next(self.end)

    @step
    def end(self) -> None:
        pass


class SwitchFlow(FlowSpec):
    @step
    def start(self) -> None:
        self.mode = "fast"
        self.next({"fast": self.fast, "slow": self.slow}, condition="mode")

    @step
    def fast(self) -> None:
        self.next(self.merge)

    @step
    def slow(self) -> None:
        self.next(self.merge)

    @step
    def merge(self) -> None:
        """Only one arm ran, so this is not a join."""
        self.next(self.end)

    @step
    def end(self) -> None:
        pass


class SwitchLoopFlow(FlowSpec):
    @step
    def start(self) -> None:
        self.next(self.poll)

    @step
    def poll(self) -> None:
        self.next({"again": self.poll, "done": self.end}, condition="status")

    @step
    def end(self) -> None:
        pass


class SwitchInBranchFlow(FlowSpec):
    @step
    def start(self) -> None:
        self.next(self.a, self.b)

    @step
    def a(self) -> None:
        self.next({"x": self.a, "y": self.c, "z": self.d}, condition="choice")

    @step
    def c(self) -> None:
        self.next(self.join)

    @step
    def d(self) -> None:
        self.next(self.join)

    @step
    def b(self) -> None:
        self.next(self.join)

    @step
    def join(self, inputs: Any) -> None:
        self.next(self.end)

    @step
    def end(self) -> None:
        pass


class ChildFlow(BranchFlow):
    """Inherits a, b, join and end; overrides start."""

    @step
    def start(self) -> None:
        self.next(self.b, self.a)


ALL_VALID = [LinearFlow, BranchFlow, NestedBranchFlow, ForeachFlow, NestedForeachFlow,
             SwitchFlow, SwitchLoopFlow, SwitchInBranchFlow, ChildFlow]


def shape(graph: FlowGraph) -> dict[str, tuple[str, list[str], list[str], list[str]]]:
    return {n.name: (n.type, n.out_funcs, n.in_funcs, n.split_parents) for n in graph}


def def_line(func: Any) -> int:
    lines, start = inspect.getsourcelines(func)
    return start + next(i for i, line in enumerate(lines) if line.lstrip().startswith("def "))


@pytest.mark.parametrize("flow", ALL_VALID, ids=lambda f: f.__name__)
def test_valid_flows_pass_lint_and_serialize(flow: type) -> None:
    graph = FlowGraph(flow)
    lint(graph)
    assert lint_all(graph) == []
    assert graph.sorted_nodes[0] == "start" and graph.sorted_nodes[-1] == "end"
    data = json.loads(json.dumps(graph.to_dict()))
    assert [s["name"] for s in data["steps"]] == graph.sorted_nodes


def test_linear() -> None:
    graph = FlowGraph(LinearFlow)
    assert shape(graph) == {
        "start": ("start", ["middle"], [], []),
        "middle": ("linear", ["end"], ["start"], []),
        "end": ("end", [], ["middle"], []),
    }
    start = graph["start"]
    assert start.doc == "Begin here.\n\nSecond paragraph."
    assert start.num_args == 1 and not start.is_join
    assert start.func_lineno == def_line(LinearFlow.start)
    assert start.tail_next_lineno == start.func_lineno + 6
    assert Path(start.source_file).resolve() == Path(__file__).resolve()
    assert graph["middle"].decorators == ["retry"]
    assert graph["middle"].func_lineno == def_line(LinearFlow.middle)
    assert graph["end"].has_tail_next is False
    assert "middle" in graph and "nope" not in graph and len(graph) == 3
    assert [n.name for n in graph] == ["start", "middle", "end"]
    assert isinstance(graph["start"], DAGNode)


def test_branch() -> None:
    graph = FlowGraph(BranchFlow)
    assert shape(graph) == {
        "start": ("split", ["a", "b"], [], []),
        "a": ("linear", ["join"], ["start"], ["start"]),
        "b": ("linear", ["join"], ["start"], ["start"]),
        "join": ("join", ["end"], ["a", "b"], ["start"]),
        "end": ("end", [], ["join"], []),
    }
    assert graph["start"].matching_join == "join"
    assert graph["join"].matching_split == "start"
    assert graph["join"].is_join and graph["join"].num_args == 2
    assert graph["a"].split_branches == ["a"] and graph["b"].split_branches == ["b"]
    assert graph.expected_join_branches("join") == ["a", "b"]


def test_nested_branch() -> None:
    graph = FlowGraph(NestedBranchFlow)
    assert graph.sorted_nodes == ["start", "outer_a", "inner_a", "inner_b", "inner_join",
                                  "outer_b", "outer_join", "end"]
    parents = {n.name: n.split_parents for n in graph}
    assert parents == {
        "start": [], "outer_a": ["start"], "inner_a": ["start", "outer_a"],
        "inner_b": ["start", "outer_a"], "inner_join": ["start", "outer_a"],
        "outer_b": ["start"], "outer_join": ["start"], "end": [],
    }
    assert graph["outer_a"].type == "split"
    assert graph["outer_a"].matching_join == "inner_join"
    assert graph["start"].matching_join == "outer_join"
    assert graph["outer_join"].in_funcs == ["inner_join", "outer_b"]
    assert graph["inner_a"].split_branches == ["outer_a", "inner_a"]


def test_foreach() -> None:
    graph = FlowGraph(ForeachFlow)
    assert shape(graph) == {
        "start": ("foreach", ["work"], [], []),
        "work": ("linear", ["join"], ["start"], ["start"]),
        "join": ("join", ["end"], ["work"], ["start"]),
        "end": ("end", [], ["join"], []),
    }
    assert graph["start"].foreach_param == "items"
    assert graph["start"].matching_join == "join"
    assert "foreach items => work" in graph.describe()


def test_nested_foreach() -> None:
    graph = FlowGraph(NestedForeachFlow)
    parents = {n.name: n.split_parents for n in graph}
    assert parents == {"start": [], "row": ["start"], "cell": ["start", "row"],
                       "join_cols": ["start", "row"], "join_rows": ["start"], "end": []}
    assert graph["row"].type == "foreach" and graph["row"].foreach_param == "cols"
    assert graph["row"].matching_join == "join_cols"
    assert graph["start"].matching_join == "join_rows"
    assert graph["join_cols"].matching_split == "row"


def test_switch_arms_merge_without_join() -> None:
    graph = FlowGraph(SwitchFlow)
    start = graph["start"]
    assert start.type == "split-switch"
    assert start.condition == "mode"
    assert start.switch_cases == {"fast": "fast", "slow": "slow"}
    assert start.out_funcs == ["fast", "slow"]
    assert start.matching_join is None
    merge = graph["merge"]
    assert merge.type == "linear" and merge.in_funcs == ["fast", "slow"]
    assert all(n.split_parents == [] for n in graph)
    assert "switch on mode: fast->fast, slow->slow" in graph.describe()


def test_switch_self_loop() -> None:
    graph = FlowGraph(SwitchLoopFlow)
    poll = graph["poll"]
    assert poll.type == "split-switch" and poll.self_loop
    assert poll.out_funcs == ["poll", "end"]
    assert poll.in_funcs == ["start"]  # the loop back is not an in_func
    assert graph.sorted_nodes == ["start", "poll", "end"]
    assert graph["end"].in_funcs == ["poll"] and graph["end"].split_parents == []


def test_switch_inside_branch() -> None:
    graph = FlowGraph(SwitchInBranchFlow)
    assert graph.sorted_nodes == ["start", "a", "c", "d", "b", "join", "end"]
    assert {n.name: n.split_parents for n in graph} == {
        "start": [], "a": ["start"], "c": ["start"], "d": ["start"], "b": ["start"],
        "join": ["start"], "end": []}
    assert graph["c"].split_branches == ["a"] and graph["d"].split_branches == ["a"]
    assert graph["a"].in_funcs == ["start"] and graph["a"].self_loop
    assert graph["join"].in_funcs == ["c", "d", "b"]
    # One branch of start reaches the join through either arm: still two inputs.
    assert graph.expected_join_branches("join") == ["a", "b"]
    assert graph["start"].matching_join == "join"


def test_inherited_steps() -> None:
    graph = FlowGraph(ChildFlow)
    assert graph["start"].out_funcs == ["b", "a"]
    assert graph.sorted_nodes == ["start", "b", "a", "join", "end"]
    assert graph["a"].func_lineno == def_line(BranchFlow.a)
    assert graph.doc.startswith("Inherits")


def test_describe() -> None:
    text = FlowGraph(LinearFlow).describe()
    assert text.splitlines()[0] == "A flow that goes straight through."
    assert "Step start\n    Begin here.\n\n    Second paragraph.\n    => middle" in text
    assert "Step end\n    Done." in text
    branch = FlowGraph(BranchFlow).describe()
    assert "Step start\n    => a, b" in branch
    assert "Step join (join)\n    => end" in branch
    loop = FlowGraph(SwitchLoopFlow).describe()
    assert "switch on status: again->poll, done->end" in loop


def test_to_dict() -> None:
    data = FlowGraph(SwitchLoopFlow).to_dict()
    assert data["flow"] == "SwitchLoopFlow"
    poll = data["steps"][1]
    assert poll["name"] == "poll" and poll["type"] == "split-switch"
    assert poll["switch_cases"] == {"again": "poll", "done": "end"}
    assert poll["condition"] == "status"


def test_flow_defined_inside_a_function() -> None:
    class Local(FlowSpec):
        @step
        def start(self) -> None:
            self.next({1: self.end, 2: self.other}, condition="n")

        @step
        def other(self) -> None:
            self.next(self.end)

        @step
        def end(self) -> None:
            pass

    graph = FlowGraph(Local)
    lint(graph)
    assert graph["start"].switch_cases == {1: "end", 2: "other"}
    assert graph["start"].func_lineno == def_line(Local.start)
    assert graph.to_dict()["steps"][0]["switch_cases"] == {"1": "end", "2": "other"}


def test_source_unavailable_is_a_lint_error() -> None:
    namespace: dict[str, Any] = {"FlowSpec": FlowSpec, "step": step}
    source = "class Hidden(FlowSpec):\n    @step\n    def start(self):\n        pass\n"
    exec(source, namespace)  # noqa: S102 - a class with no source file on purpose
    with pytest.raises(LintError, match="source code of step start"):
        FlowGraph(namespace["Hidden"])


def wrapping(func: Callable[..., Any]) -> Callable[..., Any]:
    """A decorator that really wraps (functools.wraps copies is_step and __wrapped__)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    return wrapper


class OddSelfFlow(FlowSpec):
    @wrapping
    @step
    def start(me) -> None:  # noqa: N805 - the first argument need not be called self
        me.next(
            me.end,
        )

    @step
    def end(this) -> None:  # noqa: N805
        pass


def test_wrapped_step_and_first_argument_not_named_self() -> None:
    graph = FlowGraph(OddSelfFlow)
    lint(graph)
    start = graph["start"]
    assert start.out_funcs == ["end"]
    assert start.func_lineno == def_line(OddSelfFlow.start.__wrapped__)  # type: ignore[attr-defined]
    assert start.tail_next_lineno == start.func_lineno + 1
