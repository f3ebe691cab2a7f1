"""A fork server: a small child of the scheduler that forks one process per task.

After a fork, every page either process writes is copied. The scheduler touches a lot of
memory between forks, so forking tasks from it makes it pay hundreds of copy-on-write faults
per task; the fork server is a copy of the scheduler taken once, whose loop touches almost
nothing, so each task fork is cheap and the scheduler never forks during the run.

It speaks :mod:`plait.runtime.fork_protocol` with pickled messages; a request's payload is
``(task_spec, env)``.
"""

from __future__ import annotations

import gc
import os
import socket
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from plait.runtime import fork_protocol

if TYPE_CHECKING:
    from plait.runtime.context import TaskSpec

TaskChild = Callable[[Callable[["TaskSpec"], int], "TaskSpec", dict[str, str], int, int, set[int]], None]


class ForkServer:
    """The scheduler's side: start tasks through the server, learn their exit codes."""

    def __init__(self, target: Callable[[TaskSpec], int], task_child: TaskChild,
                 close_in_child: set[int], on_start: Callable[[], None]) -> None:
        self.target = target
        self.sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        gc.freeze()
        self.pid = os.fork()
        if self.pid == 0:
            code = 0
            try:
                self.sock.close()
                for fd in close_in_child:
                    _close_quietly(fd)
                on_start()

                def child(payload: Sequence[Any], out_w: int, err_w: int, close_fds: set[int]) -> None:
                    task, env = payload
                    task_child(target, task, env, out_w, err_w, close_fds)

                fork_protocol.serve(theirs, fork_protocol.PICKLE, child)
            except BaseException:  # noqa: BLE001 - never return into the scheduler's code
                code = 1
            finally:
                os._exit(code)
        theirs.close()
        self.client = fork_protocol.ForkClient(self.sock, fork_protocol.PICKLE, lambda: _alive(self.pid))

    def start(self, task: TaskSpec, env: dict[str, str]) -> tuple[int, int, int]:
        """Fork a task; returns (pid, stdout fd, stderr fd)."""
        return self.client.start(task, env)

    def exit_code(self, pid: int, wait: bool) -> int | None:
        """The task's exit code if the server reported it (``wait``: it is known to have ended)."""
        return self.client.exit_code(pid, wait)

    def close(self) -> None:
        self.sock.close()
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass


def _alive(pid: int) -> bool:
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return False
    return done == 0


def _close_quietly(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass
