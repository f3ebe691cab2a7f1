import sys
import time

from plait import FlowSpec, step


class LogFlow(FlowSpec):
    @step
    def start(self):
        print("first line")
        time.sleep(2)
        print("second line")
        print("a line on stderr", file=sys.stderr)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    LogFlow()
