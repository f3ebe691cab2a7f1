import time

from plait import FlowSpec, step


class ForeachFlow(FlowSpec):
    """A foreach whose later items finish first; the join still sees inputs in index order."""

    @step
    def start(self):
        self.items = ["a", "b", "c"]
        self.next(self.body, foreach="items")

    @step
    def body(self):
        self.item = self.input
        self.idx = self.index
        self.stack = self.foreach_stack()
        time.sleep(0.3 * (2 - self.index))
        self.next(self.join)

    @step
    def join(self, inputs):
        self.order = [inp.item for inp in inputs]
        self.indices = [inp.idx for inp in inputs]
        self.input_index = [inp.index for inp in inputs]
        self.join_input = self.input
        self.join_index = self.index
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ForeachFlow()
