"""The core's datastore contract, run against the S3 backend on a real S3 API server."""

from __future__ import annotations

import pytest
from plait.testing.datastore_contract import DatastoreContract
from plait_s3.storage import S3Storage


class TestS3StorageContract(DatastoreContract):
    @pytest.fixture
    def storage(self, s3root: str) -> S3Storage:
        return S3Storage(s3root)


class TestS3StorageBucketRootContract(DatastoreContract):
    """The same contract with the datastore at the bucket's root (no key prefix)."""

    @pytest.fixture
    def storage(self, bucket: str) -> S3Storage:
        return S3Storage(f"s3://{bucket}")


def test_write_many_if_absent_and_exists_many_listing(s3root: str, boto, bucket: str) -> None:  # type: ignore[no-untyped-def]
    storage = S3Storage(s3root)
    assert storage.write_many_if_absent([("blobs/aa/aa1", [b"1"]), ("blobs/aa/aa2", [b"2"])]) == [True, True]
    assert storage.write_many_if_absent([("blobs/aa/aa1", [b"x"]), ("blobs/aa/aa3", [b"3"])]) == [False, True]
    assert storage.read("blobs/aa/aa1") == b"1"
    # several keys in one directory: one bounded LIST answers them all
    paths = [f"blobs/aa/aa{i}" for i in range(6)]
    assert storage.exists_many(paths) == [False, True, True, True, False, False]
    assert storage.exists_many(["blobs/aa/aa1", "blobs/bb/nope"]) == [True, False]
