from plait import FlowSpec, step


class BranchFlow(FlowSpec):
    """A static split into a and b, joined by name, by index and by iteration."""

    @step
    def start(self):
        self.shared = "from start"
        self.next(self.a, self.b)

    @step
    def a(self):
        self.x = "a"
        self.next(self.join)

    @step
    def b(self):
        self.x = "b"
        self.next(self.join)

    @step
    def join(self, inputs):
        self.by_name = (inputs.a.x, inputs.b.x)
        self.by_item = (inputs["a"].x, inputs["b"].x)
        self.by_index = [inputs[0].x, inputs[1].x]
        self.iterated = sorted(inp.x for inp in inputs)
        self.num_inputs = len(inputs)
        try:
            _ = self.shared
        except AttributeError as exc:
            self.missing_message = str(exc)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    BranchFlow()
