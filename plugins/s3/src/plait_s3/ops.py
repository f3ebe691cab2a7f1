"""The S3 requests both the datastore and the ``S3`` tool are built from (coroutines).

Uploads stream: bytes are cut into parts as they come, a small object is one PUT, a large one
a multipart upload with a few parts in flight, aborted if anything fails, so memory holds a
bounded number of parts and an object appears only once it is complete. Downloads of large
objects are split into ranged GETs that run in parallel and land straight in their buffer.
"""

from __future__ import annotations

import asyncio
import functools
import os
import re
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from .client import aclient, error_code, http_status, in_thread, is_not_found, is_transient, retrying, sync_client

MiB = 1024 * 1024
PART_SIZE = 8 * MiB  # multipart part size (S3's minimum is 5 MiB), as boto3
MULTIPART_THRESHOLD = 8 * MiB  # a single PUT up to this
PARTS_IN_FLIGHT = 6  # per upload: bounds memory at PARTS_IN_FLIGHT * PART_SIZE
RANGE_SIZE = 16 * MiB  # ranged GET size for large downloads
RANGES_IN_FLIGHT = 8
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


class AlreadyExists(Exception):
    """A conditional write found the key already there."""


@dataclass
class Head:
    size: int
    content_type: str | None
    metadata: dict[str, str]
    last_modified: float | None
    encryption: str | None
    etag: str | None = None


def url_of(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


def head_from(resp: dict[str, Any], size: int | None = None) -> Head:
    lm = resp.get("LastModified")
    return Head(
        size=int(resp.get("ContentLength", 0) if size is None else size),
        content_type=resp.get("ContentType"),
        metadata=dict(resp.get("Metadata") or {}),
        last_modified=lm.timestamp() if lm is not None else None,
        encryption=resp.get("ServerSideEncryption"),
        etag=resp.get("ETag"),
    )


# -- small requests ------------------------------------------------------------------------------
async def head(bucket: str, key: str) -> Head | None:
    """The object's size and headers, or None if it does not exist."""
    client = await aclient()

    async def go() -> Head | None:
        try:
            return head_from(await client.head_object(Bucket=bucket, Key=key))
        except Exception as exc:
            if is_not_found(exc) and error_code(exc) != "NoSuchBucket":
                return None
            raise

    return await retrying(go, url_of(bucket, key))


async def delete(bucket: str, key: str) -> None:
    client = await aclient()
    await retrying(lambda: client.delete_object(Bucket=bucket, Key=key), url_of(bucket, key))


async def list_objects(bucket: str, prefix: str, delimiter: str = "", start_after: str = "",
                       stop_after: str | None = None) -> AsyncIterator[tuple[str, int | None]]:
    """``(key, size)`` of objects and ``(prefix/, None)`` of common prefixes, in key order.

    ``stop_after`` ends the listing once keys pass it (a bounded range of a large prefix).
    """
    client = await aclient()
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
        if delimiter:
            kwargs["Delimiter"] = delimiter
        if token:
            kwargs["ContinuationToken"] = token
        elif start_after:
            kwargs["StartAfter"] = start_after
        resp: dict[str, Any] = await retrying(functools.partial(client.list_objects_v2, **kwargs),
                                              url_of(bucket, prefix))
        for obj in resp.get("Contents") or ():
            yield obj["Key"], int(obj["Size"])
            if stop_after is not None and obj["Key"] >= stop_after:
                return
        for p in resp.get("CommonPrefixes") or ():
            yield p["Prefix"], None
        if not resp.get("IsTruncated"):
            return
        token = resp.get("NextContinuationToken")


# -- uploads -------------------------------------------------------------------------------------
def _parts(chunks: Iterable[Any], part_size: int) -> Iterator[bytes | bytearray | memoryview]:
    """Re-cut ``chunks`` into ``part_size`` pieces (the last may be shorter); copies <= one part."""
    buf = bytearray()
    for chunk in chunks:
        mv = chunk if isinstance(chunk, memoryview) else memoryview(chunk)
        if mv.ndim != 1 or mv.format != "B":
            mv = mv.cast("B")
        while mv.nbytes:
            if not buf and mv.nbytes >= part_size:
                yield mv[:part_size]  # a whole part straight from the caller's memory
                mv = mv[part_size:]
                continue
            take = min(part_size - len(buf), mv.nbytes)
            buf += mv[:take]
            mv = mv[take:]
            if len(buf) == part_size:
                yield buf  # handed over, not copied again
                buf = bytearray()
    if buf:
        yield buf


async def put_stream(bucket: str, key: str, chunks: Iterable[Any], *, if_absent: bool = False,
                     extra: dict[str, Any] | None = None, part_size: int | None = None) -> bool:
    """Upload the concatenation of ``chunks`` to one key, atomically.

    A single PUT when everything fits in one part, else a multipart upload that is aborted if
    ``chunks`` raises or a part fails for good. ``if_absent`` makes it a conditional write
    (``If-None-Match: *``); returns False when the key already existed.
    """
    it = _parts(chunks, part_size or PART_SIZE)
    first = next(it, b"")
    second = next(it, None)
    extra = dict(extra or {})
    if second is None:
        return await put_bytes(bucket, key, first, if_absent=if_absent, extra=extra)
    return await _multipart(bucket, key, _chain(first, second, it), if_absent, extra)


def _chain(first: Any, second: Any, rest: Iterator[Any]) -> Iterator[Any]:
    yield first
    yield second
    yield from rest


async def put_bytes(bucket: str, key: str, body: bytes | bytearray | memoryview, *, if_absent: bool = False,
                    extra: dict[str, Any] | None = None) -> bool:
    client = await aclient()
    kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key, "Body": bytes(body) if isinstance(body, memoryview)
                              else body, **(extra or {})}
    if if_absent:
        kwargs["IfNoneMatch"] = "*"

    async def go() -> bool:
        try:
            await client.put_object(**kwargs)
            return True
        except Exception as exc:
            if if_absent and _precondition_failed(exc):
                return False
            if if_absent and _conditional_unsupported(exc):
                kwargs.pop("IfNoneMatch", None)
                if await head(bucket, key) is not None:
                    return False
                await client.put_object(**kwargs)
                return True
            raise

    return await retrying(go, url_of(bucket, key))


def _precondition_failed(exc: BaseException) -> bool:
    # 409 ConditionalRequestConflict: a concurrent conditional write to the same key won
    return error_code(exc) in ("PreconditionFailed", "412", "ConditionalRequestConflict") or \
        http_status(exc) in (409, 412)


def _conditional_unsupported(exc: BaseException) -> bool:
    return error_code(exc) in ("NotImplemented", "501")


async def _multipart(bucket: str, key: str, parts: Iterator[Any], if_absent: bool,
                     extra: dict[str, Any]) -> bool:
    client = await aclient()
    url = url_of(bucket, key)
    if if_absent and await head(bucket, key) is not None:  # cheap early exit before uploading GBs
        return False
    created = await retrying(lambda: client.create_multipart_upload(Bucket=bucket, Key=key, **extra), url)
    upload_id = created["UploadId"]
    done: dict[int, str] = {}
    total = 0
    sem = asyncio.Semaphore(PARTS_IN_FLIGHT)
    tasks: list[asyncio.Task[None]] = []

    sync = sync_client()

    def send(number: int, data: Any) -> dict[str, Any]:  # in a transfer thread
        # bytes, bytearray or a view of the caller's memory go as they are; a file part is read here
        body = data.read() if isinstance(data, FilePart) else data
        return sync.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number,  # type: ignore[no-any-return]
                                Body=body)

    async def upload(number: int, data: Any) -> None:
        try:
            resp = await retrying(lambda: in_thread(send, number, data), f"{url} (part {number})")
            done[number] = resp["ETag"]
        finally:
            sem.release()

    try:
        number = 0
        for data in parts:  # pulling the producer happens here: its errors abort the upload
            number += 1
            total += len(data)
            await sem.acquire()
            failed = [t for t in tasks if t.done() and t.exception() is not None]
            if failed:
                raise failed[0].exception()  # type: ignore[misc]
            tasks.append(asyncio.ensure_future(upload(number, data)))
        await asyncio.gather(*tasks)
        body = {"Parts": [{"PartNumber": n, "ETag": done[n]} for n in sorted(done)]}
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key, "UploadId": upload_id, "MultipartUpload": body}
        if if_absent:
            kwargs["IfNoneMatch"] = "*"
        try:
            await retrying(lambda: client.complete_multipart_upload(**kwargs), url)
        except Exception as exc:
            cause = exc.__cause__ or exc
            if if_absent and _precondition_failed(cause):
                await _abort(client, bucket, key, upload_id)
                return False
            if error_code(cause) == "NoSuchUpload":  # a retried complete whose first try succeeded
                found = await head(bucket, key)
                if found is not None and found.size == total:
                    return True
            raise
        return True
    except BaseException:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await _abort(client, bucket, key, upload_id)
        raise


class FilePart:
    """``length`` bytes of a local file from ``offset``, read only when its upload starts."""

    def __init__(self, path: str, offset: int, length: int) -> None:
        self.path, self.offset, self.length = path, offset, length

    def __len__(self) -> int:
        return self.length

    def read(self) -> bytes:
        with open(self.path, "rb", buffering=0) as f:
            data = os.pread(f.fileno(), self.length, self.offset)
        if len(data) != self.length:
            raise ValueError(f"{self.path} changed while it was being uploaded")
        return data


async def put_file(bucket: str, key: str, path: str, *, if_absent: bool = False,
                   extra: dict[str, Any] | None = None) -> bool:
    """Upload a local file: one PUT when small, else a multipart upload whose parts are read
    from disk by the threads that send them (the file is never in memory whole)."""
    size = os.path.getsize(path)
    if size <= MULTIPART_THRESHOLD:
        data = await in_thread(FilePart(path, 0, size).read)
        return await put_bytes(bucket, key, data, if_absent=if_absent, extra=extra)
    parts = (FilePart(path, off, min(PART_SIZE, size - off)) for off in range(0, size, PART_SIZE))
    return await _multipart(bucket, key, parts, if_absent, dict(extra or {}))


async def _abort(client: Any, bucket: str, key: str, upload_id: str) -> None:
    for attempt in range(5):
        try:
            await client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
            return
        except Exception as exc:  # noqa: BLE001 - best effort; lifecycle rules clean up leftovers
            if not is_transient(exc):
                return
            await asyncio.sleep(0.05 * (attempt + 1))


# -- downloads -----------------------------------------------------------------------------------
def range_header(offset: int, length: int | None) -> str:
    if length is None:
        return f"bytes={offset}-"
    return f"bytes={offset}-{offset + length - 1}"


async def get_bytes(bucket: str, key: str, offset: int = 0, length: int | None = None,
                    missing_ok: bool = False) -> tuple[bytes, dict[str, Any]] | None:
    """The bytes (or a range of them) and the response headers. Retries broken bodies.

    A range that starts at or past the end reads as ``b""``. Raises FileNotFoundError for a
    missing key unless ``missing_ok`` (then None).
    """
    client = await aclient()
    url = url_of(bucket, key)
    kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
    if offset or length is not None:
        if length == 0:
            info = await head(bucket, key)
            if info is None:
                if missing_ok:
                    return None
                raise FileNotFoundError(url)
            return b"", {"ContentLength": 0, "Metadata": info.metadata}
        kwargs["Range"] = range_header(offset, length)

    async def go() -> tuple[bytes, dict[str, Any]] | None:
        try:
            resp = await client.get_object(**kwargs)
        except Exception as exc:
            if error_code(exc) == "InvalidRange" or http_status(exc) == 416:
                return b"", {"ContentLength": 0}
            if is_not_found(exc) and error_code(exc) != "NoSuchBucket":
                if missing_ok:
                    return None
                raise FileNotFoundError(url) from None
            raise
        async with resp["Body"] as body:
            data = await body.read()
        if len(data) != int(resp.get("ContentLength", len(data))):
            raise ConnectionError(f"{url}: body ended after {len(data)} of {resp.get('ContentLength')} bytes")
        return data, resp

    return await retrying(go, url)


async def read_into(bucket: str, key: str, offset: int, views: Sequence[memoryview]) -> None:
    """Fill ``views`` with consecutive bytes from ``offset``: parallel ranged GETs of RANGE_SIZE,
    each landing in place. Raises EOFError if the object is shorter."""
    total = sum(v.nbytes for v in views)
    if total == 0:
        if await head(bucket, key) is None:
            raise FileNotFoundError(url_of(bucket, key))
        return
    # segments: (absolute offset, target view)
    segments: list[tuple[int, memoryview]] = []
    pos = offset
    for view in views:
        for start in range(0, view.nbytes, RANGE_SIZE):
            part = view[start:start + RANGE_SIZE]
            segments.append((pos + start, part))
        pos += view.nbytes
    sem = asyncio.Semaphore(RANGES_IN_FLIGHT)

    async def fetch(seg_offset: int, target: memoryview) -> None:
        async with sem:
            await _get_into(bucket, key, seg_offset, target)

    await asyncio.gather(*(fetch(o, t) for o, t in segments))


async def _get_into(bucket: str, key: str, offset: int, target: memoryview, if_match: str | None = None) -> None:
    client = await aclient()
    url = url_of(bucket, key)
    kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key, "Range": range_header(offset, target.nbytes)}
    if if_match:
        kwargs["IfMatch"] = if_match  # every part from the same version of the object

    async def go() -> None:
        try:
            resp = await client.get_object(**kwargs)
        except Exception as exc:
            if if_match and (error_code(exc) == "PreconditionFailed" or http_status(exc) == 412):
                raise ValueError(f"{url} changed while it was being downloaded; get it again") from None
            if error_code(exc) == "InvalidRange" or http_status(exc) == 416:
                raise EOFError(f"{url}: expected {target.nbytes} bytes at {offset}, object is shorter") from None
            if is_not_found(exc) and error_code(exc) != "NoSuchBucket":
                raise FileNotFoundError(url) from None
            raise
        filled = 0
        async with resp["Body"] as body:
            while filled < target.nbytes:
                data = await body.read(min(1 * MiB, target.nbytes - filled))
                if not data:
                    break
                target[filled:filled + len(data)] = data
                filled += len(data)
        expected = int(resp.get("ContentLength", filled))
        if filled < expected:
            raise ConnectionError(f"{url}: body ended after {filled} of {expected} bytes")
        if filled < target.nbytes:
            raise EOFError(f"{url}: expected {target.nbytes} bytes at {offset}, got {filled}")

    await retrying(go, url)


def parse_content_range(value: str | None) -> tuple[int, int, int] | None:
    """``(start, end inclusive, total)`` from a Content-Range header."""
    if not value:
        return None
    m = _CONTENT_RANGE.match(value)
    if m is None:
        return None
    total = int(m.group(3)) if m.group(3) != "*" else -1
    return int(m.group(1)), int(m.group(2)), total


__all__ = [
    "AlreadyExists", "Head", "delete", "get_bytes", "head", "list_objects",
    "parse_content_range", "put_bytes", "put_stream", "read_into",
]
