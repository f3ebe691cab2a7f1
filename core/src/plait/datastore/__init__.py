"""Content-addressed artifact storage over fsspec: blobs, per-attempt indexes, logs.

Names are exported lazily so ``import plait.datastore`` stays cheap (no fsspec, no numpy).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "ArtifactRef": "types",
    "AttemptIndex": "types",
    "Storage": "storage",
    "FsspecStorage": "storage",
    "storage_from_url": "storage",
    "LocalStorage": "local",
    "default_local_root": "local",
    "Serializer": "serialize",
    "SERIALIZERS": "serialize",
    "register_serializer": "serialize",
    "unregister_serializer": "serialize",
    "ContentStore": "content",
    "decode_blob": "content",
    "FlowDataStore": "flow_store",
}

__all__ = [
    "SERIALIZERS",
    "ArtifactRef",
    "AttemptIndex",
    "ContentStore",
    "FlowDataStore",
    "FsspecStorage",
    "LocalStorage",
    "Serializer",
    "Storage",
    "decode_blob",
    "default_local_root",
    "register_serializer",
    "storage_from_url",
    "unregister_serializer",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
