"""Compute backends launch tasks; the scheduler watches the handles they return.

A handle exposes the file descriptors of the task's stdout/stderr (streamed live to the
console and stored as the attempt's logs) and an exit descriptor that becomes readable when
the task ends, so the scheduler can wait on everything with one ``select``.
"""

from __future__ import annotations

import os
import signal
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from plait.runtime.context import RunContext, TaskSpec


class TaskHandle(ABC):
    """A launched task attempt."""

    pid: int | None = None

    @abstractmethod
    def streams(self) -> dict[int, str]:
        """Readable fds of the task's output, mapped to "stdout" / "stderr"."""

    @abstractmethod
    def exit_fd(self) -> int | None:
        """An fd that becomes readable when the task ends, or None to be polled."""

    @abstractmethod
    def poll(self) -> int | None:
        """The exit code once the task ended (negative: killed by that signal), else None."""

    @abstractmethod
    def kill(self) -> None:
        """Stop the task and everything it started."""

    def close(self) -> None:
        """Release the handle's fds once the task ended and its output was drained."""


class ComputeBackend(ABC):
    """Runs task attempts somewhere. ``command`` is the self-contained task command."""

    name = "abstract"

    @abstractmethod
    def launch(self, run: RunContext, task: TaskSpec, command: list[str],
               env: dict[str, str], in_process: Callable[[TaskSpec], int] | None) -> TaskHandle:
        """Start one attempt. ``in_process`` (when not None) runs a task in the calling
        process (the same code as ``command``); a local backend may fork and call it."""

    def prepare(self, in_process: Callable[[TaskSpec], int], count: int) -> None:
        """A hint: about ``count`` tasks will be launched soon (a backend may warm up)."""

    def shutdown(self) -> None:
        """The run is over: release whatever ``prepare`` created."""


#: Scheduler-side fds of every live ProcessHandle; a forked child closes them all.
PARENT_FDS: set[int] = set()


class ProcessHandle(TaskHandle):
    """A local child process (forked or spawned) in its own process group."""

    def __init__(self, pid: int, stdout_fd: int, stderr_fd: int, reaper: Callable[[], int | None]) -> None:
        self.pid = pid
        self._streams = {stdout_fd: "stdout", stderr_fd: "stderr"}
        for fd in self._streams:
            os.set_blocking(fd, False)
        self._reaper = reaper
        self._exit: int | None = None
        try:
            self._pidfd: int | None = os.pidfd_open(pid)
        except (AttributeError, OSError):
            self._pidfd = None
        PARENT_FDS.update(self._streams)
        if self._pidfd is not None:
            PARENT_FDS.add(self._pidfd)

    def streams(self) -> dict[int, str]:
        return self._streams

    def exit_fd(self) -> int | None:
        return self._pidfd

    def poll(self) -> int | None:
        if self._exit is None:
            self._exit = self._reaper()
        return self._exit

    def kill(self) -> None:
        try:
            os.killpg(self.pid or 0, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def close(self) -> None:
        for fd in list(self._streams) + ([self._pidfd] if self._pidfd is not None else []):
            PARENT_FDS.discard(fd)
            try:
                os.close(fd)
            except OSError:
                pass
        self._streams = {}
        self._pidfd = None
