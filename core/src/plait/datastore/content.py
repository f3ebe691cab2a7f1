"""Content-addressed blobs: the blob format, hashing, dedup and inlining of small values.

Blob format (self-describing, decodable from its bytes alone)::

    b"PLAIT1\\n"                                   magic, 7 bytes
    {"encoding":"pickle5","parts":[n0,n1,...]}\\n  one line of compact JSON (+ "meta" if any)
    part0 part1 ...                               the parts, back to back, no padding

The key is the hex sha256 of the whole blob (magic and header included), so
``sha256sum blobs/ab/ab12...`` verifies a blob. Blobs live at ``blobs/<sha[:2]>/<sha>``
under the root, shared by every flow: same bytes, one file.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ..exceptions import DataMissingError, PlaitException, UnpicklableArtifactError
from .serialize import get_serializer, select_serializer
from .storage import Storage, byte_view
from .types import ArtifactRef

MAGIC = b"PLAIT1\n"
INLINE_LIMIT = 1024  # serialized blobs smaller than this live inside the index
_HEAD_READ = 64 * 1024  # first read of a blob: header, and the whole blob if it is small
_BATCH_BYTES = 64 * 1024 * 1024  # flush pending writes past this much serialized data
_BATCH_COUNT = 1000


class BlobFormatError(ValueError):
    """The bytes are not a well-formed Plait blob (bad magic, header or length)."""


@dataclass
class EncodedBlob:
    """A serialized value, hashed but not yet written. ``parts`` may alias the value's memory."""

    sha: str
    size: int
    encoding: str
    head: bytes
    parts: list[memoryview]

    def chunks(self) -> Iterator[memoryview | bytes]:
        yield self.head
        yield from self.parts

    def to_bytes(self) -> bytes:
        return b"".join(self.chunks())


def encode_value(value: Any) -> EncodedBlob:
    """Serialize and hash ``value``. Large buffers are hashed in place, never concatenated."""
    serializer = select_serializer(value)
    meta, raw_parts = serializer.dumps(value)
    parts = [byte_view(p) for p in raw_parts]
    header: dict[str, Any] = {"encoding": serializer.name, "parts": [p.nbytes for p in parts]}
    if meta:
        header["meta"] = meta
    head = MAGIC + json.dumps(header, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    h = hashlib.sha256(head)
    for p in parts:
        h.update(p)
    return EncodedBlob(h.hexdigest(), len(head) + sum(p.nbytes for p in parts), serializer.name, head, parts)


def parse_head(data: bytes | bytearray) -> tuple[dict[str, Any], int] | None:
    """``(header, offset of part 0)``, or None if ``data`` is too short to hold the header line.

    Raises :class:`BlobFormatError` if ``data`` is not a Plait blob.
    """
    if not data.startswith(MAGIC):
        if len(data) < len(MAGIC) and MAGIC.startswith(bytes(data)):
            return None
        raise BlobFormatError("not a Plait blob (bad magic)")
    end = data.find(b"\n", len(MAGIC))
    if end < 0:
        return None
    try:
        header = json.loads(bytes(data[len(MAGIC) : end]))
        if not isinstance(header, dict) or not isinstance(header["parts"], list):
            raise TypeError("header is not an object with a parts list")
        header["encoding"] = str(header["encoding"])
    except (ValueError, KeyError, TypeError) as e:
        raise BlobFormatError(f"bad blob header: {e}") from None
    return header, end + 1


def decode_blob(data: bytes | bytearray) -> Any:
    """Rebuild a value from a whole blob held in memory (inline values, tools, tests).

    Buffers are views into a private bytearray, so numpy arrays come back writable.
    """
    buf = bytearray(data)
    parsed = parse_head(buf)
    if parsed is None:
        raise BlobFormatError("truncated Plait blob header")
    header, offset = parsed
    serializer = get_serializer(header["encoding"])
    view = memoryview(buf)
    parts: list[Any] = []
    for n in header["parts"]:
        if offset + n > len(buf):
            raise BlobFormatError("truncated Plait blob")
        parts.append(view[offset : offset + n])
        offset += n
    if not serializer.mutable_parts(header.get("meta", {})):
        parts = [bytes(p) for p in parts]
    return serializer.loads(header.get("meta", {}), parts)


def blob_path(sha: str) -> str:
    return f"blobs/{sha[:2]}/{sha}"


def type_name(value: Any) -> str:
    t = type(value)
    return t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"


class ContentStore:
    """Artifact values <-> :class:`ArtifactRef`, over any :class:`Storage`."""

    def __init__(self, storage: Storage, inline_limit: int = INLINE_LIMIT) -> None:
        self.storage = storage
        self.inline_limit = inline_limit

    def save_artifacts(self, values: Mapping[str, Any], step: str = "") -> dict[str, ArtifactRef]:
        """Serialize, hash and store each value; returns refs in the order of ``values``.

        Hash first, then check existence (batched), then write only missing blobs: an
        unchanged 100 MB artifact costs a hash, not a write.
        """
        refs: dict[str, ArtifactRef] = {}
        pending: list[EncodedBlob] = []
        pending_bytes = 0
        for name, value in values.items():
            blob = self._encode(name, value, step)
            inline = None
            if blob.size < self.inline_limit:
                inline = base64.b64encode(blob.to_bytes()).decode("ascii")
            else:
                pending.append(blob)
                pending_bytes += blob.size
            refs[name] = ArtifactRef(blob.sha, blob.size, blob.encoding, type_name(value), inline)
            if pending_bytes >= _BATCH_BYTES or len(pending) >= _BATCH_COUNT:
                self._write_blobs(pending)
                pending, pending_bytes = [], 0
        self._write_blobs(pending)
        return refs

    def _encode(self, name: str, value: Any, step: str) -> EncodedBlob:
        try:
            return encode_value(value)
        except (PlaitException, MemoryError):
            raise
        except Exception as e:
            where = f" in step '{step}'" if step else ""
            raise UnpicklableArtifactError(
                f"Artifact '{name}'{where} (type {type_name(value)}) cannot be serialized: "
                f"{type(e).__name__}: {e}. Every attribute set on self is persisted. Fix: make the "
                f"value picklable (define classes and functions at module level, or drop "
                f"unpicklable members in __getstate__), or delete it before the step ends "
                f"(del self.{name}) if later steps do not need it."
            ) from e

    def _write_blobs(self, blobs: list[EncodedBlob]) -> None:
        unique = list({b.sha: b for b in blobs}.values())
        if not unique:
            return
        present = self.storage.exists_many([blob_path(b.sha) for b in unique])
        missing = [b for b, exists in zip(unique, present, strict=True) if not exists]
        if len(missing) == 1:
            self.storage.write_if_absent(blob_path(missing[0].sha), missing[0].chunks())
        elif missing:
            self.storage.write_many_if_absent([(blob_path(b.sha), b.chunks()) for b in missing])

    def has_blob(self, sha: str) -> bool:
        return self.storage.exists(blob_path(sha))

    def load_artifact(self, ref: ArtifactRef, name: str = "") -> Any:
        """The value ``ref`` points at. Large buffers are read straight into their final memory."""
        path = blob_path(ref.sha)
        try:
            if ref.inline is not None:
                return decode_blob(base64.b64decode(ref.inline))
            return self._load_blob(path)
        except (ModuleNotFoundError, AttributeError) as e:  # pickle cannot find a class/function
            label = f"Artifact '{name}'" if name else "An artifact"
            raise PlaitException(
                f"{label} (type {ref.type or '?'}) could not be unpickled: {e}. Load it where the code "
                f"that defined it is importable (same package versions, run from the flow's directory)."
            ) from e
        except FileNotFoundError:
            label = f"Artifact '{name}'" if name else "An artifact"
            raise DataMissingError(
                f"{label} refers to blob {ref.sha}, which is not in the datastore at "
                f"{self.storage.root_url} ({path}). The datastore root may be wrong "
                f"(PLAIT_DATASTORE_ROOT) or the blob was deleted."
            ) from None
        except (EOFError, BlobFormatError) as e:
            raise DataMissingError(f"Blob {ref.sha} at {path} is corrupt or truncated: {e}") from None

    def _load_blob(self, path: str) -> Any:
        want = _HEAD_READ
        while True:
            head = self.storage.read_range(path, 0, want)
            parsed = parse_head(head)
            if parsed is not None:
                break
            if len(head) < want:
                raise BlobFormatError("header line not found")
            want *= 4
        header, offset = parsed
        if offset + sum(header["parts"]) <= len(head):
            return decode_blob(head)  # small blob: already fully read
        serializer = get_serializer(header["encoding"])
        meta = header.get("meta", {})
        parts: list[Any]
        if serializer.mutable_parts(meta):
            parts = self.storage.read_into_buffers(path, offset, header["parts"])
        else:
            parts = []
            for n in header["parts"]:
                data = self.storage.read_range(path, offset, n)
                if len(data) < n:
                    raise EOFError(f"{path}: expected {n} bytes at {offset}, got {len(data)}")
                parts.append(data)
                offset += n
        return serializer.loads(meta, parts)
