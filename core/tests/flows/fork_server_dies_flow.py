"""A foreach whose first task kills the process that forked it (the fork server), as an
out-of-memory killer might; its siblings die with the server."""

import os
import signal
import time

from plait import FlowSpec, current, retry, step


class ForkServerDiesFlow(FlowSpec):
    @step
    def start(self):
        self.items = [0, 1, 2]
        self.next(self.work, foreach="items")

    @retry(times=1, minutes_between_retries=0)
    @step
    def work(self):
        if self.input == 0 and current.retry_count == 0:
            os.kill(os.getppid(), signal.SIGKILL)
            time.sleep(60)
        self.forked_by = os.getppid()
        self.value = self.input * 10
        self.next(self.join)

    @step
    def join(self, inputs):
        self.values = sorted(inp.value for inp in inputs)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ForkServerDiesFlow()
