"""Resolve, lock, build and cache environments.

* The **lock** (exact versions + hashes, from ``uv pip compile --generate-hashes``) lives in
  the datastore at ``_envs/<hash>/lock.txt`` next to ``spec.json``, written once (the first
  writer wins), so a later run, a resume or a task elsewhere installs the identical set.
* The **environment** is built in the local cache (``PLAIT_UV_CACHE``, default
  ``<PLAIT_CACHE_DIR>/uv``, i.e. ``~/.cache/plait/uv``) under ``envs/<hash>``: created in a temporary folder and
  renamed into place, so a failure or a kill never leaves a half-built environment that a
  later run would pick up. A ready environment is reused with no uv call at all.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from plait_uv import pythons
from plait_uv.spec import EnvSpec, UvEnvironmentError
from plait_uv.uvcmd import run_uv, uv_reason

if TYPE_CHECKING:
    from plait.datastore.storage import Storage

MARKER = "plait-env.json"
LOCK_NAME = "plait-lock.txt"
_STALE_TMP_SECONDS = 3600


def default_cache_dir() -> Path:
    from plait import config

    configured = config.get("PLAIT_UV_CACHE")
    if configured:
        return Path(os.path.expanduser(configured)).absolute()
    from plait.cache import cache_root

    return Path(cache_root()) / "uv"


def lock_key(env_hash: str) -> str:
    """Where an environment's lock lives in the datastore."""
    return f"_envs/{env_hash}/lock.txt"


def spec_key(env_hash: str) -> str:
    return f"_envs/{env_hash}/spec.json"


def env_python(env_dir: Path) -> Path:
    return env_dir / "bin" / "python"


def _who(steps: list[str]) -> str:
    if not steps:
        return "The environment"
    names = ", ".join(f"'{s}'" for s in steps)
    return f"Step {names}" if len(steps) == 1 else f"Steps {names}"


@dataclass
class Prepared:
    spec: EnvSpec
    env_dir: Path
    python: Path
    action: str  # "cached" | "installed from lock" | "resolved"
    seconds: float = 0.0


class EnvManager:
    """Environments for one process (a scheduler, a CLI command, a bootstrap)."""

    def __init__(self, storage: Storage | None, cache_dir: Path | None = None) -> None:
        self.storage = storage
        self.cache_dir = cache_dir or default_cache_dir()

    # -- where things are ---------------------------------------------------------------
    def env_dir(self, spec: EnvSpec) -> Path:
        return self.cache_dir / "envs" / spec.hash

    def ready(self, spec: EnvSpec) -> Path | None:
        """The built environment if it is complete and its interpreter still exists."""
        d = self.env_dir(spec)
        if (d / MARKER).is_file() and env_python(d).exists():
            return d
        return None

    # -- the lock ---------------------------------------------------------------------------
    def stored_lock(self, spec: EnvSpec) -> str | None:
        if self.storage is None:
            return None
        try:
            return self.storage.read(lock_key(spec.hash)).decode()
        except FileNotFoundError:
            return None

    def store_lock(self, spec: EnvSpec, lock: str) -> str:
        """Store the lock unless one is there already; return the one that is stored."""
        if self.storage is None:
            return lock
        self.storage.write_atomic(spec_key(spec.hash), [json.dumps(spec.to_json(), indent=1, sort_keys=True).encode()])
        if self.storage.write_if_absent(lock_key(spec.hash), [lock.encode()]):
            return lock
        return self.storage.read(lock_key(spec.hash)).decode()

    def resolve(self, spec: EnvSpec, interpreter: pythons.Interpreter, steps: list[str]) -> str:
        """``uv pip compile``: exact versions and hashes for the spec, or an error with uv's reason."""
        args = ["pip", "compile", "-", "--generate-hashes", "--no-header", "--no-config", "--quiet",
                "--python", interpreter.path, *spec.index.uv_args()]
        proc = run_uv(args, input_text="\n".join(spec.all_requirements()) + "\n")
        if proc.returncode != 0:
            hint = ""
            if spec.runtime and any(r.split(">")[0].split("=")[0].split(";")[0].strip() in proc.stderr
                                    for r in spec.runtime):
                hint = (f"\n  (Plait itself needs {', '.join(sorted(spec.runtime))} in every environment.)")
            raise UvEnvironmentError(
                f"{_who(steps)}: cannot resolve the environment ({spec.describe()}). uv says:\n"
                f"{uv_reason(proc)}{hint}"
            )
        return proc.stdout

    # -- building ---------------------------------------------------------------------------
    def ensure(self, spec: EnvSpec, steps: list[str], force: bool = False, allow_resolve: bool = True) -> Prepared:
        """A ready environment for ``spec``: from the cache, else from the stored lock, else
        resolved (and the lock stored). ``force`` re-resolves and rebuilds;
        ``allow_resolve=False`` (a task far from its scheduler) insists on the stored lock."""
        start = time.perf_counter()
        if not force:
            found = self.ready(spec)
            if found is not None:
                self._ensure_stored(spec, found)
                return Prepared(spec, found, env_python(found), "cached", time.perf_counter() - start)
        envs = self.cache_dir / "envs"
        envs.mkdir(parents=True, exist_ok=True)
        final = self.env_dir(spec)
        with open(envs / f".{final.name}.lock", "w") as lockfile:
            fcntl.flock(lockfile, fcntl.LOCK_EX)  # one builder per environment on this machine
            if not force:
                found = self.ready(spec)
                if found is not None:  # built while we waited
                    self._ensure_stored(spec, found)
                    return Prepared(spec, found, env_python(found), "cached", time.perf_counter() - start)
            interpreter = self._interpreter(spec, steps)
            lock = None if force else self.stored_lock(spec)
            action = "installed from lock"
            if lock is None and not allow_resolve:
                raise UvEnvironmentError(f"{_who(steps)}: no lock for environment {spec.hash} in the datastore "
                                         f"({lock_key(spec.hash)}); the run that scheduled this task stores it.")
            if lock is None:
                action = "resolved"
                lock = self._build(spec, lambda: self.resolve(spec, interpreter, steps), interpreter, steps,
                                   final, replace=force)
                # Stored only once it built: a lock that cannot be installed is never kept.
                if force and self.storage is not None:
                    self.storage.delete(lock_key(spec.hash))
                stored = self.store_lock(spec, lock)
                if stored != lock:  # another scheduler stored its lock first: use that one
                    self._build(spec, stored, interpreter, steps, final, replace=True)
            else:
                self._build(spec, lock, interpreter, steps, final, replace=force)
        return Prepared(spec, final, env_python(final), action, time.perf_counter() - start)

    def _interpreter(self, spec: EnvSpec, steps: list[str]) -> pythons.Interpreter:
        try:
            return pythons.find(spec.python)
        except UvEnvironmentError as exc:
            raise UvEnvironmentError(f"{_who(steps)}: {exc}") from None

    def _ensure_stored(self, spec: EnvSpec, env_dir: Path) -> None:
        """A cached environment whose lock is missing from this datastore (a new datastore
        root): store the lock it was built from, so resumes and remote tasks find it."""
        if self.storage is None or self.storage.exists(lock_key(spec.hash)):
            return
        self.store_lock(spec, (env_dir / LOCK_NAME).read_text())

    def _build(self, spec: EnvSpec, lock_source: str | Callable[[], str], interpreter: pythons.Interpreter,
               steps: list[str], final: Path, replace: bool = False) -> str:
        """Build in a temporary folder, then rename it to ``final``; returns the lock used.
        ``lock_source`` may be a resolution still to run: the venv is created meanwhile."""
        envs = final.parent
        _remove_stale(envs)
        tmp = envs / f".tmp-{final.name}-{os.getpid()}-{os.urandom(3).hex()}"
        try:
            venv_args = ["venv", "--relocatable", "--no-config", "--quiet", "--python", interpreter.path, str(tmp)]
            with ThreadPoolExecutor(max_workers=2) as pool:
                venv = pool.submit(run_uv, venv_args)
                if callable(lock_source) and not spec.index.no_index:
                    pool.submit(self._prefill, spec, venv, tmp)
                lock = lock_source() if callable(lock_source) else lock_source
                proc = venv.result()
            if proc.returncode != 0:
                raise UvEnvironmentError(f"{_who(steps)}: cannot create a virtual environment with "
                                         f"Python {interpreter.version_str} ({interpreter.path}). uv says:\n{uv_reason(proc)}")
            (tmp / LOCK_NAME).write_text(lock)
            sync = ["pip", "sync", "--require-hashes", "--no-config", "--quiet", "--python",
                    str(env_python(tmp)), *spec.index.uv_args(), str(tmp / LOCK_NAME)]
            # From uv's cache alone when it has every file (no index round trips), else online.
            proc = run_uv([*sync, "--offline"])
            if proc.returncode != 0:
                proc = run_uv(sync)
            if proc.returncode != 0:
                raise UvEnvironmentError(f"{_who(steps)}: cannot install the locked environment "
                                         f"({spec.describe()}). uv says:\n{uv_reason(proc)}")
            _site_packages(tmp)  # a sane venv
            info = {"hash": spec.hash, "spec": spec.to_json(), "python": interpreter.path,
                    "python_version": interpreter.version_str, "created": time.time()}
            (tmp / MARKER).write_text(json.dumps(info, indent=1, sort_keys=True))
            if final.exists() and (replace or self.ready(spec) is None):
                # Move the old one aside first, so the final name always holds a whole env.
                old = envs / f".tmp-old-{final.name}-{os.getpid()}-{os.urandom(3).hex()}"
                os.rename(final, old)
                shutil.rmtree(old, ignore_errors=True)
            try:
                os.rename(tmp, final)
            except OSError:  # built by another process meanwhile: keep theirs
                pass
            return lock
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)


    @staticmethod
    def _prefill(spec: EnvSpec, venv: Future[subprocess.CompletedProcess[str]], tmp: Path) -> None:
        """While the lock is resolved, install the unlocked requirements into the new venv.

        Resolving and then installing from the lock walks the index twice, one after the
        other; ``uv pip install`` streams downloads while it resolves. Run side by side, the
        environment is (nearly always) complete when the lock arrives, and the hash-checked
        ``pip sync`` of the lock that follows only confirms it, or corrects it: the lock,
        not this install, decides what the environment holds. Failures are left to those.
        Only for a package index (against PyPI, cold uv cache: 1.3x instead of 1.7x of bare
        uv): with local wheels alone (``no_index``) there is no waiting to overlap, and the
        two uv processes only compete for the CPU."""
        if venv.result().returncode != 0:
            return
        run_uv(["pip", "install", "--no-config", "--quiet", "--python", str(env_python(tmp)),
                *spec.index.uv_args(), "-r", "-"], input_text="\n".join(spec.all_requirements()) + "\n")


def _site_packages(env_dir: Path) -> Path:
    found = sorted(env_dir.glob("lib/python*/site-packages")) or sorted(env_dir.glob("Lib/site-packages"))
    if not found:
        raise UvEnvironmentError(f"No site-packages folder in {env_dir}.")
    return found[0]


def _remove_stale(envs: Path) -> None:
    """Temporary folders of builders that were killed (older than an hour)."""
    now = time.time()
    for entry in envs.glob(".tmp-*"):
        try:
            if now - entry.stat().st_mtime > _STALE_TMP_SECONDS:
                shutil.rmtree(entry, ignore_errors=True)
        except OSError:
            pass


def locked_packages(lock: str) -> list[str]:
    """``name==version`` lines of a lock (hashes and comments dropped)."""
    out = []
    for line in lock.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "--")):
            out.append(line.split(" ")[0].rstrip("\\").strip())
    return out
