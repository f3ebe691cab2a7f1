"""Run one command and measure it: wall time, CPU time, peak memory of its process tree."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

MIB = 2**20
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Measured:
    """What one finished command cost."""

    returncode: int
    wall_s: float
    cpu_s: float  # user + system time of the whole tree (reaped descendants included)
    # Largest single process in the tree (kernel's ru_maxrss). A forked child starts with its
    # parent's peak RSS and exec keeps it, so the harness itself must stay small (see floor.py).
    max_proc_rss_mib: float
    tree_rss_mib: float | None  # peak of the summed RSS of all live processes, if sampled
    timed_out: bool


def run_measured(
    argv: list[str],
    cwd: Path,
    env: dict[str, str],
    log_dir: Path,
    timeout_s: float,
    sample_tree_rss: bool = False,
) -> Measured:
    """Run argv in cwd, stdout/stderr to log_dir, and wait for it with wait4 to get its rusage."""
    with open(log_dir / "stdout.log", "wb") as out, open(log_dir / "stderr.log", "wb") as err:
        began = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=err, start_new_session=True)
        sampler = _TreeRssSampler(proc.pid) if sample_tree_rss else None
        timer = _Killer(proc.pid, timeout_s)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - began
    proc.returncode = os.waitstatus_to_exitcode(status)
    timer.cancel()
    _kill_group(proc.pid)  # leave no stray grandchildren behind
    return Measured(
        returncode=proc.returncode,
        wall_s=wall,
        cpu_s=usage.ru_utime + usage.ru_stime,
        max_proc_rss_mib=usage.ru_maxrss * 1024 / MIB,  # Linux reports KiB
        tree_rss_mib=sampler.stop() if sampler else None,
        timed_out=timer.fired,
    )


def run_quick(argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a short command, capturing its output as text."""
    return subprocess.run(argv, env=env, capture_output=True, text=True, check=False)


def dir_size_mib(path: Path) -> float:
    """Apparent size of every regular file under path, in MiB (0 if path is missing)."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            full = os.path.join(root, name)
            if not os.path.islink(full):
                total += os.stat(full).st_size
    return total / MIB


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class _Killer:
    """Kill the process group when the timeout passes."""

    def __init__(self, pgid: int, timeout_s: float) -> None:
        self.fired = False
        self._pgid = pgid
        self._timer = threading.Timer(timeout_s, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        self.fired = True
        _kill_group(self._pgid)

    def cancel(self) -> None:
        self._timer.cancel()


class _TreeRssSampler:
    """Poll /proc for the summed RSS of a process and all its descendants; keep the peak."""

    INTERVAL_S = 0.02

    def __init__(self, root_pid: int) -> None:
        self._root = root_pid
        self._peak_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self._peak_bytes / MIB

    def _loop(self) -> None:
        while not self._stop.is_set():
            total = sum(_rss_bytes(pid) for pid in _descendants(self._root))
            self._peak_bytes = max(self._peak_bytes, total)
            self._stop.wait(self.INTERVAL_S)


def _descendants(root: int) -> list[int]:
    """root and every live descendant, found through /proc/<pid>/task/<tid>/children."""
    found, pending = [], [root]
    while pending:
        pid = pending.pop()
        found.append(pid)
        try:
            for tid in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{tid}/children") as f:
                    pending.extend(int(child) for child in f.read().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return found


def _rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * _PAGE_SIZE
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return 0
