#!/usr/bin/env python3
"""Set up the development environment and run things in it. Needs only python3 and pip.

    python3 scripts/dev.py example   # create .venv, install Plait, run examples/hello.py
    python3 scripts/dev.py test      # create .venv, install Plait + test tools, run the tests
    python3 scripts/dev.py setup     # only create/refresh .venv

Installs are skipped when nothing they depend on changed since the last run.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")


def packages() -> list[Path]:
    """The core plus every plugin distribution in the tree."""
    plugins = sorted(p.parent for p in (ROOT / "plugins").glob("*/pyproject.toml"))
    return [ROOT / "core", *plugins]


def fingerprint() -> str:
    h = hashlib.sha256()
    for path in [ROOT / "requirements-dev.txt", *(p / "pyproject.toml" for p in packages())]:
        h.update(str(path).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def setup() -> None:
    if not PY.exists():
        print(f"Creating {VENV} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    stamp = VENV / ".plait-installed"
    want = fingerprint()
    if stamp.exists() and stamp.read_text() == want:
        return
    print("Installing Plait and the test tools into .venv ...", flush=True)
    pip = [str(PY), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    editable = [arg for p in packages() for arg in ("-e", str(p))]
    subprocess.run([*pip, "-r", str(ROOT / "requirements-dev.txt"), *editable], check=True)
    stamp.write_text(want)


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "test"
    setup()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if command == "setup":
        return 0
    if command == "example":
        return subprocess.call([str(PY), str(ROOT / "examples" / "hello.py"), "run", *argv[1:]], cwd=ROOT, env=env)
    if command == "test":
        return subprocess.call([str(PY), "-m", "pytest", *argv[1:]], cwd=ROOT, env=env)
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
