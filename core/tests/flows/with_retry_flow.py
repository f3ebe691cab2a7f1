from _helpers import bump
from plait import FlowSpec, current, step


class WithRetryFlow(FlowSpec):
    """No decorators in the source: every step fails its first attempt."""

    @step
    def start(self):
        if bump("start") == 1:
            raise RuntimeError("start fails once")
        self.start_attempt = current.retry_count
        self.next(self.end)

    @step
    def end(self):
        if bump("end") == 1:
            raise RuntimeError("end fails once")
        self.end_attempt = current.retry_count


if __name__ == "__main__":
    WithRetryFlow()
