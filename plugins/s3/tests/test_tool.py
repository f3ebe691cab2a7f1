"""The S3 tool's API, with Metaflow's semantics, against a real S3 API server."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from plait import S3
from plait_s3 import S3GetObject, S3PutObject
from plait_s3.errors import MetaflowS3NotFound, PlaitS3InvalidObject, PlaitS3NotFound, PlaitS3URLException
from plait_s3.tool import RangeInfo

TREE = [("a/0.txt", "zero"), ("a/b/1.txt", "one"), ("a/c/2.txt", "two"), ("a/d/e/3.txt", "three"),
        ("f/4.txt", "four"), ("ab/5.txt", "five")]


@pytest.fixture
def s3(s3root: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    with S3(s3root=s3root, tmproot=str(tmp_path)) as s3:
        yield s3


def test_import_from_plait() -> None:
    import plait
    from plait_s3.tool import S3 as ToolS3

    assert plait.S3 is ToolS3
    assert plait.MetaflowS3NotFound is PlaitS3NotFound is MetaflowS3NotFound


def test_put_get_roundtrip_and_fields(s3: S3, s3root: str) -> None:
    url = s3.put("m.txt", "meta", content_type="text/plain", metadata={"k": "v"})
    assert url == f"{s3root}/m.txt"
    obj = s3.get("m.txt")
    assert (obj.exists, obj.downloaded, obj.has_info) == (True, True, True)
    assert (obj.key, obj.url, obj.prefix) == ("m.txt", url, s3root)
    assert (obj.text, obj.blob, obj.size) == ("meta", b"meta", 4)
    assert obj.metadata == {"k": "v"} and obj.content_type == "text/plain"
    assert obj.range_info == RangeInfo(4, 0, 4)
    assert isinstance(obj.last_modified, int)
    assert open(obj.path, "rb").read() == b"meta"
    plain = s3.get("m.txt", return_info=False)
    assert plain.blob == b"meta" and not plain.has_info and plain.metadata is None


def test_put_many_overwrite_false_and_put_objects(s3: S3, s3root: str) -> None:
    assert s3.put_many(TREE) == [(k, f"{s3root}/{k}") for k, _ in TREE]
    assert s3.put_many([("a/0.txt", "ZZ"), ("new.txt", "n")], overwrite=False) == [("new.txt", f"{s3root}/new.txt")]
    assert s3.get("a/0.txt").text == "zero"
    assert s3.put("a/0.txt", "ZZ", overwrite=False) and s3.get("a/0.txt").text == "zero"
    s3.put_many([S3PutObject("n.txt", b"nn", content_type="text/x", metadata={"z": 1})])
    obj = s3.info("n.txt")
    assert (obj.size, obj.content_type, obj.metadata, obj.downloaded) == (2, "text/x", {"z": 1}, False)


def test_listing(s3: S3, s3root: str) -> None:
    s3.put_many(TREE)
    paths = s3.list_paths(["a", "f"])
    assert [(o.prefix, o.key, o.exists) for o in paths] == [
        (f"{s3root}/a/", "0.txt", True), (f"{s3root}/a/", "b", False), (f"{s3root}/a/", "c", False),
        (f"{s3root}/a/", "d", False), (f"{s3root}/f/", "4.txt", True)]
    assert [o.url for o in paths][1] == f"{s3root}/a/b/"
    assert [o.key for o in s3.list_paths()] == ["a", "ab", "f"]
    rec = s3.list_recursive(["a"])
    assert [(o.prefix, o.key, o.size) for o in rec] == [
        (f"{s3root}/a", "0.txt", 4), (f"{s3root}/a", "b/1.txt", 3), (f"{s3root}/a", "c/2.txt", 3),
        (f"{s3root}/a", "d/e/3.txt", 5)]
    assert len(s3.list_recursive()) == len(TREE)


def test_get_recursive_get_all_get_many(s3: S3, s3root: str) -> None:
    s3.put_many(TREE)
    got = s3.get_recursive(["a"])
    assert [(o.key, o.text) for o in got] == [("0.txt", "zero"), ("b/1.txt", "one"), ("c/2.txt", "two"),
                                              ("d/e/3.txt", "three")]
    assert sorted((o.key, o.text) for o in s3.get_all()) == sorted(TREE)
    many = s3.get_many(["f/4.txt", "nope"], return_missing=True)
    assert many[0].text == "four" and not many[1].exists and many[1].key == "nope"
    with pytest.raises(MetaflowS3NotFound):
        s3.get_many(["f/4.txt", "nope"])
    with pytest.raises(PlaitS3NotFound, match="nope"):
        s3.get("nope")
    assert not s3.get("nope", return_missing=True).exists
    assert not s3.info("nope", return_missing=True).exists
    with pytest.raises(PlaitS3NotFound):
        s3.info_many(["nope"])


def test_ranges(s3: S3) -> None:
    s3.put("r", b"0123456789")
    assert s3.get(S3GetObject("r", 2, 3)).blob == b"234"
    obj = s3.get(S3GetObject("r", 0, -4))
    assert obj.blob == b"6789" and obj.range_info == RangeInfo(10, 6, 4)
    assert s3.get(S3GetObject("r", 7, None)).blob == b"789"
    assert [o.blob for o in s3.get_many([S3GetObject("r", 0, 1), "r"])] == [b"0", b"0123456789"]


def test_empty_object_and_file_objects(s3: S3, tmp_path: Path) -> None:
    s3.put("empty", b"")
    assert s3.get("empty").blob == b"" and s3.get("empty").size == 0
    s3.put("fobj", io.BytesIO(b"from a file object"))
    assert s3.get("fobj").text == "from a file object"
    with pytest.raises(PlaitS3InvalidObject):
        s3.put("bad", 42)  # type: ignore[arg-type]
    local = tmp_path / "local.bin"
    local.write_bytes(b"L" * 1000)
    assert s3.put_files([("files/local.bin", str(local))])[0][0] == "files/local.bin"
    assert s3.get("files/local.bin").blob == b"L" * 1000
    with pytest.raises(PlaitS3NotFound, match="Local file not found"):
        s3.put_files([("x", str(tmp_path / "missing"))])


def test_large_objects_stream_through_parts_and_files(s3: S3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       boto, bucket: str) -> None:  # type: ignore[no-untyped-def]
    from plait_s3 import ops, tool

    monkeypatch.setattr(ops, "PART_SIZE", 5 * 1024 * 1024)
    monkeypatch.setattr(ops, "MULTIPART_THRESHOLD", 5 * 1024 * 1024)
    monkeypatch.setattr(ops, "RANGE_SIZE", 2 * 1024 * 1024)
    monkeypatch.setattr(tool, "IN_MEMORY_LIMIT", 2 * 1024 * 1024)
    data = os.urandom(13 * 1024 * 1024)
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    s3.put_files([S3PutObject("big.bin", path=str(path), metadata={"m": 1})])
    head = boto.head_object(Bucket=bucket, Key="root/big.bin")
    assert head["ETag"].strip('"').endswith("-3")  # a 3-part multipart upload
    obj = s3.get("big.bin")
    assert obj._data is None and obj.path and obj.size == len(data)  # large: a file, not memory
    assert open(obj.path, "rb").read() == data and obj.metadata == {"m": 1}
    s3.put("big2.bin", io.BytesIO(data))
    assert s3.get("big2.bin").blob == data


def test_tmpdir_removed_on_close(s3root: str, tmp_path: Path) -> None:
    with S3(s3root=s3root, tmproot=str(tmp_path)) as s3:
        s3.put("x", "y")
        path = s3.get("x").path
        assert path and os.path.exists(path)
    assert not os.path.exists(path)
    assert os.listdir(tmp_path) == []


def test_urls(s3root: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with S3() as s3:
        s3.put(f"{s3root}/full.txt", "f")
        obj = s3.get(f"{s3root}/full.txt")
        assert obj.key == obj.url == f"{s3root}/full.txt" and obj.prefix is None
        with pytest.raises(PlaitS3URLException, match="s3root"):
            s3.get("relative")
    with S3(s3root=s3root) as s3, pytest.raises(PlaitS3URLException, match="absolute"):
        s3.get(f"{s3root}/full.txt")
    with pytest.raises(PlaitS3URLException):
        S3(s3root="/local/path")


def test_run_scope_outside_a_flow(s3root: str, monkeypatch: pytest.MonkeyPatch) -> None:
    class Run:
        pathspec = "MyFlow/123"

    monkeypatch.delenv("PLAIT_DATATOOLS_S3ROOT", raising=False)
    monkeypatch.delenv("PLAIT_DATASTORE_ROOT", raising=False)
    with pytest.raises(PlaitS3URLException, match="--datastore s3"):
        S3(run=Run())
    monkeypatch.setenv("PLAIT_DATASTORE_ROOT", s3root)
    with S3(run=Run()) as s3:
        assert s3.put("k", "v") == f"{s3root}/data/MyFlow/123/k"
    monkeypatch.setenv("PLAIT_DATATOOLS_S3ROOT", s3root + "/tools")
    with S3(run=Run(), prefix="other") as s3:
        assert s3.put("k", "v") == f"{s3root.rsplit('/', 1)[0]}/other/MyFlow/123/k"


def test_many_small_objects_in_parallel(s3: S3) -> None:
    items = [(f"many/{i:04d}", os.urandom(100)) for i in range(300)]
    assert len(s3.put_many(items)) == 300
    assert [o.blob for o in s3.get_many([k for k, _ in items])] == [v for _, v in items]
