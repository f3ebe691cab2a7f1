from _helpers import bump
from plait import FlowSpec, step


class LinearFlow(FlowSpec):
    """start -> middle -> end; middle leaves `big` untouched."""

    @step
    def start(self):
        bump("start")
        self.x = 1
        self.big = list(range(20000))
        self._private = "underscore"
        self.next(self.middle)

    @step
    def middle(self):
        self.x += 1
        self.saw_private = self._private
        self.next(self.end)

    @step
    def end(self):
        self.total = self.x + len(self.big)


if __name__ == "__main__":
    LinearFlow()
