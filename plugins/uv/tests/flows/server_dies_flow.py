"""The first attempt of an @uv step kills the environment's fork server it was forked from."""

import os
import signal
import time

from plait import FlowSpec, current, retry, step, uv


class ServerDiesFlow(FlowSpec):
    @retry(times=1, minutes_between_retries=0)
    @uv(packages=["tinypkg==1.0"])
    @step
    def start(self):
        if current.retry_count == 0:
            os.kill(os.getppid(), signal.SIGKILL)  # this task dies with it
            time.sleep(60)
        self.attempt = current.retry_count
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ServerDiesFlow()
