"""The ``s3`` datastore backend: Plait's storage contract on S3, through s3fs/aiobotocore.

``--datastore s3 --datastore-root s3://bucket/prefix`` (or ``PLAIT_DATASTORE=s3`` and
``PLAIT_DATASTORE_ROOT``). What the core asks of a backend, and how S3 answers:

- ``write_atomic``: one PUT, or a multipart upload completed at the end and aborted on any
  error. S3 shows an object only once its upload completes, so no temp key or copy is needed.
- ``write_if_absent``: a conditional PUT (``If-None-Match: *``); stores without conditional
  writes fall back to HEAD + PUT (harmless for content-addressed blobs).
- ``exists_many``: one LIST over the key range per directory (instead of one HEAD per blob),
  all directories at once.
- ``read_into_buffers``: parallel ranged GETs straight into the final buffers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any, BinaryIO

from plait import config
from plait.datastore.storage import Chunk, FsspecStorage, check_rel_path, is_temp_name

from . import client, ops
from .errors import PlaitS3URLException

#: A directory with at least this many paths asked about is listed once instead of HEADed.
LIST_THRESHOLD = 3
_CONCURRENCY = 32


class S3Storage(FsspecStorage):
    """Bytes under ``s3://bucket/prefix``."""

    def __init__(self, root_url: str | None = None, **storage_options: Any) -> None:
        root_url = root_url or config.get("PLAIT_DATASTORE_ROOT")
        if not root_url or not str(root_url).startswith(("s3://", "s3a://")):
            raise PlaitS3URLException(
                f"The s3 datastore needs an S3 root such as s3://my-bucket/plait, got {root_url!r}. "
                f"Set --datastore-root or PLAIT_DATASTORE_ROOT."
            )
        url = "s3://" + str(root_url).split("://", 1)[1].strip("/")
        bucket, _, prefix = url[5:].partition("/")
        if not bucket:
            raise PlaitS3URLException(f"No bucket in the datastore root {root_url!r}")
        self.root_url = url
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._root = f"{bucket}/{self.prefix}" if self.prefix else bucket
        self._direct_put = True
        self._options = storage_options

    @property
    def fs(self) -> Any:
        """This process's ``s3fs.S3FileSystem``."""
        return client.get_fs()

    @property
    def _fs(self) -> Any:  # FsspecStorage's methods use self._fs
        return client.get_fs()

    # -- keys --------------------------------------------------------------------------------
    def key(self, path: str) -> str:
        check_rel_path(path)
        if not path:
            return self.prefix
        return f"{self.prefix}/{path}" if self.prefix else path

    def url(self, path: str) -> str:
        return f"s3://{self.bucket}/{self.key(path)}"

    # -- writes ------------------------------------------------------------------------------
    def write_atomic(self, path: str, chunks: Iterable[Chunk]) -> None:
        client.run(ops.put_stream, self.bucket, self.key(path), chunks)

    def write_if_absent(self, path: str, chunks: Iterable[Chunk]) -> bool:
        return client.run(ops.put_stream, self.bucket, self.key(path), chunks, if_absent=True)

    def write_many_if_absent(self, items: Sequence[tuple[str, Iterable[Chunk]]]) -> list[bool]:
        """Conditional writes of many paths in parallel (the core batches new blobs through it)."""
        keys = [(self.key(p), chunks) for p, chunks in items]

        async def go() -> list[bool]:
            sem = asyncio.Semaphore(_CONCURRENCY)

            async def one(key: str, chunks: Iterable[Chunk]) -> bool:
                async with sem:
                    return await ops.put_stream(self.bucket, key, chunks, if_absent=True)

            return list(await asyncio.gather(*(one(k, c) for k, c in keys)))

        return client.run(go)

    def delete(self, path: str) -> None:
        client.run(ops.delete, self.bucket, self.key(path))

    # -- reads -------------------------------------------------------------------------------
    def read(self, path: str) -> bytes:
        got = client.run(ops.get_bytes, self.bucket, self.key(path))
        assert got is not None
        return got[0]

    def read_range(self, path: str, offset: int, length: int) -> bytes:
        got = client.run(ops.get_bytes, self.bucket, self.key(path), offset, length)
        assert got is not None
        return got[0]

    def read_into_buffers(self, path: str, offset: int, sizes: Sequence[int]) -> list[bytearray]:
        buffers = [bytearray(n) for n in sizes]
        client.run(ops.read_into, self.bucket, self.key(path), offset, [memoryview(b) for b in buffers])
        return buffers

    def open_read(self, path: str) -> BinaryIO:
        try:
            f: BinaryIO = self.fs.open(f"{self.bucket}/{self.key(path)}", "rb")
        except FileNotFoundError:
            raise FileNotFoundError(self.url(path)) from None
        return f

    def exists(self, path: str) -> bool:
        return client.run(ops.head, self.bucket, self.key(path)) is not None

    def size(self, path: str) -> int:
        info = client.run(ops.head, self.bucket, self.key(path))
        if info is None:
            raise FileNotFoundError(self.url(path))
        return info.size

    def exists_many(self, paths: Sequence[str]) -> list[bool]:
        if not paths:
            return []
        keys = [self.key(p) for p in paths]
        return client.run(_exists_many, self.bucket, keys)

    def list_dir(self, path: str) -> list[str]:
        base = self.key(path)
        prefix = f"{base}/" if base else ""
        return client.run(_list_names, self.bucket, prefix)

    def __repr__(self) -> str:
        return f"S3Storage({self.root_url!r})"


async def _list_names(bucket: str, prefix: str) -> list[str]:
    names = []
    async for key, _ in ops.list_objects(bucket, prefix, delimiter="/"):
        name = key[len(prefix):].rstrip("/")
        if name and not is_temp_name(name):
            names.append(name)
    return sorted(set(names))


async def _exists_many(bucket: str, keys: list[str]) -> list[bool]:
    """Which keys exist: one bounded LIST per directory with several keys, HEADs for the rest."""
    groups: dict[str, list[str]] = {}
    for k in dict.fromkeys(keys):
        groups.setdefault(k.rpartition("/")[0], []).append(k)
    found: set[str] = set()
    sem = asyncio.Semaphore(_CONCURRENCY)

    async def check_dir(directory: str, wanted: list[str]) -> None:
        async with sem:
            if len(wanted) < LIST_THRESHOLD:
                for k in wanted:
                    if await ops.head(bucket, k) is not None:
                        found.add(k)
                return
            wanted_set = set(wanted)
            lo, hi = min(wanted), max(wanted)
            prefix = f"{directory}/" if directory else ""
            # start just before the smallest key, stop at the largest: a range, not the whole prefix
            async for key, size in ops.list_objects(bucket, prefix, start_after=lo[:-1], stop_after=hi):
                if size is not None and key in wanted_set:
                    found.add(key)

    await asyncio.gather(*(check_dir(d, w) for d, w in groups.items()))
    return [k in found for k in keys]

