"""``S3``: Metaflow's S3 data tool API on Plait's parallel async S3 engine.

```python
from plait import S3
with S3(s3root="s3://bucket/prefix") as s3:      # or S3(run=self) inside a step
    s3.put("a.csv", data)
    obj = s3.get("a.csv"); obj.text, obj.path, obj.size, obj.metadata
```

Many-object calls run up to ``PLAIT_S3_WORKERS`` requests at once in one event loop; large
objects go up and down in parallel parts, streamed (a file is never held whole in memory).
Transient failures (5xx, SlowDown, dropped connections) are retried with backoff; what still
fails raises an error naming the key.
"""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import tempfile
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any, TypeVar

from plait import config

from . import client, context, ops
from .errors import (
    PlaitS3InsufficientDiskSpace,
    PlaitS3InvalidObject,
    PlaitS3NotFound,
    PlaitS3URLException,
)
from .objects import RangeInfo, S3GetObject, S3Object, S3PutObject, encode_metadata
from .select import S3SelectResult, run_select

__all__ = ["S3", "S3Object", "S3GetObject", "S3PutObject", "RangeInfo", "S3SelectResult"]

T = TypeVar("T")
#: Objects up to this size are kept in memory; larger ones are downloaded to a temp file.
IN_MEMORY_LIMIT = ops.RANGE_SIZE
#: Large objects transferred at once; each upload has PARTS_IN_FLIGHT parts going, each
#: download RANGES_IN_FLIGHT ranges (memory: about 2 x 6 x 8 MiB up, 2 x 8 x 16 MiB down).
UPLOADS_IN_FLIGHT = 2
DOWNLOADS_IN_FLIGHT = 2


def datatools_root() -> str | None:
    """Where ``S3(run=...)`` data lives: ``PLAIT_DATATOOLS_S3ROOT``, else ``<datastore root>/data``
    when the datastore of the running task (or ``PLAIT_DATASTORE_ROOT``) is on S3."""
    explicit = config.get("PLAIT_DATATOOLS_S3ROOT")
    if explicit:
        return str(explicit).rstrip("/")
    for root in (context.task_root(), config.get("PLAIT_DATASTORE_ROOT")):
        if root and str(root).startswith("s3://"):
            return str(root).rstrip("/") + "/data"
    return None


class S3:
    """The S3 client: a scope for downloads (temporary files go away on ``close()``).

    Parameters match Metaflow's: ``tmproot`` (where temporary files go, default ``.`` or
    ``PLAIT_TEMPDIR``), ``bucket``/``prefix`` (override parts of the root for ``run``),
    ``run`` (a running flow's ``self`` or a client ``Run``: scope to that run), ``s3root``
    (an explicit ``s3://`` prefix), ``encryption`` (server-side encryption for uploads).
    """

    def __init__(self, tmproot: str | None = None, bucket: str | None = None, prefix: str | None = None,
                 run: Any = None, s3root: str | None = None, encryption: str | None = None,
                 **kwargs: Any) -> None:
        self._tmproot = tmproot or config.get("PLAIT_TEMPDIR", ".")
        self._tmpdir: str | None = None
        self._encryption = encryption or config.get("PLAIT_S3_SERVER_SIDE_ENCRYPTION")
        if run is not None:
            self._s3root: str | None = _run_root(run, bucket, prefix)
        elif s3root:
            if not str(s3root).startswith("s3://"):
                raise PlaitS3URLException("s3root needs to be an S3 URL prefixed with s3://.")
            self._s3root = str(s3root).rstrip("/")
        else:
            self._s3root = None

    # -- scope ---------------------------------------------------------------------------------
    def __enter__(self) -> S3:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Delete every temporary file downloaded in this scope."""
        if self._tmpdir:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def _tmp(self) -> str:
        if self._tmpdir is None:
            self._tmpdir = tempfile.mkdtemp(dir=self._tmproot, prefix="plait.s3.")
        return self._tmpdir

    # -- addresses -----------------------------------------------------------------------------
    def _url(self, key: Any) -> str:
        key = getattr(key, "key", key)
        if self._s3root is None:
            if key and str(key).startswith("s3://") and len(str(key)) > 5:
                return str(key)
            from plait import current

            if current.is_running_flow:
                raise PlaitS3URLException("Specify S3(run=self) when you use S3 inside a running flow. "
                                          "Otherwise you have to use S3 with full s3:// urls.")
            raise PlaitS3URLException("Initialize S3 with an 's3root' or 'run' if you don't want to "
                                      "specify full s3:// urls.")
        if key:
            if str(key).startswith("s3://"):
                raise PlaitS3URLException(f"Don't use absolute S3 URLs when the S3 client is initialized "
                                          f"with a prefix. URL: {key}")
            return f"{self._s3root}/{str(key).lstrip('/')}"
        return self._s3root

    def _obj(self, prefix: str | None, url: str, head: ops.Head | None = None, **kw: Any) -> S3Object:
        if head is None:
            return S3Object(prefix, url, tmpdir=self._tmp, **kw)
        return S3Object(prefix, url, size=kw.pop("size", head.size), content_type=head.content_type,
                        metadata=head.metadata, last_modified=_ts(head.last_modified),
                        encryption=head.encryption, tmpdir=self._tmp, **kw)

    # -- listing -------------------------------------------------------------------------------
    def list_paths(self, keys: Iterable[str] | None = None) -> list[S3Object]:
        """The next level under each key: objects (``exists``) and prefixes (not ``exists``)."""
        prefixes = [self._url(k).rstrip("/") + "/" for k in (keys if keys is not None else [None])]

        async def one(prefix: str) -> list[S3Object]:
            bucket, key = client.split_url(prefix)
            return [S3Object(prefix, ops.url_of(bucket, k), size=size)
                    async for k, size in ops.list_objects(bucket, key, delimiter="/")]

        return _flatten(client.run(_gather, [lambda p=p: one(p) for p in prefixes]))

    def list_recursive(self, keys: Iterable[str] | None = None) -> list[S3Object]:
        """Every object under each key, at any depth."""
        return [obj for _, obj in self._list_recursive(keys)]

    def _list_recursive(self, keys: Iterable[str | None] | None) -> list[tuple[str, S3Object]]:
        urls = [self._url(k) for k in (keys if keys is not None else [None])]

        async def one(url: str) -> list[tuple[str, S3Object]]:
            bucket, key = client.split_url(url)
            prefix = key.rstrip("/") + "/" if key else ""
            return [(url, S3Object(url, ops.url_of(bucket, k), size=size))
                    async for k, size in ops.list_objects(bucket, prefix) if size is not None]

        return _flatten(client.run(_gather, [lambda u=u: one(u) for u in urls]))

    # -- info ----------------------------------------------------------------------------------
    def info(self, key: str | None = None, return_missing: bool = False) -> S3Object:
        """Size, content type and metadata of one object (one HEAD request)."""
        return self.info_many([key], return_missing=return_missing)[0]  # type: ignore[list-item]

    def info_many(self, keys: Iterable[str], return_missing: bool = False) -> list[S3Object]:
        """``info`` for many keys, in parallel."""
        urls = [self._url(k) for k in keys]

        async def one(url: str) -> S3Object:
            found = await ops.head(*client.split_url(url))
            if found is None:
                if not return_missing:
                    raise PlaitS3NotFound(f"S3 object not found: {url}")
                return S3Object(self._s3root, url)
            return self._obj(self._s3root, url, found)

        return client.run(_gather, [lambda u=u: one(u) for u in urls])

    # -- get -----------------------------------------------------------------------------------
    def get(self, key: str | S3GetObject | None = None, return_missing: bool = False,
            return_info: bool = True) -> S3Object:
        """Download one object (or a range of it, with ``S3GetObject``)."""
        return self.get_many([key], return_missing=return_missing, return_info=return_info)[0]  # type: ignore[list-item]

    def get_many(self, keys: Iterable[str | S3GetObject], return_missing: bool = False,
                 return_info: bool = True) -> list[S3Object]:
        """Download many objects in parallel."""
        requests = [(self._url(k), getattr(k, "offset", None), getattr(k, "length", None)) for k in keys]
        return client.run(_gather, [lambda r=r: self._get_one(self._s3root, r[0], r[1], r[2], return_missing,
                                                              return_info) for r in requests])

    def get_recursive(self, keys: Iterable[str], return_info: bool = False) -> list[S3Object]:
        """Download every object under each prefix, in parallel."""
        listed = self._list_recursive(list(keys))
        return client.run(_gather, [lambda p=p, o=o: self._get_one(p, o.url, None, None, False, return_info)
                                    for p, o in listed])

    def get_all(self, return_info: bool = False) -> list[S3Object]:
        """Download every object under the prefix of this ``S3`` (needs ``s3root`` or ``run``)."""
        if self._s3root is None:
            raise PlaitS3URLException("Can't get_all() when S3 is initialized without a prefix")
        return self.get_recursive([None], return_info)  # type: ignore[list-item]

    async def _get_one(self, prefix: str | None, url: str, offset: int | None, length: int | None,
                       return_missing: bool, return_info: bool) -> S3Object:
        bucket, key = client.split_url(url)
        ranged = offset is not None or length is not None
        if ranged:
            start = offset or 0
            if length is not None and length < 0:
                header = f"bytes=-{-length}"
            else:
                header = ops.range_header(start, length)
        else:
            header = ops.range_header(0, IN_MEMORY_LIMIT)  # small objects: one request does it all
        got = await _ranged_get(bucket, key, header, allow_empty=not ranged)
        if got is None:
            if return_missing:
                return S3Object(prefix, url)
            raise PlaitS3NotFound(f"S3 object not found: {url}")
        data, resp = got
        content_range = ops.parse_content_range(resp.get("ContentRange"))
        total = content_range[2] if content_range else len(data)
        path = None
        if not ranged and total > len(data):  # large: the rest goes to a file, in parallel parts
            path = await self._download_rest(bucket, key, data, total, resp.get("ETag"))
            data = None  # type: ignore[assignment]
        if ranged and content_range:
            info: RangeInfo | None = RangeInfo(total, content_range[0], content_range[1] - content_range[0] + 1)
        else:
            info = RangeInfo(total, 0, total)
        if not return_info:
            return S3Object(prefix, url, path, data=data, tmpdir=self._tmp)
        head = ops.head_from(resp, size=total)
        return S3Object(prefix, url, path, content_type=head.content_type, metadata=head.metadata,
                        range_info=info, last_modified=_ts(head.last_modified), encryption=head.encryption,
                        data=data, tmpdir=self._tmp)

    async def _download_rest(self, bucket: str, key: str, first: bytes, total: int, etag: str | None) -> str:
        fd, path = tempfile.mkstemp(dir=self._tmp(), prefix="plait.s3.object.")
        try:
            os.ftruncate(fd, total)
            os.pwrite(fd, first, 0)
            async with _large_slots("down", DOWNLOADS_IN_FLIGHT):
                sem = asyncio.Semaphore(ops.RANGES_IN_FLIGHT)

                async def piece(start: int) -> None:
                    async with sem:
                        buf = bytearray(min(ops.RANGE_SIZE, total - start))
                        await ops._get_into(bucket, key, start, memoryview(buf), if_match=etag)
                        os.pwrite(fd, buf, start)

                await asyncio.gather(*(piece(s) for s in range(len(first), total, ops.RANGE_SIZE)))
        except OSError as exc:
            import errno

            if exc.errno == errno.ENOSPC:
                raise PlaitS3InsufficientDiskSpace(f"No space left in {self._tmp()} for s3://{bucket}/{key}") from exc
            raise
        finally:
            os.close(fd)
        return path

    # -- put -----------------------------------------------------------------------------------
    def put(self, key: str | S3PutObject, obj: Any, overwrite: bool = True, content_type: str | None = None,
            metadata: dict[str, Any] | None = None) -> str:
        """Upload one object (str, bytes, or a readable seekable file object); returns its URL."""
        url = self._url(key)
        _check_value(getattr(key, "key", key), obj)
        client.run(self._put_one, url, obj, None, content_type, metadata, overwrite)
        return url

    def put_many(self, key_objs: Iterable[tuple[str, Any] | S3PutObject], overwrite: bool = True
                 ) -> list[tuple[str, str]]:
        """Upload many ``(key, value)`` pairs or ``S3PutObject``s in parallel.

        Returns ``(key, url)`` of what was uploaded (with ``overwrite=False``, existing keys are
        left alone and not listed)."""
        return self._put_all(key_objs, overwrite, files=False)

    def put_files(self, key_paths: Iterable[tuple[str, str] | S3PutObject], overwrite: bool = True
                  ) -> list[tuple[str, str]]:
        """Upload many local files ``(key, path)`` in parallel, each streamed from disk."""
        return self._put_all(key_paths, overwrite, files=True)

    def _put_all(self, items: Iterable[Any], overwrite: bool, files: bool) -> list[tuple[str, str]]:
        jobs = []
        for item in items:
            if isinstance(item, S3PutObject):
                key, value, path = item.key, item.value, item.path
                ctype, meta = item.content_type, item.metadata
            else:
                key, second = item[0], item[1]
                value, path = (None, second) if files else (second, None)
                ctype = meta = None
            if files:
                if path is None or not os.path.exists(path):
                    raise PlaitS3NotFound(f"Local file not found: {path}")
            else:
                _check_value(key, value)
            jobs.append((key, self._url(key), value, path, ctype, meta))

        async def one(job: tuple[Any, ...]) -> tuple[str, str] | None:
            key, url, value, path, ctype, meta = job
            wrote = await self._put_one(url, value, path, ctype, meta, overwrite)
            return (key, url) if wrote else None

        results = client.run(_gather, [lambda j=j: one(j) for j in jobs])
        return [r for r in results if r is not None]

    async def _put_one(self, url: str, value: Any, path: str | None, content_type: str | None,
                       metadata: dict[str, Any] | None, overwrite: bool) -> bool:
        bucket, key = client.split_url(url)
        extra: dict[str, Any] = {}
        if content_type:
            extra["ContentType"] = content_type
        if metadata:
            extra["Metadata"] = encode_metadata(metadata)
        if self._encryption:
            extra["ServerSideEncryption"] = self._encryption
        if path is not None:
            if os.path.getsize(path) <= ops.MULTIPART_THRESHOLD:
                return await ops.put_file(bucket, key, path, if_absent=not overwrite, extra=extra)
            async with _large_slots("up", UPLOADS_IN_FLIGHT):
                return await ops.put_file(bucket, key, path, if_absent=not overwrite, extra=extra)
        if isinstance(value, str):
            value = value.encode("utf-8")
        if isinstance(value, (bytes, bytearray, memoryview)):
            return await ops.put_bytes(bucket, key, value, if_absent=not overwrite, extra=extra) \
                if len(value) <= ops.MULTIPART_THRESHOLD else \
                await self._upload(bucket, key, [value], len(value), extra, overwrite)
        value.seek(0)
        size = _remaining(value)
        return await self._upload(bucket, key, _file_chunks(value), size, extra, overwrite)

    async def _upload(self, bucket: str, key: str, chunks: Iterable[Any], size: int, extra: dict[str, Any],
                      overwrite: bool) -> bool:
        if size <= ops.MULTIPART_THRESHOLD:
            return await ops.put_stream(bucket, key, chunks, if_absent=not overwrite, extra=extra)
        async with _large_slots("up", UPLOADS_IN_FLIGHT):
            return await ops.put_stream(bucket, key, chunks, if_absent=not overwrite, extra=extra)

    # -- select --------------------------------------------------------------------------------
    def select(self, key: str, expression: str, input_format: str | None = None,
               engine: str = "auto", **options: Any) -> S3SelectResult:
        """Run an S3 Select SQL ``expression`` on a CSV, JSON (lines) or Parquet object.

        ``engine="auto"`` asks the server first (S3 Select) and, where it is unavailable or
        cannot run the query, downloads the object and runs the query locally with pyarrow.
        The result says which ran (``result.engine``, ``result.server_side``) and why.
        """
        url = self._url(key)
        return run_select(url, expression, input_format, engine, options)


def _run_root(run: Any, bucket: str | None, prefix: str | None) -> str:
    root = datatools_root()
    if root is None:
        raise PlaitS3URLException(
            "S3(run=...) needs an S3 location for run data: run the flow with --datastore s3 "
            "--datastore-root s3://bucket/prefix, or set PLAIT_DATATOOLS_S3ROOT=s3://bucket/prefix."
        )
    root_bucket, _, root_prefix = root[5:].partition("/")
    bucket = bucket or root_bucket
    prefix = (prefix if prefix is not None else root_prefix).strip("/")
    from plait.flowspec import FlowSpec

    if isinstance(run, FlowSpec):
        from plait import current

        if not current.is_running_flow:
            raise PlaitS3URLException("Initializing S3 with a FlowSpec outside of a running flow is not supported.")
        flow_name, run_id = current.flow_name, current.run_id
    else:
        pathspec = getattr(run, "pathspec", None) or (isinstance(run, str) and run)
        if pathspec and "/" in str(pathspec):
            flow_name, run_id = str(pathspec).split("/")[:2]
        else:
            flow_name, run_id = run.parent.id, run.id
    parts = [p for p in (prefix, flow_name, run_id) if p]
    return f"s3://{bucket}/" + "/".join(parts)


async def _ranged_get(bucket: str, key: str, header: str, allow_empty: bool) -> tuple[bytes, dict[str, Any]] | None:
    """A GET with a Range header; an empty object (416 on a range from 0) reads as b""."""
    c = await client.aclient()
    url = ops.url_of(bucket, key)

    async def go() -> tuple[bytes, dict[str, Any]] | None:
        try:
            resp = await c.get_object(Bucket=bucket, Key=key, Range=header)
        except Exception as exc:
            if client.is_not_found(exc) and client.error_code(exc) != "NoSuchBucket":
                return None
            if allow_empty and (client.error_code(exc) == "InvalidRange" or client.http_status(exc) == 416):
                resp = await c.get_object(Bucket=bucket, Key=key)
            else:
                raise
        async with resp["Body"] as body:
            data = await body.read()
        if len(data) != int(resp.get("ContentLength", len(data))):
            raise ConnectionError(f"{url}: body ended after {len(data)} of {resp.get('ContentLength')} bytes")
        return data, resp

    return await client.retrying(go, url)


def _check_value(key: Any, value: Any) -> None:
    if isinstance(value, (str, bytes, bytearray, memoryview)):
        return
    if isinstance(value, (io.RawIOBase, io.BufferedIOBase)) or hasattr(value, "read"):
        if not (getattr(value, "readable", lambda: True)() and getattr(value, "seekable", lambda: False)()):
            raise PlaitS3InvalidObject(f"Object corresponding to the key '{key}' is not readable or seekable")
        return
    raise PlaitS3InvalidObject(f"Object corresponding to the key '{key}' is not a string or a bytes object.")


def _remaining(f: Any) -> int:
    pos = f.tell()
    end = f.seek(0, io.SEEK_END)
    f.seek(pos)
    return int(end - pos)


def _file_chunks(f: Any) -> Iterator[bytes]:
    while True:
        data = f.read(ops.PART_SIZE)
        if not data:
            return
        yield data


def _ts(value: float | None) -> int | None:
    return int(value) if value is not None else None


def _flatten(lists: list[list[T]]) -> list[T]:
    return [x for xs in lists for x in xs]


async def _gather(factories: list[Callable[[], Awaitable[T]]]) -> list[T]:
    """Run the coroutines at most ``PLAIT_S3_WORKERS`` at a time, results in order."""
    sem = asyncio.Semaphore(client.worker_count())

    async def one(factory: Callable[[], Awaitable[T]]) -> T:
        async with sem:
            return await factory()

    return list(await asyncio.gather(*(one(f) for f in factories)))


_large: dict[tuple[int, str], asyncio.Semaphore] = {}


def _large_slots(kind: str, size: int) -> asyncio.Semaphore:
    """Bounds the large transfers in flight in this process (memory: parts in flight each)."""
    key = (id(asyncio.get_running_loop()), kind)
    if key not in _large:
        _large[key] = asyncio.Semaphore(size)
    return _large[key]
