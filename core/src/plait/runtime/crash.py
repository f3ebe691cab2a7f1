"""Where a task died when it crashed hard (a segfault): the step's frames, not Plait's.

A task has :mod:`faulthandler` dump to its stderr. The scheduler's log reader spots the dump
(it starts with ``Fatal Python error:``) and shows, and stores, only the fatal error and the
frames above the first frame inside Plait (the user's code and the libraries it called), so a
crash reads like the user's problem, not Plait's internals.
"""

from __future__ import annotations

import faulthandler
import os
import re

_PLAIT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_FRAME = re.compile(r'\s+File "(.*)", line \d+ in ')
FATAL_PREFIX = b"Fatal Python error:"


def enable_crash_report() -> None:
    """In the task: on a hard crash, dump the Python stack to stderr (the scheduler trims it)."""
    faulthandler.enable(all_threads=False)


def crash_report(text: str) -> str:
    """The user's part of a faulthandler dump: the fatal error and the frames above the first
    frame inside Plait ("" if ``text`` holds no dump)."""
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
