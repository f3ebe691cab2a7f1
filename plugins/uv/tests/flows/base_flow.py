"""@pypi_base for every step; a step overrides it; another opts out."""

from _probe import probe
from plait import FlowSpec, pypi, pypi_base, step


@pypi_base(packages={"tinypkg": "1.0"})
class BaseFlow(FlowSpec):
    @step
    def start(self):
        self.start_probe = probe()
        self.next(self.mid)

    @pypi(packages={"tinypkg": "2.0"})
    @step
    def mid(self):
        self.mid_probe = probe()
        self.next(self.end)

    @pypi(disabled=True)
    @step
    def end(self):
        self.end_probe = probe()


if __name__ == "__main__":
    BaseFlow()
