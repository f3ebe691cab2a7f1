"""Two @uv steps whose specs come from the test (TEST_UV_PACKAGES, TEST_UV_PYTHON for start,
TEST_UV_END_PACKAGES for end), and a failure switch for resume tests."""

import json
import os

from _probe import probe
from plait import FlowSpec, step, uv

PACKAGES = json.loads(os.environ.get("TEST_UV_PACKAGES", '["tinypkg==1.0"]'))
PYTHON = os.environ.get("TEST_UV_PYTHON") or None
END_PACKAGES = json.loads(os.environ.get("TEST_UV_END_PACKAGES", '["tinypkg==2.0"]'))


class ParamFlow(FlowSpec):
    @uv(packages=PACKAGES, python=PYTHON)
    @step
    def start(self):
        self.start_probe = probe()
        self.next(self.end)

    @uv(packages=END_PACKAGES)
    @step
    def end(self):
        if os.path.exists(os.path.join(os.environ["PLAIT_TEST_STATE"], "fail-end")):
            raise RuntimeError("planned failure in end")
        self.end_probe = probe()


if __name__ == "__main__":
    ParamFlow()
