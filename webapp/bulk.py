"""Bulk writes at database speed: COPY on PostgreSQL, chunked multi-row inserts elsewhere (SQLite)."""

from __future__ import annotations

import gc
import itertools
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, cast

import orjson
import psycopg
from psycopg.types.json import Jsonb, set_json_dumps
from sqlalchemy import CursorResult, Executable, Select, Table, event, insert, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, SessionTransaction

from webapp.extensions import db

log = logging.getLogger(__name__)

CHUNK = 2000
COPY_CHUNK = 10_000
FIRST_PART = 100  # rows in the first part of a streamed write (``parts``); each next part is ten times larger
SEND_BYTES = 128 * 1024  # COPY data is handed to psycopg in pieces of about this size
NULL = b"\\N"  # COPY's text format for NULL
_COPY_SPECIAL = re.compile(rb"[\\\t\n\r]")
_COPY_ESCAPES = {b"\\": b"\\\\", b"\t": b"\\t", b"\n": b"\\n", b"\r": b"\\r"}


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


def reserve_ids(table: Table, count: int) -> list[int]:
    """``count`` new ids from the sequence of ``table``'s ``id`` (PostgreSQL), in one query: rows then carry
    their ids in a ``COPY``. Ids not used are gaps, as a rolled-back insert leaves."""
    sequence = db.session.scalar(text("SELECT pg_get_serial_sequence(:table, 'id')"), {"table": table.name})
    # The sequence is named once: asking for it in the same query would look it up again for every id.
    return list(
        db.session.execute(
            text("SELECT nextval(CAST(:sequence AS regclass)) FROM generate_series(1, :n)"),
            {"sequence": sequence, "n": count},
        )
        .scalars()
        .all()  # one fetchall, not a fetch per id
    )


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
        ids = reserve_ids(table, len(rows))
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


def copy_lines(table: str, columns: Sequence[str], lines: Iterable[bytes]) -> int:
    """``COPY`` rows already in COPY's text format (one line each, newline included) into ``table`` inside the
    session's transaction (PostgreSQL); return their number.

    The lines go to the database in pieces of about SEND_BYTES as they are produced, so it stores them while
    Python makes the next ones, each on its own core; nothing else may use the connection meanwhile. Formatting
    the text here costs a fraction of psycopg's ``write_row`` (which adapts each value of each row on its own).
    """
    count = size = 0
    pending: list[bytes] = []
    raw = psycopg_connection()
    with raw.cursor() as cursor, cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for line in lines:
            pending.append(line)
            size += len(line)
            count += 1
            if size >= SEND_BYTES:
                copy.write(b"".join(pending))
                pending.clear()
                size = 0
        if pending:
            copy.write(b"".join(pending))
    return count


def copy_text(value: str) -> bytes:
    """A string as a field of COPY's text format: UTF-8, with backslash, tab, newline and return escaped."""
    data = value.encode()
    return _COPY_SPECIAL.sub(_escape, data) if _COPY_SPECIAL.search(data) else data


def copy_json(value: Any) -> bytes:
    """A JSON value as a field of COPY's text format. orjson writes no tab, newline or return (it escapes them
    inside strings), so only its backslashes need doubling."""
    data = orjson.dumps(value)
    return data.replace(b"\\", b"\\\\") if b"\\" in data else data


def _escape(match: re.Match[bytes]) -> bytes:
    return _COPY_ESCAPES[match.group()]


class Part:
    """The next items of a shared iterator, up to ``size`` of them or ``max_weight`` together, taken as this is
    iterated and kept in ``items`` (for a second pass when a write of them fails)."""

    def __init__(self, source: Iterator, size: int, weight: Callable[[Any], int] | None, max_weight: int) -> None:
        self.source, self.size, self.weight, self.max_weight = source, size, weight, max_weight
        self.items: list = []
        self._taking = self._take()

    def __iter__(self) -> Iterator:
        return self._taking

    def finish(self) -> list:
        """Take the rest of the part (after a write stopped half way); return all its items."""
        for _ in self._taking:
            pass
        return self.items

    def _take(self) -> Iterator:
        # Locals, not attributes: this runs once for each of a million rows.
        keep, size, weight, max_weight = self.items.append, self.size, self.weight, self.max_weight
        taken = weighed = 0
        for item in self.source:
            keep(item)
            yield item
            taken += 1
            if weight is not None:
                weighed += weight(item)
                if weighed >= max_weight:
                    return
            if taken >= size:
                return


def parts(
    items: Iterable, weight: Callable[[Any], int] | None = None, max_weight: int = 0, size: int | None = None
) -> Iterator[Part]:
    """``items`` in consecutive parts, each iterated by its writer as the items come: FIRST_PART items, then ten
    times more each time, up to ``size`` (COPY_CHUNK by default) or ``max_weight`` by ``weight``. A writer that
    draws ids for its part's largest size in advance then leaves few unused after a small input."""
    source = iter(items)
    limit = size or COPY_CHUNK
    size_now = min(FIRST_PART, limit)
    while (first := next(source, _END)) is not _END:
        part = Part(itertools.chain((first,), source), size_now, weight, max_weight)
        yield part
        part.finish()  # what its writer left is not taken for the next part
        size_now = min(size_now * 10, limit)


_END = object()


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


# --- statistics after a large write -------------------------------------------------------------------------
# PostgreSQL plans with the statistics ANALYZE last gathered. Right after a bulk load they describe a table
# without the new rows (autovacuum's analyze comes up to a minute later, and never when autovacuum is off):
# measured after 1,000,000 requests were uploaded, a page of a job's requests took 855 ms instead of 0.2 ms.
# So, as PostgreSQL's "Populating a Database" advises, what a large write changed is analyzed after its
# commit, by autoanalyze's own rule: when the rows it wrote exceed autovacuum_analyze_threshold +
# autovacuum_analyze_scale_factor x the table's rows (pg_class.reltuples; 50 + 0.1 x rows by default). Many
# small writes that add up are left to autovacuum, as they would be without this.

STALE_TABLES = """
SELECT c.relname
FROM unnest(CAST(:tables AS text[]), CAST(:rows AS bigint[])) AS written(name, rows)
JOIN pg_class c ON c.oid = to_regclass(written.name)
WHERE written.rows > current_setting('autovacuum_analyze_threshold')::float8
                     + current_setting('autovacuum_analyze_scale_factor')::float8 * greatest(c.reltuples, 0)
ORDER BY c.relname
"""


def note_written(table: Table | str, rows: int) -> None:
    """Count ``rows`` that a bulk write added to or changed in ``table``, in the session's transaction: once it
    commits, the tables whose statistics these rows make stale are analyzed (``analyze_written``)."""
    if rows:
        name = table if isinstance(table, str) else table.name
        written = db.session.info.setdefault("bulk_written", {})
        written[name] = written.get(name, 0) + rows


@event.listens_for(db.session, "after_commit")
def _analyze_after_commit(session: Session) -> None:
    if session.in_nested_transaction():  # a savepoint released: the rows are not committed yet
        return
    written = session.info.pop("bulk_written", None)
    if written:
        analyze_written(session, written)


@event.listens_for(db.session, "after_transaction_end")
def _forget_rolled_back(session: Session, transaction: SessionTransaction) -> None:
    """What a rolled-back transaction wrote is gone: its rows are not counted towards the next commit."""
    if transaction.parent is None:
        session.info.pop("bulk_written", None)


def analyze_written(session: Session, written: dict[str, int]) -> list[str]:
    """ANALYZE those of the ``written`` tables (name -> rows added or changed) that PostgreSQL's autoanalyze rule
    finds stale; return their names. Runs on a connection of its own (the session has just committed), and
    never raises: statistics are worth a log line, not a failed upload."""
    engine = session.get_bind().engine
    if engine.dialect.name != "postgresql":
        return []
    started = time.perf_counter()
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            stale = list(
                conn.execute(text(STALE_TABLES), {"tables": list(written), "rows": list(written.values())}).scalars()
            )
            if stale:
                # SKIP_LOCKED: a table that autovacuum (or another load) is analyzing now is not waited for.
                names = ", ".join('"{}"'.format(name.replace('"', '""')) for name in stale)
                conn.exec_driver_sql(f"ANALYZE (SKIP_LOCKED) {names}")
    except SQLAlchemyError as exc:
        log.warning("could not analyze %s after a bulk write: %s", ", ".join(written), exc)
        return []
    if stale:
        log.info(
            "analyzed %s after a bulk write (%s rows) in %.2f s",
            ", ".join(stale),
            ", ".join(f"{name} {rows:,}" for name, rows in written.items()),
            time.perf_counter() - started,
        )
    return stale
