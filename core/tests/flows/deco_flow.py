import os

from plait import FlowSpec, environment, resources, step


class DecoFlow(FlowSpec):
    @environment(vars={"PLAIT_TEST_GREETING": "hello", "PLAIT_TEST_NUMBER": 3})
    @resources(cpu=2, memory=1000)
    @step
    def start(self):
        self.greeting = os.environ.get("PLAIT_TEST_GREETING")
        self.number = os.environ.get("PLAIT_TEST_NUMBER")
        self.next(self.end)

    @step
    def end(self):
        self.greeting_in_end = os.environ.get("PLAIT_TEST_GREETING")


if __name__ == "__main__":
    DecoFlow()
