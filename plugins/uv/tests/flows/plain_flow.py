"""No environment decorator at all: --environment uv/pypi still isolates every step."""

from _probe import probe
from plait import FlowSpec, step


class PlainFlow(FlowSpec):
    @step
    def start(self):
        self.start_probe = probe()
        self.next(self.end)

    @step
    def end(self):
        self.end_probe = probe()


if __name__ == "__main__":
    PlainFlow()
