"""A flow CLI with one extra command that hits EPIPE, as a socket to a dead helper would."""

import click
import plait.cli
from plait import FlowSpec, step


class BrokenPipeFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    group = plait.cli.build_cli(BrokenPipeFlow, __file__)

    @group.command()
    def boom() -> None:
        click.echo("about to break")
        raise BrokenPipeError(32, "Broken pipe")

    plait.cli.run_flow_cli(BrokenPipeFlow, ["boom"], __file__)
