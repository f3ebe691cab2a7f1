"""What a step can see: its interpreter and which packages it can import."""

import importlib
import sys


def probe():
    out = {"exe": sys.executable, "prefix": sys.prefix, "python": list(sys.version_info[:3])}
    # numpy and pytest are installed where the tests run: an environment must not see them.
    for mod in ("tinypkg", "tinydep", "numpy", "pytest", "plait", "plait_uv"):
        try:
            m = importlib.import_module(mod)
        except ImportError:
            out[mod] = None
        else:
            out[mod] = getattr(m, "VERSION", "present")
    return out
