from plait import FlowSpec, Parameter, step


class SwitchFlow(FlowSpec):
    choice = Parameter("choice", default="a")

    @step
    def start(self):
        self.x = self.choice
        self.next({"a": self.a, "b": self.b}, condition="x")

    @step
    def a(self):
        self.took = "a"
        self.next(self.after)

    @step
    def b(self):
        self.took = "b"
        self.next(self.after)

    @step
    def after(self):
        self.seen = self.took
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    SwitchFlow()
