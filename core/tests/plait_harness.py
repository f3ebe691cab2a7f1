"""The harness of the end-to-end tests (``test_run_*.py``, client, runner): real flow runs.

Every run is a REAL process: ``python <flow file> run ...`` started with the test's
interpreter, in a fresh working directory, with its own datastore root. Results are read
back the way any other reader would: through ``FlowDataStore`` and ``LocalMetadataProvider``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from plait.testing.processes import RUN_ID_RE, pid_alive, run_command  # noqa: F401 - re-exported
from plait.testing.processes import CommandResult as Result

FLOWS_DIR = Path(__file__).parent / "flows"
#: Where a plait console script lives next to the interpreter running the tests.
PLAIT_SCRIPT = Path(sys.executable).with_name("plait")


def flow_path(name: str) -> str:
    """Absolute path of ``core/tests/flows/<name>.py`` (or ``name`` if it is a path)."""
    path = Path(name)
    if path.suffix != ".py":
        path = FLOWS_DIR / f"{name}.py"
    assert path.exists(), f"no flow file {path}"
    return str(path)


class Plait:
    """One isolated place to run flows: a cwd, a datastore root, a state dir for flows."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.cwd = tmp_path / "work"
        self.root = tmp_path / "datastore"
        self.state = tmp_path / "state"  # flows keep counters and flags here
        self.tmpdir = tmp_path / "tmp"  # the runs' TMPDIR: nothing they leave escapes the test
        for d in (self.cwd, self.root, self.state, self.tmpdir):
            d.mkdir()
        keep = ("PLAIT_DISABLE_PLUGINS",)  # the one knob of the outer environment honoured
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("PLAIT_") or k in keep}
        self.env.update({
            "PLAIT_DATASTORE_ROOT": str(self.root),
            "PLAIT_HOME": str(tmp_path / "home"),  # no user profile leaks into the tests
            "PLAIT_USER": "tester",
            "PLAIT_TEST_STATE": str(self.state),
            "PYTHONDONTWRITEBYTECODE": "1",
            "TMPDIR": str(self.tmpdir),
        })
        self._ds: Any = None
        self._md: Any = None

    # -- running ----------------------------------------------------------------------------
    def command(self, flow: str, *args: str) -> list[str]:
        return [sys.executable, flow_path(flow), *args]

    def merged_env(self, env: dict[str, str] | None) -> dict[str, str]:
        merged = dict(self.env)
        for key, value in (env or {}).items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        return merged

    def execute(self, cmd: list[str], env: dict[str, str] | None = None, timeout: float = 120) -> Result:
        return run_command(cmd, self.cwd, self.merged_env(env), timeout)

    def flow(self, flow: str, *args: str, env: dict[str, str] | None = None, timeout: float = 120) -> Result:
        """``python <flow> <args...>``."""
        return self.execute(self.command(flow, *args), env, timeout)

    def run(self, flow: str, *args: str, env: dict[str, str] | None = None, timeout: float = 120) -> Result:
        """``python <flow> run --max-workers 2 <args...>``."""
        return self.flow(flow, "run", "--max-workers", "2", *args, env=env, timeout=timeout)

    def resume(self, flow: str, *args: str, env: dict[str, str] | None = None, timeout: float = 120) -> Result:
        return self.flow(flow, "resume", "--max-workers", "2", *args, env=env, timeout=timeout)

    def popen(self, flow: str, *args: str, env: dict[str, str] | None = None, **kw: Any) -> subprocess.Popen[bytes]:
        """Start ``python <flow> <args...>`` without waiting (stdout/stderr piped)."""
        return subprocess.Popen(self.command(flow, *args), cwd=self.cwd, env=self.merged_env(env),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, **kw)

    # -- reading results ------------------------------------------------------------------
    @property
    def ds(self) -> Any:
        if self._ds is None:
            from plait.datastore.flow_store import FlowDataStore
            from plait.datastore.local import LocalStorage

            self._ds = FlowDataStore(LocalStorage(str(self.root)))
        return self._ds

    @property
    def md(self) -> Any:
        if self._md is None:
            from plait.metadata.local import LocalMetadataProvider

            self._md = LocalMetadataProvider(str(self.root))
        return self._md

    def close(self) -> None:
        if self._md is not None:
            self._md.close()

    def run_record(self, flow: str, run_id: str) -> Any:
        record = self.md.get_run(flow, run_id)
        assert record is not None, f"no run {flow}/{run_id} in the metadata"
        return record

    def tasks(self, flow: str, run_id: str, step: str | None = None) -> list[Any]:
        """Metadata task records (creation order)."""
        return list(self.md.list_tasks(flow, run_id, step))

    def task(self, flow: str, run_id: str, step: str) -> Any:
        """The one task of a step (asserts there is exactly one)."""
        tasks = self.tasks(flow, run_id, step)
        assert len(tasks) == 1, f"expected one task of {step}, found {[t.task_id for t in tasks]}"
        return tasks[0]

    def index(self, flow: str, run_id: str, step: str, task_id: str | None = None,
              attempt: int | None = None) -> Any:
        """The committed attempt index of a task (the step's only task when no id is given)."""
        if task_id is None:
            task_id = self.task(flow, run_id, step).task_id
        index = self.ds.read_index(flow, run_id, step, task_id, attempt)
        assert index is not None, f"no committed attempt for {flow}/{run_id}/{step}/{task_id}"
        return index

    def load(self, index: Any, names: list[str] | None = None) -> dict[str, Any]:
        return {name: self.ds.load_artifact(ref) for name, ref in index.artifacts.items()
                if names is None or name in names}

    def artifacts(self, flow: str, run_id: str, step: str, task_id: str | None = None) -> dict[str, Any]:
        """Every artifact value of one task, read through the datastore."""
        return self.load(self.index(flow, run_id, step, task_id))

    def step_artifacts(self, flow: str, run_id: str, step: str) -> list[dict[str, Any]]:
        """Artifacts of every task of a step, in task creation order."""
        return [self.artifacts(flow, run_id, step, t.task_id) for t in self.tasks(flow, run_id, step)]

    def all_artifacts(self, flow: str, run_id: str, skip: tuple[str, ...] = ()) -> dict[tuple[str, str], dict[str, Any]]:
        """{(step, foreach_key): artifacts} for a whole run: comparable across runs."""
        out: dict[tuple[str, str], dict[str, Any]] = {}
        for t in self.tasks(flow, run_id):
            values = self.artifacts(flow, run_id, t.step, t.task_id)
            out[(t.step, t.foreach_key)] = {k: v for k, v in values.items() if k not in skip}
        return out

    def log(self, flow: str, run_id: str, step: str, task_id: str, attempt: int = 0,
            stream: str = "stdout") -> str:
        from plait.runtime.logs import log_text

        return log_text(self.ds.load_log(flow, run_id, step, task_id, attempt, stream))

    # -- state shared with flows ----------------------------------------------------------
    def counter(self, name: str) -> int:
        """How many times a flow bumped ``name`` (see flows/_helpers.py)."""
        path = self.state / name
        return len(path.read_text()) if path.exists() else 0


def no_traceback(text: str) -> None:
    """Assert the text has no Python traceback in it."""
    assert "Traceback" not in text, text
