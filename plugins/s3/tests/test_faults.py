"""Transient S3 failures (500, 503 SlowDown, dropped connections, truncated bodies) injected
by a proxy between Plait and the S3 server: everything completes with nothing lost; a
permanent failure is a clear error naming the key."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from plait.datastore.flow_store import FlowDataStore
from plait_s3 import client
from plait_s3.errors import PlaitS3Exception
from plait_s3.storage import S3Storage
from plait_s3.tool import S3

FLOW = Path(__file__).parent / "flows" / "s3_flow.py"


@pytest.fixture
def faulty(fault_proxy, bucket):  # type: ignore[no-untyped-def]
    """The proxy failing 25% of requests, once the bucket exists."""
    fault_proxy.rate = 0.25
    return fault_proxy


def test_bulk_transfers_survive_faults(faulty, bucket: str, boto) -> None:  # type: ignore[no-untyped-def]
    items = [(f"k/{i}", os.urandom(2048 + i)) for i in range(120)]
    with S3(s3root=f"s3://{bucket}/bulk") as s3:
        put = s3.put_many(items)
        assert len(put) == len(items)
        got = s3.get_many([k for k, _ in items])
        assert [o.blob for o in got] == [v for _, v in items]
        assert len(s3.list_recursive()) == len(items)
        infos = s3.info_many([k for k, _ in items])
        assert [o.size for o in infos] == [len(v) for _, v in items]
    assert sum(faulty.injected.values()) >= 30, faulty.injected
    assert {"error500", "slowdown", "drop", "truncate"} <= set(faulty.injected), faulty.injected
    # nothing lost or half-written, seen by a client that bypasses the proxy
    for key, value in items[:20]:
        assert boto.get_object(Bucket=bucket, Key=f"bulk/{key}")["Body"].read() == value


def test_large_multipart_and_ranges_survive_faults(faulty, bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from plait_s3 import ops

    monkeypatch.setattr(ops, "PART_SIZE", 5 * 1024 * 1024)
    monkeypatch.setattr(ops, "RANGE_SIZE", 1024 * 1024)
    storage = S3Storage(f"s3://{bucket}/ds")
    data = os.urandom(12 * 1024 * 1024)
    storage.write_atomic("big.bin", [memoryview(data)[:7_000_000], memoryview(data)[7_000_000:]])
    assert hashlib.sha256(storage.read("big.bin")).digest() == hashlib.sha256(data).digest()
    for _ in range(3):
        bufs = storage.read_into_buffers("big.bin", 10, [3_000_000, 5_000_000])
        assert bytes(bufs[0]) == data[10:3_000_010] and bytes(bufs[1]) == data[3_000_010:8_000_010]
    assert sum(faulty.injected.values()) > 0


def test_datastore_contract_operations_survive_faults(faulty, bucket: str) -> None:  # type: ignore[no-untyped-def]
    ds = FlowDataStore(S3Storage(f"s3://{bucket}/ds"))
    values = {f"a{i}": list(range(500 + i)) for i in range(40)}
    refs = ds.save_artifacts(values, step="s")
    for name, value in values.items():
        assert ds.load_artifact(refs[name], name) == value
    assert ds.storage.exists_many([f"blobs/{r.sha[:2]}/{r.sha}" for r in refs.values()]) == [True] * 40


def test_flow_completes_through_faults(faulty, bucket: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    faulty.rate = 0.15
    root = f"s3://{bucket}/plait"
    proc = subprocess.run([sys.executable, str(FLOW), "--datastore", "s3", "--datastore-root", root, "run"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "total=5 big=300000" in proc.stdout
    assert sum(faulty.injected.values()) > 0


def test_permanent_failure_names_the_key(fault_proxy, bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("PLAIT_S3_MAX_ATTEMPTS", "3")
    client.reset()
    fault_proxy.fail_always(r"/broken/key\.bin", "error500")
    with S3(s3root=f"s3://{bucket}/p") as s3:
        s3.put("fine.txt", "ok")
        with pytest.raises(PlaitS3Exception) as info:
            s3.put_many([("fine2.txt", "ok"), ("broken/key.bin", b"x")])
        assert f"s3://{bucket}/p/broken/key.bin" in str(info.value)
        with pytest.raises(PlaitS3Exception, match="broken/key.bin"):
            s3.get("broken/key.bin")
    storage = S3Storage(f"s3://{bucket}/p")
    with pytest.raises(PlaitS3Exception, match=r"p/broken/key\.bin"):
        storage.write_atomic("broken/key.bin", [b"data"])
