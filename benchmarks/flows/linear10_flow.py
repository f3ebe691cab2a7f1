"""linear10: start, ten linear steps, end; measures per-step overhead."""

import json

from metaflow import FlowSpec, step


class Linear10Flow(FlowSpec):
    @step
    def start(self):
        self.count = 0
        self.next(self.step_01)

    @step
    def step_01(self):
        self.count += 1
        self.next(self.step_02)

    @step
    def step_02(self):
        self.count += 1
        self.next(self.step_03)

    @step
    def step_03(self):
        self.count += 1
        self.next(self.step_04)

    @step
    def step_04(self):
        self.count += 1
        self.next(self.step_05)

    @step
    def step_05(self):
        self.count += 1
        self.next(self.step_06)

    @step
    def step_06(self):
        self.count += 1
        self.next(self.step_07)

    @step
    def step_07(self):
        self.count += 1
        self.next(self.step_08)

    @step
    def step_08(self):
        self.count += 1
        self.next(self.step_09)

    @step
    def step_09(self):
        self.count += 1
        self.next(self.step_10)

    @step
    def step_10(self):
        self.count += 1
        self.next(self.end)

    @step
    def end(self):
        with open("bench_result.json", "w") as f:
            json.dump({"checksum": self.count}, f)


if __name__ == "__main__":
    Linear10Flow()
