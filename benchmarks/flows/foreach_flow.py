"""foreach: start fans out over range(N), a trivial body, join, end.

N comes from the BENCH_N environment variable (default 1000).
"""

import json
import os

from metaflow import FlowSpec, step

N = int(os.environ.get("BENCH_N", "1000"))


class ForeachFlow(FlowSpec):
    @step
    def start(self):
        self.items = list(range(N))
        self.next(self.body, foreach="items")

    @step
    def body(self):
        self.square = self.input * self.input
        self.next(self.join)

    @step
    def join(self, inputs):
        self.total = sum(inp.square for inp in inputs)
        self.count = sum(1 for _ in inputs)
        self.next(self.end)

    @step
    def end(self):
        with open("bench_result.json", "w") as f:
            json.dump({"checksum": self.total, "count": self.count}, f)


if __name__ == "__main__":
    ForeachFlow()
