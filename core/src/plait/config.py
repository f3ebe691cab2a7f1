"""Configuration: ``PLAIT_*`` environment variables, then ``~/.plaitconfig/config.json``.

The profile file is a flat JSON object of the same names (``{"PLAIT_DATASTORE": "s3"}``);
``PLAIT_PROFILE=name`` reads ``config_<name>.json`` instead, as Metaflow users expect.
"""

from __future__ import annotations

import getpass
import json
import os
from functools import lru_cache
from typing import Any


@lru_cache(maxsize=1)
def _profile() -> dict[str, Any]:
    home = os.environ.get("PLAIT_HOME", os.path.expanduser("~/.plaitconfig"))
    profile = os.environ.get("PLAIT_PROFILE")
    path = os.path.join(home, f"config_{profile}.json" if profile else "config.json")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, json.JSONDecodeError) as exc:
        from plait.exceptions import PlaitException

        raise PlaitException(f"Cannot read the Plait profile {path}: {exc}. Fix or remove the file.") from None
    return data if isinstance(data, dict) else {}


def get(name: str, default: Any = None) -> Any:
    """The value of setting ``name`` (e.g. ``"PLAIT_DATASTORE"``)."""
    value = os.environ.get(name)
    if value not in (None, ""):
        return value
    return _profile().get(name, default)


def username() -> str:
    """Who runs the flow: PLAIT_USER, then the usual login variables."""
    for var in ("PLAIT_USER", "USER", "USERNAME", "LOGNAME"):
        value = os.environ.get(var)
        if value:
            return value
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
