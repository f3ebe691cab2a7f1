"""Running flows as real processes in tests (the core's and every plugin's): what a command
printed and returned, with assertions that show all of it when they fail."""

from __future__ import annotations

import os
import re
import subprocess
import time
from dataclasses import dataclass

#: How a run announces its id: "Workflow starting (run-id 123):".
RUN_ID_RE = re.compile(r"\(run-id (\d+)\)")


@dataclass
class CommandResult:
    """What a finished command printed and returned."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    elapsed: float

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    @property
    def run_id(self) -> str:
        """The run id the command announced (the last one, for resume)."""
        found = RUN_ID_RE.findall(self.stdout)
        assert found, f"no run id in the output of {self.args}:\n{self.output}"
        return found[-1]

    def describe(self) -> str:
        return (f"$ {' '.join(self.args)}\nexit code {self.returncode}\n--- stdout ---\n{self.stdout}"
                f"\n--- stderr ---\n{self.stderr}")

    def ok(self) -> CommandResult:
        """Assert the command succeeded; return self for chaining."""
        assert self.returncode == 0, self.describe()
        return self

    def failed(self) -> CommandResult:
        """Assert the command failed; return self for chaining."""
        assert self.returncode != 0, self.describe()
        return self


def run_command(cmd: list[str], cwd: str | os.PathLike[str], env: dict[str, str], timeout: float) -> CommandResult:
    """Run ``cmd`` to completion (no stdin), capturing its output."""
    start = time.time()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)
    return CommandResult(cmd, proc.returncode, proc.stdout, proc.stderr, time.time() - start)


def pid_alive(pid: int) -> bool:
    """True if ``pid`` runs (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        return True
