"""plait-s3 + plait-uv together: a real run on the S3 datastore (moto in server mode on
127.0.0.1) whose step runs in a plait-uv environment built offline.

The environment of a step gets the dependencies of the datastore plugin the run uses (here
plait-s3: s3fs, botocore, aiohttp...). They are repacked from this interpreter, compiled ones
included (with their own platform tags), so uv resolves against a local folder and nothing
touches the network."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from plait_s3.testing import TEST_ENV, MotoServer, boto_client, create_bucket
from plait_uv.testing import make_wheel, runtime_wheelhouse

FLOW = '''
import sys

from plait import FlowSpec, step, uv


class S3UvFlow(FlowSpec):
    @step
    def start(self):
        self.scheduler_prefix = sys.prefix
        self.next(self.compute)

    @uv(packages=["tinypkg==1.0"])
    @step
    def compute(self):
        import tinypkg

        self.env_prefix = sys.prefix
        self.answer = "tinypkg " + tinypkg.VERSION + " " + str(6 * 7)
        self.next(self.end)

    @step
    def end(self):
        print("end sees", self.answer)


if __name__ == "__main__":
    S3UvFlow()
'''


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every third-party distribution a task on the S3 datastore needs, plus tinypkg."""
    folder = runtime_wheelhouse(tmp_path_factory.mktemp("wheelhouse"), {"plait-s3"})
    make_wheel(folder, "tinypkg", "1.0")
    return folder


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    server = MotoServer()
    url = server.start()
    yield url
    server.stop()


def test_uv_step_on_the_s3_datastore(tmp_path: Path, wheelhouse: Path, moto_url: str,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    bucket = f"plait-xpkg-{os.getpid()}"
    create_bucket(moto_url, bucket)
    root = f"s3://{bucket}/plait"
    work = tmp_path / "work"
    work.mkdir()
    (work / "flow.py").write_text(textwrap.dedent(FLOW))

    env = {k: v for k, v in os.environ.items() if not k.startswith(("PLAIT_", "UV_", "AWS_"))}
    env.pop("PYTHONPATH", None)
    env.update(TEST_ENV)
    env.update({
        "PLAIT_S3_ENDPOINT_URL": moto_url, "PLAIT_HOME": str(tmp_path / "home"), "PLAIT_USER": "tester",
        "PLAIT_UV_CACHE": str(tmp_path / "envcache"), "PLAIT_UV_FIND_LINKS": str(wheelhouse),
        "PLAIT_UV_NO_INDEX": "1", "UV_CACHE_DIR": str(tmp_path / "uv-cache"), "PYTHONDONTWRITEBYTECODE": "1",
    })
    cmd = [sys.executable, "flow.py", "--datastore", "s3", "--datastore-root", root, "run"]
    proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, f"exit {proc.returncode}\n--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
    assert "end sees tinypkg 1.0 42" in proc.stdout

    # Read the artifacts back through the client API, as a user would.
    for k, v in env.items():
        if k.startswith(("PLAIT_", "AWS_")):
            monkeypatch.setenv(k, v)
    monkeypatch.setenv("PLAIT_DATASTORE", "s3")
    monkeypatch.setenv("PLAIT_DATASTORE_ROOT", root)
    monkeypatch.chdir(work)
    from plait import Flow, namespace
    from plait_s3 import client

    client.reset()
    try:
        namespace(None)
        run = Flow("S3UvFlow").latest_run
        assert run.successful
        compute = run["compute"].task.data
        assert compute.answer == "tinypkg 1.0 42"
        # The step really ran in its own environment, not in the scheduler's interpreter.
        scheduler_prefix = run["start"].task.data.scheduler_prefix
        assert compute.env_prefix != scheduler_prefix
        assert compute.env_prefix.startswith(str(tmp_path / "envcache"))
    finally:
        client.reset()

    # The blobs are in the bucket.
    keys: list[str] = []
    for page in boto_client(moto_url).get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="plait/"):
        keys += [o["Key"] for o in page.get("Contents", [])]
    assert any(k.startswith("plait/S3UvFlow/") for k in keys), keys
    assert len(keys) > 5, keys
    # The environment's lock (kept in the datastore) has the S3 datastore's dependencies.
    locks = [k for k in keys if k.startswith("plait/_envs/") and k.endswith("/lock.txt")]
    assert len(locks) == 1, keys
    lock = boto_client(moto_url).get_object(Bucket=bucket, Key=locks[0])["Body"].read().decode()
    assert "tinypkg==1.0" in lock and "s3fs==" in lock and "botocore==" in lock, lock
