from plait import FlowSpec, JSONType, Parameter, catch, step


class ComboFlow(FlowSpec):
    """Parameters, a foreach, a static split with @catch, merges and a switch, in one run."""

    alpha = Parameter("alpha", default=2)
    config = Parameter("config", type=JSONType, default='{"scale": 10}')

    @step
    def start(self):
        self.items = [1, 2, 3]
        self._hidden = "h"
        self.next(self.square, foreach="items")

    @step
    def square(self):
        self.value = self.alpha * self.input ** 2
        self.pos = self.foreach_stack()
        self.next(self.gather)

    @step
    def gather(self, inputs):
        self.values = [inp.value for inp in inputs]
        self.merge_artifacts(inputs, exclude=["value", "pos"])
        self.next(self.fan)

    @step
    def fan(self):
        self.next(self.left, self.right)

    @step
    def left(self):
        self.side = "left"
        self.total = sum(self.values)
        self.next(self.meet)

    @catch(var="err", print_exception=False)
    @step
    def right(self):
        self.side = "right"
        raise KeyError("missing")
        self.next(self.meet)

    @step
    def meet(self, inputs):
        self.sides = [getattr(inp, "side", None) for inp in inputs]
        self.err_text = str(inputs.right.err)
        self.merge_artifacts(inputs, include=["values", "items", "_hidden"])
        self.next(self.decide)

    @step
    def decide(self):
        self.choice = "big" if sum(self.values) > 10 else "small"
        self.next({"big": self.big, "small": self.small}, condition="choice")

    @step
    def big(self):
        self.label = "BIG"
        self.next(self.end)

    @step
    def small(self):
        self.label = "small"
        self.next(self.end)

    @step
    def end(self):
        self.scaled = [v * self.config["scale"] for v in self.values]
        self.hidden_seen = self._hidden


if __name__ == "__main__":
    ComboFlow()
