import time

from _helpers import bump
from plait import FlowSpec, retry, step, timeout


class TimeoutFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.slow)

    @timeout(seconds=1)
    @retry(times=1, minutes_between_retries=0)
    @step
    def slow(self):
        bump("slow")
        time.sleep(30)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    TimeoutFlow()
