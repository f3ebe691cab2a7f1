from plait import FlowSpec, Parameter, step


class LoopFlow(FlowSpec):
    """A switch that goes back to itself until it has run n times."""

    n = Parameter("n", default=3)

    @step
    def start(self):
        self.i = 0
        self.visits = []
        self.next(self.loop)

    @step
    def loop(self):
        self.i += 1
        self.visits = self.visits + [self.i]
        self.status = "again" if self.i < self.n else "done"
        self.next({"again": self.loop, "done": self.end}, condition="status")

    @step
    def end(self):
        pass


if __name__ == "__main__":
    LoopFlow()
