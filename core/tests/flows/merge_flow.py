from plait import FlowSpec, Parameter, step


class MergeFlow(FlowSpec):
    """merge_artifacts with include=, exclude=, a conflict, and a value the join sets itself."""

    mode = Parameter("mode", default="exclude", help="include | exclude | conflict | joinset")

    @step
    def start(self):
        self.shared = "s"
        self.next(self.a, self.b)

    @step
    def a(self):
        self.diff = "from a"
        self.only_a = 1
        self._under = "same everywhere"
        self.next(self.join)

    @step
    def b(self):
        self.diff = "from b"
        self.only_b = 2
        self._under = "same everywhere"
        self.next(self.join)

    @step
    def join(self, inputs):
        if self.mode == "include":
            self.merge_artifacts(inputs, include=["only_a", "shared"])
        elif self.mode == "exclude":
            self.merge_artifacts(inputs, exclude=["diff"])
        elif self.mode == "joinset":
            self.diff = "set by the join"
            self.merge_artifacts(inputs)
        else:
            self.merge_artifacts(inputs)
        self.has = {n: hasattr(self, n) for n in ("shared", "diff", "only_a", "only_b", "_under")}
        self.next(self.end)

    @step
    def end(self):
        self.end_has = {n: hasattr(self, n) for n in ("shared", "diff", "only_a", "only_b", "_under")}


if __name__ == "__main__":
    MergeFlow()
