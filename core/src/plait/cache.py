"""Where Plait keeps its local cache (``PLAIT_CACHE_DIR``, else ``$XDG_CACHE_HOME/plait``,
else ``~/.cache/plait``): facts that only save time, always safe to delete.

Imported at ``import plait`` (by :mod:`plait.runtime.prestart`), so it imports only ``os``.
"""

from __future__ import annotations

import os


def cache_root() -> str:
    return os.environ.get("PLAIT_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "plait")
