"""Turn a flow class defined in a notebook (``__main__``) into a standalone flow file.

``inspect.getsource`` cannot be trusted for classes of an interactive session, but IPython
(and plain scripts) leave every cell's source in ``linecache`` under the file name its code
objects carry. We take the cell that defined the class, keep its imports and definitions
(dropping statements that would run the flow or call notebook-only APIs), and add what the
cell uses from the rest of the session: imports for modules and importable objects, the
source of helper functions and classes defined in other cells, and literal constants.
"""

from __future__ import annotations

import ast
import builtins
import linecache
import symtable
import sys
from typing import Any

from plait.runner.flowfile import RunnerError


class NBRunnerInitializationError(RunnerError):
    headline = "NBRunner cannot use this flow"


#: Names whose statements never belong in the flow file: they would start runs or need a kernel.
_DROP_NAMES = {"NBRunner", "Runner", "get_ipython", "display"}


def _code_files(obj: Any) -> list[str]:
    """File names of the code objects defined by a function or by a class's methods."""
    if hasattr(obj, "__code__"):
        return [obj.__code__.co_filename]
    files = []
    for value in vars(obj).values():
        func = getattr(value, "__func__", value)
        code = getattr(func, "__code__", None)
        if code is not None and code.co_filename not in files:
            files.append(code.co_filename)
    return files


def _parse(source: str, filename: str) -> tuple[str, ast.Module]:
    """(Python source, tree) of a cell; IPython syntax (magics) is turned into Python first."""
    try:
        return source, ast.parse(source, filename)
    except SyntaxError:
        pass
    if source.lstrip().startswith("%%"):  # a cell magic (%%time, %%capture): its body is Python
        body = source.lstrip().split("\n", 1)[1] if "\n" in source.lstrip() else ""
        try:
            return body, ast.parse(body, filename)
        except SyntaxError:
            pass
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        python = TransformerManager().transform_cell(source)
        return python, ast.parse(python, filename)
    except Exception as exc:  # noqa: BLE001
        raise NBRunnerInitializationError(f"Cannot parse the cell that defines the flow: {exc}") from None


def _history_cells() -> list[str]:
    try:
        from IPython import get_ipython
    except ImportError:
        return []
    shell = get_ipython()
    return list(reversed(shell.history_manager.input_hist_raw)) if shell is not None else []


def _defining_source(obj: Any) -> tuple[str, ast.Module]:
    """(source, tree) of the cell or file that defines ``obj`` (a class or function)."""
    name = obj.__name__
    candidates = [("".join(linecache.getlines(f)), f) for f in _code_files(obj)]
    candidates += [(cell, "<cell>") for cell in _history_cells()]
    for source, filename in candidates:
        if not source:
            continue
        try:
            source, tree = _parse(source, filename)
        except NBRunnerInitializationError:
            continue
        if any(isinstance(n, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == name
               for n in tree.body):
            return source, tree
    raise NBRunnerInitializationError(
        f"Cannot find the source of {name}: define the flow class in a notebook cell (or a .py file).")


def _names_in(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _keep(node: ast.stmt, flows: set[str]) -> bool:
    """Whether a top-level statement of the cell belongs in the flow file."""
    if _names_in(node) & _DROP_NAMES:
        return False
    if isinstance(node, ast.If) and "__name__" in _names_in(node.test):
        return False  # a script's `if __name__ == "__main__":` block
    if isinstance(node, ast.Expr) and not isinstance(node.value, ast.Call):
        return False  # a value shown by the notebook
    definition = (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef, ast.Import, ast.ImportFrom)
    if not isinstance(node, definition) and _names_in(node) & flows:
        return False  # uses a flow class of the cell (MyFlow() would start its command line)
    return True


def _bound_by(node: ast.stmt) -> set[str]:
    names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Store, ast.Del))}
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        names.add(node.name)
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def _kept_statements(tree: ast.Module, flows: set[str]) -> list[ast.stmt]:
    """The cell's statements minus those that run things, and minus whatever uses their results
    (``run = NBRunner(F).nbrun()`` goes, and so does ``print(run.data.x)`` after it)."""
    kept: list[ast.stmt] = []
    dropped_names: set[str] = set()
    for node in tree.body:
        if _keep(node, flows) and not (_names_in(node) & dropped_names):
            kept.append(node)
        else:
            dropped_names |= _bound_by(node)
    return kept


def _free_globals(tree: ast.Module) -> list[str]:
    """Global names the code reads but does not define (scoped properly, via symtable)."""
    table = symtable.symtable(ast.unparse(tree), "<flow>", "exec")
    bound = {s.get_name() for s in table.get_symbols() if s.is_assigned() or s.is_imported() or s.is_namespace()}
    found: dict[str, None] = {}

    def walk(t: symtable.SymbolTable, top: bool) -> None:
        for s in t.get_symbols():
            if s.is_referenced() and (top or s.is_global()) and s.get_name() not in bound:
                found[s.get_name()] = None
        for child in t.get_children():
            walk(child, False)

    walk(table, True)
    return [n for n in found if not hasattr(builtins, n)]


class _Builder:
    """Collects the preamble (imports, helpers, constants) for the names a flow file needs."""

    def __init__(self, namespace: dict[str, Any]) -> None:
        self.ns = namespace
        self.imports: dict[str, None] = {}
        self.blocks: dict[str, str] = {}
        self.visiting: set[str] = set()

    def resolve(self, names: list[str], where: str) -> None:
        for name in names:
            if name in self.blocks or name in self.visiting or name not in self.ns:
                continue
            self._one(name, self.ns[name], where)

    def _one(self, name: str, value: Any, where: str) -> None:
        import types

        plait = sys.modules.get("plait")
        if plait is not None and plait.__dict__.get(name) is value:
            self.imports[f"from plait import {name}"] = None
            return
        if isinstance(value, types.ModuleType):
            alias = "" if value.__name__ == name else f" as {name}"
            self.imports[f"import {value.__name__}{alias}"] = None
            return
        module = getattr(value, "__module__", None)
        qualname = getattr(value, "__qualname__", None)
        if module and module != "__main__" and qualname and "." not in qualname \
                and getattr(sys.modules.get(module), qualname, None) is value:
            alias = "" if qualname == name else f" as {name}"
            self.imports[f"from {module} import {qualname}{alias}"] = None
            return
        if module == "__main__" and isinstance(value, (type, types.FunctionType)):
            self.visiting.add(name)
            self.blocks[name] = self._definition(value)
            self.visiting.discard(name)
            return
        try:
            text = repr(value)
            if ast.literal_eval(text) == value:
                self.blocks[name] = f"{name} = {text}\n"
                return
        except (ValueError, SyntaxError, TypeError, RecursionError, MemoryError):
            pass
        raise NBRunnerInitializationError(
            f"The flow in {where} uses `{name}` ({type(value).__name__}) from the notebook, which cannot be "
            f"written into a flow file. Define or import it in the flow's cell.")

    def _definition(self, obj: Any) -> str:
        source, tree = _defining_source(obj)
        node = next(n for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                    and n.name == obj.__name__)
        module = ast.Module(body=[node], type_ignores=[])
        self.resolve(_free_globals(module), obj.__name__)
        lines = source.splitlines(keepends=True)
        first = min([d.lineno for d in node.decorator_list] + [node.lineno])
        return "".join(lines[first - 1:node.end_lineno]) + "\n"


def flow_file_source(flow_cls: type) -> str:
    """A standalone flow file for ``flow_cls`` (defined in ``__main__``)."""
    from plait.flowspec import FlowSpec

    source, tree = _defining_source(flow_cls)
    main = sys.modules.get("__main__")
    namespace = dict(vars(main)) if main is not None else {}

    def is_flow(node: ast.ClassDef) -> bool:
        value = namespace.get(node.name)
        if isinstance(value, type):
            return issubclass(value, FlowSpec)
        return any("FlowSpec" in _names_in(b) for b in node.bases)

    flows = {n.name for n in tree.body if isinstance(n, ast.ClassDef) and is_flow(n)} | {flow_cls.__name__}
    kept = _kept_statements(tree, flows)
    future = [n for n in kept if isinstance(n, ast.ImportFrom) and n.module == "__future__"]
    body = [n for n in kept if n not in future]
    module = ast.Module(body=body, type_ignores=[])
    builder = _Builder(namespace)
    builder.resolve(_free_globals(module), f"the cell that defines {flow_cls.__name__}")
    lines = source.splitlines(keepends=True)
    parts = ["".join(ast.unparse(n) + "\n" for n in future)]
    parts.append("".join(line + "\n" for line in builder.imports))
    parts.extend(builder.blocks.values())
    emitted = 0  # last source line written: statements sharing a line are written once
    for node in body:
        first = min([d.lineno for d in getattr(node, "decorator_list", [])] + [node.lineno])
        end = node.end_lineno or node.lineno
        if first <= emitted:
            continue
        parts.append("".join(lines[first - 1:end]).rstrip("\n") + "\n\n")
        emitted = end
    parts.append(f"\n\nif __name__ == \"__main__\":\n    {flow_cls.__name__}()\n")
    return "".join(parts)
