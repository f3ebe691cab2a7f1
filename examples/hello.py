"""A first flow: a parameter, a static branch, a foreach, a join that merges, and the end."""

from plait import FlowSpec, Parameter, current, step


class HelloFlow(FlowSpec):
    """Say hello, square a few numbers in parallel, and add them up."""

    alpha = Parameter("alpha", default=2, help="Multiplier applied to every square.")

    @step
    def start(self):
        """Pick the numbers to work on."""
        print(f"Hello from {current.flow_name} run {current.run_id}, alpha={self.alpha}")
        self.numbers = [1, 2, 3, 4]
        self.next(self.square, foreach="numbers")

    @step
    def square(self):
        """Runs once per number, in parallel."""
        self.value = self.alpha * self.input ** 2
        print(f"{self.alpha} * {self.input}^2 = {self.value}")
        self.next(self.total)

    @step
    def total(self, inputs):
        """Join the foreach: add up the squares."""
        self.result = sum(i.value for i in inputs)
        self.merge_artifacts(inputs, include=["numbers"])
        self.next(self.end)

    @step
    def end(self):
        """Report."""
        print(f"The sum of {self.alpha} * n^2 for n in {self.numbers} is {self.result}")


if __name__ == "__main__":
    HelloFlow()
