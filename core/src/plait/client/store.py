"""Where the client reads from: the datastore and metadata provider the settings name.

One :class:`ClientStore` per distinct :class:`~plait.services.Settings`, opened lazily and
kept for the life of the process, so a warm process pays no plugin loading or database
opening per query. Backends come from the plugin registry (``plait.services``), so the client
reads an S3 datastore (or any other plugin's) exactly as it reads the local one.
"""

from __future__ import annotations

import base64
import os
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from plait.exceptions import DataMissingError, PlaitException

if TYPE_CHECKING:
    from plait.datastore.flow_store import FlowDataStore
    from plait.datastore.types import ArtifactRef
    from plait.metadata.provider import MetadataProvider
    from plait.services import Settings

#: Serialized blobs kept in memory across client objects (bytes, not values: every ``.data``
#: on a new object unpickles a fresh value, as in Metaflow). Env: PLAIT_CLIENT_CACHE_MB.
DEFAULT_CACHE_MB = 256
#: Blobs larger than this skip the cache and stream straight into their final buffers.
MAX_CACHED_BLOB = 64 * 1024 * 1024


class BlobCache:
    """A byte-bounded LRU of blob bytes keyed by content hash (blobs are immutable)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.used = 0
        self.hits = 0
        self.misses = 0
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, sha: str) -> bytes | None:
        with self._lock:
            data = self._items.get(sha)
            if data is None:
                self.misses += 1
                return None
            self._items.move_to_end(sha)
            self.hits += 1
            return data

    def put(self, sha: str, data: bytes) -> None:
        if len(data) > self.max_bytes:
            return
        with self._lock:
            if sha in self._items:
                return
            self._items[sha] = data
            self.used += len(data)
            while self.used > self.max_bytes and self._items:
                _, old = self._items.popitem(last=False)
                self.used -= len(old)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.used = self.hits = self.misses = 0


def _cache_size() -> int:
    from plait import config

    try:
        return int(float(config.get("PLAIT_CLIENT_CACHE_MB", DEFAULT_CACHE_MB)) * 1024 * 1024)
    except (TypeError, ValueError):
        return DEFAULT_CACHE_MB * 1024 * 1024


BLOB_CACHE = BlobCache(_cache_size())


class ClientStore:
    """A datastore + metadata provider pair for one set of settings."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._ds: FlowDataStore | None = None
        self._md: MetadataProvider | None = None
        self._lock = threading.Lock()

    @property
    def ds(self) -> FlowDataStore:
        if self._ds is None:
            with self._lock:
                if self._ds is None:
                    from plait.services import open_datastore

                    self._ds = open_datastore(self.settings)
        return self._ds

    @property
    def md(self) -> MetadataProvider:
        if self._md is None:
            ds = self.ds
            with self._lock:
                if self._md is None:
                    from plait.services import open_metadata

                    self._md = open_metadata(self.settings, ds)
        return self._md

    def describe(self) -> str:
        """``name@root`` of the metadata, as ``get_metadata()`` reports it."""
        md = self.md
        return f"{self.settings.metadata}@{md.root}"

    def load_artifact(self, ref: ArtifactRef, name: str) -> Any:
        """The value behind ``ref``; the blob's bytes are served from :data:`BLOB_CACHE`."""
        from plait.datastore.content import blob_path, decode_blob

        if ref.inline is not None:
            return self._decode(decode_blob, base64.b64decode(ref.inline), ref, name)
        if ref.size > MAX_CACHED_BLOB:
            return self.ds.load_artifact(ref, name)
        data = BLOB_CACHE.get(ref.sha)
        if data is None:
            try:
                data = self.ds.storage.read(blob_path(ref.sha))
            except FileNotFoundError:
                raise DataMissingError(
                    f"Artifact '{name}' refers to blob {ref.sha}, which is not in the datastore at "
                    f"{self.ds.storage.root_url}. The datastore root may be wrong (PLAIT_DATASTORE_ROOT, "
                    f"or metadata('local@ROOT')) or the blob was deleted.") from None
            BLOB_CACHE.put(ref.sha, data)
        return self._decode(decode_blob, data, ref, name)

    @staticmethod
    def _decode(decode: Any, data: bytes, ref: ArtifactRef, name: str) -> Any:
        try:
            return decode(data)
        except (ModuleNotFoundError, AttributeError) as e:
            raise PlaitException(
                f"Artifact '{name}' (type {ref.type or '?'}) could not be unpickled: {e}. Load it where "
                f"the code that defined it is importable (same packages, run from the flow's directory)."
            ) from e
        except (EOFError, ValueError) as e:
            raise DataMissingError(f"Artifact '{name}' (blob {ref.sha}) is corrupt or truncated: {e}") from None


_stores: dict[Settings, ClientStore] = {}
_stores_lock = threading.Lock()


def _reset_locks_after_fork() -> None:
    """A task forked while another thread held a client lock must not inherit it held."""
    global _stores_lock
    _stores_lock = threading.Lock()
    BLOB_CACHE._lock = threading.Lock()
    for store in _stores.values():
        store._lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_locks_after_fork)


def store_for(settings: Settings) -> ClientStore:
    """The shared store for ``settings`` (opened on first use)."""
    with _stores_lock:
        store = _stores.get(settings)
        if store is None:
            store = _stores[settings] = ClientStore(settings)
        return store


def absolute_settings(settings: Settings, cwd: str | None = None) -> Settings:
    """``settings`` with a local datastore's default or relative root made absolute, so the
    same store is found again after a ``chdir`` (and a Runner's child and its parent agree)."""
    from dataclasses import replace

    from plait.datastore.local import DEFAULT_DIRNAME

    base = cwd or os.getcwd()
    if settings.datastore == "local":
        root = settings.datastore_root or os.path.join(base, DEFAULT_DIRNAME)
        for prefix in ("file://", "local://"):
            root = root[len(prefix):] if root.startswith(prefix) else root
        root = os.path.join(base, os.path.expanduser(root))
        settings = replace(settings, datastore_root=os.path.abspath(root))
    if settings.metadata_root and "://" not in settings.metadata_root:
        settings = replace(settings, metadata_root=os.path.abspath(
            os.path.join(base, os.path.expanduser(settings.metadata_root))))
    return settings
