"""Typed records that registration hooks return.

Records never hold the implementation itself, only a lazy ``"module:attribute"`` reference, so
that registering a plugin costs nothing until the thing is used (``import plait`` stays fast).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any


def load_reference(ref: str) -> Any:
    """Import ``"package.module:Attr"`` and return ``Attr``."""
    module_name, _, attr = ref.partition(":")
    module = importlib.import_module(module_name)
    obj: Any = module
    for part in attr.split(".") if attr else []:
        obj = getattr(obj, part)
    return obj


@dataclass(frozen=True)
class _Record:
    name: str
    ref: str  # "module:Class"
    plugin: str = field(default="", compare=False)  # filled in by the plugin manager

    def load(self) -> Any:
        return load_reference(self.ref)


# The kinds below add no fields: plain subclasses (no dataclass decorator each, which would
# cost a millisecond apiece at start-up) keep the base's frozen fields, equality and replace().


class StepDecoratorRecord(_Record):
    """A step decorator (``@retry``); ``ref`` names a :class:`plait.decorators.StepDecorator`."""


class FlowDecoratorRecord(_Record):
    """A flow-level decorator (``@project``-style); ``ref`` names a FlowDecorator subclass."""


class CliCommandRecord(_Record):
    """A click command or group added to the flow CLI; ``ref`` names the click object."""


class DatastoreRecord(_Record):
    """A storage backend; ``ref`` names a :class:`plait.datastore.storage.Storage` subclass."""


class MetadataProviderRecord(_Record):
    """A metadata provider; ``ref`` names a :class:`plait.metadata.provider.MetadataProvider`."""


class ComputeBackendRecord(_Record):
    """Where tasks run; ``ref`` names a :class:`plait.runtime.compute.ComputeBackend`."""


class EnvironmentRecord(_Record):
    """A per-step environment manager (``--environment uv``)."""


class SerializerRecord(_Record):
    """An artifact serializer; ``ref`` names a :class:`plait.datastore.serialize.Serializer`."""
