import ctypes
import os
import signal
import time

from _helpers import bump
from plait import FlowSpec, Parameter, step


class CrashFlow(FlowSpec):
    """crash dies hard (no @catch); ok runs beside it and must be unaffected."""

    how = Parameter("how", default="segv", help="segv | nullptr | exit")

    @step
    def start(self):
        self.next(self.crash, self.ok)

    @step
    def crash(self):
        bump("crash")
        if self.how == "segv":
            os.kill(os.getpid(), signal.SIGSEGV)
        elif self.how == "nullptr":
            ctypes.string_at(0)
        else:
            os._exit(3)
        self.next(self.join)

    @step
    def ok(self):
        time.sleep(0.5)
        self.fine = True
        bump("ok")
        self.next(self.join)

    @step
    def join(self, inputs):
        bump("join")
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    CrashFlow()
