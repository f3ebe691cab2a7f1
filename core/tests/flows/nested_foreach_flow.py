from plait import FlowSpec, step


class NestedForeachFlow(FlowSpec):
    @step
    def start(self):
        self.xs = [1, 2]
        self.next(self.outer, foreach="xs")

    @step
    def outer(self):
        self.ys = ["p", "q", "r"]
        self.next(self.inner, foreach="ys")

    @step
    def inner(self):
        self.stack = self.foreach_stack()
        self.pair = (self.foreach_stack()[0][2], self.input)
        self.next(self.inner_join)

    @step
    def inner_join(self, inputs):
        self.pairs = [inp.pair for inp in inputs]
        self.outer_index = self.index
        self.join_stack = [(i, n) for i, n, _ in self.foreach_stack()]
        self.next(self.outer_join)

    @step
    def outer_join(self, inputs):
        self.all = [inp.pairs for inp in inputs]
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    NestedForeachFlow()
