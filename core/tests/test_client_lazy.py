"""The client is lazy and cheap: listing reads metadata only, values load on ``.data``, blobs
are cached, and "latest" queries do not grow with the number of runs."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from plait.client import Flow, Run, Task, default_namespace
from plait.client.namespace import current_store
from plait.client.store import BLOB_CACHE
from test_client import World, world  # noqa: F401 - the shared session fixture


@pytest.fixture(autouse=True)
def client_env(world: World, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:  # noqa: F811
    monkeypatch.setenv("PLAIT_DATASTORE_ROOT", str(world.plait.root))
    monkeypatch.setenv("PLAIT_USER", "tester")
    default_namespace()
    BLOB_CACHE.clear()
    yield
    default_namespace()


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Counts every datastore access the client makes (indexes, blobs, logs, listings)."""
    counts: Counter[str] = Counter()
    ds = current_store().ds

    def counting(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            blob = name.startswith("storage.") and str(args[0]).startswith("blobs/")
            counts[name + (":blob" if blob else "")] += 1
            return func(*args, **kwargs)
        return wrapper

    for name in ("read_index", "load_log", "list_attempts", "list_tasks", "list_steps"):
        monkeypatch.setattr(ds, name, counting(name, getattr(ds, name)))
    for name in ("read", "read_range", "read_into_buffers", "list_dir"):
        monkeypatch.setattr(ds.storage, name, counting(f"storage.{name}", getattr(ds.storage, name)))
    return counts


def test_listing_reads_no_datastore(world: World, reads: Counter[str]) -> None:  # noqa: F811
    flow = Flow("ClientFlow")
    assert flow.latest_run.id == world.resumed and flow.latest_successful_run.id == world.resumed
    for run in flow:
        assert run.successful in (True, False)
        for step in run:
            for task in step:
                assert task.successful in (True, False)
                assert task.finished_at is not None and task.current_attempt >= 0
    assert sum(reads.values()) == 0, reads


def test_artifacts_load_on_touch_and_blobs_are_cached(world: World, reads: Counter[str]) -> None:  # noqa: F811
    task = Run(f"ClientFlow/{world.good}")["start"].task
    data = task.data
    assert reads["read_index"] == 1 and reads["storage.read:blob"] == 0  # names, hashes, sizes
    assert task["big"].size > 1024 and task["items"].sha and "big" in data
    assert data.items == [10, 20, 30]  # small values live inline in the index: no blob read
    assert reads["read_index"] == 1 and reads["storage.read:blob"] == 0, reads
    assert data.big[-1] == 2999
    assert reads["storage.read:blob"] == 1
    assert data.big is data.big  # kept on the object
    again = Task(task.pathspec)
    assert again.data.big == list(range(3000)) and again.data.big is not data.big  # a fresh value ...
    assert reads["storage.read:blob"] == 1 and reads["read_index"] == 2  # ... from the cached blob
    assert BLOB_CACHE.hits >= 1


def test_logs_read_only_when_asked(world: World, reads: Counter[str]) -> None:  # noqa: F811
    task = Run(f"ClientFlow/{world.good}")["end"].task
    assert reads["load_log"] == 0
    assert task.stdout == "result 181\n" and reads["load_log"] == 1


def _replicate_runs(n: int) -> None:
    """Add ``n`` finished runs straight through the metadata provider (no datastore data)."""
    md = current_store().md
    for _ in range(n):
        run_id = md.new_run("ManyRunsFlow", "tester", [], ["user:tester", "runtime:dev"])
        md.finish_run("ManyRunsFlow", run_id, True)


def test_latest_run_does_not_grow_with_the_number_of_runs(world: World) -> None:  # noqa: F811
    md = current_store().md
    _replicate_runs(5)
    statements: list[str] = []
    conn = md._connection()  # type: ignore[attr-defined]
    conn.set_trace_callback(statements.append)
    try:
        Flow("ManyRunsFlow").latest_run  # noqa: B018
        few = len(statements)
        _replicate_runs(600)
        newest = md.list_runs("ManyRunsFlow", limit=1)[0].run_id
        statements.clear()
        start = time.perf_counter()
        assert Flow("ManyRunsFlow").latest_run.id == newest
        elapsed = time.perf_counter() - start
    finally:
        conn.set_trace_callback(None)
    assert len(statements) == few, statements  # the same queries for 5 or 605 runs
    assert all("LIMIT" in s for s in statements if s.lstrip().startswith("SELECT") and "FROM runs" in s)
    assert elapsed < 0.05
    assert sum(1 for _ in Flow("ManyRunsFlow")) == 605
