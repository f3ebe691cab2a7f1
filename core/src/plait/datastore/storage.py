"""Byte storage at relative paths under one root: the only thing a datastore backend implements.

Paths are ``/``-separated and relative to the root. Every write is atomic: a reader sees the
old bytes or the new bytes, never a prefix. Temporary files are named ``.<name>.<token>.tmp``
and are hidden from :meth:`Storage.list_dir`.
"""

from __future__ import annotations

import itertools
import os
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, BinaryIO

Chunk = bytes | bytearray | memoryview

_TMP_SUFFIX = ".tmp"
_counter = itertools.count()

# Stores where an object becomes visible only once its upload completes, so writing straight
# to the final key is already atomic (no temp key + server-side copy needed).
OBJECT_STORE_PROTOCOLS = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "oss"})


def is_temp_name(name: str) -> bool:
    """True for the in-flight temp files that :meth:`Storage.write_atomic` creates."""
    return name.startswith(".") and name.endswith(_TMP_SUFFIX)


def temp_name(name: str) -> str:
    """A unique sibling name for ``name``: pid + counter + random, so concurrent writers never collide."""
    return f".{name}.{os.getpid()}-{next(_counter)}-{os.urandom(4).hex()}{_TMP_SUFFIX}"


def byte_view(chunk: Chunk) -> memoryview:
    """A flat unsigned-byte view of ``chunk`` without copying it."""
    mv = chunk if isinstance(chunk, memoryview) else memoryview(chunk)
    if mv.ndim != 1 or mv.format != "B":
        mv = mv.cast("B")
    return mv


def check_rel_path(path: str) -> None:
    """Reject paths that could escape the root."""
    if path.startswith("/") or any(p in ("..", ".") for p in path.split("/")):
        raise ValueError(f"Storage paths must be relative and normalised, got {path!r}")


class Storage(ABC):
    """Bytes at relative paths under one root. Missing paths raise ``FileNotFoundError``."""

    root_url: str = ""

    @abstractmethod
    def write_atomic(self, path: str, chunks: Iterable[Chunk]) -> None:
        """Write the concatenation of ``chunks`` to ``path``, replacing it atomically.

        If ``chunks`` raises halfway, nothing is left at ``path`` (an old file stays intact).
        """

    def write_if_absent(self, path: str, chunks: Iterable[Chunk]) -> bool:
        """Write ``path`` only if it does not exist; True if this call wrote it.

        The default is check-then-write (racy but harmless for content-addressed blobs);
        backends with an atomic create-if-absent override it.
        """
        if self.exists(path):
            return False
        self.write_atomic(path, chunks)
        return True

    @abstractmethod
    def read(self, path: str) -> bytes:
        """The whole file."""

    @abstractmethod
    def read_range(self, path: str, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes from ``offset`` (shorter only at end of file)."""

    def read_into_buffers(self, path: str, offset: int, sizes: Sequence[int]) -> list[bytearray]:
        """Consecutive parts from ``offset``, each read straight into its own new bytearray.

        One copy in memory per part; raises ``EOFError`` if the file is shorter than asked.
        """
        with self.open_read(path) as f:
            f.seek(offset)
            return [_readinto_exact(f, size, path) for size in sizes]

    @abstractmethod
    def open_read(self, path: str) -> BinaryIO:
        """A binary file object for streaming reads."""

    @abstractmethod
    def exists(self, path: str) -> bool:
        """Whether a committed file is at ``path``."""

    def exists_many(self, paths: Sequence[str]) -> list[bool]:
        """:meth:`exists` for many paths; object stores override with one LIST per prefix."""
        return [self.exists(p) for p in paths]

    def write_many_if_absent(self, items: Sequence[tuple[str, Iterable[Chunk]]]) -> list[bool]:
        """:meth:`write_if_absent` for many paths; object stores override to write in parallel."""
        return [self.write_if_absent(path, chunks) for path, chunks in items]

    @abstractmethod
    def list_dir(self, path: str) -> list[str]:
        """Sorted names (not paths) directly under ``path``; ``[]`` if it does not exist."""

    @abstractmethod
    def size(self, path: str) -> int:
        """Size in bytes."""

    @abstractmethod
    def delete(self, path: str) -> None:
        """Remove one file; no error if it is already gone."""

    def local_path(self, path: str) -> str | None:
        """An OS path for ``path`` if this storage is the local disk (for live log appends)."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.root_url!r})"


def _readinto_exact(f: Any, size: int, path: str) -> bytearray:
    buf = bytearray(size)
    view = memoryview(buf)
    filled = 0
    while filled < size:
        n = f.readinto(view[filled:])
        if not n:
            raise EOFError(f"{path}: expected {size} bytes, file ended after {filled}")
        filled += n
    return buf


class FsspecStorage(Storage):
    """Storage on any fsspec filesystem (``memory://``, ``gs://``, ``sftp://``, ...).

    Object stores get a direct write (the object appears only when the upload completes);
    other filesystems get a temp file in the same directory plus ``mv``.
    """

    def __init__(self, root_url: str, fs: Any = None, **storage_options: Any) -> None:
        if fs is None:
            from fsspec.core import url_to_fs  # lazy: fsspec costs ~70 ms to import

            fs, root = url_to_fs(root_url, **storage_options)
        else:
            root = fs._strip_protocol(root_url)
        protocols = fs.protocol if isinstance(fs.protocol, (tuple, list)) else (fs.protocol,)
        self.root_url = root_url
        self._fs = fs
        self._root = str(root).rstrip("/")
        self._direct_put = any(p in OBJECT_STORE_PROTOCOLS for p in protocols)

    @property
    def fs(self) -> Any:
        """The underlying fsspec filesystem."""
        return self._fs

    def _full(self, path: str) -> str:
        check_rel_path(path)
        return f"{self._root}/{path}" if path else self._root

    def write_atomic(self, path: str, chunks: Iterable[Chunk]) -> None:
        full = self._full(path)
        if self._direct_put:
            parts = list(chunks)  # a failing producer must write nothing
            with self.fs.open(full, "wb") as f:
                for c in parts:
                    f.write(c)
            return
        parent, _, name = full.rpartition("/")
        tmp = f"{parent}/{temp_name(name)}"
        self.fs.makedirs(parent, exist_ok=True)
        try:
            with self.fs.open(tmp, "wb") as f:
                for c in chunks:
                    f.write(c)
            self.fs.mv(tmp, full)
        except BaseException:
            _quiet(lambda: self.fs.rm(tmp))
            raise

    def read(self, path: str) -> bytes:
        return bytes(self.fs.cat_file(self._full(path)))

    def read_range(self, path: str, offset: int, length: int) -> bytes:
        return bytes(self.fs.cat_file(self._full(path), start=offset, end=offset + length))

    def open_read(self, path: str) -> BinaryIO:
        f: BinaryIO = self.fs.open(self._full(path), "rb")
        return f

    def exists(self, path: str) -> bool:
        return bool(self.fs.exists(self._full(path)))

    def list_dir(self, path: str) -> list[str]:
        try:
            entries = self.fs.ls(self._full(path), detail=False)
        except (FileNotFoundError, NotADirectoryError):
            return []
        names = (str(e).rstrip("/").rpartition("/")[2] for e in entries)
        return sorted(n for n in names if n and not is_temp_name(n))

    def size(self, path: str) -> int:
        return int(self.fs.size(self._full(path)))

    def delete(self, path: str) -> None:
        try:
            self.fs.rm(self._full(path))
        except FileNotFoundError:
            pass


def _quiet(fn: Any) -> None:
    """Best-effort cleanup that must never mask the original error."""
    try:
        fn()
    except Exception:
        pass


def iter_chunks(chunks: Iterable[Chunk]) -> Iterator[memoryview]:
    """Byte views of ``chunks``, skipping empty ones."""
    for c in chunks:
        mv = byte_view(c)
        if mv.nbytes:
            yield mv


def storage_from_url(url: str, **storage_options: Any) -> Storage:
    """:class:`LocalStorage` (os calls, no fsspec) for plain paths and ``file://``; fsspec otherwise."""
    protocol = url.split("://", 1)[0] if "://" in url else "file"
    if protocol in ("file", "local") and not storage_options:
        from .local import LocalStorage

        return LocalStorage(url)
    return FsspecStorage(url, **storage_options)
