"""hello: the smallest flow, start -> end; measures fixed per-run overhead."""

import json

from metaflow import FlowSpec, step


class HelloFlow(FlowSpec):
    @step
    def start(self):
        self.message = "hello"
        self.next(self.end)

    @step
    def end(self):
        with open("bench_result.json", "w") as f:
            json.dump({"checksum": self.message}, f)


if __name__ == "__main__":
    HelloFlow()
