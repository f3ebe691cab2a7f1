"""Fixtures and helpers for plait-uv's tests (imported by the test modules; there is no
conftest.py here, so that ``import conftest`` elsewhere in the suite finds its own).

Nothing here touches the network: every environment resolves against a folder of wheels
(``PLAIT_UV_FIND_LINKS`` + ``PLAIT_UV_NO_INDEX``) holding tiny made-up packages and Plait's own
dependencies repacked from the interpreter running the tests. Flows run as real processes."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from plait.testing.processes import RUN_ID_RE, pid_alive, run_command  # noqa: F401 - re-exported
from plait.testing.processes import CommandResult as Result

FLOWS = Path(__file__).parent / "flows"


class UvPlait:
    """One isolated place to run flows with environments: cwd, datastore, env cache."""

    def __init__(self, tmp: Path, wheelhouse: Path, uv_cache: Path) -> None:
        self.tmp = tmp
        self.cwd = tmp / "work"
        self.root = tmp / "datastore"
        self.cache = tmp / "envcache"
        self.state = tmp / "state"
        for d in (self.cwd, self.root, self.state):
            d.mkdir()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("PLAIT_", "UV_"))}
        self.env.pop("PYTHONPATH", None)
        self.env.update({
            "PLAIT_DATASTORE_ROOT": str(self.root), "PLAIT_HOME": str(tmp / "home"), "PLAIT_USER": "tester",
            "PLAIT_TEST_STATE": str(self.state), "PYTHONDONTWRITEBYTECODE": "1",
            "PLAIT_UV_CACHE": str(self.cache), "PLAIT_UV_FIND_LINKS": str(wheelhouse), "PLAIT_UV_NO_INDEX": "1",
            "UV_CACHE_DIR": str(uv_cache),
        })
        self._ds: Any = None

    def flow(self, name: str, *args: str, env: dict[str, str | None] | None = None, timeout: float = 180) -> Result:
        cmd = [sys.executable, str(FLOWS / f"{name}.py"), *args]
        merged = dict(self.env)
        for k, v in (env or {}).items():
            if v is None:
                merged.pop(k, None)
            else:
                merged[k] = v
        return run_command(cmd, self.cwd, merged, timeout)

    def run(self, name: str, *args: str, env: dict[str, str | None] | None = None) -> Result:
        return self.flow(name, "run", "--max-workers", "2", *args, env=env)

    @property
    def ds(self) -> Any:
        if self._ds is None:
            from plait.datastore.flow_store import FlowDataStore
            from plait.datastore.local import LocalStorage

            self._ds = FlowDataStore(LocalStorage(str(self.root)))
        return self._ds

    def artifacts(self, flow: str, run_id: str, step: str) -> list[dict[str, Any]]:
        """Artifacts of every task of a step (any order)."""
        out = []
        for task_id in self.ds.list_tasks(flow, run_id, step):
            index = self.ds.read_index(flow, run_id, step, task_id)
            if index is not None and index.success:
                out.append({k: self.ds.load_artifact(r) for k, r in index.artifacts.items()})
        return out

    def one(self, flow: str, run_id: str, step: str) -> dict[str, Any]:
        (found,) = self.artifacts(flow, run_id, step)
        return found

    def built_envs(self) -> list[Path]:
        envs = self.cache / "envs"
        return sorted(p for p in envs.iterdir() if not p.name.startswith(".")) if envs.exists() else []

    def leftovers(self) -> list[Path]:
        envs = self.cache / "envs"
        return sorted(envs.glob(".tmp-*")) if envs.exists() else []

    def locks(self) -> dict[str, str]:
        envs = self.root / "_envs"
        return {p.parent.name: p.read_text() for p in envs.glob("*/lock.txt")} if envs.exists() else {}


def no_traceback(text: str) -> None:
    """No Python traceback of Plait's own (uv's quoted reasons are indented)."""
    assert not re.search(r"^Traceback", text, re.M), text


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from plait_uv.testing import make_failing_sdist, make_wheel, runtime_wheelhouse

    folder = tmp_path_factory.mktemp("wheelhouse")
    runtime_wheelhouse(folder)
    make_wheel(folder, "tinypkg", "1.0")
    make_wheel(folder, "tinypkg", "2.0")
    make_wheel(folder, "tinydep", "1.0", requires=["tinypkg>=2"])
    make_failing_sdist(folder, "brokenpkg", "0.1", "brokenpkg refuses to build")
    return folder


@pytest.fixture(scope="session")
def uv_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """uv's own download/build cache, shared by the tests (it is not what is under test)."""
    return tmp_path_factory.mktemp("uv-cache")


@pytest.fixture
def uvp(tmp_path: Path, wheelhouse: Path, uv_cache: Path) -> Iterator[UvPlait]:
    yield UvPlait(tmp_path, wheelhouse, uv_cache)


@pytest.fixture
def offline_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, wheelhouse: Path, uv_cache: Path) -> Path:
    """In-process tests: the same offline settings as UvPlait, through the environment."""
    for key in list(os.environ):
        if key.startswith(("PLAIT_UV_", "UV_")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("PLAIT_UV_FIND_LINKS", str(wheelhouse))
    monkeypatch.setenv("PLAIT_UV_NO_INDEX", "1")
    monkeypatch.setenv("UV_CACHE_DIR", str(uv_cache))
    monkeypatch.setenv("PLAIT_HOME", str(tmp_path / "home"))
    cache = tmp_path / "envcache"
    monkeypatch.setenv("PLAIT_UV_CACHE", str(cache))
    return cache
