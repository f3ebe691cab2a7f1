"""The local SQLite metadata provider: the shared contract plus what is specific to it."""

from __future__ import annotations

import os
import pickle
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from plait.exceptions import PlaitException
from plait.metadata.local import DB_NAME, SCHEMA_VERSION, LocalMetadataProvider
from plait.testing.metadata_contract import (
    MetadataProviderContract,
    in_forked_processes,
    needs_fork,
)

FLOW = "LocalFlow"


class TestLocalMetadataProvider(MetadataProviderContract):
    @pytest.fixture
    def provider_factory(self, tmp_path: Path) -> Callable[[], LocalMetadataProvider]:
        return lambda: LocalMetadataProvider(str(tmp_path / "meta"))


@pytest.fixture
def provider(tmp_path: Path) -> LocalMetadataProvider:
    return LocalMetadataProvider(str(tmp_path / "meta"))


def test_one_database_file(tmp_path: Path) -> None:
    root = tmp_path / "does" / "not" / "exist"
    p = LocalMetadataProvider(str(root))
    assert not root.exists()  # opening is lazy: nothing happens until first use
    run_id = p.new_run(FLOW, "alice")
    for i in range(50):
        p.new_task(FLOW, run_id, "fan", str(i))
        p.start_attempt(FLOW, run_id, "fan", str(i), 0)
        p.finish_attempt(FLOW, run_id, "fan", str(i), 0, success=True)
    assert {f.name for f in root.iterdir()} <= {DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm"}
    conn = sqlite3.connect(root / DB_NAME)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_generated_run_ids_are_numeric(provider: LocalMetadataProvider) -> None:
    ids = [provider.new_run(FLOW, "alice") for _ in range(20)]
    assert all(i.isdigit() and len(i) >= 16 for i in ids)
    # an explicit id in the generator's future is stepped over, not collided with
    future = str(int(ids[-1]) + 10_000_000)
    provider.new_run(FLOW, "alice", run_id=future)
    assert len({provider.new_run(FLOW, "alice") for _ in range(5)} | {future}) == 6


def test_writes_to_unknown_run_or_task_raise(provider: LocalMetadataProvider) -> None:
    run_id = provider.new_run(FLOW, "alice")
    with pytest.raises(PlaitException, match="new_run"):
        provider.new_task(FLOW, "404", "start", "1")
    for call in (lambda: provider.finish_run(FLOW, "404", True),
                 lambda: provider.set_run_parameters(FLOW, "404", {}),
                 lambda: provider.add_tags(FLOW, "404", ["x"]),
                 lambda: provider.remove_tags("Other", run_id, ["x"])):
        with pytest.raises(PlaitException, match="404|Other"):
            call()
    with pytest.raises(PlaitException, match="new_task"):
        provider.start_attempt(FLOW, run_id, "start", "1", 0)


def test_bad_tags_are_rejected(provider: LocalMetadataProvider) -> None:
    run_id = provider.new_run(FLOW, "alice")
    with pytest.raises(PlaitException, match="list"):
        provider.add_tags(FLOW, run_id, "oops")
    with pytest.raises(PlaitException, match="non-empty"):
        provider.new_run(FLOW, "alice", tags=[""])


def test_finish_without_start_records_the_attempt(provider: LocalMetadataProvider) -> None:
    run_id = provider.new_run(FLOW, "alice")
    provider.new_task(FLOW, run_id, "start", "1")
    provider.finish_attempt(FLOW, run_id, "start", "1", 0, success=False, exception="launch failed")
    task = provider.get_task(FLOW, run_id, "start", "1")
    assert task is not None and task.latest_attempt is not None
    assert task.latest_attempt.exception == "launch failed" and task.finished and not task.successful


def test_system_tag_also_added_as_user_tag(provider: LocalMetadataProvider) -> None:
    run_id = provider.new_run(FLOW, "alice", system_tags=["user:alice"])
    provider.add_tags(FLOW, run_id, ["user:alice"])
    provider.remove_tags(FLOW, run_id, ["user:alice"])
    run = provider.get_run(FLOW, run_id)
    assert run is not None and run.tags == [] and run.system_tags == ["user:alice"]


def test_pickles_without_its_connection(provider: LocalMetadataProvider) -> None:
    run_id = provider.new_run(FLOW, "alice")
    clone = pickle.loads(pickle.dumps(provider))
    assert clone.get_run(FLOW, run_id) is not None
    clone.close()
    assert clone.get_run(FLOW, run_id) is not None  # reopens after close


@needs_fork
def test_fresh_root_opened_by_many_processes(tmp_path: Path) -> None:
    root = str(tmp_path / "fresh")

    def child() -> str:
        return LocalMetadataProvider(root).new_run(FLOW, "alice")

    ids = in_forked_processes(child, [()] * 8)
    assert len(set(ids)) == 8
    assert len(LocalMetadataProvider(root).list_runs(FLOW)) == 8


@needs_fork
def test_child_reopens_instead_of_sharing_the_connection(provider: LocalMetadataProvider) -> None:
    provider.new_run(FLOW, "alice")
    parent_conn = provider._conn

    def child() -> bool:
        provider.new_run(FLOW, "child")
        return provider._conn is not parent_conn and provider._pid == os.getpid()

    assert in_forked_processes(child, [()]) == [True]
    assert provider._conn is parent_conn and len(provider.list_runs(FLOW)) == 2


def test_two_thousand_runs(provider: LocalMetadataProvider) -> None:
    """Correctness at the size the latency target is about (timing is measured separately)."""
    ids = []
    for i in range(2000):
        tags = ["even"] if i % 2 == 0 else []
        ids.append(provider.new_run(FLOW, "alice", tags=tags, system_tags=["user:alice"]))
        if i % 100 == 0:
            provider.new_run("Noise", "bob")
    run_id = ids[-1]
    provider.new_task(FLOW, run_id, "start", "1")
    latest = provider.list_runs(FLOW, limit=1)
    assert [r.run_id for r in latest] == [run_id] and latest[0].system_tags == ["user:alice"]
    assert [r.run_id for r in provider.list_runs(FLOW, tags=["even"], limit=1)] == [ids[-2]]
    assert [r.run_id for r in provider.list_runs(FLOW, tags=["user:alice"], limit=3)] == ids[:-4:-1]
    all_runs = provider.list_runs(FLOW)
    assert len(all_runs) == 2000 and [r.run_id for r in all_runs] == ids[::-1]
    assert len(provider.list_runs(FLOW, tags=["even", "user:alice"])) == 1000
    assert provider.list_flows() == ["LocalFlow", "Noise"]
