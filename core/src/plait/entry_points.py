"""Find the ``plait`` entry points, with a cache so that a flow run does not rescan every
installed distribution (tens of milliseconds in a full environment) each time it starts;
:func:`cached_for_installed` caches other such facts the same way.

The cache is keyed by ``sys.path`` and valid while none of its directories changed: installing,
upgrading or removing a distribution rewrites its ``.dist-info`` folder, which changes the
modification time of the directory holding it (see :func:`_fingerprint` for ``sys.path[0]``).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from plait.cache import cache_root

ENTRY_POINT_GROUP = "plait"


@dataclass(frozen=True)
class FoundEntryPoint:
    name: str
    value: str  # "module:attr" or "module"
    distribution: str
    version: str

    def load(self) -> Any:
        from plait.records import load_reference

        return load_reference(self.value)


def _cache_file(name: str) -> str:
    root = cache_root()
    key = hashlib.sha256("\0".join([sys.executable, *sys.path[1:]]).encode()).hexdigest()[:16]
    return os.path.join(root, f"{name}-{key}.json")


def _fingerprint() -> list[list[Any]]:
    """What the cache is valid for. ``sys.path[0]`` is the flow's (or the caller's) own
    folder: it differs between flows and changes whenever a flow writes a file next to
    itself, so it counts only by the distributions it holds (almost always none)."""
    stamps: list[list[Any]] = []
    for i, entry in enumerate(sys.path):
        if i == 0:
            try:
                names = sorted(n for n in os.listdir(entry or ".") if n.endswith((".dist-info", ".egg-info")))
            except OSError:
                names = []
            stamps.append(["<first>", names])
            continue
        try:
            stamps.append([entry, os.stat(entry or ".").st_mtime_ns])
        except OSError:
            stamps.append([entry, -1])
    return stamps


def _scan() -> list[FoundEntryPoint]:
    import importlib.metadata as metadata

    found = []
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(ep, "dist", None)
        found.append(FoundEntryPoint(ep.name, ep.value, dist.metadata["Name"] if dist else "?",
                                     dist.version if dist else "?"))
    return found


def cached_for_installed(name: str, compute: Callable[[], Any]) -> Any:
    """``compute()`` (a JSON-able fact about the installed distributions), from the cache
    while no ``sys.path`` directory changed. Plugins use it too (``name`` keeps them apart)."""
    path = _cache_file(name)
    stamps = _fingerprint()
    try:
        with open(path, encoding="utf-8") as f:
            cached = json.load(f)
        if cached["stamps"] == stamps:
            return cached["value"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    value = compute()
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"stamps": stamps, "value": value}, f)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only home: still correct, just uncached
    return value


def plait_entry_points() -> list[FoundEntryPoint]:
    """Every ``plait`` entry point of the running interpreter's environment."""
    rows = cached_for_installed("entry-points", lambda: [
        [e.name, e.value, e.distribution, e.version] for e in _scan()])
    return [FoundEntryPoint(*row) for row in rows]
