"""S3.select(): server-side S3 Select where the server can, pyarrow locally otherwise, and
the result says which ran."""

from __future__ import annotations

import io
import json

import pyarrow as pa  # the select() fallback needs it (requirements-dev.txt)
import pyarrow.parquet as pq
import pytest
from plait import S3
from plait_s3.errors import PlaitS3Exception
from plait_s3.select import parse

CSV = "a,b,c\n1,x,10.5\n5,y,\n7,z,3.0"


@pytest.fixture
def s3(s3root: str, tmp_path):  # type: ignore[no-untyped-def]
    with S3(s3root=s3root, tmproot=str(tmp_path)) as s3:
        s3.put("d.csv", CSV)
        s3.put("d.jsonl", "\n".join(json.dumps(r) for r in [
            {"a": 1, "b": "x", "n": {"k": 1}}, {"a": 5, "b": "y", "n": {"k": 2}}, {"a": 7, "b": None, "n": {"k": 3}}]))
        table = pa.table({"a": [1, 5, 7], "b": ["x", "y", "z"], "c": [10.5, None, 3.0]})
        buf = io.BytesIO()
        pq.write_table(table, buf)
        s3.put("d.parquet", buf.getvalue())
        yield s3


def test_server_side_when_the_server_can(s3: S3) -> None:
    result = s3.select("d.csv", "SELECT * FROM S3Object")
    assert result.server_side and result.engine == "s3-select" and result.reason is None
    assert result.records[0] == {"a": "1", "b": "x", "c": "10.5"}  # S3 Select on CSV: text


def test_local_fallback_says_so(s3: S3) -> None:
    result = s3.select("d.csv", "SELECT s.b FROM S3Object s WHERE s.a > 3")
    assert not result.server_side and result.engine == "pyarrow"
    assert "server-side S3 Select failed" in result.reason
    assert result.records == [{"b": "y"}, {"b": "z"}]
    assert "locally with pyarrow" in repr(result)


def test_parquet_and_json(s3: S3) -> None:
    pq_result = s3.select("d.parquet", "SELECT s.a, s.c AS cc FROM S3Object s WHERE s.c IS NOT NULL AND s.a < 7")
    assert pq_result.engine == "pyarrow"
    assert pq_result.records == [{"a": 1, "cc": 10.5}]
    js = s3.select("d.jsonl", "SELECT s.a FROM S3Object s WHERE s.n.k >= 2 AND s.b IS NULL", engine="local")
    assert js.records == [{"a": 7}] and js.reason == "engine='local' was asked for"


@pytest.mark.parametrize("sql,expected", [
    ("SELECT s.a FROM S3Object s WHERE s.b IN ('x', 'z')", [{"a": 1}, {"a": 7}]),
    ("SELECT s.a FROM S3Object s WHERE s.b LIKE 'y%' OR s.a BETWEEN 6 AND 8", [{"a": 5}, {"a": 7}]),
    ("SELECT s.a FROM S3Object s WHERE NOT (s.a = 1) LIMIT 1", [{"a": 5}]),
    ("SELECT COUNT(*), SUM(s.a) AS total, MAX(s.c) FROM S3Object s", [{"_1": 3, "total": 13, "_3": 10.5}]),
    ("SELECT CAST(s.a AS STRING) AS t FROM S3Object s WHERE s.a <> 5", [{"t": "1"}, {"t": "7"}]),
    ("select * from s3object where a = 5", [{"a": 5, "b": "y", "c": None}]),
])
def test_local_sql_subset(s3: S3, sql: str, expected: list) -> None:  # type: ignore[type-arg]
    assert s3.select("d.parquet", sql, engine="local").records == expected


def test_engine_server_raises_instead_of_falling_back(s3: S3) -> None:
    with pytest.raises(PlaitS3Exception):
        s3.select("d.parquet", "SELECT s.a FROM S3Object s WHERE s.a > 3", engine="server")


def test_bad_queries_are_clear() -> None:
    with pytest.raises(PlaitS3Exception, match="FROM S3Object"):
        parse("SELECT a FROM other")
    with pytest.raises(PlaitS3Exception):
        parse("SELECT a FROM S3Object WHERE a >")
