"""Find a Python interpreter already on this machine for ``python="3.11"``.

Plait never downloads interpreters (uv runs with ``UV_PYTHON_DOWNLOADS=never``). It looks at
the interpreter running the flow, ``python3.X`` / ``python3`` on ``PATH`` (skipping pyenv
shims, which fail for versions that are not activated), pyenv's and uv's managed installs,
and the usual system folders. When nothing matches, the error lists what was found.
"""

from __future__ import annotations

import glob
import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from plait_uv.spec import UvEnvironmentError

_PROBE = "import sys, json; print(json.dumps([list(sys.version_info[:3]), sys.implementation.name]))"
_VERSION_RE = re.compile(r"^\d+(\.\d+){0,2}$")
_SPEC_RE = re.compile(r"^\s*(==|!=|>=|<=|~=|>|<)\s*(\d+(?:\.\d+){0,2})\s*$")


@dataclass(frozen=True)
class Interpreter:
    path: str
    version: tuple[int, int, int]
    implementation: str = "cpython"

    @property
    def version_str(self) -> str:
        return ".".join(map(str, self.version))


def _vt(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split("."))


def matches(request: str, version: tuple[int, int, int]) -> bool:
    """``3`` / ``3.11`` / ``3.11.7`` match by prefix; ``>=3.10,<3.13`` style specifiers too."""
    request = request.strip()
    for prefix in ("cpython", "python", "py"):
        if request.lower().startswith(prefix) and _VERSION_RE.match(request[len(prefix):].lstrip("@-")):
            request = request[len(prefix):].lstrip("@-")
            break
    if _VERSION_RE.match(request):
        want = _vt(request)
        return version[: len(want)] == want
    parts = [p for p in request.split(",") if p.strip()]
    if not parts:
        return False
    for part in parts:
        m = _SPEC_RE.match(part)
        if not m:
            raise UvEnvironmentError(
                f"python={request!r} is not a Python version (use '3.11', '3.11.7', or specifiers like '>=3.10,<3.13')."
            )
        op, text = m.groups()
        want = _vt(text)
        have = version[: len(want)]
        ok = {"==": have == want, "!=": have != want, ">=": version >= want, "<=": have <= want,
              ">": have > want, "<": version < want,
              "~=": version >= want and version[: len(want) - 1] == want[:-1]}[op]
        if not ok:
            return False
    return True


def _candidates() -> list[str]:
    paths: list[str] = []
    names = re.compile(r"^python3(\.\d+)?$")
    for d in os.environ.get("PATH", "").split(os.pathsep):
        if not d or "shims" in Path(d).parts:  # pyenv/asdf shims: use the versions below instead
            continue
        try:
            entries = os.listdir(d)
        except OSError:
            continue
        paths += [os.path.join(d, e) for e in sorted(entries) if names.match(e)]
    pyenv = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    uv_dir = os.environ.get("UV_PYTHON_INSTALL_DIR") or os.path.join(
        os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share"), "uv", "python")
    patterns = [f"{pyenv}/versions/*/bin/python3", f"{uv_dir}/*/bin/python3",
                "/usr/bin/python3*", "/usr/local/bin/python3*", "/opt/homebrew/bin/python3*",
                "/opt/python/*/bin/python3", "/Library/Frameworks/Python.framework/Versions/*/bin/python3"]
    for pattern in patterns:
        paths += [p for p in sorted(glob.glob(pattern)) if names.match(os.path.basename(p))]
    seen: set[str] = set()
    unique = []
    for p in paths:
        real = os.path.realpath(p)
        if real in seen or not os.access(real, os.X_OK) or not os.path.isfile(real):
            continue
        seen.add(real)
        unique.append(p)
    return unique


def _probe(path: str) -> Interpreter | None:
    try:
        out = subprocess.run([path, "-I", "-S", "-c", _PROBE], capture_output=True, text=True, timeout=20,
                             stdin=subprocess.DEVNULL)
        if out.returncode != 0:
            return None
        version, impl = json.loads(out.stdout)
        return Interpreter(path, tuple(version), impl)  # type: ignore[arg-type]
    except (OSError, ValueError, subprocess.SubprocessError):
        return None


def current() -> Interpreter:
    """The interpreter running the flow (its base interpreter when inside a venv)."""
    base = getattr(sys, "_base_executable", None) or sys.executable
    if not os.path.exists(base):
        base = sys.executable
    return Interpreter(base, tuple(sys.version_info[:3]), sys.implementation.name)  # type: ignore[arg-type]


_found: list[Interpreter] | None = None


def installed() -> list[Interpreter]:
    """Every interpreter found on this machine (probed once per process)."""
    global _found
    if _found is None:
        with ThreadPoolExecutor(max_workers=8) as pool:
            probed = [i for i in pool.map(_probe, _candidates()) if i is not None]
        here = current()
        _found = [here] + [i for i in probed if os.path.realpath(i.path) != os.path.realpath(here.path)]
    return _found


def find(request: str) -> Interpreter:
    """The interpreter for ``python=request``: the running one if it matches, else the highest
    matching version found; a path is used as given."""
    request = str(request).strip()
    if os.sep in request or request.startswith("."):
        found = _probe(os.path.expanduser(request))
        if found is None:
            raise UvEnvironmentError(f"python={request!r} is not a working Python interpreter.")
        return found
    here = current()
    if here.implementation == "cpython" and matches(request, here.version):
        return here
    candidates = [i for i in installed() if i.implementation == "cpython" and matches(request, i.version)]
    if candidates:
        return max(candidates, key=lambda i: i.version)
    listing = "\n".join(f"  {i.version_str}  {i.path}" for i in sorted(installed(), key=lambda i: i.version))
    raise UvEnvironmentError(
        f"No Python {request} is installed on this machine (Plait uses the interpreters already "
        f"here and never downloads one). Found:\n{listing or '  none'}\n"
        f"Install Python {request} (e.g. `uv python install {request}` or `pyenv install {request}`), "
        "or ask for one of the versions above."
    )
