"""Reading the run's top-level options; import-light, since every Plait process loads it."""

from __future__ import annotations

#: ``--environment`` values that put every step in a uv environment.
ENVIRONMENT_NAMES = ("uv", "pypi")
#: Decorator names that ask for an environment (step level, then flow level).
STEP_DECORATORS = frozenset({"pypi", "uv"})
FLOW_DECORATORS = frozenset({"pypi_base", "uv_base"})


def option(args: list[str], name: str) -> str | None:
    """The value of ``--name VALUE`` (or ``--name=VALUE``) in a top-level argument list."""
    value = None
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith(name + "="):
            value = arg.split("=", 1)[1]
    return value
