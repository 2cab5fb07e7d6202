"""Bulk writes at database speed: COPY on PostgreSQL, chunked multi-row inserts elsewhere (SQLite)."""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, cast

import orjson
import psycopg
from psycopg.types.json import Jsonb, set_json_dumps
from sqlalchemy import CursorResult, Executable, Select, Table, insert, text

from webapp.extensions import db

CHUNK = 2000
COPY_CHUNK = 10_000


def is_postgresql() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


def changed(statement: Executable) -> int:
    """Run an UPDATE or DELETE in the session's transaction; return how many rows it changed."""
    return cast(CursorResult, db.session.execute(statement)).rowcount


def psycopg_connection() -> psycopg.Connection:
    """The session's psycopg connection (PostgreSQL), in the session's transaction."""
    return cast(psycopg.Connection, db.session.connection().connection.driver_connection)


def copy_rows(
    table: Table,
    columns: Sequence[str],
    rows: Iterable[Sequence],
    json_columns: Sequence[str] = (),
    *,
    queries_while_producing: bool = True,
) -> int:
    """Write ``rows`` (tuples in ``columns`` order) into ``table`` inside the session's transaction.

    Streams: rows are consumed one at a time, so memory does not grow with their number. On PostgreSQL a
    producer that never queries the database (``queries_while_producing=False``) feeds one ``COPY`` as it
    goes, so the database writes while Python produces the next rows, each on its own core.
    """
    with gc_paused():
        if is_postgresql():
            size = COPY_CHUNK if queries_while_producing else None
            return _copy(table.name, columns, rows, {columns.index(c) for c in json_columns}, size)
        return _insert_chunks(table, columns, rows)


def insert_with_ids(
    table: Table, columns: Sequence[str], rows: list[Sequence], json_columns: Sequence[str] = ()
) -> list[int]:
    """Write ``rows`` like ``copy_rows`` into a table keyed by ``id``; return the new ids in the rows' order.

    PostgreSQL: the ids are drawn from the table's sequence first and written with the rows by one ``COPY``.
    Elsewhere: an insert returning the ids, sorted by the rows' order.
    """
    if not rows:
        return []
    if is_postgresql():
        sequence = db.session.scalar(text("SELECT pg_get_serial_sequence(:table, 'id')"), {"table": table.name})
        # The sequence is named once: asking for it in the same query would look it up again for every id.
        ids = list(
            db.session.execute(
                text("SELECT nextval(CAST(:sequence AS regclass)) FROM generate_series(1, :n)"),
                {"sequence": sequence, "n": len(rows)},
            ).scalars()
        )
        copy_rows(table, ("id", *columns), [(key, *row) for key, row in zip(ids, rows, strict=True)], json_columns)
        return ids
    with gc_paused():
        return list(
            db.session.execute(
                insert(table).returning(table.c.id, sort_by_parameter_order=True),
                [dict(zip(columns, row, strict=True)) for row in rows],
            ).scalars()
        )


class _CollectorPause:
    """Counts the bulk writes in progress (any thread): the first pauses the collector, the last resumes it."""

    def __init__(self) -> None:
        self.lock, self.depth, self.resume = threading.Lock(), 0, False

    def enter(self) -> None:
        with self.lock:
            self.depth += 1
            if self.depth == 1:
                self.resume = gc.isenabled()
                gc.disable()

    def leave(self) -> None:
        with self.lock:
            self.depth -= 1
            if self.depth == 0 and self.resume:
                gc.enable()


_pause = _CollectorPause()


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a bulk write runs.

    A bulk write keeps thousands of parsed rows alive at a time, and each collection walks them all again:
    measured, that costs a quarter of an upload's time (and of the raw COPY baseline's, which goes through
    here too). The rows hold no reference cycles, so pausing frees nothing later than it would have been.
    """
    _pause.enter()
    try:
        yield
    finally:
        _pause.leave()


def _copy(
    name: str, columns: Sequence[str], rows: Iterable[Sequence], json_positions: set[int], size: int | None
) -> int:
    """One COPY per chunk of ``size`` rows, or one for all with no size: producing the rows may query the
    database, which a COPY in progress would block, so then each chunk is gathered first."""
    raw = psycopg_connection()
    set_json_dumps(orjson.dumps, raw)  # JSON columns are serialised several times faster than by json.dumps
    statement = f"COPY {name} ({', '.join(columns)}) FROM STDIN"
    count = 0
    for chunk in chunks(rows, size) if size else [rows]:
        with raw.cursor() as cursor, cursor.copy(statement) as copy:
            for row in chunk:
                if json_positions:
                    row = [Jsonb(v) if i in json_positions and v is not None else v for i, v in enumerate(row)]
                copy.write_row(row)
                count += 1
        if size:  # a chunk of ours (without a size, ``chunk`` is the caller's rows)
            cast(list, chunk).clear()  # the rows go now, not when the next chunk has been gathered beside them
    return count


def stream_rows(stmt: Select, size: int) -> Iterator[list[tuple]]:
    """The rows of ``stmt`` as plain tuples in lists of up to ``size``, from a server-side cursor.

    PostgreSQL: psycopg's named cursor directly, in the session's transaction: a million-row export then
    spends its time in the database and the CSV writer, not in building a result object per row.
    """
    if not is_postgresql():
        for partition in db.session.connection().execute(stmt.execution_options(yield_per=size)).partitions():
            yield [tuple(row) for row in partition]
        return
    connection = db.session.connection()
    compiled = stmt.compile(dialect=connection.dialect, compile_kwargs={"render_postcompile": True})
    raw = psycopg_connection()
    with raw.cursor(name=f"stream_{id(compiled):x}") as cursor:
        cursor.execute(str(compiled), compiled.params)
        while rows := cursor.fetchmany(size):
            yield rows


def copy_csv(stmt: Select) -> Iterator[bytes]:
    """The rows of ``stmt`` as CSV lines (LF line ends), written by PostgreSQL (``COPY ... TO STDOUT``)."""
    connection = db.session.connection()
    compiled = stmt.compile(dialect=connection.dialect, compile_kwargs={"render_postcompile": True})
    raw = psycopg_connection()
    with raw.cursor() as cursor, cursor.copy(f"COPY ({compiled}) TO STDOUT (FORMAT csv)", compiled.params) as copy:
        for row in copy:
            yield bytes(row)


def chunks(
    rows: Iterable, size: int, weight: Callable[[Any], int] | None = None, max_weight: int = 0
) -> Iterator[list]:
    """Lists of up to ``size`` items from ``rows``, consumed lazily; with ``weight``, a list also ends as soon as
    its items weigh ``max_weight`` together."""
    chunk: list = []
    weighed = 0
    for row in rows:
        chunk.append(row)
        if weight is not None:
            weighed += weight(row)
        if len(chunk) >= size or weight is not None and weighed >= max_weight:
            yield chunk
            chunk, weighed = [], 0
    if chunk:
        yield chunk


def _insert_chunks(table: Table, columns: Sequence[str], rows: Iterable[Sequence]) -> int:
    count = 0
    for chunk in chunks(rows, CHUNK):
        db.session.execute(insert(table), [dict(zip(columns, row, strict=True)) for row in chunk])
        count += len(chunk)
        chunk.clear()
    return count
