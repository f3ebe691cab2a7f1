"""The raw I/O floor for an artifact: sha256 it, write it to a file, read it back.

Run as a script (`python floor.py DIR MIB`, prints JSON) so that its buffers never live in
the harness: a forked child inherits its parent's peak RSS (ru_maxrss survives fork + exec),
which would inflate every memory number measured after it.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

MIB = 2**20


def measure(folder: Path, mib: int) -> dict[str, float]:
    data = os.urandom(mib * MIB)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        path = Path(tmp) / "blob"
        began = time.perf_counter()
        hashlib.sha256(data).hexdigest()
        hashed = time.perf_counter()
        with open(path, "wb") as f:
            f.write(data)
        written = time.perf_counter()
        back = path.read_bytes()
        read = time.perf_counter()
    if back != data:
        raise SystemExit("raw floor: the file read back differs")
    return {"floor_s": read - began, "hash_s": hashed - began, "write_s": written - hashed, "read_s": read - written}


if __name__ == "__main__":
    print(json.dumps(measure(Path(sys.argv[1]), int(sys.argv[2]))))
