"""A fork server: a small child of the scheduler that forks one process per task.

After a fork, every page either process writes is copied. The scheduler touches a lot of
memory between forks, so forking tasks from it makes it pay hundreds of copy-on-write faults
per task; the fork server is a copy of the scheduler taken once, whose loop touches almost
nothing, so each task fork is cheap and the scheduler never forks during the run.

Protocol (a SOCK_SEQPACKET socket pair, one pickled message per packet):
  scheduler -> server: (request_id, task_spec, env)
  server -> scheduler: ("started", request_id, pid) with the task's stdout/stderr read ends
                       attached (SCM_RIGHTS), then later ("exit", pid, exit_code).
"""

from __future__ import annotations

import gc
import os
import pickle
import selectors
import signal
import socket
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

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
                _serve(theirs, target, task_child)
            except BaseException:  # noqa: BLE001 - never return into the scheduler's code
                code = 1
            finally:
                os._exit(code)
        theirs.close()
        self.exits: dict[int, int] = {}
        self._next = 0

    def start(self, task: TaskSpec, env: dict[str, str]) -> tuple[int, int, int]:
        """Fork a task; returns (pid, stdout fd, stderr fd)."""
        self._next += 1
        request = self._next
        self.sock.sendall(pickle.dumps((request, task, env), protocol=pickle.HIGHEST_PROTOCOL))
        while True:
            msg, fds = self._receive(block=True)
            if msg[0] == "started" and msg[1] == request:
                return msg[2], fds[0], fds[1]

    def exit_code(self, pid: int, wait: bool) -> int | None:
        """The task's exit code if the server reported it (``wait``: it is known to have ended)."""
        self._drain()
        deadline_tries = 2000 if wait else 0
        while pid not in self.exits and deadline_tries > 0:
            self._receive(block=True, timeout=0.005)
            deadline_tries -= 1
        if pid not in self.exits and wait and not _alive(self.pid):
            return -int(signal.SIGKILL)
        return self.exits.pop(pid, None)

    def _drain(self) -> None:
        while self._receive(block=False)[0]:
            pass

    def _receive(self, block: bool, timeout: float | None = None) -> tuple[tuple, list[int]]:  # type: ignore[type-arg]
        self.sock.settimeout(timeout if block else 0.0)
        try:
            data, fds, _, _ = socket.recv_fds(self.sock, 1 << 16, 2)
        except (BlockingIOError, TimeoutError):
            return (), []
        if not data:
            raise ConnectionError("the fork server exited")
        msg = pickle.loads(data)
        if msg[0] == "exit":
            self.exits[msg[1]] = msg[2]
        return msg, fds

    def close(self) -> None:
        self.sock.close()
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass


def _serve(sock: socket.socket, target: Callable[[TaskSpec], int], task_child: TaskChild) -> None:
    """The server loop: fork on request, report exits. Runs until the scheduler hangs up."""
    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ, None)
    children: dict[int, int] = {}  # pidfd -> pid
    while True:
        for key, _ in sel.select():
            if key.data is None:
                data = sock.recv(1 << 20)
                if not data:
                    return
                request, task, env = pickle.loads(data)
                out_r, out_w = os.pipe()
                err_r, err_w = os.pipe()
                pid = os.fork()
                if pid == 0:
                    task_child(target, task, env, out_w, err_w, {out_r, err_r, sock.fileno(), *children})
                for fd in (out_w, err_w):
                    os.close(fd)
                socket.send_fds(sock, [pickle.dumps(("started", request, pid))], [out_r, err_r])
                os.close(out_r)
                os.close(err_r)
                pidfd = os.pidfd_open(pid)
                children[pidfd] = pid
                sel.register(pidfd, selectors.EVENT_READ, pid)
            else:
                pid = key.data
                _, status = os.waitpid(pid, 0)
                sel.unregister(key.fd)
                os.close(key.fd)
                del children[key.fd]
                sock.sendall(pickle.dumps(("exit", pid, os.waitstatus_to_exitcode(status))))


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
