"""Three environments and one plain step: @uv, @pypi (a foreach), plain join, @uv end."""

from _probe import probe
from plait import FlowSpec, pypi, step, uv


class EnvsFlow(FlowSpec):
    @uv(packages=["tinypkg==1.0"])
    @step
    def start(self):
        self.start_probe = probe()
        self.items = [1, 2, 3]
        self.next(self.each, foreach="items")

    @pypi(packages={"tinypkg": "2.0"})
    @step
    def each(self):
        self.each_probe = probe()
        self.square = self.input ** 2
        self.next(self.join)

    @step
    def join(self, inputs):
        self.total = sum(i.square for i in inputs)
        self.each_probes = [i.each_probe for i in inputs]
        self.join_probe = probe()
        self.next(self.end)

    @uv(packages=["tinydep"])
    @step
    def end(self):
        self.end_probe = probe()
        print("end sees tinypkg", self.end_probe["tinypkg"])


if __name__ == "__main__":
    EnvsFlow()
