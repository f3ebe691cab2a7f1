from plait import FlowSpec, IncludeFile, JSONType, Parameter, current, step


def default_label(ctx):
    return f"{ctx.flow_name}:{ctx.parameter_name}:{ctx.user_name}"


class ParamsFlow(FlowSpec):
    """Every kind of parameter."""

    name = Parameter("name", required=True, help="Who to greet (required).")
    count = Parameter("count", default=2, help="How many greetings.")
    ratio = Parameter("ratio", default=0.5, type=float, help="A fraction.")
    loud = Parameter("loud", default=False, type=bool, help="Shout the greeting.")
    config = Parameter("config", default='{"k": [1, 2]}', type=JSONType, help="Settings as JSON.")
    label = Parameter("label", default=default_label, help="Computed when the run starts.")
    notes = IncludeFile("notes", help="A text file whose content is stored in the run.")
    assign = Parameter("assign", default=False, type=bool, help="Try to assign to a parameter.")

    def values(self):
        return {"name": self.name, "count": self.count, "ratio": self.ratio, "loud": self.loud,
                "config": self.config, "label": self.label, "notes": self.notes}

    @step
    def start(self):
        if self.assign:
            self.count = 10
        self.start_values = self.values()
        self.parameter_names = sorted(current.parameter_names)
        self.next(self.a, self.b)

    @step
    def a(self):
        self.next(self.join)

    @step
    def b(self):
        self.next(self.join)

    @step
    def join(self, inputs):
        self.join_values = self.values()
        self.next(self.end)

    @step
    def end(self):
        self.end_values = self.values()


if __name__ == "__main__":
    ParamsFlow()
