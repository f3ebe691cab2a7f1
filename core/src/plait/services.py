"""Open the datastore, metadata provider and compute backends that the settings name."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import plait.config as config

if TYPE_CHECKING:
    from plait.datastore.flow_store import FlowDataStore
    from plait.metadata.provider import MetadataProvider
    from plait.runtime.compute import ComputeBackend


@dataclass(frozen=True)
class Settings:
    """Where a run's data and metadata live; passed on to every task command."""

    datastore: str = "local"
    datastore_root: str | None = None
    metadata: str = "local"
    metadata_root: str | None = None

    @classmethod
    def resolve(cls, datastore: str | None = None, datastore_root: str | None = None,
                metadata: str | None = None) -> Settings:
        return cls(
            datastore=datastore or config.get("PLAIT_DATASTORE", "local"),
            datastore_root=datastore_root or config.get("PLAIT_DATASTORE_ROOT"),
            metadata=metadata or config.get("PLAIT_METADATA", "local"),
            metadata_root=config.get("PLAIT_METADATA_ROOT"),
        )

    def to_args(self) -> list[str]:
        args = ["--datastore", self.datastore, "--metadata", self.metadata]
        if self.datastore_root:
            args += ["--datastore-root", self.datastore_root]
        return args


def _pm() -> Any:
    from plait.plugins import get_plugin_manager

    return get_plugin_manager()


def open_datastore(settings: Settings) -> FlowDataStore:
    from plait.datastore.flow_store import FlowDataStore

    storage_cls = _pm().get("datastores", settings.datastore).load()
    storage = storage_cls(settings.datastore_root) if settings.datastore_root else storage_cls()
    return FlowDataStore(storage)


def open_metadata(settings: Settings, datastore: FlowDataStore | None = None) -> MetadataProvider:
    provider_cls = _pm().get("metadata_providers", settings.metadata).load()
    root = settings.metadata_root
    if root is None:
        local = datastore.storage.local_path("") if datastore is not None else None
        root = local or os.path.join(os.getcwd(), ".plait")
    return provider_cls(root)  # type: ignore[no-any-return]


_backends: dict[str, ComputeBackend] = {}


def compute_backend(name: str) -> ComputeBackend:
    if name not in _backends:
        _backends[name] = _pm().get("compute_backends", name).load()()
    return _backends[name]
