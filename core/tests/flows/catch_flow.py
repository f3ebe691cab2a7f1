from _helpers import bump
from plait import FlowSpec, catch, retry, step


class CatchFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.boom)

    @catch(var="err")
    @retry(times=1, minutes_between_retries=0)
    @step
    def boom(self):
        bump("boom")
        self.before = "set before the exception"
        raise ValueError("kaboom")
        self.next(self.after)  # noqa - never reached, but the graph needs it

    @step
    def after(self):
        self.err_type = self.err.type
        self.err_text = str(self.err)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    CatchFlow()
