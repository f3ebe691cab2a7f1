"""One S3 connection per process: an s3fs filesystem, its aiobotocore client, and a way to run
coroutines on fsspec's IO thread from synchronous code.

Where to connect comes from the standard AWS configuration (``AWS_*`` variables, profiles in
``~/.aws/config``: region, credentials, ``addressing_style``, ``endpoint_url``) plus:

``PLAIT_S3_ENDPOINT_URL``      an S3-compatible endpoint (MinIO, Ceph, moto, ...)
``PLAIT_S3_ADDRESSING_STYLE``  ``path`` / ``virtual`` / ``auto``
``PLAIT_S3_MAX_ATTEMPTS``      attempts per request for transient errors (default 10)
``PLAIT_S3_WORKERS``           requests in flight in bulk transfers (default 64)

The client lives on fsspec's IO loop thread. A forked child (Plait forks its tasks) cannot use
its parent's loop or sockets, so everything here is keyed on the process id and rebuilt after
a fork.
"""

from __future__ import annotations

import asyncio
import os
import random
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from plait import config

from .errors import (
    PlaitS3AccessDenied,
    PlaitS3Exception,
    PlaitS3InvalidRange,
    PlaitS3NotFound,
    PlaitS3URLException,
)

T = TypeVar("T")

#: Errors worth another try: throttling, server errors, and connections that broke mid-transfer.
TRANSIENT_CODES = frozenset({
    "500", "502", "503", "504", "InternalError", "ServiceUnavailable", "SlowDown", "Throttling",
    "ThrottlingException", "RequestTimeout", "RequestTimeTooSkewed", "RequestLimitExceeded",
    "BadDigest", "IncompleteBody", "XAmzContentSHA256Mismatch",
})

_lock = threading.Lock()
_state: dict[str, Any] = {}


def max_attempts() -> int:
    return max(1, int(config.get("PLAIT_S3_MAX_ATTEMPTS", 10)))


def worker_count() -> int:
    return max(1, int(config.get("PLAIT_S3_WORKERS", 64)))


def filesystem_options() -> dict[str, Any]:
    """Keyword arguments for ``s3fs.S3FileSystem`` from the environment and the Plait profile."""
    client_kwargs: dict[str, Any] = {}
    endpoint = config.get("PLAIT_S3_ENDPOINT_URL")
    if endpoint:
        client_kwargs["endpoint_url"] = endpoint
    s3_config: dict[str, Any] = {}
    style = config.get("PLAIT_S3_ADDRESSING_STYLE")
    if style:
        s3_config["addressing_style"] = style
    config_kwargs: dict[str, Any] = {
        "max_pool_connections": worker_count(),
        # One retry layer, ours (``retrying``): it also covers bodies that break mid-stream,
        # which botocore cannot see, and stacking both would multiply attempts and waits.
        "retries": {"total_max_attempts": 1, "mode": "standard"},
        "connect_timeout": 10,
        "read_timeout": 60,
        "tcp_keepalive": True,
        # Checksums of every body cost CPU per request and some S3-compatible stores reject
        # them; S3 validates Content-MD5/length-framed bodies anyway.
        "request_checksum_calculation": "when_required",
        "response_checksum_validation": "when_required",
        "parameter_validation": False,
    }
    if s3_config:
        config_kwargs["s3"] = s3_config
    return {
        "client_kwargs": client_kwargs,
        "config_kwargs": config_kwargs,
        "use_listings_cache": False,  # other processes write: a cached listing would be stale
        "skip_instance_cache": True,
        "cache_regions": False,
    }


def get_fs(attempts: int | None = None) -> Any:
    """This process's ``s3fs.S3FileSystem`` (rebuilt after a fork or a configuration change).

    ``attempts`` gives a second filesystem whose requests retry less (optional features such
    as S3 Select, where a failure means "use the fallback", not "try ten times").
    """
    options = filesystem_options()
    if attempts is not None:
        options["config_kwargs"]["retries"] = {"total_max_attempts": attempts, "mode": "standard"}
    name = f"fs{attempts or ''}"
    key = (os.getpid(), repr(options))
    if _state.get(f"key-{name}") == key:
        return _state[name]
    with _lock:
        if _state.get(f"key-{name}") != key:
            import s3fs
            from aiobotocore.session import AioSession

            if _state.get("session_pid") != key[0]:
                # A new session per process (credential refreshers hold loop-bound locks), but a
                # forked child keeps its parent's loader: the parsed API models, ~150 ms to load.
                session = AioSession()
                if "session" in _state:
                    session.register_component("data_loader", _state["session"].get_component("data_loader"))
                _state["session"], _state["session_pid"] = session, key[0]
            _state[name] = s3fs.S3FileSystem(session=_state["session"], **options)
            _state[f"key-{name}"] = key
        return _state[name]


def reset() -> None:
    """Forget the connection (the next call reconnects)."""
    with _lock:
        for name in [k for k in _state if k.startswith(("fs", "key-", "sync_pid"))]:
            del _state[name]


async def aclient(attempts: int | None = None) -> Any:
    """The aiobotocore S3 client of this process's filesystem (inside the IO loop)."""
    return await get_fs(attempts).set_session()


def sync_client() -> Any:
    """A plain (threaded) botocore client with the same settings, for large part transfers.

    Moving big bodies through one asyncio loop copies them through the transport's buffer on
    one thread; botocore in a thread pool sends with ``sendall`` and hashes without the GIL, so
    the parts of a large upload go through it (as boto3's transfer manager does)."""
    pid = os.getpid()
    if _state.get("sync_pid") != pid:
        with _lock:
            if _state.get("sync_pid") != pid:
                from concurrent.futures import ThreadPoolExecutor

                import botocore.config
                import botocore.session

                opts = filesystem_options()
                conf = dict(opts["config_kwargs"])
                conf.pop("tcp_keepalive", None)
                session = botocore.session.get_session()
                if "session" in _state:  # the async session's parsed API models: no second load
                    session.register_component("data_loader", _state["session"].get_component("data_loader"))
                _state["sync"] = session.create_client(
                    "s3", config=botocore.config.Config(**conf), **opts["client_kwargs"])
                _state["pool"] = ThreadPoolExecutor(max_workers=20, thread_name_prefix="plait-s3")
                _state["sync_pid"] = pid
    return _state["sync"]


async def in_thread(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking call on the transfer thread pool."""
    import functools

    sync_client()
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_state["pool"], functools.partial(fn, *args, **kwargs))


def run(fn: Callable[..., Coroutine[Any, Any, T]], *args: Any, **kwargs: Any) -> T:
    """Run ``await fn(*args, **kwargs)`` on the IO loop and return its result."""
    from fsspec.asyn import sync

    fs = get_fs()
    return sync(fs.loop, fn, *args, **kwargs)  # type: ignore[no-any-return]


def error_code(exc: BaseException) -> str:
    """The S3 error code (``NoSuchKey``, ``SlowDown``) or HTTP status of a ClientError, else ''."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return ""
    code = str(response.get("Error", {}).get("Code", "") or "")
    return code or str(response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))


def http_status(exc: BaseException) -> int:
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return 0
    try:
        return int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    except (TypeError, ValueError):
        return 0


def is_not_found(exc: BaseException) -> bool:
    return error_code(exc) in ("NoSuchKey", "404", "NotFound", "NoSuchUpload") or http_status(exc) == 404 \
        and error_code(exc) != "NoSuchBucket"


def is_transient(exc: BaseException) -> bool:
    """A failure another attempt may fix: throttling, 5xx, broken connections, truncated bodies."""
    if isinstance(exc, (PlaitS3Exception, FileNotFoundError, PermissionError, ValueError, EOFError)):
        return False
    if isinstance(exc, (asyncio.TimeoutError, ConnectionError, TimeoutError)):
        return True
    code = error_code(exc)
    if code:
        return code in TRANSIENT_CODES or http_status(exc) >= 500
    try:
        import aiohttp
        from botocore.exceptions import (
            ConnectionClosedError,
            EndpointConnectionError,
            HTTPClientError,
            IncompleteReadError,
            ReadTimeoutError,
            ResponseStreamingError,
        )

        transient: tuple[type[BaseException], ...] = (
            aiohttp.ClientError, HTTPClientError, ConnectionClosedError, EndpointConnectionError,
            ReadTimeoutError, IncompleteReadError, ResponseStreamingError,
        )
    except ImportError:  # pragma: no cover
        return False
    return isinstance(exc, transient)


def backoff(attempt: int, base: float = 0.05, cap: float = 5.0) -> float:
    """Full-jitter exponential backoff for ``attempt`` (0-based)."""
    return random.uniform(0, min(cap, base * (2**attempt)))


async def retrying(fn: Callable[[], Awaitable[T]], what: str, attempts: int | None = None) -> T:
    """``await fn()``, again after a backoff while it fails transiently; then a clear error
    naming ``what``. This is the only retry layer (botocore's is off, see filesystem_options)."""
    attempts = attempts or max_attempts()
    for attempt in range(attempts):
        try:
            return await fn()
        except Exception as exc:  # noqa: BLE001 - classified below
            if not is_transient(exc) or attempt == attempts - 1:
                raise translate(exc, what) from exc
            await asyncio.sleep(backoff(attempt))
    raise AssertionError("unreachable")  # pragma: no cover


def translate(exc: BaseException, what: str) -> BaseException:
    """A Plait error naming ``what`` (the S3 URL) for a botocore/aiohttp failure."""
    if isinstance(exc, (PlaitS3Exception, FileNotFoundError, EOFError)):
        return exc
    code = error_code(exc)
    status = http_status(exc)
    if code == "NoSuchBucket":
        return PlaitS3URLException(f"The bucket of {what} does not exist ({exc}).")
    if is_not_found(exc):
        return PlaitS3NotFound(f"S3 object not found: {what}")
    if code in ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch") or status == 403:
        return PlaitS3AccessDenied(f"Access denied to {what}: {exc}. Check the AWS credentials "
                                   f"(AWS_PROFILE, AWS_ACCESS_KEY_ID) and the bucket policy.")
    if code == "InvalidRange" or status == 416:
        return PlaitS3InvalidRange(f"Invalid range requested from {what}: {exc}")
    kind = "a transient error that persisted" if is_transient(exc) else "an error"
    return PlaitS3Exception(f"S3 operation on {what} failed with {kind} after retries: "
                            f"{type(exc).__name__}: {exc}")


def split_url(url: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> ``(bucket, key)``."""
    if not url.startswith("s3://"):
        raise PlaitS3URLException(f"Not an S3 URL (expected s3://bucket/key): {url!r}")
    bucket, _, key = url[5:].partition("/")
    if not bucket:
        raise PlaitS3URLException(f"No bucket in S3 URL {url!r}")
    return bucket, key
