"""A job's requests and their responses: one row each, matched by custom_id."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import (
    DDL,
    JSON,
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    event,
    text,
)
from sqlalchemy.orm import Mapped, column_property, mapped_column, relationship

from webapp.models.base import Base, BigIntPK, JSONType, utcnow


class RequestStatus(StrEnum):
    PENDING = "pending"  # waiting for a provider batch (first try or a retry)
    IN_FLIGHT = "in_flight"  # part of a running provider batch
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"  # the job was cancelled before the request ran: neither failed nor succeeded


# A request is two rows. What the user sent never changes after upload (``batch_requests``: wide, the body
# inline); where it is in its life changes several times (``request_states``: narrow). Moving a 50,000-request
# batch through assignment, sending and its results then rewrites 50,000 rows of a few dozen bytes instead of
# the whole request each time, with only the indexes that read the state (measured: settling a batch's
# results 1.2 s -> 0.4 s).
request_rows = Table(
    "batch_requests",
    Base.metadata,
    Column("id", BigIntPK, primary_key=True),
    # No foreign key to the job: of the database's part of an upload (per 100,000 requests, 1.1 s), checking it
    # row by row cost 0.3 s. The requests go with their job by ``jobs.delete_job``, table by table. The body
    # stays JSONB: as JSON text it would cost 0.15 s less, but a job could not then group its requests by body.
    Column("job_id", Integer, nullable=False),
    Column("custom_id", String(255), nullable=False),
    Column("body", JSONType, nullable=False),
    Column("source_line", Integer),  # line (JSONL) or row (CSV) in the user's file
    Column("source_row", JSONType),  # a CSV row's original values, for exports in the user's own columns
    Column("estimated_tokens", Integer, nullable=False, default=0),
    UniqueConstraint("job_id", "custom_id"),
    Index("ix_batch_requests_job_id_id", "job_id", "id"),  # the requests table, key-paged
)


def unstudied(table: Table, *columns: str) -> None:
    """No statistics for ``columns``: nothing filters on them, and ANALYZE after a large write (webapp/bulk.py)
    spent most of its time sorting samples of them (request bodies: 0.40-0.47 s per 100,000 requests, 0.15 s
    without). PostgreSQL only; migration c6f1e9a4b2d8 sets the same."""
    settings = ", ".join(f"ALTER {column} SET STATISTICS 0" for column in columns)
    event.listen(table, "after_create", DDL(f"ALTER TABLE {table.name} {settings}").execute_if(dialect="postgresql"))


unstudied(request_rows, "body", "source_row")

request_states = Table(
    "request_states",
    Base.metadata,
    # No foreign keys to the request or job: checking them costs a third of storing an upload (measured, 1.3 s
    # of 4.5 s for 200,000 requests). Requests and states are written together by ``requests.insert_part`` and
    # the ORM (which maps both rows as one object), and deleted together by ``jobs.delete_job``.
    Column("request_id", BigIntPK, primary_key=True),
    Column("job_id", Integer, nullable=False),  # the request's, copied for the indexes below
    Column("status", String(16), nullable=False, default=RequestStatus.PENDING),
    Column("retry_count", Integer, nullable=False, default=0),
    Column("provider_batch_id", ForeignKey("provider_batches.id", ondelete="SET NULL")),
    Column("error_code", String(64)),
    Column("error", Text),
    # A repeat of an earlier request's body, sent once for both (``services.copies``): the first request's id.
    # It is never sent itself; when the first ends, it takes its state and a copy of its response. No foreign
    # key, as above: copies are marked after their upload and go with their job.
    Column("copy_of_id", BigInteger().with_variant(Integer(), "sqlite")),
    Index("ix_request_states_job_id_status_request_id", "job_id", "status", "request_id"),
    # Only assigned requests: a pending one has no batch, and an upload then writes no index entry for it.
    Index(
        "ix_request_states_provider_batch_id",
        "provider_batch_id",
        postgresql_where=text("provider_batch_id IS NOT NULL"),
        sqlite_where=text("provider_batch_id IS NOT NULL"),
    ),
    # The job's phase asks on every poll whether a retry is waiting: a tiny partial index answers it.
    Index(
        "ix_request_states_job_id_retried_pending",
        "job_id",
        postgresql_where=text("status = 'pending' AND retry_count > 0"),
        sqlite_where=text("status = 'pending' AND retry_count > 0"),
    ),
)


class BatchRequest(Base):
    """One request with its state: mapped over both rows, so the ORM reads and writes them as one object.
    Set-wise writes of state go to ``request_states`` alone."""

    # The job ids are joined too, so that PostgreSQL carries a condition on either to the other's indexes.
    __table__ = request_rows.join(
        request_states,
        (request_rows.c.id == request_states.c.request_id) & (request_rows.c.job_id == request_states.c.job_id),
    )

    id = column_property(request_rows.c.id, request_states.c.request_id)
    job_id = column_property(request_rows.c.job_id, request_states.c.job_id)
    custom_id: Mapped[str] = column_property(request_rows.c.custom_id)
    body: Mapped[dict[str, Any]] = column_property(request_rows.c.body)
    source_line: Mapped[int | None] = column_property(request_rows.c.source_line)
    source_row: Mapped[list[Any] | None] = column_property(request_rows.c.source_row)
    estimated_tokens: Mapped[int] = column_property(request_rows.c.estimated_tokens)
    status: Mapped[str] = column_property(request_states.c.status)
    retry_count: Mapped[int] = column_property(request_states.c.retry_count)
    provider_batch_id: Mapped[int | None] = column_property(request_states.c.provider_batch_id)
    error_code: Mapped[str | None] = column_property(request_states.c.error_code)
    error: Mapped[str | None] = column_property(request_states.c.error)
    copy_of_id: Mapped[int | None] = column_property(request_states.c.copy_of_id)

    response: Mapped[BatchResponse | None] = relationship(
        back_populates="request", primaryjoin="BatchRequest.id == foreign(BatchResponse.request_id)"
    )

    def __repr__(self) -> str:
        return f"<BatchRequest {self.job_id}/{self.custom_id} {self.status}>"


class BatchResponse(Base):
    __tablename__ = "batch_responses"
    __table_args__ = (Index("ix_batch_responses_job_id_id", "job_id", "id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    # One response per request, the key of idempotent ingestion. No foreign keys, here or on the copies of the
    # request's job and of the batch that answered (for reads by job and batch): checking them was a third of
    # the cost of storing a batch's results. Responses are written only by ingestion, for requests it has just
    # read, and deleted with their job's requests (``jobs.delete_job``).
    request_id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), unique=True)
    job_id: Mapped[int]
    provider_batch_id: Mapped[int | None]
    succeeded: Mapped[bool] = mapped_column(default=False)
    status_code: Mapped[int | None]
    # Plain JSON (text checked on the way in), not JSONB: nothing queries inside a response, it is read whole,
    # and building JSONB was a fifth of the cost of storing a batch's results (measured, 0.3 s of 1.5 s).
    body: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    prompt_tokens: Mapped[int] = mapped_column(default=0)
    completion_tokens: Mapped[int] = mapped_column(default=0)
    total_tokens: Mapped[int] = mapped_column(default=0)
    cached_tokens: Mapped[int] = mapped_column(default=0)
    reasoning_tokens: Mapped[int] = mapped_column(default=0)
    output_text: Mapped[str | None] = mapped_column(Text)
    provider_request_id: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    request: Mapped[BatchRequest] = relationship(
        back_populates="response", primaryjoin="BatchRequest.id == foreign(BatchResponse.request_id)"
    )

    def __repr__(self) -> str:
        return f"<BatchResponse request={self.request_id} {self.status_code}>"


unstudied(request_states, "error")
unstudied(cast(Table, BatchResponse.__table__), "body", "output_text", "error", "provider_request_id")
