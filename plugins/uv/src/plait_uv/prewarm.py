"""Start the environments' fork servers early, while the scheduler itself is still starting.

A step's first task in an environment waits for that environment's fork server to import
Plait and the flow (an interpreter start, ~100-200 ms). The scheduler learns which
environments a run needs only once the run is allocated (``plait_runtime_init``), but it
spends a comparable time before that: importing, building the CLI and the graph. So each
run leaves a hint in the local cache (flow file -> the fork server commands it used) and
the next run of the same flow starts those servers as soon as the flow file applies its
first environment decorator. ``plait_runtime_init`` still decides: a server that matches
what the run needs is used, any other is closed at the end of the run.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

_started = False
#: Commands that mark a process as something other than a scheduler starting a run.
_NOT_A_RUN = {"step", "environment", "show", "check", "dump", "logs", "tag", "_flow"}


def _hint_file(cache_dir: Path, flow_file: str) -> Path:
    key = hashlib.sha256(os.path.abspath(flow_file).encode()).hexdigest()[:20]
    return cache_dir / "hints" / f"{key}.json"


def save(cache_dir: Path, flow_file: str, commands: list[list[str]]) -> None:
    path = _hint_file(cache_dir, flow_file)
    data = json.dumps(commands)
    try:
        if path.exists() and path.read_text() == data:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(data)
        os.replace(tmp, path)
    except OSError:
        pass


def _looks_like_a_run(argv: list[str]) -> bool:
    tokens = set(argv[1:])
    return bool(tokens & {"run", "resume"}) and not tokens & _NOT_A_RUN


def maybe_start(flow_file: str) -> None:
    """Called when a flow file applies an environment decorator: in a scheduler about to
    run this flow, start the fork servers the last run of the flow used."""
    global _started
    if _started:
        return
    _started = True
    try:
        if os.environ.get("PLAIT_UV_PREWARM", "1") in ("0", "false", "no") or not _looks_like_a_run(sys.argv):
            return
        from plait_uv.launcher import may_fork

        if not may_fork():
            return
        from plait_uv.envs import default_cache_dir

        path = _hint_file(default_cache_dir(), flow_file)
        if not path.is_file():
            return
        commands = json.loads(path.read_text())
        from plait.services import compute_backend

        backend = compute_backend("uv")
        for command in commands:
            if os.path.exists(command[0]) and os.path.isdir(command[4]):
                backend.warm(command)  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - only an optimisation: the run prepares everything itself
        pass
