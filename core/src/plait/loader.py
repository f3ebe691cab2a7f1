"""Load a flow file as ``__main__`` (as ``python flow.py`` would) and run its CLI."""

from __future__ import annotations

import os
import sys
import types
from typing import NoReturn

from plait.exceptions import PlaitException


def exec_flow_file(path: str, argv: list[str]) -> NoReturn:
    """Execute ``path`` as the main module with ``argv``; if it does not start its CLI itself
    (no ``if __name__ == "__main__": MyFlow()``), start it for the flow class it defines."""
    from plait.cli import run_flow_cli
    from plait.flowspec import FlowSpec

    path = os.path.abspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            source = f.read()
    except OSError as exc:
        print(f"Cannot read flow file {path}: {exc.strerror}", file=sys.stderr)
        sys.exit(2)
    module = types.ModuleType("__main__")
    module.__file__ = path
    module.__dict__["__builtins__"] = __builtins__
    sys.modules["__main__"] = module
    sys.argv = [path, *argv]
    sys.path.insert(0, os.path.dirname(path))
    from plait.runtime import prestart

    prestart.start_early()  # `plait run flow.py`: only now is the flow file known
    exec(compile(source, path, "exec"), module.__dict__)  # noqa: S102 - running the user's flow is the point
    flows = [v for v in module.__dict__.values()
             if isinstance(v, type) and issubclass(v, FlowSpec) and v is not FlowSpec
             and v.__module__ == "__main__"]
    if len(flows) != 1:
        names = ", ".join(f.__name__ for f in flows) or "none"
        raise SystemExit(str(PlaitException(
            f"{path} must define exactly one FlowSpec subclass to run it this way (found: {names})."
        )))
    run_flow_cli(flows[0], argv, path)
