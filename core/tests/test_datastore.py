"""Datastore: the backend contract on local disk and fsspec, plus serializer unit tests."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

pytest.register_assert_rewrite("plait.testing.datastore_contract")

from plait.datastore.content import decode_blob, encode_value  # noqa: E402
from plait.datastore.flow_store import FlowDataStore  # noqa: E402
from plait.datastore.local import LocalStorage, default_local_root  # noqa: E402
from plait.datastore.serialize import (  # noqa: E402
    SERIALIZERS,
    Part,
    Pickle5Serializer,
    RawBytesSerializer,
    Serializer,
    get_serializer,
    register_serializer,
    select_serializer,
    unregister_serializer,
)
from plait.datastore.storage import FsspecStorage, Storage, storage_from_url  # noqa: E402
from plait.exceptions import PlaitException  # noqa: E402
from plait.testing.datastore_contract import DatastoreContract  # noqa: E402

SRC = str(Path(__file__).resolve().parents[1] / "src")


class TestLocalStorage(DatastoreContract):
    @pytest.fixture
    def storage(self, tmp_path: Path) -> Storage:
        return LocalStorage(tmp_path / "root")

    def test_crash_leaves_no_temp_files_on_disk(self, storage: Storage, tmp_path: Path) -> None:
        def chunks() -> Iterator[bytes]:
            yield b"a" * 1000
            raise RuntimeError("boom")

        with pytest.raises(RuntimeError):
            storage.write_atomic("d/f", chunks())
        assert os.listdir(tmp_path / "root" / "d") == []

    def test_does_not_import_fsspec(self, tmp_path: Path) -> None:
        code = (
            "import sys\n"
            "from plait.datastore import FlowDataStore, LocalStorage\n"
            f"ds = FlowDataStore(LocalStorage({str(tmp_path)!r}))\n"
            "ref = ds.save_artifacts({'x': b'1' * 5000, 'y': 3}, step='s')\n"
            "assert ds.load_artifact(ref['x']) == b'1' * 5000\n"
            "heavy = [m for m in ('fsspec', 'numpy', 'cloudpickle') if m in sys.modules]\n"
            "assert not heavy, heavy\n"
        )
        env = {**os.environ, "PYTHONPATH": SRC}
        subprocess.run([sys.executable, "-c", code], check=True, env=env)


class TestFileUrlStorage(DatastoreContract):
    """``file://`` URLs take the same os-level fast path."""

    @pytest.fixture
    def storage(self, tmp_path: Path) -> Storage:
        s = storage_from_url(f"file://{tmp_path}/root")
        assert isinstance(s, LocalStorage)
        return s


class TestMemoryStorage(DatastoreContract):
    @pytest.fixture
    def storage(self) -> Iterator[Storage]:
        root = f"memory://plait-test-{uuid.uuid4().hex}"
        s = storage_from_url(root)
        assert type(s) is FsspecStorage
        yield s
        if s.fs.exists(root):
            s.fs.rm(root, recursive=True)


class TestGenericFsspecOnDisk(DatastoreContract):
    """The generic fsspec path (temp + mv) on a real filesystem, without the os fast path."""

    @pytest.fixture
    def storage(self, tmp_path: Path) -> Storage:
        from fsspec.implementations.local import LocalFileSystem

        return FsspecStorage(str(tmp_path / "root"), fs=LocalFileSystem())


# -- local root ---------------------------------------------------------------------------------


def test_default_root_is_dot_plait_in_cwd(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PLAIT_DATASTORE_ROOT", raising=False)
    monkeypatch.chdir(tmp_path)
    assert LocalStorage().root == str(tmp_path / ".plait")
    assert default_local_root() == str(tmp_path / ".plait")


def test_root_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PLAIT_DATASTORE_ROOT", str(tmp_path / "elsewhere"))
    s = LocalStorage()
    assert s.root == str(tmp_path / "elsewhere")
    s.write_atomic("x", [b"1"])
    assert (tmp_path / "elsewhere" / "x").read_bytes() == b"1"


def test_root_survives_chdir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    s = LocalStorage("rel")
    monkeypatch.chdir("/")
    assert s.root == str(tmp_path / "rel")


def test_import_is_light() -> None:
    code = (
        "import sys\n"
        "import plait.datastore, plait.datastore.storage, plait.datastore.local\n"
        "import plait.datastore.serialize, plait.datastore.content, plait.datastore.flow_store\n"
        "heavy = [m for m in ('fsspec', 'numpy', 'cloudpickle') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONPATH": SRC})


# -- serializers --------------------------------------------------------------------------------


def test_pickle5_numpy_buffers_alias_the_array() -> None:
    import numpy as np
    arr = np.arange(1_000_000, dtype=np.float64)
    header, parts = Pickle5Serializer().dumps(arr)
    assert header == {}
    assert len(parts) == 2 and len(parts[0]) < 1000  # tiny pickle stream + one buffer
    buf = parts[1]
    assert isinstance(buf, memoryview) and buf.nbytes == arr.nbytes
    assert np.shares_memory(np.frombuffer(buf, dtype=np.float64), arr)  # no copy made


def test_pickle5_falls_back_to_cloudpickle() -> None:
    header, parts = Pickle5Serializer().dumps(lambda: 5)
    assert header == {"pickler": "cloudpickle"}
    assert Pickle5Serializer().loads(header, parts)() == 5


def test_raw_bytes_does_not_copy() -> None:
    value = b"x" * 10_000
    header, parts = RawBytesSerializer().dumps(value)
    assert header == {"type": "bytes"} and parts[0] is value
    ba = bytearray(b"y" * 100)
    _, parts = RawBytesSerializer().dumps(ba)
    assert isinstance(parts[0], memoryview) and parts[0].obj is ba


def test_selection_by_priority() -> None:
    assert select_serializer(b"x").name == "raw-bytes"
    assert select_serializer(bytearray()).name == "raw-bytes"
    assert select_serializer(type("B", (bytes,), {})(b"x")).name == "pickle5"  # subclasses pickle
    assert select_serializer({"a": 1}).name == "pickle5"


class _UpperStr(Serializer):
    name = "test-upper"
    priority = 5

    def can_serialize(self, obj: Any) -> bool:
        return isinstance(obj, str) and obj.startswith("UP:")

    def dumps(self, obj: Any) -> tuple[dict[str, Any], list[Part]]:
        return {"v": 1}, [obj[3:].encode()]

    def loads(self, header: dict[str, Any], parts: Sequence[Part]) -> Any:
        return "UP:" + bytes(parts[0]).decode()


def test_register_custom_serializer(tmp_path: Path) -> None:
    register_serializer(_UpperStr())
    try:
        ds = FlowDataStore(LocalStorage(tmp_path))
        refs = ds.save_artifacts({"u": "UP:" + "a" * 3000, "plain": "b"}, step="s")
        assert refs["u"].encoding == "test-upper" and refs["plain"].encoding == "pickle5"
        assert ds.load_artifact(refs["u"]) == "UP:" + "a" * 3000
        with pytest.raises(PlaitException, match="Two serializers"):
            register_serializer(_UpperStr())
    finally:
        unregister_serializer("test-upper")
    assert "test-upper" not in SERIALIZERS
    with pytest.raises(PlaitException, match="not installed"):
        ds.load_artifact(refs["u"])


def test_unknown_encoding_error() -> None:
    with pytest.raises(PlaitException, match="'nope'.*Install the plugin"):
        get_serializer("nope")


def test_blob_is_deterministic_and_decodable() -> None:
    a, b = encode_value({"k": [1, 2, 3]}), encode_value({"k": [1, 2, 3]})
    assert a.sha == b.sha and a.to_bytes() == b.to_bytes()
    assert decode_blob(a.to_bytes()) == {"k": [1, 2, 3]}
    with pytest.raises(ValueError):
        decode_blob(b"not a blob")


def test_small_buffers_stay_in_band(tmp_path: Path) -> None:
    import numpy as np
    arrays = [np.full(10, i) for i in range(10_000)]
    blob = encode_value(arrays)
    assert len(blob.parts) == 1  # one pickle stream, not 10k parts
    ds = FlowDataStore(LocalStorage(tmp_path))
    ref = ds.save_artifacts({"a": arrays}, step="s")["a"]
    assert all(np.array_equal(x, y) for x, y in zip(ds.load_artifact(ref), arrays, strict=True))


def test_header_larger_than_first_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np
    monkeypatch.setattr(SERIALIZERS["pickle5"], "min_out_of_band", 0)
    arrays = [np.full(3, i, dtype=np.int64) for i in range(30_000)]
    blob = encode_value(arrays)
    assert len(blob.parts) == 30_001 and len(blob.head) > 64 * 1024
    ds = FlowDataStore(LocalStorage(tmp_path))
    ref = ds.save_artifacts({"a": arrays}, step="s")["a"]
    out = ds.load_artifact(ref)
    assert len(out) == 30_000 and all(np.array_equal(x, y) for x, y in zip(out, arrays, strict=True))
