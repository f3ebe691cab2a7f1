"""Whole flows on the S3 datastore: every artifact, index and log lands in S3 (metadata stays
in ./.plait), and the CLI reads them back."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from plait.datastore.flow_store import FlowDataStore
from plait_s3.storage import S3Storage

FLOW = Path(__file__).parent / "flows" / "s3_flow.py"
pytestmark = pytest.mark.slow


def _run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, str(FLOW), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=240, env={**os.environ, **(env or {})})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def _run_id(out: str) -> str:
    import re

    return re.findall(r"\(run-id (\d+)\)", out)[-1]


@pytest.mark.parametrize("launch", ["fork", "subprocess"])
def test_flow_on_s3(launch: str, s3root: str, bucket: str, tmp_path: Path, boto) -> None:  # type: ignore[no-untyped-def]
    proc = _run(["--datastore", "s3", "--datastore-root", s3root, "run"], tmp_path,
                {"PLAIT_LOCAL_LAUNCH": launch})
    assert "total=5 big=300000" in proc.stdout
    run_id = _run_id(proc.stdout)
    ds = FlowDataStore(S3Storage(s3root))
    assert ds.list_steps("S3Flow", run_id) == ["_parameters", "end", "join", "square", "start"]
    end = ds.read_index("S3Flow", run_id, "end", ds.list_tasks("S3Flow", run_id, "end")[0])
    assert end is not None and end.success
    assert ds.load_artifact(end.artifacts["total"]) == 5
    assert ds.load_artifact(end.artifacts["big"]) == b"x" * 300_000
    assert ds.load_artifact(end.artifacts["texts"]) == ["value=0", "value=1", "value=4"]
    task = ds.list_tasks("S3Flow", run_id, "end")[0]
    assert b"total=5" in ds.load_log("S3Flow", run_id, "end", task, 0, "stdout")
    assert b"to stderr" in ds.load_log("S3Flow", run_id, "end", task, 0, "stderr")
    # the large artifact is one blob in S3; the small ones are inlined in the indexes
    keys = [o["Key"] for o in boto.list_objects_v2(Bucket=bucket, Prefix="root/blobs/").get("Contents", [])]
    assert any(k.startswith("root/blobs/") for k in keys)
    assert end.artifacts["total"].inline is not None
    # S3(run=self) wrote under <root>/data/<flow>/<run>/
    data = boto.get_object(Bucket=bucket, Key=f"root/data/S3Flow/{run_id}/square/2.txt")["Body"].read()
    assert data == b"value=4"
    # metadata stays local, next to the working directory; no datastore files locally
    assert (tmp_path / ".plait" / "metadata.sqlite").exists()
    assert sorted(p.name for p in (tmp_path / ".plait").iterdir() if not p.name.startswith("metadata")) == []


def test_env_selection_and_cli_readers(s3root: str, tmp_path: Path) -> None:
    env = {"PLAIT_DATASTORE": "s3", "PLAIT_DATASTORE_ROOT": s3root}
    proc = _run(["run"], tmp_path, env)
    run_id = _run_id(proc.stdout)
    dump = _run(["dump", f"{run_id}/end", "--include", "total,urls"], tmp_path, env)
    assert "total = 5" in dump.stdout and f"{s3root}/data/S3Flow/{run_id}/square/0.txt" in dump.stdout
    logs = _run(["logs", f"{run_id}/start"], tmp_path, env)
    assert "hello from start" in logs.stdout
    client = subprocess.run([sys.executable, "-c", (
        "from plait import Flow, Run\n"
        "run = Flow('S3Flow').latest_run\n"
        f"assert run.id == '{run_id}', run.id\n"
        "print('total', run.data.total, len(run['join'].task.data.big))\n"
        "print('stdout', run['start'].task.stdout.strip())\n")],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, env={**os.environ, **env})
    assert client.returncode == 0, client.stderr
    assert "total 5 300000" in client.stdout and "stdout hello from start" in client.stdout


def test_resume_on_s3(s3root: str, tmp_path: Path) -> None:
    args = ["--datastore", "s3", "--datastore-root", s3root]
    _run([*args, "run"], tmp_path)
    proc = _run([*args, "resume", "end"], tmp_path)
    assert "total=5 big=300000" in proc.stdout and "cloned" in proc.stdout


def test_missing_root_is_a_clear_error(tmp_path: Path, s3_endpoint: str) -> None:
    proc = subprocess.run([sys.executable, str(FLOW), "--datastore", "s3", "run"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120,
                          env={k: v for k, v in os.environ.items() if k != "PLAIT_DATASTORE_ROOT"})
    assert proc.returncode != 0
    assert "--datastore-root" in proc.stdout + proc.stderr
