"""The records of the ``S3`` tool: requests (``S3GetObject``, ``S3PutObject``) and results
(``S3Object``, ``RangeInfo``), with the fields and meanings Metaflow users know."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from typing import Any, NamedTuple

#: User metadata travels as one JSON header, under the name Metaflow uses, so objects written
#: by either tool show their metadata in the other.
USER_METADATA_HEADER = "metaflow-user-attributes"


class S3GetObject(NamedTuple):
    """A key to get, optionally a byte range: ``length`` None = to the end, < 0 = the last bytes."""

    key: str
    offset: int | None = None
    length: int | None = None


class S3PutObject(NamedTuple):
    """A key to put, from ``value`` (str/bytes/file object) or ``path`` (a local file)."""

    key: str
    value: Any = None
    path: str | None = None
    content_type: str | None = None
    encryption: str | None = None
    metadata: dict[str, Any] | None = None


class RangeInfo(NamedTuple):
    """What part of an object was downloaded."""

    total_size: int
    request_offset: int = 0
    request_length: int = -1


def encode_metadata(metadata: dict[str, Any] | None) -> dict[str, str]:
    return {USER_METADATA_HEADER: json.dumps(metadata)} if metadata else {}


def decode_metadata(headers: dict[str, str] | None) -> dict[str, Any] | None:
    if not headers:
        return None
    for name in (USER_METADATA_HEADER, "plait-user-attributes"):
        if name in headers:
            try:
                value = json.loads(headers[name])
            except ValueError:
                return None
            return value if isinstance(value, dict) else None
    return None


class S3Object:
    """An object (or a prefix) in S3, with its contents when it was downloaded.

    Contents of small objects stay in memory; ``path`` writes them to the tool's temporary
    directory on first use. Large objects are downloaded straight to a temporary file.
    """

    def __init__(self, prefix: str | None, url: str, path: str | None = None, size: int | None = None,
                 content_type: str | None = None, metadata: dict[str, str] | None = None,
                 range_info: RangeInfo | None = None, last_modified: int | None = None,
                 encryption: str | None = None, *, data: bytes | None = None,
                 tmpdir: Callable[[], str] | None = None) -> None:
        self._url = url
        self._path = path
        self._data = data
        self._tmpdir = tmpdir
        self._size = size
        self._content_type = content_type
        self._metadata = decode_metadata(metadata)
        self._last_modified = last_modified
        self._encryption = encryption
        if range_info is not None and (range_info.request_length is None or range_info.request_length < 0):
            range_info = RangeInfo(range_info.total_size, range_info.request_offset, range_info.total_size)
        self._range_info = range_info
        if data is not None:
            self._size = len(data)
        elif path:
            self._size = os.stat(path).st_size
        if prefix is None or prefix == url:
            self._key = url
            self._prefix: str | None = None
        else:
            self._key = url[len(prefix.rstrip("/")) + 1:].rstrip("/")
            self._prefix = prefix

    @property
    def exists(self) -> bool:
        """True if this is an object (file) in S3, False for a missing key or a prefix."""
        return self._size is not None

    @property
    def downloaded(self) -> bool:
        """True if the contents were downloaded (``blob``, ``text``, ``path`` are available)."""
        return self._data is not None or bool(self._path)

    @property
    def url(self) -> str:
        return self._url

    @property
    def prefix(self) -> str | None:
        """The prefix requested that this object matched."""
        return self._prefix

    @property
    def key(self) -> str:
        """The key as requested: relative to the prefix, or the full URL."""
        return self._key

    @property
    def path(self) -> str | None:
        """A local file with the contents (deleted when the S3 scope closes), None if not downloaded."""
        if self._path is None and self._data is not None and self._tmpdir is not None:
            fd, path = tempfile.mkstemp(dir=self._tmpdir(), prefix="plait.s3.object.")
            with os.fdopen(fd, "wb") as f:
                f.write(self._data)
            self._path = path
        return self._path

    @property
    def blob(self) -> bytes | None:
        """The contents as bytes, None if not downloaded."""
        if self._data is not None:
            return self._data
        if self._path:
            with open(self._path, "rb") as f:
                return f.read()
        return None

    @property
    def text(self) -> str | None:
        """The contents decoded as UTF-8, None if not downloaded."""
        blob = self.blob
        return None if blob is None else blob.decode("utf-8", errors="replace")

    @property
    def size(self) -> int | None:
        """Size in bytes (of the downloaded range, if one), None if the object does not exist."""
        return self._size

    @property
    def has_info(self) -> bool:
        """True if content type, metadata, range or encryption information is available."""
        return (self._content_type is not None or self._metadata is not None
                or self._range_info is not None or self._encryption is not None)

    @property
    def metadata(self) -> dict[str, Any] | None:
        """User metadata given at upload, None if there is none."""
        return self._metadata

    @property
    def content_type(self) -> str | None:
        return self._content_type

    @property
    def encryption(self) -> str | None:
        return self._encryption

    @property
    def range_info(self) -> RangeInfo | None:
        """``RangeInfo(total_size, request_offset, request_length)`` of what was downloaded."""
        return self._range_info

    @property
    def last_modified(self) -> int | None:
        """Last modification, as a Unix timestamp."""
        return self._last_modified

    def __str__(self) -> str:
        if self.downloaded:
            return f"<S3Object {self._url} ({self._size} bytes, local)>"
        if self._size:
            return f"<S3Object {self._url} ({self._size} bytes, in S3)>"
        return f"<S3Object {self._url} (object does not exist)>"

    __repr__ = __str__
