"""Where a task died when it crashed hard (a segfault): the step's frames, not Plait's.

A task started by the scheduler points :mod:`faulthandler` at a file the scheduler named in
``PLAIT_CRASH_FILE``. When the task is killed by a signal, the scheduler adds to the task's
stderr the fatal error and the frames above the first frame inside Plait (the user's code and
the libraries it called), so a crash reads like the user's problem, not Plait's internals.
"""

from __future__ import annotations

import faulthandler
import os
import re
from typing import IO

CRASH_FILE_ENV = "PLAIT_CRASH_FILE"
_PLAIT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_FRAME = re.compile(r'\s+File "(.*)", line \d+ in ')
_handle: IO[str] | None = None


def enable_crash_report() -> None:
    """In the task: send faulthandler's dump to the scheduler's crash file, if it named one."""
    global _handle
    path = os.environ.get(CRASH_FILE_ENV)
    if not path:
        return
    try:
        _handle = open(path, "w", encoding="utf-8")  # noqa: SIM115 - open for the task's life
    except OSError:
        return
    faulthandler.enable(file=_handle, all_threads=False)


def crash_report(path: str, read: bool = True) -> str:
    """The user's part of the dump in ``path`` ("" if there is none). Removes the file."""
    text = ""
    try:
        if read:
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read()
    except OSError:
        pass
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass
    lines = text.splitlines()
    fatal = next((line for line in lines if line.startswith("Fatal Python error:")), None)
    if fatal is None:
        return ""
    frames: list[str] = []
    in_stack = False
    for line in lines:
        if line.startswith(("Stack (most recent call first)", "Current thread")):
            in_stack = True
            continue
        if not in_stack:
            continue
        match = _FRAME.match(line)
        if match is None or match.group(1).startswith(_PLAIT_DIR):
            break
        frames.append(line)
    where = "\nWhere the step was (most recent call first):\n" + "\n".join(frames) if frames else ""
    return f"{fatal}{where}\n"
