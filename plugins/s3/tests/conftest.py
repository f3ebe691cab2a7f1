"""Shared fixtures: a real S3 API server (moto in server mode over HTTP), buckets, roots,
and a fault-injecting proxy in front of the server. No in-process mocking of botocore."""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.register_assert_rewrite("plait.testing.datastore_contract")

sys.path.insert(0, str(Path(__file__).parent))  # faultproxy.py

from faultproxy import FaultProxy  # noqa: E402
from plait_s3 import client  # noqa: E402
from plait_s3.testing import TEST_ENV, MotoServer, boto_client, create_bucket  # noqa: E402

_names = itertools.count()


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """URL of a moto S3 server on a free port of 127.0.0.1, shared by the session."""
    saved = {k: os.environ.get(k) for k in TEST_ENV}
    os.environ.update(TEST_ENV)
    server = MotoServer()
    url = server.start()
    yield url
    server.stop()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture
def s3_endpoint(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Point Plait (and any subprocess) at the moto server; a fresh client per test."""
    for k, v in TEST_ENV.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("PLAIT_S3_ENDPOINT_URL", moto_url)
    monkeypatch.setenv("PLAIT_S3_MAX_ATTEMPTS", "6")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    client.reset()
    yield moto_url
    client.reset()


@pytest.fixture
def bucket(s3_endpoint: str) -> str:
    """A new, empty bucket on the moto server."""
    name = f"plait-test-{os.getpid()}-{next(_names)}"
    create_bucket(s3_endpoint, name)
    return name


@pytest.fixture
def s3root(bucket: str) -> str:
    return f"s3://{bucket}/root"


@pytest.fixture
def boto(s3_endpoint: str):  # type: ignore[no-untyped-def]
    """A plain botocore client on the same server, to look at what Plait wrote."""
    return boto_client(s3_endpoint)


@pytest.fixture
def fault_proxy(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    """A proxy in front of moto that injects errors; Plait is pointed at the proxy.

    Buckets (the ``bucket`` fixture) are still created directly on the server."""
    proxy = FaultProxy(s3_endpoint)
    proxy.start()
    monkeypatch.setenv("PLAIT_S3_ENDPOINT_URL", proxy.url)
    monkeypatch.setenv("PLAIT_S3_MAX_ATTEMPTS", "8")
    client.reset()
    yield proxy
    client.reset()
    proxy.stop()
