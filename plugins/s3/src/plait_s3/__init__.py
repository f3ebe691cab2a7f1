"""plait-s3: the S3 datastore backend and the ``S3`` data tool for Plait.

``from plait import S3`` is the usual way in; names load lazily so that discovering the
plugin never imports boto/aiohttp.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "S3": "tool", "S3Object": "tool", "S3GetObject": "tool", "S3PutObject": "tool", "RangeInfo": "tool",
    "S3SelectResult": "tool", "S3Storage": "storage",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
