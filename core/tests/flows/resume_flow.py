from _helpers import bump, flag
from plait import FlowSpec, current, step


class ResumeFlow(FlowSpec):
    """Files in $PLAIT_TEST_STATE make steps fail: fail_prep, fail_work<N>."""

    @step
    def start(self):
        bump("start")
        self.items = [0, 1, 2, 3]
        self.start_run = current.run_id
        self.next(self.prep)

    @step
    def prep(self):
        bump("prep")
        if flag("fail_prep"):
            raise RuntimeError("prep fails on purpose")
        self.origin = current.origin_run_id
        self.next(self.work, foreach="items")

    @step
    def work(self):
        bump("work")
        bump(f"work{self.input}")
        if flag(f"fail_work{self.input}"):
            raise RuntimeError(f"work {self.input} fails on purpose")
        self.square = self.input ** 2
        self.work_run = current.run_id
        self.next(self.join)

    @step
    def join(self, inputs):
        self.squares = [inp.square for inp in inputs]
        self.work_runs = [inp.work_run for inp in inputs]
        self.next(self.end)

    @step
    def end(self):
        bump("end")
        self.end_origin = current.origin_run_id


if __name__ == "__main__":
    ResumeFlow()
