"""The SQLite run store: the standard library's :mod:`sqlite3`, through the bridge's
worker threads, so it works on asyncio and trio alike.

One connection per store, used by one thread at a time (a lock), in WAL mode with
``synchronous=NORMAL``: a commit survives a crash of the process, and readers never
block the writer. Every statement is parameterised. The schema's version is SQLite's
``user_version``; a file from a newer schema is refused, never rewritten.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .._exceptions import ConfigurationError, RunOwnershipError, StoreBusyError, StoreError
from ..bridge import to_thread
from ._sqlbatch import apply_batch
from ._store import (
    ReusableStep,
    RunStore,
    StoredAttempt,
    StoredRun,
    StoredStep,
    Write,
    maker,
)

if TYPE_CHECKING:
    import sqlite3

__all__ = ("SCHEMA_VERSION", "SqliteRunStore")

T = TypeVar("T")

#: The schema this code writes; a file with a higher ``user_version`` is refused.
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE runs (
    run_id TEXT PRIMARY KEY,
    workflow TEXT NOT NULL,
    source TEXT,
    inputs TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    duration REAL,
    error_type TEXT,
    error_message TEXT,
    outputs TEXT,
    owner TEXT,
    lease_until REAL
);
CREATE TABLE steps (
    run_id TEXT NOT NULL,
    step_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    started_at REAL,
    duration REAL,
    error_type TEXT,
    error_message TEXT,
    output TEXT,
    input_key TEXT,
    not_stored TEXT,
    PRIMARY KEY (run_id, step_id)
);
CREATE TABLE attempts (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL,
    step_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    owner TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at REAL NOT NULL,
    duration REAL,
    error_type TEXT,
    error_message TEXT
);
CREATE INDEX attempts_of_run ON attempts (run_id, step_id);
CREATE INDEX runs_by_time ON runs (created_at);
"""

_Types = dict[str, tuple[type, ...]]
_STR, _OPT_STR = (str,), (str, type(None))
_NUM, _OPT_NUM = (int, float), (int, float, type(None))
_OUTCOME: _Types = {
    "started_at": _OPT_NUM,
    "duration": _OPT_NUM,
    "error_type": _OPT_STR,
    "error_message": _OPT_STR,
}
_RUN_TYPES: _Types = {
    "run_id": _STR,
    "workflow": _STR,
    "source": _OPT_STR,
    "inputs": _STR,
    "status": _STR,
    "created_at": _NUM,
    "updated_at": _NUM,
    "duration": _OPT_NUM,
    "error_type": _OPT_STR,
    "error_message": _OPT_STR,
    "outputs": _OPT_STR,
}
_STEP_TYPES: _Types = {
    "step_id": _STR,
    "kind": _STR,
    "status": _STR,
    "attempts": (int,),
    "output": _OPT_STR,
    "input_key": _OPT_STR,
    "not_stored": _OPT_STR,
    **_OUTCOME,
}
_ATTEMPT_TYPES: _Types = {"step_id": _STR, "attempt": (int,), "status": _STR, **_OUTCOME}
_make_step = maker(StoredStep)
#: A record made from its row's tuple as it is.
_make_reusable = functools.partial(tuple.__new__, ReusableStep)
_STR_SET, _INT_SET = frozenset(_STR), frozenset({int})
_OPT_STR_SET, _OPT_NUM_SET = frozenset(_OPT_STR), frozenset(_OPT_NUM)
_SQL_TYPES = {str: "'text'", int: "'integer'", float: "'real'", type(None): "'null'"}


def _columns(types: _Types) -> str:
    """The columns of ``types``, and last whether the row's types are all right: SQLite
    checks them (``typeof``), far faster than Python would, row by row."""
    checks = " AND ".join(
        f"typeof({name}) IN ({', '.join(_SQL_TYPES[kind] for kind in kinds)})"
        for name, kinds in types.items()
    )
    return f"{', '.join(types)}, ({checks})"


_RUN_COLUMNS = _columns(_RUN_TYPES)
_STEP_COLUMNS = _columns(_STEP_TYPES)
_ATTEMPT_COLUMNS = _columns(_ATTEMPT_TYPES)
#: The columns of a step a resume reads, as :meth:`SqliteRunStore.claim` checks them: the
#: fields of a :class:`ReusableStep`, in its order.
_REUSABLE_TYPES: _Types = {
    "step_id": _STR,
    "attempts": (int,),
    "output": _STR,
    "input_key": _OPT_STR,
    "started_at": _OPT_NUM,
    "duration": _OPT_NUM,
}
_REUSABLE = (
    f"SELECT {', '.join(_REUSABLE_TYPES)} FROM steps "
    f"WHERE run_id = ? AND status = 'succeeded' AND output IS NOT NULL"
)


class SqliteRunStore(RunStore):
    """A run store in one SQLite file, for :class:`~agentbridge.Runtime` ``(store=...)``.

    The file is created with owner-only permissions (``0600``) if missing. Outputs are
    JSON text, nothing else; see :doc:`/durable-runs` for what is stored and the
    security model.

    :param path: the database file
    :param lease: seconds a run stays owned by its process without a heartbeat (it
        renews the lease every third of that); another process may take the run over
        once it expires
    :param busy_timeout: seconds to wait for another process's write to end before
        failing with :class:`~agentbridge.StoreError`
    :param max_output: the most characters of JSON a step's output may take to be
        stored (default 16 Mi); a larger output is not stored, and the step runs again
        on resume
    :raises ConfigurationError: for a lease, timeout or size that is not positive

    .. versionadded:: 0.3
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        lease: float = 30.0,
        busy_timeout: float = 5.0,
        max_output: int = RunStore.max_output,
    ) -> None:
        for name, value in (("lease", lease), ("busy_timeout", busy_timeout)):
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ConfigurationError(
                    f"{name} must be a positive number of seconds, got {value!r}"
                )
        if isinstance(max_output, bool) or not isinstance(max_output, int) or max_output < 1:
            raise ConfigurationError(
                f"max_output must be a whole number, 1 or more, got {max_output!r}"
            )
        self.max_output = max_output
        #: The database file.
        self.path = Path(path)
        self.lease = float(lease)
        self.busy_timeout = float(busy_timeout)
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None

    def __repr__(self) -> str:
        return f"SqliteRunStore({str(self.path)!r})"

    # --- plumbing ----------------------------------------------------------------------

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return await to_thread(functools.partial(self._locked, fn, *args))

    def _locked(self, fn: Callable[..., T], *args: Any) -> T:
        with self._lock, self._errors():
            return fn(self._connect(), *args)

    @contextmanager
    def _errors(self) -> Iterator[None]:
        import sqlite3  # imported once a store is used: a runtime without one never pays

        try:
            yield
        except sqlite3.OperationalError as exc:
            text = str(exc)
            if "locked" in text or "busy" in text:
                raise StoreBusyError(
                    f"the run store {str(self.path)!r} is locked: another process held it "
                    f"for longer than busy_timeout={self.busy_timeout:g} s; retry, or pass "
                    f"a larger busy_timeout"
                ) from exc
            raise StoreError(f"the run store {str(self.path)!r} failed: {text}") from exc
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"the run store {str(self.path)!r} is not a readable SQLite database "
                f"({exc}); it is corrupt or not a run store: move it aside and use a new "
                f"file"
            ) from exc

    def _connect(self) -> sqlite3.Connection:
        if self._connection is not None:
            return self._connection
        import sqlite3

        if not self.path.exists():
            # Made here, owner-only, so the database (and its -wal and -shm files, which
            # SQLite creates with the database's mode) is never readable by others.
            os.close(os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600))
        connection = sqlite3.connect(
            self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
        )
        try:
            self._prepare(connection)
        except BaseException:
            connection.close()
            raise
        self._connection = connection
        return connection

    def _prepare(self, connection: sqlite3.Connection) -> None:
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"the run store {str(self.path)!r} was written by a newer agentbridge "
                f"(schema {version}; this one reads schema {SCHEMA_VERSION}); upgrade "
                f"agentbridge to read it, or use another file"
            )
        self._use_wal(connection)
        connection.execute("PRAGMA synchronous = NORMAL")
        if version == 0:
            connection.execute("BEGIN IMMEDIATE")
            try:
                if not connection.execute("PRAGMA user_version").fetchone()[0]:
                    for statement in _SCHEMA.split(";"):
                        if statement.strip():
                            connection.execute(statement)
                    connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise

    def _use_wal(self, connection: sqlite3.Connection) -> None:
        import sqlite3

        try:
            connection.execute("PRAGMA journal_mode = WAL")
        except sqlite3.OperationalError as exc:
            # Two connections switching a new file to WAL at once deadlock on its locks,
            # and SQLite refuses one at once instead of letting it wait (see "busy
            # handler" in its docs). Holding no lock now, this one can wait its turn: by
            # then the other has made the switch, and this one finds WAL already set.
            if "locked" not in str(exc):
                raise
            connection.execute("PRAGMA journal_mode = WAL")

    @contextmanager
    def _transaction(self, connection: sqlite3.Connection) -> Iterator[None]:
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    def close(self) -> None:
        """Close the connection; the next use opens it again."""
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    # --- the interface -----------------------------------------------------------------

    async def claim(
        self,
        run_id: str,
        owner: str,
        *,
        workflow: str,
        source: str | None,
        inputs: str,
        succeeded: bool = False,
    ) -> StoredRun | None:
        """See :meth:`RunStore.claim`."""
        return await self._call(self._claim, run_id, owner, workflow, source, inputs, succeeded)

    def _claim(
        self,
        connection: sqlite3.Connection,
        run_id: str,
        owner: str,
        workflow: str,
        source: str | None,
        inputs: str,
        succeeded: bool,
    ) -> StoredRun | None:
        now = time.time()
        with self._transaction(connection):
            row = connection.execute(
                "SELECT owner, lease_until, status FROM runs WHERE run_id = ?", (run_id,)
            ).fetchone()
            if row is None:
                connection.execute(
                    "INSERT INTO runs (run_id, workflow, source, inputs, status, created_at, "
                    "updated_at, owner, lease_until) VALUES (?, ?, ?, ?, 'running', ?, ?, ?, ?)",
                    (run_id, workflow, source, inputs, now, now, owner, now + self.lease),
                )
                return None
            holder, lease_until, status = row
            if holder is not None and holder != owner and (lease_until or 0) > now:
                raise RunOwnershipError(
                    f"run {run_id!r} is being run by another process (its lease ends in "
                    f"{lease_until - now:.1f} s); wait for it to finish, or resume it once "
                    f"that process is gone and the lease has expired"
                )
            if status == "succeeded" and not succeeded:
                return self._stored_run(connection, run_id, reusable=True)
            connection.execute(
                "UPDATE runs SET owner = ?, lease_until = ? WHERE run_id = ?",
                (owner, now + self.lease, run_id),
            )
            # Only a run still "running" can have attempts its owner never ended (it died
            # or lost its lease mid-run): an ended run's last write closed them all.
            if status == "running":
                for table in ("attempts", "steps"):
                    connection.execute(
                        f"UPDATE {table} SET status = 'interrupted' "
                        f"WHERE run_id = ? AND status = 'running'",
                        (run_id,),
                    )
            return self._stored_run(connection, run_id, reusable=True)

    async def write(self, run_id: str, owner: str, writes: Sequence[Write]) -> None:
        """See :meth:`RunStore.write`."""
        await self._call(self._write, run_id, owner, writes)

    def _write(
        self, connection: sqlite3.Connection, run_id: str, owner: str, writes: Sequence[Write]
    ) -> None:
        now = time.time()
        with self._transaction(connection):
            fenced = connection.execute(
                "UPDATE runs SET lease_until = ?, updated_at = ?, status = 'running' "
                "WHERE run_id = ? AND owner = ?",
                (now + self.lease, now, run_id, owner),
            )
            if fenced.rowcount != 1:
                raise RunOwnershipError(
                    f"this process lost the lease of run {run_id!r} (it was frozen or too "
                    f"slow for {self.lease:g} s, and another process took the run over), "
                    f"so it stopped and wrote nothing; see that process's result, or "
                    f"resume the run"
                )
            apply_batch(connection, run_id, owner, now, list(writes))

    async def release(self, run_id: str, owner: str) -> None:
        """See :meth:`RunStore.release`."""
        await self._call(self._release, run_id, owner)

    def _release(self, connection: sqlite3.Connection, run_id: str, owner: str) -> None:
        connection.execute(
            "UPDATE runs SET owner = NULL, lease_until = NULL WHERE run_id = ? AND owner = ?",
            (run_id, owner),
        )

    async def get_run(self, run_id: str) -> StoredRun | None:
        """See :meth:`RunStore.get_run`."""
        return await self._call(self._get_run, run_id)

    def _get_run(self, connection: sqlite3.Connection, run_id: str) -> StoredRun | None:
        return self._stored_run(connection, run_id, reusable=False)

    def _stored_run(
        self, connection: sqlite3.Connection, run_id: str, *, reusable: bool
    ) -> StoredRun | None:
        """The run, with every step (for :meth:`get_run`) or the steps a resume may
        reuse (for :meth:`claim`)."""
        row = connection.execute(
            f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id = ?",
            (run_id,),
        ).fetchone()
        if row is None:
            return None
        fields = self._checked(row, _RUN_TYPES, "run")
        if reusable:
            return StoredRun(**fields, reusable=self._reusable_steps(connection, run_id))
        return StoredRun(**fields, steps=self._all_steps(connection, run_id))

    def _all_steps(self, connection: sqlite3.Connection, run_id: str) -> dict[str, StoredStep]:
        steps = {}
        make, names = _make_step, _STEP_TYPES
        for step_row in connection.execute(
            # Not the records of for_each items (ID[INDEX]): they are no workflow steps.
            f"SELECT {_STEP_COLUMNS} FROM steps "
            f"WHERE run_id = ? AND instr(step_id, '[') = 0 ORDER BY rowid",
            (run_id,),
        ):
            if not step_row[-1]:
                self._checked(step_row, _STEP_TYPES, "step")
            # zip leaves out the row's last column, its check.
            steps[step_row[0]] = make(dict(zip(names, step_row, strict=False)))
        return steps

    def _reusable_steps(
        self, connection: sqlite3.Connection, run_id: str
    ) -> dict[str, ReusableStep]:
        """The steps a resume can reuse: those that succeeded with their output stored.

        The hot path of every resume, so only those rows and the columns a reuse reads
        are read, unsorted (a resume looks them up by id), all at once, and no Python
        code runs per row: the types are checked a column at a time (the set of the
        types found in it), cheaper than SQLite's ``typeof`` on each column or a test
        of each row in Python, and each record is made from its row's tuple as it is
        (a named tuple, no field copied).
        """
        rows = connection.execute(_REUSABLE, (run_id,)).fetchall()
        if not rows:
            return {}
        ids, attempts, outputs, keys, starts, durations = zip(*rows, strict=True)
        if not (
            {*map(type, ids), *map(type, outputs)} <= _STR_SET
            and {*map(type, attempts)} <= _INT_SET
            and {*map(type, keys)} <= _OPT_STR_SET
            and {*map(type, starts), *map(type, durations)} <= _OPT_NUM_SET
        ):
            for row in rows:  # the first wrong one is said
                self._refuse(row, _REUSABLE_TYPES, "step")
        return dict(zip(ids, map(_make_reusable, rows), strict=True))

    async def list_runs(self, limit: int = 100) -> list[StoredRun]:
        """See :meth:`RunStore.list_runs`."""
        return await self._call(self._list_runs, limit)

    def _list_runs(self, connection: sqlite3.Connection, limit: int) -> list[StoredRun]:
        rows = connection.execute(
            f"SELECT {_RUN_COLUMNS} FROM runs ORDER BY created_at DESC, rowid DESC LIMIT ?",
            (limit,),
        )
        return [StoredRun(**self._checked(row, _RUN_TYPES, "run")) for row in rows]

    async def history(self, run_id: str) -> list[StoredAttempt]:
        """See :meth:`RunStore.history`."""
        return await self._call(self._history, run_id)

    def _history(self, connection: sqlite3.Connection, run_id: str) -> list[StoredAttempt]:
        rows = connection.execute(
            f"SELECT {_ATTEMPT_COLUMNS} FROM attempts WHERE run_id = ? ORDER BY id",
            (run_id,),
        )
        return [StoredAttempt(**self._checked(row, _ATTEMPT_TYPES, "attempt")) for row in rows]

    def _checked(self, row: tuple[Any, ...], types: _Types, what: str) -> dict[str, Any]:
        # SQLite columns take any type: a tampered file could hold a blob or a number
        # where text belongs. It is refused here, never interpreted. The row's last
        # column says whether SQLite found its types right; only a wrong one is looked
        # at in Python, to say which.
        *row, right = row  # type: ignore[assignment]
        if not right:
            self._refuse(row, types, what)
        return dict(zip(types, row, strict=True))

    def _refuse(self, row: Sequence[Any], types: _Types, what: str) -> None:
        """Raise for the first value of ``row`` of a type ``types`` does not allow."""
        for value, allowed in zip(row, types.values(), strict=True):
            if type(value) not in allowed:
                raise StoreError(
                    f"the run store {str(self.path)!r} holds a {what} record with a "
                    f"{type(value).__name__} where agentbridge writes "
                    f"{' or '.join(kind.__name__ for kind in allowed)}: it was modified "
                    f"outside agentbridge; move it aside and use a new file"
                )
