"""The local compute backend: fork a pre-imported child, or spawn the task command.

Forking the scheduler (which already imported plait, the flow and its libraries) costs a few
milliseconds; a fresh interpreter costs an interpreter start plus every import. The fork path
runs exactly the function the ``step`` command runs, so both have the same semantics. The
command is used when a plugin wraps it (another interpreter) or ``PLAIT_LOCAL_LAUNCH=subprocess``.
"""

from __future__ import annotations

import faulthandler
import gc
import os
import signal
import subprocess
import sys
import traceback
from typing import TYPE_CHECKING, Callable

from plait.runtime.compute import PARENT_FDS, ComputeBackend, ProcessHandle, TaskHandle

if TYPE_CHECKING:
    from plait.runtime.context import RunContext, TaskSpec

_PR_SET_PDEATHSIG = 1
_libc: object | None = None


def _die_with_parent() -> None:
    """Ask the kernel to SIGKILL this child if the scheduler dies (kill -9 of the run)."""
    global _libc
    if sys.platform != "linux":
        return
    try:
        if _libc is None:
            import ctypes

            _libc = ctypes.CDLL(None, use_errno=True)
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - best effort; the scheduler also kills on exit
        pass


class LocalCompute(ComputeBackend):
    name = "local"

    def __init__(self) -> None:
        if sys.platform == "linux":
            _die_with_parent_prepare()

    def launch(self, run: RunContext, task: TaskSpec, command: list[str],
               env: dict[str, str], in_process: Callable[[], int] | None) -> TaskHandle:
        if in_process is not None and os.environ.get("PLAIT_LOCAL_LAUNCH", "fork") != "subprocess" \
                and hasattr(os, "fork"):
            return self._fork(in_process, env)
        return self._spawn(command, env)

    def _fork(self, target: Callable[[], int], env: dict[str, str]) -> TaskHandle:
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        gc.freeze()  # the child's collector then never touches (and copies) the parent's pages
        pid = os.fork()
        if pid == 0:  # the task
            code = 1
            try:
                os.setpgid(0, 0)
                _die_with_parent()
                for fd in PARENT_FDS | {out_r, err_r}:
                    _close_quietly(fd)
                null = os.open(os.devnull, os.O_RDONLY)
                os.dup2(null, 0)
                os.dup2(out_w, 1)
                os.dup2(err_w, 2)
                for fd in (null, out_w, err_w):
                    os.close(fd)
                for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD, signal.SIGPIPE):
                    signal.signal(sig, signal.SIG_DFL)
                os.environ.update(env)
                sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
                sys.stderr.reconfigure(line_buffering=True)  # type: ignore[union-attr]
                faulthandler.enable()
                _reseed_random()
                code = target()
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:  # noqa: BLE001 - report anything, then exit
                traceback.print_exc()
                code = 1
            finally:
                try:
                    sys.stdout.flush()
                    sys.stderr.flush()
                finally:
                    os._exit(code)
        os.close(out_w)
        os.close(err_w)
        handle = ProcessHandle(pid, out_r, err_r, lambda: _reap(pid))
        return handle

    def _spawn(self, command: list[str], env: dict[str, str]) -> TaskHandle:
        proc = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env={**os.environ, **env, "PYTHONUNBUFFERED": "1"}, start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
        assert proc.stdout is not None and proc.stderr is not None
        out_fd, err_fd = os.dup(proc.stdout.fileno()), os.dup(proc.stderr.fileno())
        proc.stdout.close()
        proc.stderr.close()
        return ProcessHandle(proc.pid, out_fd, err_fd, proc.poll)


def _die_with_parent_prepare() -> None:
    """Load libc once in the scheduler so each fork pays nothing for it."""
    global _libc
    if _libc is None:
        try:
            import ctypes

            _libc = ctypes.CDLL(None, use_errno=True)
        except OSError:
            pass


def _reap(pid: int) -> int | None:
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return -1
    if done == 0:
        return None
    return os.waitstatus_to_exitcode(status)


def _close_quietly(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


def _reseed_random() -> None:
    """Forked tasks would share the scheduler's RNG state; fresh interpreters would not."""
    np = sys.modules.get("numpy")
    if np is not None:
        try:
            np.random.seed()
        except Exception:  # noqa: BLE001
            pass
