"""Helper processes that a run starts at ``import plait``, before anything else.

Some plugins need a helper process per run whose start-up is slow: plait-uv's environment
servers start another interpreter and import Plait and the flow in it (~100 ms). The
scheduler learns which helpers a run needs only after importing, building its CLI and
allocating the run, so a helper started then makes the first task wait for it. Instead, a
run *remembers* the helpers it used (per flow file, in the local cache) and the next run of
the same flow spawns them the moment ``import plait`` executes, in parallel with all of
that. A plugin then *claims* the helper whose command is exactly the one it needs; helpers
nobody claimed are stopped when the run ends (or the process exits). It is only an
optimisation: a missing or stale hint costs a spawn at most, never a different result.

Every helper gets one end of a SOCK_SEQPACKET socket pair; the argument :data:`FD` in its
command is replaced by that end's descriptor number.

This module is imported by every ``import plait``: it imports nothing beyond ``os``,
``sys``, ``json`` and ``zlib`` unless a hint says there is something to start.
"""

from __future__ import annotations

import json
import os
import sys
import zlib
from typing import TYPE_CHECKING, Any

from plait.cache import cache_root

if TYPE_CHECKING:
    import socket

#: Placeholder in a helper's command for the descriptor of its socket.
FD = "{plait-prestart-fd}"
#: Commands that mark a process as something other than a scheduler starting a run.
_NOT_A_RUN = {"step", "environment", "show", "check", "dump", "logs", "tag", "_flow", "--help"}

_pending: dict[str, list[HelperProcess]] = {}
_started: list[str] | None = None  # sys.argv[:1] of the last check
_stop_at_exit = False


class HelperProcess:
    """A spawned helper: its pid, our end of its socket, and a small ``Popen``-like API."""

    def __init__(self, pid: int, sock: socket.socket, command: list[str]) -> None:
        self.pid = pid
        self.sock = sock
        self.command = command  # as given, with the FD placeholder
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # reaped elsewhere: it is gone
                self.returncode = -9
            else:
                if pid:
                    self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float) -> int | None:
        """The exit code, waiting up to ``timeout`` seconds (None if still running)."""
        import time

        deadline = time.monotonic() + timeout
        while self.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
        return self.returncode

    def kill(self) -> None:
        if self.poll() is None:
            try:
                os.kill(self.pid, 9)
            except ProcessLookupError:
                pass
            self.wait(5.0)

    def stop(self, grace: float = 1.0) -> None:
        """Hang up (the helper sees EOF and exits), then make sure it is gone (killed after
        ``grace`` seconds). Shut down, not just closed: a process forked from this one since
        may hold a copy of our end."""
        import socket

        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        if self.wait(grace) is None:
            self.kill()


def spawn(command: list[str], unset: tuple[str, ...] = (), extra_env: dict[str, str] | None = None) -> HelperProcess:
    """Start ``command`` (an absolute executable path first) in a new session, its standard
    streams on /dev/null, with a socket whose descriptor replaces :data:`FD` in the command."""
    import socket

    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        fd = theirs.fileno()
        os.set_inheritable(fd, True)
        argv = [str(fd) if arg == FD else arg for arg in command]
        env = {k: v for k, v in os.environ.items() if k not in unset}
        env.update(extra_env or {})
        null = [(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0)]
        pid = os.posix_spawn(argv[0], argv, env, file_actions=null, setsid=True)
    except BaseException:
        ours.close()
        raise
    finally:
        theirs.close()
    return HelperProcess(pid, ours, list(command))


def _hint_path(flow_file: str) -> str:
    path = os.path.abspath(flow_file)
    name = f"{zlib.crc32(path.encode()):08x}-{os.path.basename(path)}.json"
    return os.path.join(cache_root(), "prestart", name)


def _read_hint(flow_file: str) -> dict[str, Any]:
    """The hint for ``flow_file``; ignored unless this user owns it and nobody else may
    write it (it names commands to run: a shared ``PLAIT_CACHE_DIR`` must not be a way in)."""
    try:
        with open(_hint_path(flow_file), encoding="utf-8") as f:
            info = os.fstat(f.fileno())
            if info.st_uid != os.getuid() or info.st_mode & 0o022:
                return {}
            hint = json.load(f)
    except (OSError, ValueError):
        return {}
    if not isinstance(hint, dict) or hint.get("flow_file") != os.path.abspath(flow_file):
        return {}
    return hint


def starting_a_run() -> bool:
    """Is this process a scheduler about to run a flow (``python flow.py run|resume ...``),
    with early starts allowed (``PLAIT_PRESTART``, default on)?"""
    argv = sys.argv
    tokens = set(argv[1:])
    return (len(argv) > 1 and argv[0].endswith(".py") and bool(tokens & {"run", "resume"})
            and not tokens & _NOT_A_RUN
            and os.environ.get("PLAIT_PRESTART", "1").lower() not in ("0", "false", "no"))


def start_early() -> None:
    """At ``import plait`` in a process about to run a flow: spawn the helpers its last run
    used. Does nothing (one failed ``open`` at most) otherwise. Called again by the ``plait``
    command once it knows the flow file (``plait run flow.py``); once per flow file."""
    global _started
    if _started == sys.argv[:1]:
        return
    _started = sys.argv[:1]
    if not starting_a_run():
        return
    hint = _read_hint(sys.argv[0])
    for owner, entries in (hint.get("helpers") or {}).items():
        for entry in entries:
            try:
                start(owner, list(entry["command"]), tuple(entry.get("unset", ())), dict(entry.get("env", {})))
            except (OSError, KeyError, TypeError, ValueError):
                continue  # e.g. an environment deleted since: the plugin starts what it needs


def start(owner: str, command: list[str], unset: tuple[str, ...] = (),
          extra_env: dict[str, str] | None = None) -> None:
    """Spawn a helper now for a plugin to :func:`claim` later in this run (a plugin that
    learns early what it will need); nothing if one with that command is already waiting."""
    global _stop_at_exit
    if any(helper.command == command for helper in _pending.get(owner, [])):
        return
    helper = spawn(command, unset, extra_env)
    _pending.setdefault(owner, []).append(helper)
    if not _stop_at_exit:
        import atexit

        atexit.register(discard_unclaimed)
        _stop_at_exit = True


def claim(owner: str, command: list[str]) -> HelperProcess | None:
    """The helper started early for ``owner`` with exactly ``command``, if any (and alive)."""
    helpers = _pending.get(owner, [])
    for helper in helpers:
        if helper.command == command:
            helpers.remove(helper)
            if helper.poll() is None:
                return helper
            helper.stop()
    return None


def discard_unclaimed(owner: str | None = None) -> None:
    """Stop the helpers started early that no plugin claimed (all owners, or one)."""
    for name in [owner] if owner is not None else list(_pending):
        for helper in _pending.pop(name, []):
            helper.stop()


def remember(flow_file: str, owner: str, entries: list[dict[str, Any]]) -> None:
    """Record the helpers ``owner`` used in this run of ``flow_file`` (each entry: ``command``,
    optional ``unset`` variable names and ``env`` additions), for the next run to start early.
    An empty list forgets them."""
    path = _hint_path(flow_file)
    hint = _read_hint(flow_file) or {"flow_file": os.path.abspath(flow_file), "helpers": {}}
    helpers = hint.setdefault("helpers", {})
    if helpers.get(owner, []) == entries:
        return
    if entries:
        helpers[owner] = entries
    else:
        helpers.pop(owner, None)
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as f:
            json.dump(hint, f)
        os.replace(tmp, path)
        _prune(os.path.dirname(path))
    except OSError:  # a read-only cache only costs the early start
        pass


def _prune(folder: str, max_age: float = 30 * 86400) -> None:
    """Drop hints not rewritten for a month (flows long gone, temporary notebook flows)."""
    import time

    cutoff = time.time() - max_age
    with os.scandir(folder) as entries:
        for entry in entries:
            try:
                if entry.stat().st_mtime < cutoff:
                    os.unlink(entry.path)
            except OSError:
                pass
