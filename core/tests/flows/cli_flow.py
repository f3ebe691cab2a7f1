from plait import FlowSpec, Parameter, step


class CliFlow(FlowSpec):
    """A small flow for the command line tests."""

    alpha = Parameter("alpha", default=2, help="Multiplier for the result.")

    @step
    def start(self):
        """Compute the result."""
        self.result = self.alpha * 10
        print(f"result is {self.result}")
        self.next(self.end)

    @step
    def end(self):
        """Nothing left to do."""
        pass


if __name__ == "__main__":
    CliFlow()
