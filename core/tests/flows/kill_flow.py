import time

from _helpers import bump, flag
from plait import FlowSpec, step


class KillFlow(FlowSpec):
    """Items 0 and 1 finish at once; items >= 2 wait while the file `block` exists."""

    @step
    def start(self):
        self.items = [0, 1, 2, 3]
        self.next(self.work, foreach="items")

    @step
    def work(self):
        bump(f"work{self.input}")
        if self.input >= 2:
            started = time.time()
            while flag("block") and time.time() - started < 60:
                time.sleep(0.05)
        self.value = self.input * 10
        self.next(self.join)

    @step
    def join(self, inputs):
        self.values = [inp.value for inp in inputs]
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    KillFlow()
