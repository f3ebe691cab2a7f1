"""Turn artifact values into byte parts and back, without copying large buffers.

A serializer returns a small JSON-able header plus a list of parts. Parts may be views of
the value's own memory (pickle protocol 5 out-of-band buffers, a ``bytes`` value itself), so
hashing and writing them never makes a second full copy.

Serializers are tried in ``priority`` order (lower first); ``pickle5`` is the catch-all.
Plugins add more through :func:`register_serializer` (wired to the serializer hook).
"""

from __future__ import annotations

import pickle
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

from ..exceptions import PlaitException

Part = bytes | bytearray | memoryview


class Serializer(ABC):
    """One encoding. ``name`` is stored in every blob, so it must never change once used."""

    name: ClassVar[str]
    priority: ClassVar[int] = 50

    @abstractmethod
    def can_serialize(self, obj: Any) -> bool:
        """Whether this serializer handles ``obj`` (cheap: a type check)."""

    @abstractmethod
    def dumps(self, obj: Any) -> tuple[dict[str, Any], list[Part]]:
        """``(header, parts)``: header is JSON-able; parts may alias ``obj``'s memory."""

    @abstractmethod
    def loads(self, header: dict[str, Any], parts: Sequence[Part]) -> Any:
        """Rebuild the value from the header and the parts written by :meth:`dumps`."""

    def mutable_parts(self, header: dict[str, Any]) -> bool:
        """Whether :meth:`loads` wants writable buffers (bytearray) or can take ``bytes``.

        Writable buffers let numpy arrays come back writable; ``bytes`` values come back
        without a second copy when the parts are read as ``bytes``.
        """
        return True


class Pickle5Serializer(Serializer):
    """Pickle protocol 5; contiguous buffers (numpy arrays, PickleBuffer) go out-of-band.

    Part 0 is the pickle stream, parts 1.. are the out-of-band buffers straight from the
    value's memory. Buffers under ``min_out_of_band`` bytes stay in-band: copying them is
    cheap, and a list of 100k tiny arrays must not become 100k parts. Falls back to
    cloudpickle for lambdas, local classes and the like.
    """

    name = "pickle5"
    priority = 1000
    min_out_of_band = 64 * 1024

    def can_serialize(self, obj: Any) -> bool:
        return True

    def dumps(self, obj: Any) -> tuple[dict[str, Any], list[Part]]:
        buffers: list[Part] = []

        def out_of_band(pb: pickle.PickleBuffer) -> bool:
            try:
                raw = pb.raw()  # a view, no copy
            except BufferError:  # non-contiguous: let pickle copy it in-band
                return True
            if raw.nbytes < self.min_out_of_band:
                return True
            buffers.append(raw)
            return False  # falsy: write this buffer out-of-band

        try:
            stream = pickle.dumps(obj, protocol=5, buffer_callback=out_of_band)
            header: dict[str, Any] = {}
        except Exception:
            buffers.clear()
            import cloudpickle  # lazy: only needed for what plain pickle rejects

            stream = cloudpickle.dumps(obj, protocol=5, buffer_callback=out_of_band)
            header = {"pickler": "cloudpickle"}
        return header, [stream, *buffers]

    def loads(self, header: dict[str, Any], parts: Sequence[Part]) -> Any:
        if header.get("pickler") == "cloudpickle":
            import cloudpickle  # noqa: F401  (its reducers must be importable)
        return pickle.loads(parts[0], buffers=parts[1:])


class RawBytesSerializer(Serializer):
    """``bytes`` and ``bytearray`` written as-is: no pickle framing, no copy."""

    name = "raw-bytes"
    priority = 10

    def can_serialize(self, obj: Any) -> bool:
        return type(obj) in (bytes, bytearray)

    def dumps(self, obj: Any) -> tuple[dict[str, Any], list[Part]]:
        kind = "bytearray" if type(obj) is bytearray else "bytes"
        return {"type": kind}, [obj if kind == "bytes" else memoryview(obj)]

    def loads(self, header: dict[str, Any], parts: Sequence[Part]) -> Any:
        data = parts[0] if parts else b""
        if header.get("type") == "bytearray":
            return data if type(data) is bytearray else bytearray(data)
        return data if type(data) is bytes else bytes(data)

    def mutable_parts(self, header: dict[str, Any]) -> bool:
        return header.get("type") == "bytearray"


SERIALIZERS: dict[str, Serializer] = {}
_ordered: list[Serializer] = []


def register_serializer(serializer: Serializer, *, replace: bool = False) -> None:
    """Make ``serializer`` available for writing and reading. Name clashes are errors."""
    existing = SERIALIZERS.get(serializer.name)
    if existing is not None and existing is not serializer and not replace:
        raise PlaitException(
            f"Two serializers are named {serializer.name!r}: {_qualname(existing)} and "
            f"{_qualname(serializer)}. Rename one, or uninstall the plugin that provides the other."
        )
    SERIALIZERS[serializer.name] = serializer
    _ordered[:] = sorted(SERIALIZERS.values(), key=lambda s: s.priority)


def unregister_serializer(name: str) -> None:
    """Remove a serializer (for tests that register one temporarily)."""
    SERIALIZERS.pop(name, None)
    _ordered[:] = sorted(SERIALIZERS.values(), key=lambda s: s.priority)


def select_serializer(obj: Any) -> Serializer:
    """The first serializer, by priority, that accepts ``obj``."""
    for s in _ordered:
        try:
            if s.can_serialize(obj):
                return s
        except Exception:
            continue
    return SERIALIZERS["pickle5"]


def get_serializer(name: str) -> Serializer:
    """The serializer that wrote an encoding; a clear error if it is not installed here."""
    try:
        return SERIALIZERS[name]
    except KeyError:
        raise PlaitException(
            f"This artifact was written with serializer {name!r}, which is not installed here "
            f"(installed: {', '.join(sorted(SERIALIZERS))}). Install the plugin that provides it."
        ) from None


def _qualname(obj: Any) -> str:
    t = type(obj)
    return f"{t.__module__}.{t.__qualname__}"


register_serializer(RawBytesSerializer())
register_serializer(Pickle5Serializer())
