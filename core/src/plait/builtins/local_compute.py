"""The local compute backend: forked pre-imported children, or the spawned task command.

Forking a copy of the scheduler (which already imported plait, the flow and its libraries)
costs a few milliseconds; a fresh interpreter costs an interpreter start plus every import.
The fork path runs exactly the function the ``step`` command runs, so both have the same
semantics. Tasks are forked by a fork server (see :mod:`plait.builtins.fork_server`), one
fresh process per task. The command is used when a plugin wraps it (another interpreter) or
``PLAIT_LOCAL_LAUNCH=subprocess``.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from plait.builtins.fork_server import ForkServer
from plait.runtime.compute import PARENT_FDS, ComputeBackend, ProcessHandle, TaskHandle
from plait.runtime.process import die_with_parent, load_libc, run_as_task_process

if TYPE_CHECKING:
    from plait.runtime.context import RunContext, TaskSpec

class LocalCompute(ComputeBackend):
    name = "local"

    def __init__(self) -> None:
        load_libc()
        self._server: ForkServer | None = None

    def launch(self, run: RunContext, task: TaskSpec, command: list[str],
               env: dict[str, str], in_process: Callable[[TaskSpec], int] | None) -> TaskHandle:
        if in_process is None or not _may_fork():
            return self._spawn(command, env)
        server = self._server_for(in_process)
        try:
            pid, out_fd, err_fd = server.start(task, env)
        except OSError:  # the fork server was killed (its tasks died with it): fork a new one
            self.shutdown()
            server = self._server_for(in_process)
            pid, out_fd, err_fd = server.start(task, env)
        handle = ProcessHandle(pid, out_fd, err_fd, lambda: _server_exit(server, handle))
        return handle

    def prepare(self, in_process: Callable[[TaskSpec], int], count: int) -> None:
        if _may_fork():
            self._server_for(in_process)

    def shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    def _server_for(self, target: Callable[[TaskSpec], int]) -> ForkServer:
        if self._server is not None and self._server.target != target:  # bound methods: compare, not identity
            self.shutdown()
        if self._server is None:
            self._server = ForkServer(target, _task_child, set(PARENT_FDS), _server_start)
        return self._server

    def _spawn(self, command: list[str], env: dict[str, str]) -> TaskHandle:
        proc = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env={**os.environ, **env, "PYTHONUNBUFFERED": "1"}, start_new_session=True,
            preexec_fn=die_with_parent if sys.platform == "linux" else None,
        )
        assert proc.stdout is not None and proc.stderr is not None
        out_fd, err_fd = os.dup(proc.stdout.fileno()), os.dup(proc.stderr.fileno())
        proc.stdout.close()
        proc.stderr.close()
        return ProcessHandle(proc.pid, out_fd, err_fd, proc.poll)


def _may_fork() -> bool:
    return (hasattr(os, "fork") and hasattr(os, "pidfd_open")
            and os.environ.get("PLAIT_LOCAL_LAUNCH", "fork") != "subprocess")


def _server_exit(server: ForkServer, handle: ProcessHandle) -> int | None:
    code = server.exit_code(handle.pid or 0, wait=False)
    if code is not None:
        return code
    exit_fd = handle.exit_fd()
    if exit_fd is not None and select.select([exit_fd], [], [], 0)[0]:
        return server.exit_code(handle.pid or 0, wait=True)
    return None


def _server_start() -> None:
    """In the fork server: die with the scheduler, leave Ctrl-C to the scheduler."""
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _task_child(target: Callable[[TaskSpec], int], task: TaskSpec, env: dict[str, str],
                out_w: int, err_w: int, close_fds: set[int]) -> None:
    """A forked task process: wire up its output, run the task, exit. Never returns."""
    run_as_task_process(lambda: target(task), out_w, err_w, close_fds, env)
