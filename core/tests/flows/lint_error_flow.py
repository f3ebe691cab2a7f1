from plait import FlowSpec, step


class LintErrorFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.middle)

    @step
    def middle(self):
        self.x = 1

    @step
    def end(self):
        pass


if __name__ == "__main__":
    LintErrorFlow()
