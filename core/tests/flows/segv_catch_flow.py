import os
import signal

from _helpers import bump
from plait import FlowSpec, catch, step


class SegvCatchFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.crash)

    @catch(var="crashed")
    @step
    def crash(self):
        bump("crash")
        os.kill(os.getpid(), signal.SIGSEGV)
        self.next(self.after)

    @step
    def after(self):
        self.crash_text = str(self.crashed) if self.crashed is not None else None
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    SegvCatchFlow()
