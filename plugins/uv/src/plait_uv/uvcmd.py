"""Running the uv binary that the ``uv`` package ships (a dependency of plait-uv)."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from functools import lru_cache

from plait_uv.spec import UvEnvironmentError

#: uv's own settings that would change a resolution behind the spec's back: the spec carries
#: the index settings explicitly, so these are removed from uv's environment.
_SCRUBBED = ("UV_INDEX_URL", "UV_DEFAULT_INDEX", "UV_EXTRA_INDEX_URL", "UV_INDEX", "UV_FIND_LINKS",
             "UV_NO_INDEX", "UV_CONSTRAINT", "UV_OVERRIDE", "UV_BUILD_CONSTRAINT", "UV_PRERELEASE",
             "UV_RESOLUTION", "UV_EXCLUDE_NEWER", "UV_PYTHON", "UV_SYSTEM_PYTHON", "UV_CONFIG_FILE",
             "VIRTUAL_ENV", "CONDA_PREFIX", "PYTHONPATH", "PYTHONHOME")


_lock = threading.Lock()


def uv_bin() -> str:
    """The uv binary: ``PLAIT_UV_BIN``, else the one the ``uv`` package ships, else ``PATH``'s."""
    override = os.environ.get("PLAIT_UV_BIN")
    if override:
        return override
    with _lock:  # sysconfig's first use is not thread-safe, and environments resolve in threads
        return _find_uv()


@lru_cache(maxsize=1)
def _find_uv() -> str:
    try:
        from uv import find_uv_bin

        return str(find_uv_bin())
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
        if found:
            return found
    raise UvEnvironmentError("The uv binary was not found. Reinstall plait-uv (pip install plait-uv), which brings it.")


def uv_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    env.update({"UV_PYTHON_DOWNLOADS": "never", "UV_NO_PROGRESS": "1", "NO_COLOR": "1"})
    env.pop("FORCE_COLOR", None)
    return env


def run_uv(args: list[str], input_text: str | None = None, cwd: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``uv ARGS`` (no config files, no interpreter downloads); never raises for uv's
    own failures: the caller turns ``returncode``/``stderr`` into a message."""
    return subprocess.run([uv_bin(), *args], input=input_text, capture_output=True, text=True,
                          env=uv_env(), cwd=cwd, stdin=None if input_text is not None else subprocess.DEVNULL)


def uv_reason(proc: subprocess.CompletedProcess[str]) -> str:
    """uv's explanation, trimmed and indented for an error message."""
    text = (proc.stderr or proc.stdout or f"uv exited with code {proc.returncode}").strip()
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if len(lines) > 40:
        lines = lines[:40] + [f"... ({len(lines) - 40} more lines)"]
    return "\n".join("    " + ln for ln in lines)
