"""An @uv step that reports which process forked it; the scheduler, as it starts executing
this file and again after the flow class, records which child processes it already has
(those started at ``import plait``, then those started as the decorators were created)."""

import json
import os
import sys

from plait import FlowSpec, step, uv


def _children() -> dict[int, str]:
    found = {}
    for tid in os.listdir(f"/proc/{os.getpid()}/task"):
        with open(f"/proc/{os.getpid()}/task/{tid}/children") as f:
            for pid in f.read().split():
                with open(f"/proc/{pid}/cmdline", "rb") as cmd:
                    found[int(pid)] = cmd.read().replace(b"\0", b" ").decode()
    return found


def _record(when: str) -> None:
    if "run" in sys.argv[1:]:  # the scheduler (the environment's server executes this file too)
        with open(os.path.join(os.environ["PLAIT_TEST_STATE"], f"{when}-{os.getpid()}.json"), "w") as out:
            json.dump(_children(), out)


_record("children")  # before the flow's decorators exist
if "run" in sys.argv[1:]:  # what only the scheduler changes, after `import plait`
    os.environ["PLAIT_TEST_SET_BY_SCHEDULER"] = "yes"
    os.chdir(os.environ["PLAIT_TEST_STATE"])


class PrestartFlow(FlowSpec):
    @uv(packages=["tinypkg==1.0"])
    @step
    def start(self):
        self.forked_by = os.getppid()
        self.scheduler_variable = os.environ.get("PLAIT_TEST_SET_BY_SCHEDULER")
        self.cwd = os.getcwd()
        with open(f"/proc/{self.forked_by}/stat") as f:
            self.scheduler = int(f.read().rsplit(")", 1)[1].split()[1])
        self.next(self.end)

    @step
    def end(self):
        pass


_record("children-after-class")  # the flow's decorators were created

if __name__ == "__main__":
    PrestartFlow()
