"""``S3.select``: S3 Select SQL on CSV, JSON-lines and Parquet objects.

Server-side S3 Select is tried first where allowed; AWS closed it to new customers in 2024 and
most S3-compatible stores never had it, so the usual path is the local one: download the
object, read it with pyarrow, and run the same SQL subset on the table. The result records
which engine ran, and why the server was not used.

The local engine understands the subset of S3 Select SQL that covers the common uses::

    SELECT * | col [AS name], ... | COUNT(*) | SUM/AVG/MIN/MAX(col)
    FROM S3Object [[AS] alias]
    [WHERE <cond>]  -- = != <> < <= > >=, AND OR NOT, IS [NOT] NULL, [NOT] IN (...),
                    -- [NOT] LIKE '..%', BETWEEN a AND b, CAST(x AS INT|FLOAT|DECIMAL|STRING|BOOL)
    [LIMIT n]

Unlike S3 Select on CSV (where every field is a string until CAST), pyarrow infers column types,
so ``WHERE s.b > 3`` compares numbers.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from . import client, ops
from .errors import PlaitS3Exception

FORMATS = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json", ".ndjson": "json",
           ".parquet": "parquet", ".pq": "parquet"}


@dataclass
class S3SelectResult:
    """Rows of a ``select``: ``records`` (list of dicts), and which engine produced them."""

    records: list[dict[str, Any]]
    engine: str  # "s3-select" (server side) or "pyarrow" (downloaded and filtered locally)
    reason: str | None = None  # why the server was not used, when it was not
    url: str = ""
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def server_side(self) -> bool:
        return self.engine == "s3-select"

    def __iter__(self) -> Any:
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)

    def __repr__(self) -> str:
        how = "server side" if self.server_side else f"locally with pyarrow ({self.reason})"
        return f"<S3SelectResult {len(self.records)} records from {self.url}, {how}>"


def detect_format(url: str, given: str | None) -> tuple[str, str | None]:
    """``(format, compression)`` from ``given`` or the key's suffixes."""
    name = url.lower()
    compression = None
    for suffix, comp in ((".gz", "GZIP"), (".bz2", "BZIP2")):
        if name.endswith(suffix):
            compression, name = comp, name[: -len(suffix)]
    if given:
        fmt = given.lower()
        if fmt not in ("csv", "json", "parquet"):
            raise PlaitS3Exception(f"Unknown input_format {given!r}: use csv, json or parquet")
        return fmt, compression
    for suffix, fmt in FORMATS.items():
        if name.endswith(suffix):
            return fmt, compression
    raise PlaitS3Exception(f"Cannot tell the format of {url} from its name: pass input_format='csv'|'json'|'parquet'")


def run_select(url: str, expression: str, input_format: str | None, engine: str,
               options: dict[str, Any]) -> S3SelectResult:
    if engine not in ("auto", "server", "local"):
        raise ValueError("engine must be 'auto', 'server' or 'local'")
    fmt, compression = detect_format(url, input_format)
    reason = "engine='local' was asked for"
    if engine != "local":
        try:
            records = client.run(_server_select, url, expression, fmt, compression, options)
            return S3SelectResult(records, "s3-select", None, url)
        except Exception as exc:  # noqa: BLE001 - anything the server cannot do goes local
            if engine == "server":
                raise client.translate(exc, url) from exc
            reason = f"server-side S3 Select failed: {type(exc).__name__}: {_short(exc)}"
    records = local_select(url, expression, fmt, compression, options)
    return S3SelectResult(records, "pyarrow", reason, url)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return text[:300]


async def _server_select(url: str, expression: str, fmt: str, compression: str | None,
                         options: dict[str, Any]) -> list[dict[str, Any]]:
    bucket, key = client.split_url(url)
    c = await client.aclient(attempts=1)
    if fmt == "csv":
        csv: dict[str, Any] = {"FileHeaderInfo": str(options.get("header", "USE")).upper()}
        if options.get("delimiter"):
            csv["FieldDelimiter"] = options["delimiter"]
        inp: dict[str, Any] = {"CSV": csv}
    elif fmt == "json":
        inp = {"JSON": {"Type": str(options.get("json_type", "LINES")).upper()}}
    else:
        inp = {"Parquet": {}}
    if compression:
        inp["CompressionType"] = compression
    resp = await c.select_object_content(Bucket=bucket, Key=key, Expression=expression, ExpressionType="SQL",
                                         InputSerialization=inp, OutputSerialization={"JSON": {}})
    payload = bytearray()
    async for event in resp["Payload"]:
        if "Records" in event:
            payload += event["Records"]["Payload"]
    records = []
    for line in payload.decode("utf-8").splitlines():
        if line.strip():
            records.append(json.loads(line))
    return records


# -- the local engine --------------------------------------------------------------------------
def local_select(url: str, expression: str, fmt: str, compression: str | None,
                 options: dict[str, Any]) -> list[dict[str, Any]]:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise PlaitS3Exception("S3.select() without server-side S3 Select needs pyarrow: "
                               "pip install 'plait-s3[select]'") from None
    query = parse(expression)
    got = client.run(ops.get_bytes, *client.split_url(url))
    assert got is not None
    table = read_table(got[0], fmt, compression, options)
    return execute(query, table)


def read_table(data: bytes, fmt: str, compression: str | None, options: dict[str, Any]) -> Any:
    import io

    import pyarrow as pa

    if compression == "GZIP":
        import gzip

        data = gzip.decompress(data)
    elif compression == "BZIP2":
        import bz2

        data = bz2.decompress(data)
    buf = pa.BufferReader(data)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return pq.read_table(buf)
    if fmt == "json":
        import pyarrow.json as pj

        return pj.read_json(buf)
    import pyarrow.csv as pc

    header = str(options.get("header", "USE")).upper()
    read = pc.ReadOptions(autogenerate_column_names=header == "NONE", skip_rows=1 if header == "IGNORE" else 0)
    if header == "IGNORE":
        read = pc.ReadOptions(autogenerate_column_names=True, skip_rows=1)
    parse_opts = pc.ParseOptions(delimiter=options.get("delimiter", ","))
    table = pc.read_csv(io.BytesIO(data), read_options=read, parse_options=parse_opts)
    if header in ("NONE", "IGNORE"):
        table = table.rename_columns([f"_{i + 1}" for i in range(table.num_columns)])
    return table


_TOKEN = re.compile(r"""\s*(?:(?P<num>\d+\.\d*|\.\d+|\d+)|(?P<str>'(?:[^']|'')*')|(?P<qid>"(?:[^"]|"")*")
    |(?P<op><>|!=|<=|>=|=|<|>|\(|\)|,|\*|\.|-)|(?P<id>[A-Za-z_][A-Za-z0-9_]*))""", re.X)
_KEYWORDS = {"SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IS", "NULL", "LIMIT", "AS", "CAST", "TRUE",
             "FALSE", "IN", "LIKE", "BETWEEN"}
_AGGREGATES = {"COUNT", "SUM", "AVG", "MIN", "MAX"}


def _tokens(sql: str) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    pos = 0
    sql = sql.strip().rstrip(";")
    while pos < len(sql):
        m = _TOKEN.match(sql, pos)
        if m is None or m.end() == pos:
            raise PlaitS3Exception(f"Cannot parse the S3 Select expression near: {sql[pos:pos + 30]!r}")
        pos = m.end()
        kind = m.lastgroup
        text = m.group(kind)  # type: ignore[arg-type]
        if kind == "num":
            out.append(("lit", float(text) if "." in text else int(text)))
        elif kind == "str":
            out.append(("lit", text[1:-1].replace("''", "'")))
        elif kind == "qid":
            out.append(("id", text[1:-1].replace('""', '"')))
        elif kind == "id" and text.upper() in _KEYWORDS:
            out.append(("kw", text.upper()))
        elif kind == "id":
            out.append(("id", text))
        else:
            out.append(("op", text))
    out.append(("end", None))
    return out


@dataclass
class Query:
    columns: list[tuple[Any, str]]  # (expression, output name); empty = *
    where: Any = None
    limit: int | None = None


class _Parser:
    def __init__(self, sql: str) -> None:
        self.toks = _tokens(sql)
        self.i = 0
        self.alias: str | None = None

    def peek(self, kind: str, value: Any = None) -> bool:
        k, v = self.toks[self.i]
        return k == kind and (value is None or v == value)

    def take(self, kind: str, value: Any = None) -> Any:
        if not self.peek(kind, value):
            k, v = self.toks[self.i]
            want = value or kind
            raise PlaitS3Exception(f"S3 Select expression: expected {want}, found {v if v is not None else 'the end'}")
        v = self.toks[self.i][1]
        self.i += 1
        return v

    def accept(self, kind: str, value: Any = None) -> bool:
        if self.peek(kind, value):
            self.i += 1
            return True
        return False

    def query(self) -> Query:
        self.take("kw", "SELECT")
        start = self.i
        depth = 0
        while not (depth == 0 and self.peek("kw", "FROM")):  # skip to FROM to learn the alias first
            if self.peek("end"):
                raise PlaitS3Exception("S3 Select expression has no FROM S3Object")
            depth += self.peek("op", "(") - self.peek("op", ")")
            self.i += 1
        self.take("kw", "FROM")
        source = self.take("id")
        if source.lower() != "s3object":
            raise PlaitS3Exception(f"S3 Select reads FROM S3Object, not {source!r}")
        if self.accept("op", "["):
            pass
        self.accept("kw", "AS")
        if self.peek("id"):
            self.alias = self.take("id")
        where = self.expr() if self.accept("kw", "WHERE") else None
        limit = int(self.take("lit")) if self.accept("kw", "LIMIT") else None
        self.take("end")
        end = self.i
        self.i = start
        columns = self.columns()
        self.i = end
        return Query(columns, where, limit)

    def columns(self) -> list[tuple[Any, str]]:
        if self.accept("op", "*"):
            return []
        cols = []
        n = 0
        while True:
            n += 1
            e = self.operand()
            name = e[1] if e[0] == "col" else (f"_{n}" if e[0] != "agg" else f"_{n}")
            if self.accept("kw", "AS"):
                name = self.take("id")
            cols.append((e, name))
            if not self.accept("op", ","):
                break
        if not self.peek("kw", "FROM"):
            raise PlaitS3Exception("S3 Select expression: expected FROM after the columns")
        return cols

    def expr(self) -> Any:
        e = self.conj()
        while self.accept("kw", "OR"):
            e = ("or", e, self.conj())
        return e

    def conj(self) -> Any:
        e = self.neg()
        while self.accept("kw", "AND"):
            e = ("and", e, self.neg())
        return e

    def neg(self) -> Any:
        if self.accept("kw", "NOT"):
            return ("not", self.neg())
        return self.comparison()

    def comparison(self) -> Any:
        left = self.operand()
        if self.peek("op") and self.toks[self.i][1] in ("=", "!=", "<>", "<", "<=", ">", ">="):
            op = self.take("op")
            return ("cmp", "!=" if op == "<>" else op, left, self.operand())
        if self.accept("kw", "IS"):
            negate = self.accept("kw", "NOT")
            self.take("kw", "NULL")
            null: Any = ("isnull", left)
            return ("not", null) if negate else null
        negate = self.accept("kw", "NOT")
        e: Any
        if self.accept("kw", "IN"):
            self.take("op", "(")
            values = [self.take("lit")]
            while self.accept("op", ","):
                values.append(self.take("lit"))
            self.take("op", ")")
            e = ("in", left, values)
        elif self.accept("kw", "LIKE"):
            e = ("like", left, self.take("lit"))
        elif self.accept("kw", "BETWEEN"):
            lo = self.operand()
            self.take("kw", "AND")
            e = ("and", ("cmp", ">=", left, lo), ("cmp", "<=", left, self.operand()))
        elif negate:
            raise PlaitS3Exception("S3 Select expression: NOT must be followed by IN, LIKE or BETWEEN here")
        else:
            return left
        return ("not", e) if negate else e

    def operand(self) -> Any:
        if self.accept("op", "("):
            e = self.expr()
            self.take("op", ")")
            return e
        if self.accept("op", "-"):
            return ("lit", -self.take("lit"))
        if self.peek("lit"):
            return ("lit", self.take("lit"))
        if self.accept("kw", "TRUE"):
            return ("lit", True)
        if self.accept("kw", "FALSE"):
            return ("lit", False)
        if self.accept("kw", "NULL"):
            return ("lit", None)
        if self.accept("kw", "CAST"):
            self.take("op", "(")
            inner = self.operand()
            self.take("kw", "AS")
            typ = self.take("id").upper()
            self.take("op", ")")
            return ("cast", inner, typ)
        name = self.take("id")
        if name.upper() in _AGGREGATES and self.accept("op", "("):
            arg = None if self.accept("op", "*") else self.operand()
            self.take("op", ")")
            return ("agg", name.upper(), arg)
        path = [name]
        while self.accept("op", "."):
            path.append(self.take("id") if not self.peek("op", "*") else self.take("op"))
        if self.alias and len(path) > 1 and path[0].lower() == self.alias.lower():
            path = path[1:]
        elif len(path) > 1 and path[0].lower() == "s3object":
            path = path[1:]
        return ("col", ".".join(path))


def parse(sql: str) -> Query:
    """Parse an S3 Select expression of the supported subset (see the module docstring)."""
    return _Parser(sql).query()


_CASTS = {"INT": "int64", "INTEGER": "int64", "BIGINT": "int64", "FLOAT": "float64", "DOUBLE": "float64",
          "DECIMAL": "float64", "NUMERIC": "float64", "REAL": "float64", "STRING": "string", "VARCHAR": "string",
          "CHAR": "string", "BOOL": "bool", "BOOLEAN": "bool", "TIMESTAMP": "timestamp[us]"}


def execute(query: Query, table: Any) -> list[dict[str, Any]]:
    """Run a parsed query on a pyarrow table; rows as dicts."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if query.where is not None:
        mask = _eval(query.where, table)
        if not isinstance(mask, (pa.Array, pa.ChunkedArray)):
            mask = pa.array([bool(mask.as_py() if hasattr(mask, "as_py") else mask)] * table.num_rows)
        table = table.filter(mask)
    if any(e[0] == "agg" for e, _ in query.columns):
        row = {}
        for e, name in query.columns:
            if e[0] != "agg":
                raise PlaitS3Exception("S3 Select: mixing aggregates and plain columns needs GROUP BY, "
                                       "which S3 Select does not have")
            _, fn, arg = e
            if fn == "COUNT":
                value = table.num_rows if arg is None else pc.count(_eval(arg, table)).as_py()
            else:
                values = _eval(arg, table)
                value = {"SUM": pc.sum, "AVG": pc.mean, "MIN": pc.min, "MAX": pc.max}[fn](values).as_py()
            row[name] = value
        return [row]
    if query.limit is not None:
        table = table.slice(0, query.limit)
    if not query.columns:
        return table.to_pylist()  # type: ignore[no-any-return]
    out = {}
    for e, name in query.columns:
        if e[0] == "col" and e[1].endswith("*"):
            for col in table.column_names:
                out[col] = table.column(col)
            continue
        value = _eval(e, table)
        if not isinstance(value, (pa.Array, pa.ChunkedArray)):
            value = pa.array([value.as_py() if hasattr(value, "as_py") else value] * table.num_rows)
        out[name] = value
    return pa.table(out).to_pylist()  # type: ignore[no-any-return]


def _eval(e: Any, table: Any) -> Any:
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = e[0]
    if kind == "lit":
        return pa.scalar(e[1])
    if kind == "col":
        return _column(table, e[1])
    if kind == "cast":
        target = _CASTS.get(e[2])
        if target is None:
            raise PlaitS3Exception(f"S3 Select: unsupported CAST type {e[2]}")
        return pc.cast(_eval(e[1], table), target)
    if kind == "and":
        return pc.and_kleene(_eval(e[1], table), _eval(e[2], table))
    if kind == "or":
        return pc.or_kleene(_eval(e[1], table), _eval(e[2], table))
    if kind == "not":
        return pc.invert(_eval(e[1], table))
    if kind == "isnull":
        return pc.is_null(_eval(e[1], table))
    if kind == "in":
        values = _eval(e[1], table)
        return pc.is_in(values, value_set=pa.array(e[2]).cast(values.type) if _is_array(values) else pa.array(e[2]))
    if kind == "like":
        return pc.match_like(_eval(e[1], table), e[2])
    if kind == "cmp":
        left, right = _coerce(_eval(e[2], table), _eval(e[3], table))
        fn = {"=": pc.equal, "!=": pc.not_equal, "<": pc.less, "<=": pc.less_equal, ">": pc.greater,
              ">=": pc.greater_equal}[e[1]]
        return fn(left, right)
    if kind == "agg":
        raise PlaitS3Exception("S3 Select: aggregates are allowed only in the SELECT list")
    raise PlaitS3Exception(f"S3 Select: unsupported expression {e!r}")


def _is_array(v: Any) -> bool:
    import pyarrow as pa

    return isinstance(v, (pa.Array, pa.ChunkedArray))


def _column(table: Any, name: str) -> Any:
    import pyarrow.compute as pc

    head, _, rest = name.partition(".")
    names = {c.lower(): c for c in table.column_names}
    real = head if head in table.column_names else names.get(head.lower())
    if real is None:
        raise PlaitS3Exception(f"S3 Select: no column {head!r} (columns: {', '.join(table.column_names)})")
    col = table.column(real)
    for part in rest.split(".") if rest else []:
        col = pc.struct_field(col, part)
    return col


def _coerce(left: Any, right: Any) -> tuple[Any, Any]:
    """Compare text with numbers by reading the text as numbers (S3 Select's implicit CAST)."""
    import pyarrow as pa

    lt, rt = left.type, right.type
    if pa.types.is_string(lt) and (pa.types.is_integer(rt) or pa.types.is_floating(rt)):
        return _to_number(left), right
    if pa.types.is_string(rt) and (pa.types.is_integer(lt) or pa.types.is_floating(lt)):
        return left, _to_number(right)
    return left, right


def _to_number(v: Any) -> Any:
    import pyarrow.compute as pc

    try:
        return pc.cast(v, "float64")
    except Exception as exc:  # noqa: BLE001
        raise PlaitS3Exception(f"S3 Select: cannot compare text with a number: {exc}") from None
