"""A flow that exercises the S3 datastore: small and large artifacts, a foreach, a join,
output on both streams, and the S3 tool scoped to the run."""

from plait import S3, FlowSpec, step


class S3Flow(FlowSpec):
    @step
    def start(self):
        self.small = {"a": 1}
        self.big = b"x" * 300_000
        self.items = list(range(3))
        print("hello from start")
        self.next(self.square, foreach="items")

    @step
    def square(self):
        self.value = self.input * self.input
        self.payload = list(range(1000 * (self.input + 1)))
        with S3(run=self) as s3:
            url = s3.put(f"square/{self.input}.txt", f"value={self.value}")
        self.url = url
        self.next(self.join)

    @step
    def join(self, inputs):
        self.total = sum(i.value for i in inputs)
        self.urls = sorted(i.url for i in inputs)
        self.merge_artifacts(inputs, include=["big"])
        with S3(run=self) as s3:
            self.texts = sorted(o.text for o in s3.get_many([f"square/{i}.txt" for i in range(3)]))
        self.next(self.end)

    @step
    def end(self):
        import sys
        print(f"total={self.total} big={len(self.big)}")
        print("to stderr", file=sys.stderr)


if __name__ == "__main__":
    S3Flow()
