"""The local metadata provider: every run, task and attempt of one root in ONE SQLite file.

Why SQLite: one compact file (``<root>/metadata.sqlite``) instead of dozens of small files per
task; multi-row updates are atomic; WAL mode lets many forked task processes write while the
scheduler and clients keep reading. The root must be on a local filesystem (WAL needs shared
memory, which network filesystems do not provide).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from plait.exceptions import PlaitException
from plait.metadata.provider import (
    AttemptRecord,
    MetadataProvider,
    RunRecord,
    TaskRecord,
)

DB_NAME = "metadata.sqlite"
SCHEMA_VERSION = 1  # stored in PRAGMA user_version: opening skips DDL when it matches
BUSY_TIMEOUT_S = 60.0  # many task processes may queue for the single writer lock

_SCHEMA = (
    # `id` (rowid) is the insertion order, so "newest first" never depends on clocks.
    """CREATE TABLE IF NOT EXISTS runs (
        id INTEGER PRIMARY KEY,
        flow TEXT NOT NULL,
        run_id TEXT NOT NULL,
        user TEXT NOT NULL,
        created_at REAL NOT NULL,
        finished_at REAL,
        success INTEGER,
        origin_run_id TEXT,
        parameters TEXT NOT NULL DEFAULT '{}',
        UNIQUE (flow, run_id))""",
    "CREATE INDEX IF NOT EXISTS runs_newest ON runs (flow, id)",
    """CREATE TABLE IF NOT EXISTS run_tags (
        run INTEGER NOT NULL,
        tag TEXT NOT NULL,
        system INTEGER NOT NULL,
        PRIMARY KEY (run, tag, system)) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS run_tags_by_tag ON run_tags (tag, run)",
    """CREATE TABLE IF NOT EXISTS tasks (
        id INTEGER PRIMARY KEY,
        run INTEGER NOT NULL,
        step TEXT NOT NULL,
        task_id TEXT NOT NULL,
        created_at REAL NOT NULL,
        foreach_key TEXT NOT NULL,
        input_paths TEXT NOT NULL,
        cloned_from TEXT,
        UNIQUE (run, step, task_id))""",
    """CREATE TABLE IF NOT EXISTS attempts (
        task INTEGER NOT NULL,
        attempt INTEGER NOT NULL,
        started_at REAL NOT NULL,
        finished_at REAL,
        success INTEGER,
        exception TEXT,
        metadata TEXT NOT NULL,
        PRIMARY KEY (task, attempt)) WITHOUT ROWID""",
)

_RUN_COLS = "id, flow, run_id, user, created_at, finished_at, success, origin_run_id, parameters"
_TASK_COLS = "t.id, t.step, t.task_id, t.created_at, t.foreach_key, t.input_paths, t.cloned_from"
_ATTEMPT_COLS = "a.task, a.attempt, a.started_at, a.finished_at, a.success, a.exception, a.metadata"
_TASKS_OF_RUN = "FROM tasks t JOIN runs r ON t.run = r.id WHERE r.flow = ? AND r.run_id = ?"

# Connections inherited across fork. SQLite forbids using (even closing) a connection in the
# child: a rollback there could rewrite the parent's shared WAL index. Keep them referenced.
_INHERITED: list[sqlite3.Connection] = []
_REOPEN_LOCK = threading.Lock()


def _reset_after_fork() -> None:
    global _REOPEN_LOCK
    _REOPEN_LOCK = threading.Lock()  # another thread may have held it at fork time


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def _clean_tags(tags: Iterable[str]) -> list[str]:
    """Validate and dedupe tags; a bare string is a bug (it would become one tag per char)."""
    if isinstance(tags, (str, bytes)):
        raise PlaitException(f"Tags must be a list of strings, not the string {tags!r}: wrap it in a list.")
    out: list[str] = []
    for tag in tags:
        if not isinstance(tag, str) or not tag:
            raise PlaitException(f"Invalid tag {tag!r}: a tag must be a non-empty string.")
        if tag not in out:
            out.append(tag)
    return out


def _dumps(value: dict[str, Any]) -> str:
    return json.dumps(value, default=str, sort_keys=True)


def _flag(value: int | None) -> bool | None:
    return None if value is None else bool(value)


class LocalMetadataProvider(MetadataProvider):
    """SQLite-backed provider; safe for many processes, with one connection per process."""

    name = "local"

    def __init__(self, root: str) -> None:
        super().__init__(root)
        self.path = os.path.join(os.path.abspath(os.path.expanduser(root)), DB_NAME)
        self._pid = -1  # the process that opened ``_conn``; -1 means not opened yet
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.RLock()

    # -- connection handling ----------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        return {"root": self.root}  # picklable for spawn/remote use: reopens lazily

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["root"])  # type: ignore[misc]

    def close(self) -> None:
        """Close this process's connection (never one inherited from a parent)."""
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn, self._pid = None, -1

    def _connection(self) -> sqlite3.Connection:
        """This process's connection, reopened lazily after a fork."""
        pid = os.getpid()
        if self._pid != pid or self._conn is None:
            with _REOPEN_LOCK:
                if self._pid != pid or self._conn is None:
                    if self._conn is not None and self._pid != pid:
                        _INHERITED.append(self._conn)
                    self._lock = threading.RLock()
                    self._conn = self._open()
                    self._pid = pid
        return self._conn

    def _open(self) -> sqlite3.Connection:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                               check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        conn.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: durable enough, no fsync per commit
        if conn.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
            self._create_schema(conn)
        return conn

    def _create_schema(self, conn: sqlite3.Connection) -> None:
        """First open of a root: switch to WAL and create tables; later opens skip this."""
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while True:  # switching journal mode can report "locked" without waiting
            try:
                if conn.execute("PRAGMA journal_mode = WAL").fetchone()[0].lower() == "wal":
                    break
            except sqlite3.OperationalError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.01)
        conn.execute("BEGIN IMMEDIATE")
        try:
            if conn.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
                for stmt in _SCHEMA:
                    conn.execute(stmt)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    @contextmanager
    def _tx(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        """A short transaction; writes take the lock up front so read-modify-write is safe."""
        conn = self._connection()
        with self._lock:
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    # -- lookups --------------------------------------------------------------------------
    @staticmethod
    def _find_run(conn: sqlite3.Connection, flow: str, run_id: str) -> int | None:
        row = conn.execute("SELECT id FROM runs WHERE flow = ? AND run_id = ?", (flow, run_id)).fetchone()
        return None if row is None else int(row[0])

    def _run_pk(self, conn: sqlite3.Connection, flow: str, run_id: str) -> int:
        pk = self._find_run(conn, flow, str(run_id))
        if pk is None:
            raise PlaitException(f"Run {flow}/{run_id} does not exist in the metadata at {self.root}: "
                                 "create it with new_run() first, or check the flow name and run id.")
        return pk

    def _task_pk(self, conn: sqlite3.Connection, flow: str, run_id: str, step: str, task_id: str) -> int:
        row = conn.execute(f"SELECT t.id {_TASKS_OF_RUN} AND t.step = ? AND t.task_id = ?",
                           (flow, str(run_id), step, str(task_id))).fetchone()
        if row is None:
            raise PlaitException(f"Task {flow}/{run_id}/{step}/{task_id} does not exist in the metadata at "
                                 f"{self.root}: register it with new_task() first.")
        return int(row[0])

    def _runs(self, conn: sqlite3.Connection, rows: Sequence[tuple[Any, ...]]) -> list[RunRecord]:
        tags: dict[int, tuple[list[str], list[str]]] = {row[0]: ([], []) for row in rows}
        pks = list(tags)
        for i in range(0, len(pks), 500):  # stay under SQLite's bound-parameter limit
            chunk = pks[i:i + 500]
            marks = ",".join("?" * len(chunk))
            for run, tag, system in conn.execute(
                    f"SELECT run, tag, system FROM run_tags WHERE run IN ({marks}) ORDER BY run, tag", chunk):
                tags[run][1 if system else 0].append(tag)
        return [RunRecord(flow=r[1], run_id=r[2], user=r[3], created_at=r[4], finished_at=r[5],
                          success=_flag(r[6]), origin_run_id=r[7], parameters=json.loads(r[8]),
                          tags=tags[r[0]][0], system_tags=tags[r[0]][1]) for r in rows]

    # -- runs -----------------------------------------------------------------------------
    def new_run(
        self,
        flow: str,
        user: str,
        tags: Iterable[str] = (),
        system_tags: Iterable[str] = (),
        origin_run_id: str | None = None,
        run_id: str | None = None,
    ) -> str:
        """Allocate a Metaflow-like numeric id (epoch microseconds), bumped past any taken id."""
        user_tags, sys_tags = _clean_tags(tags), _clean_tags(system_tags)
        now = time.time()
        with self._tx(write=True) as conn:
            if run_id is not None:
                run_id = str(run_id)
                if self._find_run(conn, flow, run_id) is not None:
                    raise PlaitException(f"Run {flow}/{run_id} already exists in the metadata at "
                                         f"{self.root}: choose another run id, or omit it to get a new one.")
            else:
                candidate = int(now * 1_000_000)
                while self._find_run(conn, flow, str(candidate)) is not None:
                    candidate += 1  # the write lock is held: nobody else can take it meanwhile
                run_id = str(candidate)
            pk = conn.execute(
                "INSERT INTO runs (flow, run_id, user, created_at, origin_run_id) VALUES (?, ?, ?, ?, ?)",
                (flow, run_id, user, now, origin_run_id)).lastrowid
            conn.executemany("INSERT OR IGNORE INTO run_tags (run, tag, system) VALUES (?, ?, ?)",
                             [(pk, t, 0) for t in user_tags] + [(pk, t, 1) for t in sys_tags])
        return run_id

    def set_run_parameters(self, flow: str, run_id: str, parameters: dict[str, Any]) -> None:
        with self._tx(write=True) as conn:
            pk = self._run_pk(conn, flow, run_id)
            conn.execute("UPDATE runs SET parameters = ? WHERE id = ?", (_dumps(parameters), pk))

    def finish_run(self, flow: str, run_id: str, success: bool) -> None:
        with self._tx(write=True) as conn:
            pk = self._run_pk(conn, flow, run_id)
            conn.execute("UPDATE runs SET finished_at = ?, success = ? WHERE id = ?",
                         (time.time(), int(bool(success)), pk))

    def get_run(self, flow: str, run_id: str) -> RunRecord | None:
        with self._tx() as conn:
            rows = conn.execute(f"SELECT {_RUN_COLS} FROM runs WHERE flow = ? AND run_id = ?",
                                (flow, str(run_id))).fetchall()
            runs = self._runs(conn, rows)
        return runs[0] if runs else None

    def list_runs(self, flow: str, tags: Iterable[str] = (), limit: int | None = None) -> list[RunRecord]:
        """Newest first by insertion order; walks the (flow, id) index backwards, so
        ``limit=1`` reads one row however many runs exist."""
        sql = f"SELECT {_RUN_COLS} FROM runs WHERE flow = ?"
        args: list[Any] = [flow]
        for tag in _clean_tags(tags):
            sql += " AND EXISTS (SELECT 1 FROM run_tags g WHERE g.run = runs.id AND g.tag = ?)"
            args.append(tag)
        sql += " ORDER BY id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(max(int(limit), 0))
        with self._tx() as conn:
            return self._runs(conn, conn.execute(sql, args).fetchall())

    def list_flows(self) -> list[str]:
        with self._tx() as conn:
            return [r[0] for r in conn.execute("SELECT DISTINCT flow FROM runs ORDER BY flow")]

    def add_tags(self, flow: str, run_id: str, tags: Iterable[str]) -> None:
        user_tags = _clean_tags(tags)
        with self._tx(write=True) as conn:
            pk = self._run_pk(conn, flow, run_id)
            conn.executemany("INSERT OR IGNORE INTO run_tags (run, tag, system) VALUES (?, ?, 0)",
                             [(pk, t) for t in user_tags])

    def remove_tags(self, flow: str, run_id: str, tags: Iterable[str]) -> None:
        """Only user tags are deleted; asking to remove a system tag leaves it in place."""
        user_tags = _clean_tags(tags)
        with self._tx(write=True) as conn:
            pk = self._run_pk(conn, flow, run_id)
            conn.executemany("DELETE FROM run_tags WHERE run = ? AND tag = ? AND system = 0",
                             [(pk, t) for t in user_tags])

    def iter_runs(self, flow: str, tags: Iterable[str] = (), success: bool | None = None,
                  page_size: int = 100) -> Iterator[RunRecord]:
        """Keyset pages over the (flow, id) index, newest first: the first run costs one short
        query whatever the number of runs, and no transaction stays open between pages."""
        where = "flow = ?"
        args: list[Any] = [flow]
        for tag in _clean_tags(tags):
            where += " AND EXISTS (SELECT 1 FROM run_tags g WHERE g.run = runs.id AND g.tag = ?)"
            args.append(tag)
        if success is not None:
            where += " AND success = ?"
            args.append(int(bool(success)))
        size = max(int(page_size), 1)
        cursor: int | None = None
        while True:
            sql = f"SELECT {_RUN_COLS} FROM runs WHERE {where}"
            page_args = list(args)
            if cursor is not None:
                sql += " AND id < ?"
                page_args.append(cursor)
            sql += " ORDER BY id DESC LIMIT ?"
            page_args.append(size)
            with self._tx() as conn:
                rows = conn.execute(sql, page_args).fetchall()
                records = self._runs(conn, rows)
            yield from records
            if len(rows) < size:
                return
            cursor = int(rows[-1][0])
            size = min(size * 4, 2000)

    def replace_tags(self, flow: str, run_id: str, remove: Iterable[str], add: Iterable[str]) -> list[str]:
        """One write transaction: another process sees the old tags or the new ones."""
        to_remove, to_add = _clean_tags(remove), _clean_tags(add)
        with self._tx(write=True) as conn:
            pk = self._run_pk(conn, flow, run_id)
            conn.executemany("DELETE FROM run_tags WHERE run = ? AND tag = ? AND system = 0",
                             [(pk, t) for t in to_remove])
            system = {r[0] for r in conn.execute("SELECT tag FROM run_tags WHERE run = ? AND system = 1", (pk,))}
            conn.executemany("INSERT OR IGNORE INTO run_tags (run, tag, system) VALUES (?, ?, 0)",
                             [(pk, t) for t in to_add if t not in system])
            return [r[0] for r in conn.execute(
                "SELECT tag FROM run_tags WHERE run = ? AND system = 0 ORDER BY tag", (pk,))]

    # -- tasks ----------------------------------------------------------------------------
    def new_task(
        self,
        flow: str,
        run_id: str,
        step: str,
        task_id: str,
        foreach_key: str = "",
        input_paths: Iterable[str] = (),
        cloned_from: str | None = None,
    ) -> None:
        """Idempotent: registering the same ids again keeps the first registration."""
        paths = json.dumps([str(p) for p in input_paths])
        with self._tx(write=True) as conn:
            pk = self._run_pk(conn, flow, run_id)
            conn.execute(
                "INSERT OR IGNORE INTO tasks (run, step, task_id, created_at, foreach_key, input_paths,"
                " cloned_from) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (pk, step, str(task_id), time.time(), foreach_key, paths, cloned_from))

    def start_attempt(self, flow: str, run_id: str, step: str, task_id: str, attempt: int,
                      metadata: dict[str, Any] | None = None) -> None:
        """Starting an attempt again (a relaunch) resets its outcome."""
        with self._tx(write=True) as conn:
            pk = self._task_pk(conn, flow, run_id, step, task_id)
            conn.execute("INSERT OR REPLACE INTO attempts (task, attempt, started_at, metadata)"
                         " VALUES (?, ?, ?, ?)", (pk, int(attempt), time.time(), _dumps(metadata or {})))

    def finish_attempt(self, flow: str, run_id: str, step: str, task_id: str, attempt: int,
                       success: bool, exception: str | None = None,
                       metadata: dict[str, Any] | None = None) -> None:
        """``metadata`` is merged over the start's. An attempt that never started (its launch
        failed) is recorded anyway, starting and finishing now."""
        now = time.time()
        with self._tx(write=True) as conn:
            pk = self._task_pk(conn, flow, run_id, step, task_id)
            row = conn.execute("SELECT metadata FROM attempts WHERE task = ? AND attempt = ?",
                               (pk, int(attempt))).fetchone()
            merged = json.loads(row[0]) if row else {}
            merged.update(metadata or {})
            if row is None:
                conn.execute("INSERT INTO attempts (task, attempt, started_at, metadata) VALUES (?, ?, ?, ?)",
                             (pk, int(attempt), now, "{}"))
            conn.execute("UPDATE attempts SET finished_at = ?, success = ?, exception = ?, metadata = ?"
                         " WHERE task = ? AND attempt = ?",
                         (now, int(bool(success)), exception, _dumps(merged), pk, int(attempt)))

    def list_steps(self, flow: str, run_id: str) -> list[str]:
        with self._tx() as conn:
            rows = conn.execute(f"SELECT t.step {_TASKS_OF_RUN} GROUP BY t.step ORDER BY MIN(t.id)",
                                (flow, str(run_id))).fetchall()
        return [r[0] for r in rows]

    def list_tasks(self, flow: str, run_id: str, step: str | None = None) -> list[TaskRecord]:
        if step is None:
            return self._tasks(flow, run_id, "", ())
        return self._tasks(flow, run_id, " AND t.step = ?", (step,))

    def get_task(self, flow: str, run_id: str, step: str, task_id: str) -> TaskRecord | None:
        tasks = self._tasks(flow, run_id, " AND t.step = ? AND t.task_id = ?", (step, str(task_id)))
        return tasks[0] if tasks else None

    def _tasks(self, flow: str, run_id: str, where: str, extra: tuple[str, ...]) -> list[TaskRecord]:
        """Tasks with their attempts: two queries in one snapshot, not one query per task."""
        args = (flow, str(run_id), *extra)
        with self._tx() as conn:
            task_rows = conn.execute(f"SELECT {_TASK_COLS} {_TASKS_OF_RUN}{where} ORDER BY t.id", args).fetchall()
            attempt_rows = conn.execute(
                f"SELECT {_ATTEMPT_COLS} FROM attempts a JOIN tasks t ON a.task = t.id JOIN runs r"
                f" ON t.run = r.id WHERE r.flow = ? AND r.run_id = ?{where} ORDER BY a.task, a.attempt",
                args).fetchall()
        attempts: dict[int, list[AttemptRecord]] = {}
        for a in attempt_rows:
            attempts.setdefault(a[0], []).append(AttemptRecord(
                attempt=a[1], started_at=a[2], finished_at=a[3], success=_flag(a[4]),
                exception=a[5], metadata=json.loads(a[6])))
        return [TaskRecord(flow=flow, run_id=str(run_id), step=t[1], task_id=t[2], created_at=t[3],
                           foreach_key=t[4], input_paths=json.loads(t[5]), cloned_from=t[6],
                           attempts=attempts.get(t[0], [])) for t in task_rows]
