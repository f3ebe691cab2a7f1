"""The environment's fork server: runs INSIDE an environment's interpreter.

Started once per environment and run by the scheduler (``python -s -m plait_uv.server FD
FLOW_FILE``; possibly before the scheduler knows its run's options, see
:mod:`plait.runtime.prestart`), it imports Plait and the flow file once, then forks one
process per task, so a task in an environment costs a fork instead of an interpreter start
plus every import.
Each forked task runs exactly what the task command runs (``plait.cli.run_flow_cli`` with
the command's arguments).

It speaks :mod:`plait.runtime.fork_protocol` over the inherited socket with JSON messages
(this interpreter must not unpickle the scheduler's objects); a request's payload is
``[argv, env]``. First the scheduler sends ``["warm", top_level_args, environ, cwd]`` (the
run's options, which say the datastore and metadata classes to load, and its environment
variables and working folder as they are at that moment); the server answers ``["ready"]`` once warm,
or ``["failed", reason]`` and exits.
"""

from __future__ import annotations

import gc
import os
import signal
import socket
import sys
from collections.abc import Sequence
from typing import Any

from plait.runtime import fork_protocol
from plait.runtime.process import die_with_parent, load_libc, run_as_task_process


class _Loaded(BaseException):
    """Raised where the flow file would start its CLI: the module is loaded."""

    def __init__(self, flow_cls: type) -> None:
        self.flow_cls = flow_cls


def load_flow(path: str) -> type:
    """Execute the flow file as ``__main__`` (as the task command does) without starting its
    CLI; return its flow class."""
    import types

    import plait.cli
    from plait.flowspec import FlowSpec

    real_cli = plait.cli.run_flow_cli

    def capture(flow_cls: type, argv: Any = None, flow_file: Any = None) -> Any:
        raise _Loaded(flow_cls)

    module = types.ModuleType("__main__")
    module.__file__ = path
    module.__dict__["__builtins__"] = __builtins__
    sys.modules["__main__"] = module
    sys.argv = [path]
    sys.path.insert(0, os.path.dirname(path))
    with open(path, encoding="utf-8") as f:
        source = f.read()
    plait.cli.run_flow_cli = capture  # type: ignore[assignment]
    try:
        exec(compile(source, path, "exec"), module.__dict__)  # noqa: S102 - the user's flow
        flows = [v for v in module.__dict__.values() if isinstance(v, type) and issubclass(v, FlowSpec)
                 and v is not FlowSpec and v.__module__ == "__main__"]
        if len(flows) != 1:
            raise RuntimeError(f"{path} defines {len(flows)} flows")
        return flows[0]
    except _Loaded as loaded:
        return loaded.flow_cls
    finally:
        plait.cli.run_flow_cli = real_cli  # type: ignore[assignment]


def _warm(flow_cls: type, path: str) -> None:
    """Import and build what every task needs, so forked tasks find it ready: the CLI (and
    the plugins' commands), the linted graph."""
    import pickle  # noqa: F401
    import sqlite3  # noqa: F401

    import plait.datastore.flow_store  # noqa: F401
    import plait.runtime.launch  # noqa: F401
    import plait.runtime.task  # noqa: F401
    from plait.cli import build_cli, flow_graph
    from plait.plugins import get_plugin_manager

    build_cli(flow_cls, os.path.abspath(path))  # the key the task command's CLI looks up
    get_plugin_manager().registry("step_decorators")
    flow_graph(flow_cls)


def _warm_for_run(top_level_args: list[str]) -> None:
    """Load the run's datastore and metadata classes (an S3 datastore imports a lot)."""
    from plait.plugins import get_plugin_manager

    from plait_uv.args import option

    pm = get_plugin_manager()
    for kind, name in (("datastores", "--datastore"), ("metadata_providers", "--metadata")):
        record = pm.registry(kind).get(option(top_level_args, name) or "local")
        if record is not None:
            record.load()


def _child(flow_cls: type, path: str, argv: list[str], env: dict[str, str], out_w: int, err_w: int,
           close_fds: set[int]) -> None:
    """A forked task: the same process set-up as the core's, then the task command's CLI."""

    def run_command() -> int:
        sys.argv = [path, *argv]
        from plait.cli import run_flow_cli

        run_flow_cli(flow_cls, argv, path)
        return 0

    run_as_task_process(run_command, out_w, err_w, close_fds, env)


def _send(sock: socket.socket, msg: list[Any], fds: list[int] | None = None) -> None:
    fork_protocol.send(sock, fork_protocol.JSON, msg, fds or ())


def serve(sock: socket.socket, flow_cls: type, path: str) -> None:
    """Fork one task per request until the scheduler hangs up."""

    def child(payload: Sequence[Any], out_w: int, err_w: int, close_fds: set[int]) -> None:
        argv, env = payload
        _child(flow_cls, path, argv, env, out_w, err_w, close_fds)

    fork_protocol.serve(sock, fork_protocol.JSON, child)


def main(argv: list[str]) -> int:
    fd, path = int(argv[0]), argv[1]
    sock = socket.socket(fileno=fd)
    load_libc()
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the scheduler's to handle
    try:
        flow_cls = load_flow(path)
        _warm(flow_cls, path)
        data = sock.recv(1 << 20)  # the scheduler's "warm" message: there by now, or soon
        if not data:
            return 0  # started early for a run that did not need it
        _, top_level_args, environ, cwd = fork_protocol.JSON.decode(data)
        # Started early, this process has the scheduler's variables and folder of back then;
        # its tasks get the ones the scheduler has now (as if the server had started now).
        os.environ.clear()
        os.environ.update(environ)
        os.chdir(cwd)
        _warm_for_run(top_level_args)
    except BaseException as exc:  # noqa: BLE001 - the scheduler falls back to spawning tasks
        _send(sock, ["failed", f"{type(exc).__name__}: {exc}"])
        return 1
    sys.stdout.flush()
    sys.stderr.flush()
    gc.collect()
    gc.freeze()
    _send(sock, ["ready"])
    serve(sock, flow_cls, path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
