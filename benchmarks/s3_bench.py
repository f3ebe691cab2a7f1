#!/usr/bin/env python3
"""S3 benchmarks: Plait (plait-s3) vs Metaflow vs plain boto3, against one local S3 server.

    .venv/bin/python benchmarks/s3_bench.py [--repeat N] [--only flow,small,large] [--quick]

Run it with the dev environment's interpreter (``python3 scripts/dev.py setup`` first): it has
plait, plait-s3, moto and boto3. Metaflow runs from ``benchmarks/.venv-metaflow-s3`` (created on
first use: ``metaflow==2.19.39 boto3``) or from ``--metaflow-python``.

One moto S3 server (``python -m plait_s3.testing``, in its own process) serves everyone.

- ``flow``: a flow whose steps set and read 200 small artifacts, ``--datastore s3`` on both
  frameworks (wall time of ``python flow.py run``).
- ``small``: ``put_many`` then ``get_many`` of 1,000 x 10 KB objects: Plait ``S3``, Metaflow
  ``S3``, and a sequential boto3 loop (``put_object`` / ``get_object``).
- ``large``: 4 x 256 MiB files up (``put_files``) and down (``get_many``, to local files):
  Plait, Metaflow, and boto3's managed ``upload_file`` / ``download_file`` one file at a time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
METAFLOW_VENV = HERE / ".venv-metaflow-s3"
METAFLOW_REQS = ("metaflow==2.19.39", "boto3")
CREDS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}
BUCKET = "plait-bench"

FLOW = '''
from metaflow import FlowSpec, step

N = 200


class ManyArtifactsFlow(FlowSpec):
    @step
    def start(self):
        for i in range(N):
            setattr(self, "a%03d" % i, {"i": i, "name": "artifact-%d" % i, "values": list(range(i % 7))})
        self.next(self.middle)

    @step
    def middle(self):
        for i in range(N):
            value = getattr(self, "a%03d" % i)
            setattr(self, "b%03d" % i, value["i"] * 2)
        self.next(self.end)

    @step
    def end(self):
        total = sum(getattr(self, "b%03d" % i) for i in range(N))
        assert total == N * (N - 1), total
        print("total", total)


if __name__ == "__main__":
    ManyArtifactsFlow()
'''

TOOL = r'''
import json, os, sys, time
which, op, prefix, spec = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
bucket = spec["bucket"]
if which == "boto3":
    import boto3
    from boto3.s3.transfer import TransferConfig
    c = boto3.client("s3", endpoint_url=os.environ["BENCH_ENDPOINT"])
else:
    if which == "plait":
        from plait import S3
    else:
        from metaflow import S3
    with S3(s3root="s3://%s" % bucket) as s3:  # warm up like the boto3 client above: not timed
        s3.info("warm-up", return_missing=True)
if op == "small":
    n, size = spec["n"], spec["size"]
    items = [("%s/%05d" % (prefix, i), os.urandom(size)) for i in range(n)]
    keys = [k for k, _ in items]
    t0 = time.perf_counter()
    if which == "boto3":
        for k, v in items:
            c.put_object(Bucket=bucket, Key=k, Body=v)
    else:
        with S3(s3root="s3://%s" % bucket) as s3:
            s3.put_many(items)
    t1 = time.perf_counter()
    if which == "boto3":
        got = [c.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys]
    else:
        with S3(s3root="s3://%s" % bucket) as s3:
            got = [o.blob for o in s3.get_many(keys)]
    t2 = time.perf_counter()
    assert got == [v for _, v in items], "wrong data"
    print(json.dumps({"put": t1 - t0, "get": t2 - t1}))
elif op == "large":
    files, outdir = spec["files"], spec["outdir"]
    keys = ["%s/big%d" % (prefix, i) for i in range(len(files))]
    t0 = time.perf_counter()
    if which == "boto3":
        for k, f in zip(keys, files):
            c.upload_file(f, bucket, k)
    else:
        with S3(s3root="s3://%s" % bucket) as s3:
            s3.put_files(list(zip(keys, files)))
    t1 = time.perf_counter()
    sizes = []
    if which == "boto3":
        for i, k in enumerate(keys):
            out = os.path.join(outdir, "dl%d" % i)
            c.download_file(bucket, k, out)
            sizes.append(os.path.getsize(out))
        t2 = time.perf_counter()
    else:
        with S3(s3root="s3://%s" % bucket, tmproot=outdir) as s3:
            objs = s3.get_many(keys, return_info=False)
            sizes = [os.path.getsize(o.path) for o in objs]
            t2 = time.perf_counter()
    assert sizes == [os.path.getsize(f) for f in files], sizes
    print(json.dumps({"put": t1 - t0, "get": t2 - t1}))
'''


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def metaflow_python(given: str | None) -> str:
    if given:
        return given
    py = METAFLOW_VENV / "bin" / "python"
    if not py.exists():
        log(f"creating {METAFLOW_VENV} ({' '.join(METAFLOW_REQS)}) ...")
        subprocess.run([sys.executable, "-m", "venv", str(METAFLOW_VENV)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "--quiet", *METAFLOW_REQS], check=True)
    return str(py)


def start_server() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "plait_s3.testing"], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, **CREDS})
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url.startswith("http"):
        proc.kill()
        raise SystemExit("the moto server did not start")
    from plait_s3.testing import create_bucket

    os.environ.update(CREDS)
    create_bucket(url, BUCKET)
    return proc, url


def clean_env(endpoint: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("METAFLOW_", "PLAIT_", "AWS_"))}
    env.pop("PYTHONPATH", None)
    env.update(CREDS)
    env["BENCH_ENDPOINT"] = endpoint
    env["PLAIT_S3_ENDPOINT_URL"] = endpoint  # Plait
    env["METAFLOW_S3_ENDPOINT_URL"] = endpoint  # Metaflow
    env["USER"] = env.get("USER", "bench")
    return env


def timed(cmd: list[str], cwd: str, env: dict[str, str], timeout: float = 1800) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return elapsed


def bench_flow(repeat: int, mf_py: str, endpoint: str, work: Path) -> dict[str, list[float]]:
    flows = work / "flows"
    flows.mkdir(exist_ok=True)
    (flows / "mf_flow.py").write_text(FLOW)
    plait_src = FLOW.replace("from metaflow import", "from plait import")
    assert "metaflow" not in plait_src.lower().replace("from plait import", "")
    (flows / "plait_flow.py").write_text(plait_src)
    env = clean_env(endpoint)
    out: dict[str, list[float]] = {"plait": [], "metaflow": []}
    for r in range(repeat):
        order = ["plait", "metaflow"] if r % 2 == 0 else ["metaflow", "plait"]
        for who in order:
            cwd = tempfile.mkdtemp(dir=work, prefix=f"flow-{who}-")
            if who == "plait":
                cmd = [sys.executable, str(flows / "plait_flow.py"), "--datastore", "s3", "--datastore-root",
                       f"s3://{BUCKET}/plait-flow", "run"]
                e = env
            else:
                cmd = [mf_py, str(flows / "mf_flow.py"), "--datastore", "s3", "--metadata", "local", "run"]
                e = {**env, "METAFLOW_DATASTORE_SYSROOT_S3": f"s3://{BUCKET}/metaflow-flow",
                     "METAFLOW_HOME": cwd, "METAFLOW_DEFAULT_METADATA": "local"}
            out[who].append(timed(cmd, cwd, e))
            log(f"  flow {who}: {out[who][-1]:.2f} s")
            shutil.rmtree(cwd, ignore_errors=True)
    return out


SERVER_PID: list[int] = []


def server_cpu() -> float:
    """CPU seconds (user+sys) the S3 server process has used so far."""
    fields = Path(f"/proc/{SERVER_PID[0]}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_tool(who: str, py: str, op: str, prefix: str, spec: dict[str, object], env: dict[str, str],
             cwd: str) -> dict[str, float]:
    before = server_cpu()
    proc = subprocess.run([py, "-c", TOOL, who, op, prefix, json.dumps(spec)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"{who} {op} failed:\n{proc.stderr[-3000:]}")
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    result["server_cpu"] = server_cpu() - before
    return result


def delete_prefix(endpoint: str, prefix: str) -> None:
    from plait_s3.testing import boto_client

    c = boto_client(endpoint)
    while True:
        listed = c.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
        if not listed:
            return
        c.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": o["Key"]} for o in listed]})


def bench_tool(op: str, repeat: int, mf_py: str, endpoint: str, work: Path, spec: dict[str, object]
               ) -> dict[str, dict[str, list[float]]]:
    env = clean_env(endpoint)
    pythons = {"plait": sys.executable, "metaflow": mf_py, "boto3": sys.executable}
    out: dict[str, dict[str, list[float]]] = {w: {"put": [], "get": [], "server_cpu": []} for w in pythons}
    for r in range(repeat):
        order = list(pythons)[r % 3:] + list(pythons)[: r % 3]
        for who in order:
            prefix = f"{op}-{who}-{r}"
            outdir = tempfile.mkdtemp(dir=work, prefix=f"{op}-{who}-")
            res = run_tool(who, pythons[who], op, prefix, {**spec, "outdir": outdir}, env, outdir)
            for k in ("put", "get", "server_cpu"):
                out[who][k].append(res[k])
            log(f"  {op} {who}: put {res['put']:.2f} s, get {res['get']:.2f} s")
            shutil.rmtree(outdir, ignore_errors=True)
            delete_prefix(endpoint, prefix + "/")
    return out


def med(xs: list[float]) -> float:
    return statistics.median(xs)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", default="flow,small,large")
    ap.add_argument("--quick", action="store_true", help="small sizes (smoke check; do not quote)")
    ap.add_argument("--metaflow-python", default=None)
    ap.add_argument("--output", default=str(HERE / "results" / "s3.json"))
    args = ap.parse_args()
    only = set(args.only.split(","))
    mf_py = metaflow_python(args.metaflow_python)
    server, endpoint = start_server()
    SERVER_PID.append(server.pid)
    work = Path(tempfile.mkdtemp(prefix="plait-s3-bench-"))
    results: dict[str, object] = {"endpoint": "moto server (plait_s3.testing), 127.0.0.1", "repeat": args.repeat}
    lines = []
    try:
        if "flow" in only:
            log("flow: 200 small artifacts, --datastore s3")
            flow = bench_flow(args.repeat, mf_py, endpoint, work)
            results["flow"] = flow
            ratio = med(flow["metaflow"]) / med(flow["plait"])
            lines.append(f"flow, 200 small artifacts      plait {med(flow['plait']):7.2f} s   "
                         f"metaflow {med(flow['metaflow']):7.2f} s   metaflow/plait {ratio:5.1f}x  (bar >= 5x)")
        if "small" in only:
            n = 200 if args.quick else 1000
            log(f"small: {n} x 10 KB")
            small = bench_tool("small", args.repeat, mf_py, endpoint, work, {"bucket": BUCKET, "n": n, "size": 10240})
            results["small"] = small
            for k in ("put", "get"):
                p, m, b = (med(small[w][k]) for w in ("plait", "metaflow", "boto3"))
                lines.append(f"{k}_many {n} x 10 KB           plait {p:7.2f} s   metaflow {m:7.2f} s   "
                             f"boto3 seq {b:7.2f} s   boto3/plait {b / p:5.1f}x  (bar >= 3x)")
            per_req = med(small["boto3"]["server_cpu"]) / (2 * n) * 1000
            lines.append(f"  the server's own CPU per request: {per_req:.2f} ms, so no client can do {n} requests "
                         f"in less than ~{per_req * n / 1000:.2f} s against it")
        if "large" in only:
            size = (32 if args.quick else 256) * 1024 * 1024
            log(f"large: 4 x {size >> 20} MiB")
            files = []
            for i in range(4):
                path = work / f"src{i}.bin"
                with open(path, "wb") as f:
                    for _ in range(size // (16 << 20)):
                        f.write(os.urandom(16 << 20))
                files.append(str(path))
            large = bench_tool("large", args.repeat, mf_py, endpoint, work, {"bucket": BUCKET, "files": files})
            results["large"] = large
            total_mb = 4 * size / 1e6
            for k in ("put", "get"):
                p, m, b = (total_mb / med(large[w][k]) for w in ("plait", "metaflow", "boto3"))
                lines.append(f"{'put_files' if k == 'put' else 'get_many'} 4 x {size >> 20} MiB       "
                             f"plait {p:7.0f} MB/s  metaflow {m:7.0f} MB/s  boto3 {b:7.0f} MB/s  "
                             f"plait/boto3 {p / b:5.0%}  (bar >= 80%)")
    finally:
        server.kill()
        shutil.rmtree(work, ignore_errors=True)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(results, indent=2))
    print(textwrap.dedent(f"""
        S3 benchmarks (median of {args.repeat}; one moto server on 127.0.0.1; {os.cpu_count()} cores)
    """).strip())
    for line in lines:
        print("  " + line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
