"""Plait inside an environment: its code through an overlay folder, its dependencies locked.

A task in an environment runs Plait's task command, so it must import ``plait`` and the
installed Plait plugins (a flow file may say ``from plait import uv``), and nothing else from
the scheduler's environment. Plait's *own* packages reach the task through an overlay folder
(symlinks to each package plus a copy of its ``*.dist-info`` metadata, so entry points are
found) that the task command puts first on ``sys.path`` (see :func:`boot_command`); the
environment itself holds only locked packages, so installing or upgrading a Plait plugin
never invalidates a built environment. Plait's third-party dependencies (pluggy, click,
fsspec, cloudpickle, ...) are ordinary requirements of the environment: resolved with the
step's packages (a conflict is reported at resolve time) and locked like them.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

CORE = "plait"
#: ``python -s -c BOOT OVERLAY MODULE ARGS...`` runs ``python -m MODULE ARGS...`` with the
#: overlay folder first on sys.path: a self-contained command, no .pth and no PYTHONPATH.
BOOT = ("import runpy, sys; sys.path.insert(0, sys.argv.pop(1)); "
        "runpy.run_module(sys.argv.pop(1), run_name='__main__', alter_sys=True)")


def boot_command(python: str, overlay: str, module: str, args: list[str]) -> list[str]:
    """The command that runs ``python -m module args`` in an environment, seeing Plait."""
    return [python, "-s", "-c", BOOT, overlay, module, *args]


def parse_boot_command(command: list[str]) -> tuple[str, str, str, list[str]] | None:
    """(python, overlay, module, args) of a :func:`boot_command`, or None."""
    if len(command) >= 6 and command[1:4] == ["-s", "-c", BOOT]:
        return command[0], command[4], command[5], command[6:]
    return None
#: Requirements of plait distributions that a task never needs (the scheduler side uses them).
TASK_SIDE_EXCLUDED = {"plait-uv": {"uv"}}


@dataclass(frozen=True)
class RuntimeDist:
    """One installed Plait distribution (the core or a plugin)."""

    name: str
    version: str
    packages: tuple[tuple[str, str], ...]  # (import name, real path of the package/module)
    metadata_dir: str | None  # the installed *.dist-info / *.egg-info folder
    requires: tuple[str, ...]


def _norm(name: str) -> str:
    import re

    return re.sub(r"[-_.]+", "-", name).lower()


def _top_level_names(dist: Any) -> list[str]:
    text = dist.read_text("top_level.txt")
    if text:
        return [n.strip() for n in text.split() if n.strip()]
    names: list[str] = []
    for f in dist.files or []:
        first = str(f).split("/")[0]
        if first.endswith((".dist-info", ".egg-info", ".pth", ".data")) or first in ("..", "__pycache__"):
            continue
        first = first[:-3] if first.endswith(".py") else first
        if first.startswith("__editable__") or first.isidentifier() is False:
            continue
        if first not in names:
            names.append(first)
    for ep in dist.entry_points:
        if ep.group == "plait":
            top = ep.value.split(":")[0].split(".")[0].strip()
            if top and top not in names:
                names.append(top)
    return names


def _locate(import_name: str) -> str | None:
    """The real path of an importable top-level package or module, without importing it."""
    try:
        spec = importlib.util.find_spec(import_name)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        locations = list(spec.submodule_search_locations)
        return os.path.realpath(locations[0]) if locations else None
    return os.path.realpath(spec.origin) if spec.origin else None


def _metadata_dir(dist: Any) -> str | None:
    path = getattr(dist, "_path", None)  # PathDistribution: the folder of its metadata
    return str(path) if path is not None and os.path.isdir(path) else None


def _requires(dist: Any, name: str) -> tuple[str, ...]:
    excluded = TASK_SIDE_EXCLUDED.get(_norm(name), set())
    out = []
    for req in dist.requires or []:
        marker = req.split(";", 1)[1] if ";" in req else ""
        if "extra" in marker:  # optional extras are never needed by a task
            continue
        base = req.split(";", 1)[0]
        from plait_uv.spec import requirement_name

        if requirement_name(base) in excluded:
            continue
        out.append(req.strip())
    return tuple(out)


def runtime_dists() -> list[RuntimeDist]:
    """The core plus every distribution that registers a ``plait`` entry point (cached:
    scanning the installed distributions costs tens of milliseconds per run)."""
    from plait.entry_points import cached_for_installed

    rows = cached_for_installed("uv-runtime-dists", lambda: [asdict(d) for d in _scan_runtime_dists()])
    return [RuntimeDist(r["name"], r["version"], tuple((n, p) for n, p in r["packages"]), r["metadata_dir"],
                        tuple(r["requires"])) for r in rows]


def _scan_runtime_dists() -> list[RuntimeDist]:
    from importlib import metadata as importlib_metadata

    dists: list[Any] = []
    try:
        dists.append(importlib_metadata.distribution(CORE))
    except importlib_metadata.PackageNotFoundError:
        pass
    for ep in importlib_metadata.entry_points(group="plait"):
        dist = getattr(ep, "dist", None)
        if dist is not None:
            dists.append(dist)
    found: dict[str, RuntimeDist] = {}
    for dist in dists:
        name = dist.metadata["Name"] or ""
        if not name or _norm(name) in found:
            continue
        packages = tuple((n, p) for n in _top_level_names(dist) if (p := _locate(n)) is not None)
        found[_norm(name)] = RuntimeDist(name, dist.version, packages, _metadata_dir(dist), _requires(dist, name))
    if CORE not in found:  # plait imported from a source tree without metadata
        path = _locate("plait")
        if path is not None:
            found[CORE] = RuntimeDist("plait", "0", (("plait", path),), None,
                                      ("pluggy>=1.3", "click>=8.1", "fsspec>=2024.2", "cloudpickle>=2.2",
                                       "importlib-metadata>=6; python_version < '3.12'"))
    return sorted(found.values(), key=lambda d: (d.name != CORE, _norm(d.name)))


def runtime_requirements(dists: list[RuntimeDist], needed: set[str]) -> tuple[str, ...]:
    """Third-party requirements of the core and of the plugin distributions in ``needed``
    (those whose datastore or metadata provider the run uses): what a task imports."""
    plait_names = {_norm(d.name) for d in dists}
    wanted = {CORE} | {_norm(n) for n in needed}
    reqs: list[str] = []
    from plait_uv.spec import requirement_name

    for d in dists:
        if _norm(d.name) not in wanted:
            continue
        for req in d.requires:
            if requirement_name(req.split(";", 1)[0]) in plait_names:
                continue
            if req not in reqs:
                reqs.append(req)
    return tuple(sorted(reqs))


def fingerprint(dists: list[RuntimeDist]) -> str:
    data = [(d.name, d.version, list(d.packages), d.metadata_dir) for d in dists]
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:12]


_METADATA_FILES = ("METADATA", "PKG-INFO", "entry_points.txt", "top_level.txt")


def ensure_overlay(cache_dir: Path, dists: list[RuntimeDist]) -> Path:
    """The overlay folder for these distributions (created once, atomically)."""
    fp = fingerprint(dists)
    final = cache_dir / "runtime" / fp
    if final.is_dir():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".tmp-{fp}-{os.getpid()}-{os.urandom(3).hex()}"
    tmp.mkdir()
    try:
        for d in dists:
            for import_name, path in d.packages:
                link = tmp / (import_name if os.path.isdir(path) else os.path.basename(path))
                if not link.exists():
                    os.symlink(path, link)
            info = tmp / f"{d.name.replace('-', '_')}-{d.version}.dist-info"
            info.mkdir(exist_ok=True)
            copied = False
            if d.metadata_dir:
                for fname in _METADATA_FILES:
                    src = Path(d.metadata_dir) / fname
                    if src.is_file():
                        shutil.copyfile(src, info / ("METADATA" if fname == "PKG-INFO" else fname))
                        copied = copied or fname in ("METADATA", "PKG-INFO")
            if not copied:
                (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {d.name}\nVersion: {d.version}\n")
        try:
            os.rename(tmp, final)
        except OSError:  # another process made it first
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final
