"""Local-disk storage: the hot path, so it uses os calls directly and never imports fsspec.

A foreach of 1000 tasks writes 1000 indexes plus their blobs; fsspec's wrappers (and its
~70 ms import) would dominate that. Atomicity comes from a temp file in the same directory
followed by ``os.replace`` (or ``os.link`` for create-if-absent).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any, BinaryIO

from .storage import Chunk, FsspecStorage, check_rel_path, is_temp_name, iter_chunks, temp_name

ROOT_ENV = "PLAIT_DATASTORE_ROOT"
DEFAULT_DIRNAME = ".plait"


def default_local_root() -> str:
    """``$PLAIT_DATASTORE_ROOT`` if set, else ``./.plait`` in the working directory (absolute)."""
    root = os.environ.get(ROOT_ENV) or os.path.join(os.getcwd(), DEFAULT_DIRNAME)
    return os.path.abspath(os.path.expanduser(_strip_file_scheme(root)))


def _strip_file_scheme(url: str) -> str:
    for prefix in ("file://", "local://"):
        if url.startswith(prefix):
            return url[len(prefix) :]
    return url


class LocalStorage(FsspecStorage):
    """Storage under a local directory (created on first write).

    The root is resolved to an absolute path once, so a later ``chdir`` does not move it.
    """

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        path = default_local_root() if root is None else _strip_file_scheme(os.fspath(root))
        self._root = os.path.abspath(os.path.expanduser(path))
        self.root_url = "file://" + self._root
        self._fs: Any = None
        self._direct_put = False

    @property
    def root(self) -> str:
        """Absolute OS path of the root directory."""
        return self._root

    @property
    def fs(self) -> Any:
        """An fsspec ``LocalFileSystem``, created on first use only."""
        if self._fs is None:
            from fsspec.implementations.local import LocalFileSystem

            self._fs = LocalFileSystem()
        return self._fs

    def _full(self, path: str) -> str:
        check_rel_path(path)
        return os.path.join(self._root, path) if path else self._root

    def _write_temp(self, full: str, chunks: Iterable[Chunk]) -> str:
        """Write ``chunks`` to a fresh temp file next to ``full``; return its path."""
        parent, name = os.path.split(full)
        tmp = os.path.join(parent, temp_name(name))
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        try:
            fd = os.open(tmp, flags, 0o666)
        except FileNotFoundError:
            os.makedirs(parent, exist_ok=True)
            fd = os.open(tmp, flags, 0o666)
        try:
            for mv in iter_chunks(chunks):
                while mv.nbytes:  # os.write may be partial (e.g. > 2 GiB on Linux)
                    mv = mv[os.write(fd, mv) :]
        except BaseException:
            os.close(fd)
            _unlink_quiet(tmp)
            raise
        os.close(fd)
        return tmp

    def write_atomic(self, path: str, chunks: Iterable[Chunk]) -> None:
        full = self._full(path)
        tmp = self._write_temp(full, chunks)
        try:
            os.replace(tmp, full)
        except BaseException:
            _unlink_quiet(tmp)
            raise

    def write_if_absent(self, path: str, chunks: Iterable[Chunk]) -> bool:
        full = self._full(path)
        if os.path.exists(full):
            return False
        tmp = self._write_temp(full, chunks)
        try:
            try:
                os.link(tmp, full)  # atomic create-if-absent
                return True
            except FileExistsError:
                return False
            except OSError:  # filesystem without hard links: fall back to check + replace
                if os.path.exists(full):
                    return False
                os.replace(tmp, full)
                return True
        finally:
            _unlink_quiet(tmp)

    def read(self, path: str) -> bytes:
        with open(self._full(path), "rb", buffering=0) as f:
            return f.readall()

    def read_range(self, path: str, offset: int, length: int) -> bytes:
        with open(self._full(path), "rb", buffering=0) as f:
            f.seek(offset)
            data = f.read(length) or b""
            if len(data) < length:  # short read not at EOF is rare; finish it
                rest = [data]
                got = len(data)
                while got < length:
                    more = f.read(length - got)
                    if not more:
                        break
                    rest.append(more)
                    got += len(more)
                data = b"".join(rest)
            return data

    def read_into_buffers(self, path: str, offset: int, sizes: Sequence[int]) -> list[bytearray]:
        with open(self._full(path), "rb", buffering=0) as f:
            f.seek(offset)
            out = []
            for size in sizes:
                buf = bytearray(size)
                view = memoryview(buf)
                filled = 0
                while filled < size:
                    n = f.readinto(view[filled:])
                    if not n:
                        raise EOFError(f"{path}: expected {size} bytes, file ended after {filled}")
                    filled += n
                out.append(buf)
            return out

    def open_read(self, path: str) -> BinaryIO:
        return open(self._full(path), "rb")

    def exists(self, path: str) -> bool:
        return os.path.exists(self._full(path))

    def exists_many(self, paths: Sequence[str]) -> list[bool]:
        return [os.path.exists(self._full(p)) for p in paths]

    def list_dir(self, path: str) -> list[str]:
        try:
            names = os.listdir(self._full(path))
        except (FileNotFoundError, NotADirectoryError):
            return []
        return sorted(n for n in names if not is_temp_name(n))

    def size(self, path: str) -> int:
        return os.path.getsize(self._full(path))

    def delete(self, path: str) -> None:
        _unlink_quiet(self._full(path))

    def local_path(self, path: str) -> str | None:
        return self._full(path)


def _unlink_quiet(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
