"""Check a FlowGraph before it runs, and say precisely what is wrong and how to fix it.

Checks run in stages: each stage assumes the earlier ones passed (the split/join analysis
only makes sense once every target exists and there is no cycle), so :func:`lint_all`
returns the problems of the first stage that finds any, in flow order.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterator

from plait.exceptions import LintError
from plait.graph import SPLIT_TYPES, DAGNode, FlowGraph

__all__ = ["lint", "lint_all"]

Check = Callable[[FlowGraph], Iterator[LintError]]

_VALID_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")
# FlowSpec API a step must not shadow; plait.flowspec.RESERVED_NAMES and FlowSpec's own
# public attributes are added at check time.
_RESERVED = frozenset({"next", "input", "index", "foreach_stack", "merge_artifacts", "name",
                       "cmd", "script_name"})
_JOIN_HINT = "def join(self, inputs)"


def lint(graph: FlowGraph) -> None:
    """Raise a LintError for the first problem in the flow, if any."""
    errors = lint_all(graph)
    if errors:
        raise errors[0]


def lint_all(graph: FlowGraph) -> list[LintError]:
    """Every problem of the first failing stage (an empty list means the flow is valid)."""
    for stage in _STAGES:
        errors = [err for check in stage for err in check(graph)]
        if errors:
            return errors
    return []


def _error(node: DAGNode, msg: str, lineno: int | None = None) -> LintError:
    return LintError(msg, lineno=lineno or node.func_lineno, source_file=node.source_file)


def _flow_error(graph: FlowGraph, msg: str) -> LintError:
    try:
        source_file: str | None = inspect.getsourcefile(graph.flow_cls)
        lineno: int | None = inspect.findsource(graph.flow_cls)[1] + 1
    except (OSError, TypeError):
        source_file, lineno = None, None
    return LintError(msg, lineno=lineno, source_file=source_file)


def _next_line(node: DAGNode) -> int:
    return node.tail_next_lineno or node.func_lineno


def _names(names: list[str]) -> str:
    return ", ".join(names)


# --- stage 1: each step on its own ----------------------------------------------------------


def _reserved_names() -> frozenset[str]:
    from plait import flowspec

    base = {n for n in dir(flowspec.FlowSpec) if not n.startswith("_")}
    return _RESERVED | getattr(flowspec, "RESERVED_NAMES", frozenset()) | base


def check_names(graph: FlowGraph) -> Iterator[LintError]:
    reserved = _reserved_names()
    for node in graph:
        if node.name in reserved:
            yield _error(node, f"Step name {node.name!r} is reserved: FlowSpec itself uses "
                         f"self.{node.name}. Rename the step (and every self.next() that "
                         "leads to it).")
        elif not _VALID_NAME.match(node.name):
            yield _error(node, f"Step name {node.name!r} is not valid: a step name starts with "
                         "a lowercase letter and has only lowercase letters, digits and "
                         "underscores. Rename the step (and every self.next() that leads to it).")


def check_start_end(graph: FlowGraph) -> Iterator[LintError]:
    for name in ("start", "end"):
        if name not in graph:
            yield _flow_error(graph, f"Flow {graph.name} has no {name} step. Every flow begins "
                              f"at a step named 'start' and finishes at a step named 'end': "
                              f"add @step def {name}(self): ...")


def check_signatures(graph: FlowGraph) -> Iterator[LintError]:
    for node in graph:
        args = f"({', '.join(node.arg_names)})"
        if node.bad_signature or node.num_args == 0 or node.num_args > 2:
            yield _error(node, f"Step {node.name} is declared as {node.name}{args}"
                         f"{' with *args, **kwargs or keyword-only arguments' if node.bad_signature else ''}. "
                         f"A step takes only self: def {node.name}(self); a join step takes "
                         f"self and inputs: def {node.name}(self, inputs).")
        elif node.name == "start" and node.is_join:
            yield _error(node, "Step start takes an inputs argument, but nothing runs before "
                         "start, so there is nothing to join. Declare it as def start(self).")
        elif node.name == "end" and node.is_join:
            yield _error(node, "Step end takes an inputs argument, but end cannot be a join. "
                         f"Add a join step before it ({_JOIN_HINT}: ... self.next(self.end)) "
                         "and declare def end(self).")


def check_next_calls(graph: FlowGraph) -> Iterator[LintError]:
    for node in graph:
        if node.name == "end":
            lines = node.stray_next_linenos + ([_next_line(node)] if node.has_tail_next else [])
            if lines:
                yield _error(node, "Step end calls self.next(), but end is the last step of "
                             "the flow. Remove the self.next() call from end.", min(lines))
            continue
        if node.stray_next_linenos:
            yield _error(node, f"Step {node.name} calls self.next() in a place other than its "
                         "last statement (e.g. inside an if, loop, with or try block). "
                         "self.next() must be the single last statement of the step. To choose "
                         "the next step at run time use a switch: self.next({'yes': self.a, "
                         "'no': self.b}, condition='attribute').", node.stray_next_linenos[0])
        elif not node.has_tail_next:
            yield _error(node, f"Step {node.name} does not end with self.next(). Add "
                         "self.next(self.<next step>) as its last statement (only the end step "
                         "has no self.next()).")
        for lineno, problem in node.next_problems:
            yield _error(node, f"Step {node.name}: {problem}.", lineno)
        yield from _check_transition_shape(node)


def _as_attr_name(expr: str) -> str:
    return expr[5:] if expr.startswith("self.") and expr[5:].isidentifier() else "attribute"


def _check_transition_shape(node: DAGNode) -> Iterator[LintError]:
    line, name = _next_line(node), node.name
    foreach = node.foreach_param is not None or node.foreach_expr is not None
    condition = node.condition is not None or node.condition_expr is not None
    if node.num_parallel_expr is not None:
        yield _error(node, f"Step {name} passes num_parallel= to self.next(); Plait does not "
                     "support @parallel steps. Fan out with foreach='attribute' instead.", line)
    if foreach and (condition or node.is_switch):
        yield _error(node, f"Step {name} passes both foreach= and a switch to self.next(). "
                     "A step either fans out over a list (foreach) or picks one branch "
                     "(switch): use two steps.", line)
        return
    if node.foreach_expr is not None:
        yield _error(node, f"Step {name} passes foreach={node.foreach_expr}; foreach= takes the "
                     "name of the list artifact as a string, e.g. foreach="
                     f"'{_as_attr_name(node.foreach_expr)}'.", line)
    if node.condition_expr is not None:
        yield _error(node, f"Step {name} passes condition={node.condition_expr}; condition= "
                     "takes the name of the artifact as a string, e.g. condition="
                     f"'{_as_attr_name(node.condition_expr)}'.", line)
    if foreach and len(node.out_funcs) != 1:
        yield _error(node, f"Step {name} is a foreach over {len(node.out_funcs)} steps "
                     f"({_names(node.out_funcs)}); a foreach leads to exactly one step, which "
                     "runs once per item: self.next(self.<step>, foreach='items').", line)
    if node.is_switch:
        cases = node.switch_cases or {}
        if not condition:
            yield _error(node, f"Step {name} passes a dict of cases to self.next() without "
                         "condition=. Name the artifact whose value picks the case: "
                         "self.next({'a': self.a, 'b': self.b}, condition='attribute').", line)
        if len(cases) < 2 and not node.next_problems:
            yield _error(node, f"Step {name} has a switch with {len(cases)} case(s); a switch "
                         "needs at least two. For a single target write self.next(self.<step>).",
                         line)
    elif condition and node.has_tail_next:
        yield _error(node, f"Step {name} passes condition= but its cases are not a dict. "
                     "Write self.next({'label1': self.a, 'label2': self.b}, "
                     "condition='attribute').", line)
    for target in node.duplicate_targets:
        yield _error(node, f"Step {name} names {target} more than once in self.next(). Each "
                     "branch of a split must be a different step; to run one step many times "
                     "use foreach='items'.", line)


def check_targets(graph: FlowGraph) -> Iterator[LintError]:
    for node in graph:
        for target in node.out_funcs:
            if target in graph:
                continue
            if hasattr(graph.flow_cls, target):
                why = f"{target} is not a step: decorate it with @step or point to a step."
            else:
                steps = _names(graph.sorted_nodes)
                why = f"the flow has no step named {target} (its steps: {steps})."
            yield _error(node, f"Step {node.name} leads to self.{target} but {why}",
                         _next_line(node))


def check_join_split(graph: FlowGraph) -> Iterator[LintError]:
    for node in graph:
        foreach = node.foreach_param is not None or node.foreach_expr is not None
        if node.is_join and (node.is_switch or len(node.out_funcs) > 1 or foreach):
            yield _error(node, f"Step {node.name} both joins (it takes inputs) and splits "
                         f"({node.describe_next()}). Do one per step: end {node.name} with "
                         f"self.next(self.<new step>) and split in that new step.",
                         _next_line(node))


# --- stage 2: the shape of the whole graph --------------------------------------------------


def check_start_incoming(graph: FlowGraph) -> Iterator[LintError]:
    start = graph["start"]
    sources = start.in_funcs + (["start"] if "start" in start.out_funcs else [])
    if sources:
        yield _error(start, f"Step start is the target of self.next() in {_names(sources)}; "
                     "start is where a run begins and nothing may lead back to it. Point "
                     "those transitions at another step (to loop, use a switch in a later step).")


def check_cycles(graph: FlowGraph) -> Iterator[LintError]:
    """Find one loop by depth-first search; a switch's self-loop is the one allowed cycle."""
    on_path: dict[str, int] = {}  # step -> position in path
    done: set[str] = set()
    path: list[str] = []
    todo: list[tuple[str, Iterator[str]]] = []

    def enter(name: str) -> None:
        node = graph[name]
        on_path[name] = len(path)
        path.append(name)
        todo.append((name, iter(t for t in node.out_funcs if not (t == name and node.self_loop))))

    enter("start")
    while todo:
        name, targets = todo[-1]
        target = next(targets, None)
        if target is None:
            todo.pop()
            path.pop()
            del on_path[name]
            done.add(name)
        elif target in on_path:
            loop = path[on_path[target]:] + [target]
            node = graph[name]
            yield _error(node, f"Steps {' -> '.join(loop)} form a loop. The only loop allowed "
                         "is a switch that leads back to its own step, e.g. in step x: "
                         "self.next({'again': self.x, 'done': self.y}, condition='attribute'). "
                         f"Change the self.next() of {name} to break the loop.", _next_line(node))
            return
        elif target not in done:
            enter(target)


def check_reachable(graph: FlowGraph) -> Iterator[LintError]:
    for node in graph:
        if not node.reachable:
            yield _error(node, f"Step {node.name} can never run: no path from start leads to "
                         f"it. Add self.next(self.{node.name}) to a step, or delete it.")


def check_split_into_join(graph: FlowGraph) -> Iterator[LintError]:
    for node in graph:
        for target in node.out_funcs:
            if not graph[target].is_join:
                continue
            if node.type == "foreach":
                yield _error(node, f"Foreach step {node.name} leads straight to join {target}. "
                             "A foreach needs a step that runs once per item: "
                             f"self.next(self.work, foreach=...) in {node.name}, then "
                             f"self.next(self.{target}) in work.", _next_line(node))
            elif node.type == "split":
                yield _error(node, f"Split step {node.name} leads straight to join {target}. "
                             f"Every branch needs its own step: put a step between "
                             f"{node.name} and {target}.", _next_line(node))
            elif node.is_switch:
                yield _error(node, f"Switch step {node.name} leads straight to join {target}. "
                             "A conditional path must pass through an ordinary step before a "
                             f"join: put a step between {node.name} and {target} on that path.",
                             _next_line(node))


# --- stage 3: splits and joins balance -----------------------------------------------------


def _where(stack: list[str]) -> str:
    return f"inside split {' > '.join(stack)}" if stack else "outside any split"


def check_structure(graph: FlowGraph) -> Iterator[LintError]:
    for node in graph:
        if not node.reachable or not node.parent_stacks:
            continue
        stacks = node.parent_stacks
        if node.is_join:
            yield from _check_join(graph, node)
        elif node.name == "end":
            open_splits = {p: s for p, (s, _) in stacks.items() if s}
            if open_splits:
                stack = next(iter(open_splits.values()))
                yield _error(node, f"Step end is reached from {_names(list(open_splits))} while "
                             f"split {stack[-1]} is still open. Close every split before end: "
                             f"add a join step ({_JOIN_HINT}) that the branches of {stack[-1]} "
                             "lead to, and have it lead to end.")
        elif len({(tuple(s), tuple(b)) for s, b in stacks.values()}) > 1:
            yield _mixed_parents(node)


def _mixed_parents(node: DAGNode) -> LintError:
    (p1, (s1, b1)), *rest = node.parent_stacks.items()
    p2, (s2, b2) = next((p, sb) for p, sb in rest if sb != (s1, b1))
    if s1 == s2:
        split = next(s for s, x, y in zip(s1, b1, b2, strict=True) if x != y)
        return _error(node, f"Step {node.name} is reached from different branches of split "
                      f"{split} (via {p1} and {p2}) but takes no inputs, so it cannot merge "
                      f"them. If it should merge them, make it a join: def {node.name}(self, "
                      "inputs).")
    return _error(node, f"Step {node.name} is reached from {p1} ({_where(s1)}) and from {p2} "
                  f"({_where(s2)}). A step belongs to one branch: close the split with a join "
                  "before the paths meet.")


def _check_join(graph: FlowGraph, node: DAGNode) -> Iterator[LintError]:
    stacks = node.parent_stacks
    if all(not s for s, _ in stacks.values()):
        yield _error(node, f"Step {node.name} takes inputs (a join), but no split comes before "
                     f"it, so there is nothing to join. Remove the inputs argument, or make an "
                     "earlier step split with self.next(self.a, self.b) or foreach=.")
        return
    distinct = {tuple(s) for s, _ in stacks.values()}
    if len(distinct) > 1:
        seen = "; ".join(f"{p} is {_where(s)}" for p, (s, _) in stacks.items())
        yield _error(node, f"Join step {node.name} merges steps from different splits: {seen}. "
                     "A join closes one split: join the innermost split first, then join the "
                     "outer one in a later step.")
        return
    split = node.matching_split or ""
    arrived = {b[-1] for _, b in stacks.values()}
    missing = [b for b in graph[split].out_funcs if b not in arrived]
    if missing:
        yield _error(node, f"Join step {node.name} closes split {split}, which has "
                     f"{len(graph[split].out_funcs)} branches ({_names(graph[split].out_funcs)})"
                     f", but only {len(arrived)} reach it. Make branch(es) {_names(missing)} "
                     f"lead to {node.name} too.")


def check_joined(graph: FlowGraph) -> Iterator[LintError]:
    for node in graph:
        if node.reachable and node.type in SPLIT_TYPES and node.matching_join is None:
            kind = "Foreach" if node.type == "foreach" else "Split"
            yield _error(node, f"{kind} step {node.name} ({node.describe_next()}) is never "
                         f"joined. Add a join step ({_JOIN_HINT}) that every branch leads to, "
                         "before end.", _next_line(node))


_STAGES: list[list[Check]] = [
    [check_names, check_start_end],
    [check_signatures, check_next_calls, check_targets, check_join_split],
    [check_start_incoming, check_cycles, check_reachable, check_split_into_join],
    [check_structure, check_joined],
]
