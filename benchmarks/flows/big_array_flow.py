"""big_array: a fresh random BENCH_MB MiB uint8 array, made in start, summed in the next step.

The flow times its own compute (generating and summing the array) so the harness can
subtract it and isolate the framework's cost of writing and reading the artifact.
"""

import json
import os
import time

import numpy as np
from metaflow import FlowSpec, step

MIB = int(os.environ.get("BENCH_MB", "256"))
SEED = int(os.environ.get("BENCH_SEED", "20240501"))


class BigArrayFlow(FlowSpec):
    @step
    def start(self):
        began = time.perf_counter()
        rng = np.random.default_rng(SEED)
        self.array = rng.integers(0, 256, size=MIB * 2**20, dtype=np.uint8)
        self.expected = int(self.array.sum(dtype=np.uint64))
        self.make_s = time.perf_counter() - began
        self.next(self.consume)

    @step
    def consume(self):
        array = self.array  # loads the artifact
        began = time.perf_counter()
        self.total = int(array.sum(dtype=np.uint64))
        self.sum_s = time.perf_counter() - began
        self.next(self.end)

    @step
    def end(self):
        result = {
            "checksum": self.total,
            "expected": self.expected,
            "compute_s": self.make_s + self.sum_s,
        }
        with open("bench_result.json", "w") as f:
            json.dump(result, f)


if __name__ == "__main__":
    BigArrayFlow()
