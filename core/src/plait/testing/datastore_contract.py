"""The contract every datastore :class:`~plait.datastore.storage.Storage` backend must pass.

Subclass it in a test module and supply a ``storage`` fixture returning a backend on a fresh,
empty root::

    class TestMyStorage(DatastoreContract):
        @pytest.fixture
        def storage(self, tmp_path):
            return MyStorage(str(tmp_path))

Call ``pytest.register_assert_rewrite("plait.testing.datastore_contract")`` before importing
it to get detailed assertion messages.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from plait.datastore.content import INLINE_LIMIT, blob_path, decode_blob
from plait.datastore.flow_store import FlowDataStore
from plait.datastore.storage import Storage
from plait.datastore.types import ArtifactRef, AttemptIndex
from plait.exceptions import DataMissingError, PlaitException, UnpicklableArtifactError


class _Boom(Exception):
    pass


def _failing_chunks(first: bytes) -> Iterator[bytes]:
    """Simulates a crash mid-write: yields some data, then raises."""
    yield first
    yield b"x" * 4096
    raise _Boom("crash halfway")


def _index(attempt: int = 0, task_id: str = "1", artifacts: dict[str, ArtifactRef] | None = None) -> AttemptIndex:
    return AttemptIndex("F", "r1", "start", task_id, attempt, artifacts=dict(artifacts or {}), finished_at=1.0)


class DatastoreContract:
    """Behaviour shared by all storage backends. Subclasses provide the ``storage`` fixture."""

    @pytest.fixture
    def storage(self) -> Storage:
        raise NotImplementedError("subclass DatastoreContract and provide a `storage` fixture")

    @pytest.fixture
    def ds(self, storage: Storage) -> FlowDataStore:
        return FlowDataStore(storage)

    # -- raw storage ---------------------------------------------------------------------

    def test_write_read_roundtrip(self, storage: Storage) -> None:
        data = bytes(range(256)) * 10
        storage.write_atomic("a/b/c.bin", [data[:100], memoryview(data)[100:], bytearray()])
        assert storage.read("a/b/c.bin") == data
        assert storage.size("a/b/c.bin") == len(data)
        assert storage.read_range("a/b/c.bin", 10, 20) == data[10:30]
        assert storage.read_range("a/b/c.bin", len(data) - 5, 100) == data[-5:]
        with storage.open_read("a/b/c.bin") as f:
            assert f.read() == data
        bufs = storage.read_into_buffers("a/b/c.bin", 3, [5, 0, 7])
        assert [bytes(b) for b in bufs] == [data[3:8], b"", data[8:15]]
        assert all(isinstance(b, bytearray) for b in bufs)

    def test_read_into_buffers_past_end_raises(self, storage: Storage) -> None:
        storage.write_atomic("short.bin", [b"abc"])
        with pytest.raises(EOFError):
            storage.read_into_buffers("short.bin", 0, [10])

    def test_missing_paths(self, storage: Storage) -> None:
        with pytest.raises(FileNotFoundError):
            storage.read("nope/x")
        assert not storage.exists("nope/x")
        assert storage.list_dir("nope") == []
        storage.delete("nope/x")  # no error

    def test_overwrite_and_delete(self, storage: Storage) -> None:
        storage.write_atomic("d/f", [b"one"])
        storage.write_atomic("d/f", [b"two"])
        assert storage.read("d/f") == b"two"
        storage.delete("d/f")
        assert not storage.exists("d/f")

    def test_crash_mid_write_leaves_nothing(self, storage: Storage) -> None:
        with pytest.raises(_Boom):
            storage.write_atomic("crash/file.bin", _failing_chunks(b"partial"))
        assert not storage.exists("crash/file.bin")
        assert storage.list_dir("crash") == []

    def test_crash_mid_overwrite_keeps_old_content(self, storage: Storage) -> None:
        storage.write_atomic("crash/file.bin", [b"old"])
        with pytest.raises(_Boom):
            storage.write_atomic("crash/file.bin", _failing_chunks(b"new"))
        assert storage.read("crash/file.bin") == b"old"
        assert storage.list_dir("crash") == ["file.bin"]

    def test_write_if_absent(self, storage: Storage) -> None:
        assert storage.write_if_absent("w/x", [b"first"]) is True
        assert storage.write_if_absent("w/x", [b"second"]) is False
        assert storage.read("w/x") == b"first"
        assert storage.list_dir("w") == ["x"]

    def test_exists_many_and_list_dir(self, storage: Storage) -> None:
        storage.write_atomic("l/a", [b"1"])
        storage.write_atomic("l/sub/b", [b"2"])
        assert storage.exists_many(["l/a", "l/zz", "l/sub/b"]) == [True, False, True]
        assert storage.exists_many([]) == []
        assert storage.list_dir("l") == ["a", "sub"]

    def test_rejects_escaping_paths(self, storage: Storage) -> None:
        for bad in ("../x", "/abs", "a/../b"):
            with pytest.raises(ValueError):
                storage.write_atomic(bad, [b""])

    def test_concurrent_writers(self, storage: Storage) -> None:
        errors: list[BaseException] = []

        def work(i: int) -> None:
            try:
                storage.write_atomic("conc/same", [b"v%d" % (i % 2)] * 1000)
                storage.write_atomic(f"conc/own{i}", [b"%d" % i])
            except BaseException as e:  # pragma: no cover - reported below
                errors.append(e)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert storage.read("conc/same") in (b"v0" * 1000, b"v1" * 1000)
        assert sorted(storage.list_dir("conc")) == sorted(["same"] + [f"own{i}" for i in range(8)])

    # -- artifacts -------------------------------------------------------------------------

    def test_small_values_are_inlined(self, ds: FlowDataStore, storage: Storage) -> None:
        refs = ds.save_artifacts({"n": 42, "s": "hello", "d": {"a": [1, 2]}}, step="start")
        for name, value in (("n", 42), ("s", "hello"), ("d", {"a": [1, 2]})):
            assert refs[name].inline is not None
            assert refs[name].size < INLINE_LIMIT
            assert ds.load_artifact(refs[name]) == value
        assert refs["n"].type == "int" and refs["n"].encoding == "pickle5"
        assert storage.list_dir("blobs") == []
        assert ArtifactRef.from_json(refs["d"].to_json()) == refs["d"]

    def test_large_value_is_blob_and_self_describing(self, ds: FlowDataStore, storage: Storage) -> None:
        value = list(range(5000))
        ref = ds.save_artifacts({"big": value}, step="start")["big"]
        assert ref.inline is None and ref.size >= INLINE_LIMIT
        raw = storage.read(blob_path(ref.sha))
        assert len(raw) == ref.size
        assert hashlib.sha256(raw).hexdigest() == ref.sha
        assert raw.startswith(b"PLAIT1\n")
        assert decode_blob(raw) == value
        assert ds.load_artifact(ref) == value

    def test_dedup_across_flows_and_hash_before_write(
        self, ds: FlowDataStore, storage: Storage, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        value = b"z" * 50_000
        a = ds.save_artifacts({"x": value, "y": value}, step="a")
        writes: list[str] = []
        real_write = storage.write_if_absent

        def spy(path: str, chunks: Any) -> bool:
            writes.append(path)
            return real_write(path, chunks)

        monkeypatch.setattr(storage, "write_if_absent", spy)
        b = FlowDataStore(storage).save_artifacts({"other_name": value}, step="b")
        assert a["x"].sha == a["y"].sha == b["other_name"].sha
        assert writes == []  # hashed, found, not written again
        assert storage.list_dir(f"blobs/{a['x'].sha[:2]}") == [a["x"].sha]

    def test_bytes_roundtrip(self, ds: FlowDataStore) -> None:
        values = {"b": b"\x00\xff" * 100_000, "ba": bytearray(b"abc" * 1000), "small": b"hi", "empty": b""}
        refs = ds.save_artifacts(values, step="s")
        assert refs["b"].encoding == "raw-bytes"
        for name, value in values.items():
            out = ds.load_artifact(refs[name])
            assert type(out) is type(value) and out == value

    def test_numpy_roundtrip(self, ds: FlowDataStore) -> None:
        np = pytest.importorskip("numpy")
        rng = np.random.default_rng(0)
        values = {
            "f64": rng.random((512, 1024)),  # 4 MiB
            "fortran": np.asfortranarray(rng.random((300, 200))),
            "strided": rng.random((400, 400))[::2, ::3],
            "rec": np.zeros(1000, dtype=[("a", "i4"), ("b", "f8")]),
            "nested": {"arr": np.arange(100_000, dtype=np.int32), "tag": "t"},
        }
        refs = ds.save_artifacts(values, step="s")
        for name in ("f64", "fortran", "strided", "rec"):
            out = ds.load_artifact(refs[name])
            assert out.dtype == values[name].dtype and out.shape == values[name].shape
            assert np.array_equal(out, values[name])
            assert out.flags.writeable
            out[(0,) * out.ndim] = out[(0,) * out.ndim]  # really writable
        nested = ds.load_artifact(refs["nested"])
        assert np.array_equal(nested["arr"], values["nested"]["arr"]) and nested["tag"] == "t"
        assert ds.load_artifact(refs["fortran"]).flags.f_contiguous

    def test_lambda_and_local_class_roundtrip(self, ds: FlowDataStore) -> None:
        class Local:
            def __init__(self) -> None:
                self.v = [7] * 1000

        refs = ds.save_artifacts({"fn": lambda x: x + 1, "obj": Local()}, step="s")
        assert ds.load_artifact(refs["fn"])(1) == 2
        assert ds.load_artifact(refs["obj"]).v == [7] * 1000

    def test_unpicklable_error_names_everything(self, ds: FlowDataStore) -> None:
        with pytest.raises(UnpicklableArtifactError) as info:
            ds.save_artifacts({"ok": 1, "lock": threading.Lock()}, step="train")
        msg = str(info.value)
        assert "'lock'" in msg and "'train'" in msg
        assert "_thread.lock" in msg and "pickle" in msg
        assert "del self.lock" in msg

    def test_missing_blob_error_names_sha(self, ds: FlowDataStore, storage: Storage) -> None:
        ref = ds.save_artifacts({"x": b"q" * 10_000}, step="s")["x"]
        storage.delete(blob_path(ref.sha))
        with pytest.raises(DataMissingError) as info:
            ds.load_artifact(ref, name="x")
        assert ref.sha in str(info.value) and "'x'" in str(info.value)

    def test_truncated_blob_is_data_missing(self, ds: FlowDataStore, storage: Storage) -> None:
        ref = ds.save_artifacts({"x": b"q" * 200_000}, step="s")["x"]
        raw = storage.read(blob_path(ref.sha))
        storage.write_atomic(blob_path(ref.sha), [raw[: len(raw) // 2]])
        with pytest.raises(DataMissingError):
            ds.load_artifact(ref)

    def test_corrupt_blob_is_data_missing(self, ds: FlowDataStore, storage: Storage) -> None:
        ref = ds.save_artifacts({"x": b"q" * 5000}, step="s")["x"]
        storage.write_atomic(blob_path(ref.sha), [b"garbage" * 1000])
        with pytest.raises(DataMissingError, match=ref.sha):
            ds.load_artifact(ref)

    def test_missing_class_on_load_is_explained(self, ds: FlowDataStore, storage: Storage) -> None:
        stream = b"cplait_no_such_module_xyz\nThing\n)R." + b" " * 2000  # GLOBAL, EMPTY_TUPLE, REDUCE
        head = b'PLAIT1\n{"encoding":"pickle5","parts":[%d]}\n' % len(stream)
        sha = hashlib.sha256(head + stream).hexdigest()
        storage.write_atomic(blob_path(sha), [head, stream])
        ref = ArtifactRef(sha, len(head) + len(stream), "pickle5", "plait_no_such_module_xyz.Thing")
        with pytest.raises(PlaitException, match="'model'.*could not be unpickled.*importable"):
            ds.load_artifact(ref, name="model")

    # -- indexes and logs ------------------------------------------------------------------

    def test_index_is_the_commit_point(self, ds: FlowDataStore) -> None:
        refs = ds.save_artifacts({"x": 1, "y": list(range(2000))}, step="start")
        assert ds.read_index("F", "r1", "start", "1") is None
        assert ds.list_attempts("F", "r1", "start", "1") == []
        index = _index(0, artifacts=refs)
        index.control = {"next": ["end"], "foreach_num_splits": 3}
        ds.write_index(index)
        got = ds.read_index("F", "r1", "start", "1")
        assert got == index
        assert ds.load_artifact(got.artifacts["y"]) == list(range(2000))

    def test_crashed_index_write_is_invisible(self, ds: FlowDataStore, storage: Storage) -> None:
        path = ds.index_path("F", "r1", "start", "1", 0)
        with pytest.raises(_Boom):
            storage.write_atomic(path, _failing_chunks(b'{"flow": "F"'))
        assert ds.read_index("F", "r1", "start", "1") is None
        assert ds.list_attempts("F", "r1", "start", "1") == []

    def test_latest_attempt(self, ds: FlowDataStore) -> None:
        for attempt in (0, 2, 1):
            ds.write_index(_index(attempt))
        ds.save_log("F", "r1", "start", "1", 3, "stdout", b"attempt 3 never committed")
        assert ds.list_attempts("F", "r1", "start", "1") == [0, 1, 2]
        latest = ds.read_index("F", "r1", "start", "1")
        assert latest is not None and latest.attempt == 2
        first = ds.read_index("F", "r1", "start", "1", attempt=0)
        assert first is not None and first.attempt == 0
        assert ds.read_index("F", "r1", "start", "1", attempt=5) is None

    def test_list_tasks_and_steps(self, ds: FlowDataStore) -> None:
        for task in ("1", "2", "10"):
            ds.write_index(_index(0, task_id=task))
        assert sorted(ds.list_tasks("F", "r1", "start"), key=int) == ["1", "2", "10"]
        assert ds.list_steps("F", "r1") == ["start"]
        assert ds.list_tasks("F", "r1", "nope") == []

    def test_logs(self, ds: FlowDataStore) -> None:
        assert ds.load_log("F", "r1", "start", "1", 0, "stdout") == b""
        ds.save_log("F", "r1", "start", "1", 0, "stdout", b"out\n")
        ds.save_log("F", "r1", "start", "1", 0, "stderr", b"err\n")
        ds.save_log("F", "r1", "start", "1", 1, "stdout", b"second\n")
        assert ds.load_log("F", "r1", "start", "1", 0, "stdout") == b"out\n"
        assert ds.load_log("F", "r1", "start", "1", 0, "stderr") == b"err\n"
        assert ds.load_log("F", "r1", "start", "1", 1, "stdout") == b"second\n"
        with pytest.raises(ValueError):
            ds.save_log("F", "r1", "start", "1", 0, "stdlog", b"")
        assert ds.list_attempts("F", "r1", "start", "1") == []  # logs do not commit attempts

    def test_local_log_path_appends_are_visible(self, ds: FlowDataStore) -> None:
        path = ds.local_log_path("F", "r1", "start", "1", 0, "stdout")
        if path is None:  # remote storage: it must say so consistently, and logs go by save_log
            assert ds.storage.local_path("") is None
            return
        with open(path, "ab") as f:
            f.write(b"line 1\n")
        with open(path, "ab") as f:
            f.write(b"line 2\n")
        assert ds.load_log("F", "r1", "start", "1", 0, "stdout") == b"line 1\nline 2\n"

    def test_invalid_path_components(self, ds: FlowDataStore) -> None:
        for bad in ("", "a/b", "..", ".hidden"):
            with pytest.raises(ValueError):
                ds.read_index("F", "r1", bad, "1")
