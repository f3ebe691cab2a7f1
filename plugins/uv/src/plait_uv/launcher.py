"""The ``uv`` compute backend: launches environment steps locally, in their interpreter.

The scheduler's own fork path cannot switch interpreters, so a step in an environment runs
its task command with the environment's Python. Spawning that command for every task would
pay an interpreter start plus every import per task; instead each environment gets one fork
server (:mod:`plait_uv.server`) started with the environment's Python at the start of the
run, and tasks are forked from it. Where forking is not available (no ``pidfd_open``,
``PLAIT_LOCAL_LAUNCH=subprocess``, ``PLAIT_UV_FORK_SERVER=0``) or the server could not load
the flow, the command is spawned as is: the same task, just slower to start.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from plait.runtime import fork_protocol, prestart
from plait.runtime.compute import ComputeBackend, ProcessHandle, TaskHandle
from plait.runtime.fork_protocol import JSON, ForkClient

from plait_uv.plugin import PRESTART_OWNER

if TYPE_CHECKING:
    from plait.runtime.context import RunContext, TaskSpec

_SCRUB = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "PYTHONNOUSERSITE", "__PYVENV_LAUNCHER__")
_READY_TIMEOUT = 120.0


#: The variables an environment's processes drop from the scheduler's, and those they add.
SERVER_ENV: tuple[tuple[str, ...], dict[str, str]] = (_SCRUB, {"PYTHONUNBUFFERED": "1"})


def task_env() -> dict[str, str]:
    """The scheduler's environment variables minus those that would leak its packages."""
    unset, extra = SERVER_ENV
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env.update(extra)
    return env


def server_process_command(python: str, overlay: str, flow_file: str) -> list[str]:
    """The command of an environment's fork server (its socket: :data:`prestart.FD`). The
    run's options are not part of it (they come in a message), so it can start before the
    scheduler has parsed them."""
    from plait_uv.runtime import boot_command

    return boot_command(python, overlay, "plait_uv.server", [prestart.FD, os.path.abspath(flow_file)])


def may_fork() -> bool:
    return (hasattr(os, "pidfd_open") and sys.platform == "linux"
            and os.environ.get("PLAIT_LOCAL_LAUNCH", "fork") != "subprocess"
            and os.environ.get("PLAIT_UV_FORK_SERVER", "1") not in ("0", "false", "no"))


class EnvServer:
    """The scheduler's side of one environment's fork server."""

    def __init__(self, python: str, overlay: str, flow_file: str, top_level_args: list[str]) -> None:
        command = server_process_command(python, overlay, flow_file)
        # Maybe started already: at ``import plait`` (the last run of this flow used it) or
        # while the flow file was being executed (see plait_uv.early).
        self.proc = prestart.claim(PRESTART_OWNER, command) or prestart.spawn(command, *SERVER_ENV)
        self.sock = self.proc.sock
        self.client = ForkClient(self.sock, JSON, self.alive, "the environment's fork server")
        self.state = "starting"  # -> "ready" | "failed"
        self.reason = ""
        try:  # the run's options, and the variables and folder as they are now, not at spawn
            fork_protocol.send(self.sock, JSON, ["warm", top_level_args, task_env(), os.getcwd()])
        except OSError:
            self.state, self.reason = "failed", "exited before it was told the run's options"

    def wait_ready(self, timeout: float = _READY_TIMEOUT) -> bool:
        deadline = time.monotonic() + timeout
        while self.state == "starting":
            left = deadline - time.monotonic()
            if left <= 0:
                self.state, self.reason = "failed", "did not start in time"
                break
            try:
                self._receive(block=True, timeout=min(left, 0.5))
            except ConnectionError:
                break  # it died while loading: the state says so, tasks are spawned instead
            if self.state == "starting" and self.proc.poll() is not None:
                self.state, self.reason = "failed", f"exited with code {self.proc.returncode}"
        return self.state == "ready"

    def start(self, argv: list[str], env: dict[str, str]) -> tuple[int, int, int]:
        """Fork a task from the server; returns (pid, stdout fd, stderr fd)."""
        return self.client.start(argv, env)

    def exit_code(self, pid: int, wait: bool) -> int | None:
        """The task's exit code if the server reported it (``wait``: it is known to have ended)."""
        return self.client.exit_code(pid, wait)

    def _receive(self, block: bool, timeout: float | None = None) -> tuple[Sequence[Any], list[int]]:
        """One message (exits are recorded by the client); follows "ready"/"failed"."""
        try:
            msg, fds = self.client.receive(block, timeout)
        except ConnectionError:
            if self.state == "starting":
                self.state, self.reason = "failed", "exited while loading the flow"
            raise
        if msg and msg[0] == "ready":
            self.state = "ready"
        elif msg and msg[0] == "failed":
            self.state, self.reason = "failed", msg[1]
        return msg, fds

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        self.proc.stop(grace=5.0)


class UvLocalCompute(ComputeBackend):
    """Local launches of steps that run in a uv environment (selected by ``@uv``/``@pypi``)."""

    name = "uv"

    def __init__(self) -> None:
        self.servers: dict[tuple[str, str, str], EnvServer] = {}  # (python, overlay, flow) -> server

    def warm(self, command: list[str]) -> bool:
        """Start the fork server of the environment that runs task ``command`` now (or adopt
        the one started at ``import plait``), so it is warm by its first task. False when
        its tasks will be spawned instead."""
        parsed = _parse(command)
        if parsed is None or not may_fork():
            return False
        self._server(*parsed)
        return True

    def _server(self, python: str, overlay: str, flow_file: str, top_level_args: list[str]) -> EnvServer:
        key = (python, overlay, flow_file)
        if key not in self.servers:
            self.servers[key] = EnvServer(python, overlay, flow_file, top_level_args)
        return self.servers[key]

    def launch(self, run: RunContext, task: TaskSpec, command: list[str],
               env: dict[str, str], in_process: Callable[[TaskSpec], int] | None) -> TaskHandle:
        parsed = _parse(command)
        if parsed is not None and may_fork():
            python, overlay, flow_file, top_level_args = parsed
            server = self._server(python, overlay, flow_file, top_level_args)
            if server.state == "starting":
                server.wait_ready()
            if server.state == "ready" and server.alive():
                try:
                    pid, out_fd, err_fd = server.start(_after_flow_file(command), env)
                except (ConnectionError, OSError):
                    pass
                else:
                    handle = ProcessHandle(pid, out_fd, err_fd, lambda: server.exit_code(pid, wait=_ended(handle)))
                    return handle
        return _spawn(command, env)

    def shutdown(self) -> None:
        for server in self.servers.values():
            server.close()
        self.servers.clear()


def _ended(handle: ProcessHandle) -> bool:
    fd = handle.exit_fd()
    return fd is not None and bool(select.select([fd], [], [], 0)[0])


def _parse(command: list[str]) -> tuple[str, str, str, list[str]] | None:
    """(python, overlay, flow file, top-level args) of a task command in an environment."""
    from plait_uv.runtime import parse_boot_command

    parsed = parse_boot_command(command)
    if parsed is None:
        return None
    python, overlay, module, args = parsed
    if module != "plait" or len(args) < 2 or args[0] != "_flow":
        return None
    rest = args[2:]
    top_level = rest[: rest.index("step")] if "step" in rest else []
    return python, overlay, args[1], top_level


def server_for(command: list[str]) -> list[str] | None:
    """The fork server command of the environment that runs task ``command`` (or None)."""
    parsed = _parse(command)
    return server_process_command(*parsed[:3]) if parsed is not None else None


def _after_flow_file(command: list[str]) -> list[str]:
    """The flow CLI's arguments in a task command (what follows the flow file)."""
    i = command.index("_flow")
    return command[i + 2:]


def _spawn(command: list[str], env: dict[str, str]) -> TaskHandle:
    from plait.runtime.process import die_with_parent, load_libc

    load_libc()
    proc = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**task_env(), **env}, start_new_session=True,
        preexec_fn=die_with_parent if sys.platform == "linux" else None,
    )
    assert proc.stdout is not None and proc.stderr is not None
    out_fd, err_fd = os.dup(proc.stdout.fileno()), os.dup(proc.stderr.fileno())
    proc.stdout.close()
    proc.stderr.close()
    return ProcessHandle(proc.pid, out_fd, err_fd, proc.poll)
