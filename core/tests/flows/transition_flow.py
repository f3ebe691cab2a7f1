import os

from plait import FlowSpec, step


class TransitionFlow(FlowSpec):
    """Its source says start -> a, but PLAIT_TEST_MODE can make it do otherwise at run time."""

    @step
    def start(self):
        mode = os.environ.get("PLAIT_TEST_MODE", "ok")
        if mode == "mismatch":
            getattr(self, "next")(self.end)  # noqa: B009 - hidden from the static graph
            return
        if mode == "no_next":
            return
        self.next(self.a)

    @step
    def a(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    TransitionFlow()
