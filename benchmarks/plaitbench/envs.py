"""The two virtual environments the benchmarks run in, created on demand and kept up to date.

Each venv holds a fingerprint file; when the fingerprint of what it should contain changes
(a new Metaflow pin, an edited Plait core) the venv is brought up to date before any run.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

METAFLOW_REQUIREMENTS = ("metaflow==2.19.39", "numpy")
PLAIT_EXTRA_REQUIREMENTS = ("numpy",)
_FINGERPRINT_FILE = ".bench-fingerprint"
_SKIP_TOP = {"build", "dist", "tests", ".pytest_cache", ".mypy_cache", ".ruff_cache"}


@dataclass(frozen=True)
class Framework:
    """One side of the comparison: which interpreter, which module, where its datastore lives."""

    name: str  # "plait" or "metaflow"
    module: str  # what the flows import
    python: Path
    datastore_dir: str  # created in the cwd of a run
    version: str
    source: str  # where the installed code came from, for the report


class EnvError(RuntimeError):
    """A venv could not be created or installed."""


def ensure_metaflow(bench_dir: Path) -> Framework:
    venv = bench_dir / ".venv-metaflow"
    fingerprint = " ".join(METAFLOW_REQUIREMENTS)
    if _read_fingerprint(venv) != fingerprint:
        python = _create_venv(venv)
        _pip(python, "install", *METAFLOW_REQUIREMENTS)
        _write_fingerprint(venv, fingerprint)
    return _framework("metaflow", venv, ".metaflow", "PyPI")


def ensure_plait(bench_dir: Path, core_dir: Path) -> Framework:
    """A venv with the current core tree installed (non-editable); reinstalled when it changed."""
    venv = bench_dir / ".venv-plait"
    fingerprint = tree_fingerprint(core_dir)
    if _read_fingerprint(venv) != fingerprint:
        python = _create_venv(venv)
        with tempfile.TemporaryDirectory(prefix="plait-core-") as tmp:
            # Build from a copy so the build leaves no build/ or egg-info in the work tree.
            source = Path(tmp) / "core"
            shutil.copytree(core_dir, source, ignore=_build_output_filter(core_dir))
            _pip(python, "install", str(source), *PLAIT_EXTRA_REQUIREMENTS)
            _pip(python, "install", "--force-reinstall", "--no-deps", str(source))
        _write_fingerprint(venv, fingerprint)
    return _framework("plait", venv, ".plait", f"{_git_revision(core_dir)}, tree {fingerprint[:12]}")


def tree_fingerprint(root: Path) -> str:
    """Hash of every file's path and bytes under root, ignoring build output and tests."""
    digest = hashlib.sha256()
    for path in sorted(_source_files(root)):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def _source_files(root: Path) -> list[Path]:
    files = []
    for path in root.rglob("*"):
        parts = path.relative_to(root).parts
        skipped = parts[0] in _SKIP_TOP or any(_is_build_output(part) for part in parts)
        if path.is_file() and not skipped:
            files.append(path)
    return files


def _is_build_output(name: str) -> bool:
    return name == "__pycache__" or name.endswith((".egg-info", ".pyc"))


def _build_output_filter(root: Path) -> Callable[[str, list[str]], set[str]]:
    """A shutil.copytree ignore function that skips what _source_files skips."""

    def ignore(folder: str, names: list[str]) -> set[str]:
        top = {name for name in names if name in _SKIP_TOP} if Path(folder) == root else set()
        return top | {name for name in names if _is_build_output(name)}

    return ignore


def _git_revision(folder: Path) -> str:
    """The commit the folder is at, and whether it has uncommitted changes."""
    head = subprocess.run(["git", "-C", str(folder), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    if head.returncode != 0:
        return "not a git checkout"
    status = ["git", "-C", str(folder), "status", "--porcelain", "--", "."]
    dirty = subprocess.run(status, capture_output=True, text=True).stdout.strip()
    return f"commit {head.stdout.strip()}" + (" + uncommitted changes" if dirty else "")


def _framework(name: str, venv: Path, datastore_dir: str, source: str) -> Framework:
    python = _venv_python(venv)
    probe = f"import importlib.metadata as m; print(m.version({name!r}))"
    found = subprocess.run([str(python), "-c", probe], capture_output=True, text=True)
    if found.returncode != 0:
        raise EnvError(f"{name} is not importable from {venv}:\n{found.stderr}")
    return Framework(name, name, python, datastore_dir, found.stdout.strip(), source)


def _create_venv(venv: Path) -> Path:
    python = _venv_python(venv)
    if not python.exists():
        print(f"[env] creating {venv}", flush=True)
        _check([sys.executable, "-m", "venv", str(venv)], f"creating {venv}")
    return python


def _pip(python: Path, *args: str) -> None:
    print(f"[env] {python.parent.parent.name}: pip {' '.join(args)}", flush=True)
    argv = [str(python), "-m", "pip", "--disable-pip-version-check", "-q", *args]
    _check(argv, "pip " + " ".join(args))


def _check(argv: list[str], what: str) -> None:
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise EnvError(f"{what} failed (exit {done.returncode}):\n{done.stdout}{done.stderr}")


def _venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _read_fingerprint(venv: Path) -> str | None:
    marker = venv / _FINGERPRINT_FILE
    return marker.read_text().strip() if marker.exists() else None


def _write_fingerprint(venv: Path, fingerprint: str) -> None:
    (venv / _FINGERPRINT_FILE).write_text(fingerprint + "\n")
