import time

from _helpers import bump
from plait import FlowSpec, current, retry, step


class RetryFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.flaky)

    @retry(times=2, minutes_between_retries=0)
    @step
    def flaky(self):
        n = bump("flaky")
        print(f"flaky attempt {current.retry_count} (call {n})")
        if n < 3:
            raise RuntimeError(f"flaky failure number {n}")
        self.flaky_attempt = current.retry_count
        self.next(self.delayed)

    @retry(times=1, minutes_between_retries=0.02)
    @step
    def delayed(self):
        self.started = time.time()
        if bump("delayed") == 1:
            raise RuntimeError("delayed fails once")
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    RetryFlow()
