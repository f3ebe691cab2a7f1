"""Task output: streamed to the console line by line with a prefix, and kept per attempt.

Stored logs are one line per output line, ``<epoch seconds> <text>``, so readers can give
both the text (``Task.stdout``) and when each line was printed (``Task.loglines``).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from typing import IO

from plait.runtime.crash import FATAL_PREFIX


def console_time(ts: float | None = None) -> str:
    ts = time.time() if ts is None else ts
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) + f".{int(ts * 1000) % 1000:03d}"


class AttemptLog:
    """Splits one attempt's raw output into lines, echoes them, and keeps them for storage."""

    def __init__(self, prefix: str, echo: bool = True, max_bytes: int = 10 * 1024 * 1024) -> None:
        self.prefix = prefix
        self.echo = echo
        self.max_bytes = max_bytes
        self._partial = {"stdout": b"", "stderr": b""}
        self._stored: dict[str, list[bytes]] = {"stdout": [], "stderr": []}
        self._sizes = {"stdout": 0, "stderr": 0}
        self._crash: list[bytes] | None = None  # a faulthandler dump being collected

    def feed(self, stream: str, data: bytes) -> None:
        buf = self._partial[stream] + data
        *lines, rest = buf.split(b"\n")
        self._partial[stream] = rest
        if lines:
            self._emit(stream, lines)

    def close(self) -> None:
        for stream, rest in self._partial.items():
            if rest:
                self._emit(stream, [rest])
                self._partial[stream] = b""
        if self._crash is not None:  # the task crashed: show where, in the user's code
            from plait.runtime.crash import crash_report

            dump, self._crash = b"\n".join(self._crash).decode("utf-8", "replace"), None
            report = crash_report(dump) or dump
            self._emit("stderr", [line.encode() for line in report.rstrip("\n").split("\n")], trimmed=True)

    def _emit(self, stream: str, lines: list[bytes], trimmed: bool = False) -> None:
        if stream == "stderr" and not trimmed and (
                self._crash is not None or any(ln.startswith(FATAL_PREFIX) for ln in lines)):
            lines = self._collect_crash(lines)
            if not lines:
                return
        now = time.time()
        stamp = f"{now:.6f} ".encode()
        store = self._stored[stream]
        for line in lines:
            if self._sizes[stream] < self.max_bytes:
                store.append(stamp + line + b"\n")
                self._sizes[stream] += len(line) + 1
        if self.echo:
            out: IO[str] = sys.stdout if stream == "stdout" else sys.stderr
            head = f"{console_time(now)} {self.prefix} "
            out.write("".join(head + line.decode("utf-8", "replace") + "\n" for line in lines))
            out.flush()

    def _collect_crash(self, lines: list[bytes]) -> list[bytes]:
        """Hold back a faulthandler dump (it is the last thing a crashing task writes) so that
        close() can show the trimmed version; return the lines before it."""
        if self._crash is None:
            cut = next(i for i, ln in enumerate(lines) if ln.startswith(FATAL_PREFIX))
            self._crash, lines = [], lines[:cut] + [b"\0"] + lines[cut:]
        else:
            lines = [b"\0"] + lines
        cut = lines.index(b"\0")
        self._crash.extend(lines[cut + 1:])
        return lines[:cut]

    def data(self, stream: str) -> bytes:
        return b"".join(self._stored[stream])


def parse_log(data: bytes) -> Iterator[tuple[float | None, str]]:
    """(timestamp, line) for every stored line."""
    for raw in data.decode("utf-8", "replace").splitlines():
        stamp, sep, text = raw.partition(" ")
        try:
            yield float(stamp), text
        except ValueError:
            yield None, raw


def log_text(data: bytes) -> str:
    """The output as the task printed it, without timestamps."""
    return "".join(text + "\n" for _, text in parse_log(data))
