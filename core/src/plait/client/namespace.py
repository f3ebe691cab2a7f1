"""The client's process-wide state: the current namespace and which metadata it reads.

Namespaces work as in Metaflow: every run carries the system tag ``user:<name>`` of who
started it, and the client only shows runs whose tags include the current namespace. The
default namespace is ``user:<your user name>`` (``PLAIT_USER``, then ``USER``...); inside a
running task it is the task's namespace. ``namespace(None)`` shows everything.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from plait.client.store import ClientStore
    from plait.services import Settings

_UNSET = object()
_current_namespace: object = _UNSET  # str, None (global) or _UNSET (not resolved yet)
_metadata_settings: Settings | None = None  # set by metadata(); None: from the environment
_lock = threading.Lock()


def _resolve_identity() -> str:
    from plait import config
    from plait.current import current

    if current.is_running_flow and current.namespace:
        return str(current.namespace)
    return f"user:{config.username()}"


def namespace(ns: str | None) -> str | None:
    """Switch the namespace: only runs tagged ``ns`` are visible from now on (``None``: all
    runs). Returns the namespace now in effect."""
    global _current_namespace
    if ns is not None and (not isinstance(ns, str) or not ns):
        from plait.exceptions import PlaitException

        raise PlaitException(f"namespace() takes a tag such as 'user:alice', or None for all runs; got {ns!r}.")
    _current_namespace = ns
    return get_namespace()


def get_namespace() -> str | None:
    """The namespace queries are filtered by (None: every run is visible)."""
    if _current_namespace is _UNSET:
        default_namespace()
    return _current_namespace  # type: ignore[return-value]


def default_namespace() -> str:
    """Go back to the default namespace (``user:<you>``) and return it."""
    global _current_namespace
    _current_namespace = _resolve_identity()
    return _current_namespace


def metadata(ms: str) -> str:
    """Read runs from another place: ``metadata("local@/path/to/root")`` reads the local
    metadata and datastore under that root; ``metadata("NAME@ROOT")`` picks a provider
    plugin. Returns ``get_metadata()``."""
    global _metadata_settings
    from dataclasses import replace

    from plait.services import Settings

    name, _, root = ms.partition("@")
    if not root and ("/" in name or name.startswith(".")):
        name, root = "local", name  # metadata("/some/path") means a local root
    base = Settings.resolve()
    settings = replace(base, metadata=name or base.metadata, metadata_root=root or base.metadata_root)
    if root and settings.datastore == "local":
        settings = replace(settings, datastore_root=root)
    with _lock:
        _metadata_settings = settings
    return get_metadata()


def get_metadata() -> str:
    """``provider@root`` of the metadata the client reads, e.g. ``local@/home/me/proj/.plait``."""
    return current_store().describe()


def default_metadata() -> str:
    """Forget any ``metadata(...)`` switch: read what the environment and profile name."""
    global _metadata_settings
    with _lock:
        _metadata_settings = None
    return get_metadata()


def current_store() -> ClientStore:
    """The store for the current settings (environment, profile, or ``metadata()``)."""
    from plait.client.store import absolute_settings, store_for
    from plait.services import Settings

    settings = _metadata_settings or Settings.resolve()
    return store_for(absolute_settings(settings))
