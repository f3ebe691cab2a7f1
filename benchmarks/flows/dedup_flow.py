"""dedup: a BENCH_MB MiB artifact made in start and passed unchanged through five steps.

Every step reads the artifact, as real steps do, but never changes it; a content-addressed
datastore should then hold it once.
"""

import json
import os

import numpy as np
from metaflow import FlowSpec, step

MIB = int(os.environ.get("BENCH_MB", "100"))
SEED = int(os.environ.get("BENCH_SEED", "20240501"))


class DedupFlow(FlowSpec):
    @step
    def start(self):
        rng = np.random.default_rng(SEED)
        self.payload = rng.integers(0, 256, size=MIB * 2**20, dtype=np.uint8)
        self.bytes_seen = 0
        self.next(self.pass_1)

    @step
    def pass_1(self):
        self.bytes_seen += self.payload.nbytes
        self.next(self.pass_2)

    @step
    def pass_2(self):
        self.bytes_seen += self.payload.nbytes
        self.next(self.pass_3)

    @step
    def pass_3(self):
        self.bytes_seen += self.payload.nbytes
        self.next(self.pass_4)

    @step
    def pass_4(self):
        self.bytes_seen += self.payload.nbytes
        self.next(self.pass_5)

    @step
    def pass_5(self):
        self.bytes_seen += self.payload.nbytes
        self.next(self.end)

    @step
    def end(self):
        result = {
            "checksum": int(self.payload.sum(dtype=np.uint64)),
            "bytes_seen": self.bytes_seen,
        }
        with open("bench_result.json", "w") as f:
            json.dump(result, f)


if __name__ == "__main__":
    DedupFlow()
