from _helpers import bump
from plait import FlowSpec, Parameter, current, retry, step


def snapshot():
    return {
        "flow_name": current.flow_name, "run_id": current.run_id, "step_name": current.step_name,
        "task_id": current.task_id, "retry_count": current.retry_count,
        "origin_run_id": current.origin_run_id, "pathspec": current.pathspec,
        "namespace": current.namespace, "username": current.username,
        "tags": sorted(current.tags), "is_running_flow": current.is_running_flow,
        "parameter_names": sorted(current.parameter_names),
    }


class CurrentFlow(FlowSpec):
    alpha = Parameter("alpha", default=1)
    beta = Parameter("beta", default="b")

    @step
    def start(self):
        self.info = snapshot()
        self.next(self.again)

    @retry(times=1, minutes_between_retries=0)
    @step
    def again(self):
        self.info = snapshot()
        if bump("again") == 1:
            raise RuntimeError("first attempt fails on purpose")
        self.next(self.end)

    @step
    def end(self):
        self.info = snapshot()


if __name__ == "__main__":
    CurrentFlow()
