"""Turning a freshly forked child into a task process: its own process group, death with its
parent, output wired to the launcher's pipes, default signals, then the task, then exit.

Shared by every fork-based launcher (the core's fork server, plait-uv's environment servers),
so a task behaves the same whichever interpreter forked it.
"""

from __future__ import annotations

import faulthandler
import os
import signal
import sys
import traceback
from collections.abc import Callable, Iterable
from typing import Any, NoReturn

_PR_SET_PDEATHSIG = 1
_libc: Any = None


def load_libc() -> None:
    """Load libc once in the long-lived process, so each fork pays nothing for it."""
    global _libc
    if _libc is None and sys.platform == "linux":
        try:
            import ctypes

            _libc = ctypes.CDLL(None, use_errno=True)
        except OSError:
            pass


def die_with_parent() -> None:
    """Ask the kernel to SIGKILL this process if its parent dies (kill -9 of the run)."""
    if _libc is not None:
        try:
            _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        except Exception:  # noqa: BLE001 - best effort; the scheduler also kills on exit
            pass


def run_as_task_process(body: Callable[[], int | None], out_w: int, err_w: int,
                        close_fds: Iterable[int], env: dict[str, str]) -> NoReturn:
    """In a forked child: set the process up as a task, run ``body``, exit with its code."""
    code = 1
    try:
        os.setpgid(0, 0)
        die_with_parent()
        for fd in close_fds:
            try:
                os.close(fd)
            except OSError:
                pass
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
        code = body() or 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001 - report anything, then exit
        traceback.print_exc()
        code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _reseed_random() -> None:
    """Forked tasks would share the parent's RNG state; fresh interpreters would not."""
    np = sys.modules.get("numpy")
    if np is not None:
        try:
            np.random.seed()
        except Exception:  # noqa: BLE001
            pass
