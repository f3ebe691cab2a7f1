"""Parse a FlowSpec subclass into a DAG of steps, read statically from the source.

The graph is built from the AST of each step (no step code runs), so ``show`` and ``check``
work before a run and every error can point at a file and line. Parsing records facts only,
including malformed ``self.next(...)`` calls; :mod:`plait.lint` judges them.
"""

from __future__ import annotations

import ast
import inspect
import linecache
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from plait.exceptions import LintError

#: A switch label: Metaflow matches the condition's value exactly, so numbers are allowed too.
SwitchKey = str | int | float | bool

SPLIT_TYPES = ("split", "foreach")  # types that open a split and need a join

__all__ = ["DAGNode", "FlowGraph", "SPLIT_TYPES", "SwitchKey", "step_functions"]


@dataclass
class DAGNode:
    """One step. ``split_parents`` of a join still include the split the join closes."""

    name: str
    source_file: str
    func_lineno: int  # absolute line of the ``def``
    doc: str = ""
    arg_names: list[str] = field(default_factory=list)
    num_args: int = 0  # positional arguments, ``self`` included
    bad_signature: bool = False  # *args, **kwargs or keyword-only arguments
    decorators: list[Any] = field(default_factory=list)  # the step function's own list
    type: str = "linear"
    out_funcs: list[str] = field(default_factory=list)  # targets, ordered, without duplicates
    in_funcs: list[str] = field(default_factory=list)  # steps leading here, self-loop excluded
    duplicate_targets: list[str] = field(default_factory=list)
    foreach_param: str | None = None
    foreach_expr: str | None = None  # source of a ``foreach=`` that is not a string literal
    condition: str | None = None
    condition_expr: str | None = None  # source of a ``condition=`` that is not a string literal
    switch_cases: dict[SwitchKey, str] | None = None
    num_parallel_expr: str | None = None  # ``num_parallel=`` is recorded, and rejected by lint
    has_tail_next: bool = False
    tail_next_lineno: int | None = None
    stray_next_linenos: list[int] = field(default_factory=list)  # self.next not at the tail
    next_problems: list[tuple[int, str]] = field(default_factory=list)  # (line, what is wrong)
    reachable: bool = False
    split_parents: list[str] = field(default_factory=list)
    split_branches: list[str] = field(default_factory=list)  # first step of each open branch
    matching_join: str | None = None  # for split/foreach: the join that closes it
    matching_split: str | None = None  # for join: the split/foreach it closes
    # For each reachable parent (self-loops excluded): (split_parents, split_branches) as
    # seen through that parent, before a join pops. Lint compares them.
    parent_stacks: dict[str, tuple[list[str], list[str]]] = field(default_factory=dict)

    @property
    def is_join(self) -> bool:
        """A join is a step that takes ``inputs``; switch arms merging are not joins."""
        return self.num_args == 2

    @property
    def is_switch(self) -> bool:
        return self.switch_cases is not None

    @property
    def self_loop(self) -> bool:
        """True for a switch that can go back to itself: the one allowed cycle."""
        return self.is_switch and self.name in self.out_funcs

    def describe_next(self) -> str:
        """The transition as one line of text, e.g. ``foreach items => x``."""
        if self.switch_cases is not None:
            arms = ", ".join(f"{k}->{v}" for k, v in self.switch_cases.items())
            return f"switch on {self.condition or '?'}: {arms}"
        targets = ", ".join(self.out_funcs)
        if self.foreach_param is not None:
            return f"foreach {self.foreach_param} => {targets}"
        return f"=> {targets}" if targets else ""


class FlowGraph:
    """The steps of ``flow_cls`` as a graph; ``sorted_nodes`` lists names in run order."""

    def __init__(self, flow_cls: type) -> None:
        self.flow_cls = flow_cls
        self.name = flow_cls.__name__
        self.doc = inspect.cleandoc(flow_cls.__doc__ or "")
        self.nodes: dict[str, DAGNode] = _parse_steps(flow_cls)
        self._link()
        self.sorted_nodes: list[str] = self._sort()
        self._compute_splits()

    def __getitem__(self, name: str) -> DAGNode:
        return self.nodes[name]

    def __contains__(self, name: object) -> bool:
        return name in self.nodes

    def __iter__(self) -> Iterator[DAGNode]:
        return (self.nodes[n] for n in self.sorted_nodes)

    def __len__(self) -> int:
        return len(self.nodes)

    def _link(self) -> None:
        for node in self.nodes.values():
            for target in node.out_funcs:  # a self-loop is not an in_func (as in Metaflow)
                if target in self.nodes and node.name not in self.nodes[target].in_funcs \
                        and target != node.name:
                    self.nodes[target].in_funcs.append(node.name)
        seen, todo = set(), ["start"] if "start" in self.nodes else []
        while todo:
            name = todo.pop()
            if name not in seen:
                seen.add(name)
                todo.extend(t for t in self.nodes[name].out_funcs if t in self.nodes)
        for name in seen:
            self.nodes[name].reachable = True

    def _parents(self, node: DAGNode) -> list[str]:
        return [p for p in node.in_funcs if self.nodes[p].reachable]

    def _sort(self) -> list[str]:
        """Depth first from start, a step only once all its parents are placed.

        So the branches of a split are listed one after the other and the join after them.
        Steps left out (unreachable, or on a cycle) follow in definition order.
        """
        order: list[str] = []
        placed: set[str] = set()
        todo = ["start"] if "start" in self.nodes else []
        while todo:
            name = todo.pop()
            if name in placed:
                continue
            placed.add(name)
            order.append(name)
            ready = [t for t in self.nodes[name].out_funcs
                     if t in self.nodes and t not in placed
                     and all(p in placed for p in self._parents(self.nodes[t]))]
            todo.extend(reversed(ready))
        order.extend(n for n in self.nodes if n not in placed)
        position = {name: i for i, name in enumerate(order)}
        for node in self.nodes.values():
            node.in_funcs.sort(key=position.__getitem__)
        return order

    def _compute_splits(self) -> None:
        for name in self.sorted_nodes:
            node = self.nodes[name]
            if not node.reachable or name == "start":
                continue
            for parent in self._parents(node):
                pnode = self.nodes[parent]
                stack, branches = list(pnode.split_parents), list(pnode.split_branches)
                if pnode.type == "join" and stack:
                    stack.pop()
                if pnode.type in SPLIT_TYPES:
                    stack.append(parent)
                    branches.append(name)
                node.parent_stacks[parent] = (stack, branches)
            if not node.parent_stacks:
                continue  # parents on a cycle: lint reports the cycle
            stack, branches = next(iter(node.parent_stacks.values()))
            node.split_parents, node.split_branches = list(stack), list(branches)
            if node.type == "join":
                node.split_branches = branches[:-1]
                node.matching_split = stack[-1] if stack else None
                split = self.nodes.get(node.matching_split or "")
                if split is not None and split.matching_join is None:
                    split.matching_join = name

    def expected_join_branches(self, name: str) -> list[str]:
        """Branches a join waits for: the split's targets (a foreach: one, run N times)."""
        split = self.nodes[name].matching_split
        return list(self.nodes[split].out_funcs) if split else []

    def describe(self) -> str:
        """Human description of the flow, for ``python flow.py show``."""
        lines = [self.doc, ""] if self.doc else []
        for node in self:
            lines.append(f"Step {node.name}" + (" (join)" if node.type == "join" else ""))
            lines.extend(f"    {line}".rstrip() for line in node.doc.splitlines())
            transition = node.describe_next()
            if transition:
                lines.append(f"    {transition}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able view of the graph (for metadata, UIs and orchestrator plugins)."""
        steps = []
        for node in self:
            cases = node.switch_cases
            steps.append({
                "name": node.name, "type": node.type, "doc": node.doc,
                "out_funcs": list(node.out_funcs), "in_funcs": list(node.in_funcs),
                "foreach_param": node.foreach_param, "condition": node.condition,
                "switch_cases": None if cases is None else {str(k): v for k, v in cases.items()},
                "split_parents": list(node.split_parents),
                "matching_join": node.matching_join, "matching_split": node.matching_split,
                "source_file": node.source_file, "lineno": node.func_lineno,
                "decorators": [getattr(d, "name", type(d).__name__) for d in node.decorators],
            })
        return {"flow": self.name, "doc": self.doc, "steps": steps}


# ---------------------------------------------------------------------------------------------
# Parsing


def step_functions(flow_cls: type) -> dict[str, Callable[..., Any]]:
    """The steps of ``flow_cls``, inherited ones included, in definition order."""
    names: dict[str, None] = {}
    for klass in reversed(flow_cls.__mro__):
        names.update(dict.fromkeys(vars(klass)))
    found: dict[str, Callable[..., Any]] = {}
    for name in names:
        try:
            func = getattr(flow_cls, name)
        except Exception:  # noqa: BLE001, S112 - a descriptor failing on the class is no step
            continue
        if callable(func) and getattr(func, "is_step", False) is True:
            found[name] = func
    return found


def _parse_steps(flow_cls: type) -> dict[str, DAGNode]:
    trees: dict[str, dict[tuple[str, int], ast.FunctionDef | ast.AsyncFunctionDef]] = {}
    nodes: dict[str, DAGNode] = {}
    for name, func in step_functions(flow_cls).items():
        try:
            source_file, fdef = _find_def(inspect.unwrap(func), trees)
        except (OSError, TypeError, AttributeError, SyntaxError) as exc:
            raise LintError(f"Cannot read the source code of step {name} ({exc}). Plait reads "
                            "steps from source: define the flow in a .py file or notebook cell.") from exc
        nodes[name] = _parse_node(name, fdef, source_file, getattr(func, "decorators", []))
    for node in nodes.values():
        node.type = _node_type(node)
    return nodes


def _find_def(func: Callable[..., Any], trees: dict[str, dict[tuple[str, int], Any]]
              ) -> tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]:
    """Locate the ``def`` of ``func`` in its file; each file is parsed once.

    Parsing the whole file (not ``getsource`` + dedent) keeps line numbers absolute and copes
    with docstrings whose lines are less indented than the method.
    """
    source_file = inspect.getsourcefile(func) or inspect.getfile(func)
    code = func.__code__
    if source_file not in trees:
        text = "".join(linecache.getlines(source_file, func.__globals__))
        defs: dict[tuple[str, int], Any] = {}
        try:
            tree = ast.parse(text)
        except SyntaxError:  # the file changed since import: fall back to getsourcelines
            tree = ast.Module(body=[], type_ignores=[])
        for item in ast.walk(tree):
            if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                first = min([item.lineno] + [d.lineno for d in item.decorator_list])
                defs[(item.name, first)] = item
        trees[source_file] = defs
    fdef = trees[source_file].get((code.co_name, code.co_firstlineno))
    if fdef is not None:
        return source_file, fdef
    lines, start = inspect.getsourcelines(func)  # fallback: e.g. the file changed on disk
    parsed = ast.parse(textwrap.dedent("".join(lines)))
    fdef = parsed.body[0]
    assert isinstance(fdef, (ast.FunctionDef, ast.AsyncFunctionDef))
    ast.increment_lineno(parsed, max(start, 1) - 1)
    return source_file, fdef


def _parse_node(name: str, fdef: ast.FunctionDef | ast.AsyncFunctionDef, source_file: str,
                decorators: list[Any]) -> DAGNode:
    args = fdef.args
    positional = args.posonlyargs + args.args
    node = DAGNode(
        name=name, source_file=source_file, func_lineno=fdef.lineno,
        doc=inspect.cleandoc(ast.get_docstring(fdef, clean=False) or ""),
        arg_names=[a.arg for a in positional], num_args=len(positional),
        bad_signature=bool(args.vararg or args.kwarg or args.kwonlyargs),
        decorators=decorators,
    )
    me = node.arg_names[0] if node.arg_names else "self"
    tail = fdef.body[-1]
    tail_call = tail.value if isinstance(tail, ast.Expr) and _is_next(tail.value, me) else None
    for item in ast.walk(fdef):
        if isinstance(item, ast.Call) and _is_next(item, me) and item is not tail_call:
            node.stray_next_linenos.append(item.lineno)
    node.stray_next_linenos.sort()
    if isinstance(tail_call, ast.Call):
        node.has_tail_next = True
        node.tail_next_lineno = tail_call.lineno
        _parse_next(node, tail_call, me)
    return node


def _is_next(item: ast.AST, me: str) -> bool:
    return (isinstance(item, ast.Call) and isinstance(item.func, ast.Attribute)
            and item.func.attr == "next" and _is_self(item.func.value, me))


def _is_self(item: ast.AST, me: str) -> bool:
    return isinstance(item, ast.Name) and item.id == me


def _step_ref(item: ast.AST, me: str) -> str | None:
    """``self.a`` -> ``"a"``; anything else -> None."""
    if isinstance(item, ast.Attribute) and _is_self(item.value, me):
        return item.attr
    return None


def _problem(node: DAGNode, item: ast.expr, msg: str) -> None:
    node.next_problems.append((item.lineno, msg))


def _parse_next(node: DAGNode, call: ast.Call, me: str) -> None:
    """Record what ``self.next(...)`` asks for; shapes that make no sense go to next_problems."""
    targets: list[str] = []
    for kw in call.keywords:
        value = kw.value
        literal = value.value if isinstance(value, ast.Constant) else None
        if kw.arg == "foreach":
            if isinstance(literal, str):
                node.foreach_param = literal
            else:
                node.foreach_expr = ast.unparse(value)
        elif kw.arg == "condition":
            if isinstance(literal, str):
                node.condition = literal
            else:
                node.condition_expr = ast.unparse(value)
        elif kw.arg == "num_parallel":
            node.num_parallel_expr = ast.unparse(value)
        elif kw.arg is None:
            _problem(node, value, f"**{ast.unparse(value)} is not allowed in self.next(); "
                     "write the keyword arguments out")
        else:
            _problem(node, value, f"self.next() has no argument {kw.arg}=; it takes step "
                     "targets, foreach='attribute' or condition='attribute'")
    if not call.args:
        _problem(node, call, "self.next() names no step; write e.g. self.next(self.end)")
    if len(call.args) == 1 and isinstance(call.args[0], ast.Dict):
        _parse_switch(node, call.args[0], me)
        return
    for arg in call.args:
        target = _step_ref(arg, me)
        if target is not None:
            (node.duplicate_targets if target in targets else targets).append(target)
        elif isinstance(arg, ast.Dict):
            _problem(node, arg, "a switch takes exactly one argument, the dict: "
                     "self.next({'a': self.a, 'b': self.b}, condition='attribute')")
        elif isinstance(arg, ast.Starred):
            _problem(node, arg, f"*{ast.unparse(arg.value)} is not allowed in self.next(); "
                     "name each step, e.g. self.next(self.a, self.b)")
        else:
            const = arg.value if isinstance(arg, ast.Constant) else None
            named = isinstance(const, str) and const.isidentifier()
            hint = f"self.{const!s}" if named else "self.<step>"
            _problem(node, arg, f"self.next() argument {ast.unparse(arg)} is not a step; pass "
                     f"the step method as {hint}")
    node.out_funcs = targets


def _parse_switch(node: DAGNode, cases: ast.Dict, me: str) -> None:
    node.switch_cases = {}
    for key, value in zip(cases.keys, cases.values, strict=True):
        if key is None:
            _problem(node, value, f"**{ast.unparse(value)} is not allowed in a switch; "
                     "write every case out")
            continue
        label = key.value if isinstance(key, ast.Constant) else None
        if label is None or not isinstance(label, (str, int, float, bool)):
            _problem(node, key, f"switch label {ast.unparse(key)} is not a literal; labels "
                     "must be written as strings or numbers, e.g. {'high': self.a, 'low': self.b}")
            continue
        target = _step_ref(value, me)
        if target is None:
            _problem(node, value, f"switch case {label!r} leads to {ast.unparse(value)}, not "
                     f"to a step; write {label!r}: self.<step>")
        elif label in node.switch_cases:
            _problem(node, key, f"switch label {label!r} appears twice; each label must lead "
                     "to one step")
        else:
            node.switch_cases[label] = target
            if target not in node.out_funcs:
                node.out_funcs.append(target)


def _node_type(node: DAGNode) -> str:
    if node.name == "end":
        return "end"
    if node.is_join:
        return "join"
    if node.is_switch:
        return "split-switch"
    if node.foreach_param is not None or node.foreach_expr is not None:
        return "foreach"
    if len(node.out_funcs) > 1:
        return "split"
    return "start" if node.name == "start" else "linear"
