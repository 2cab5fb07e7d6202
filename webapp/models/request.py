"""A job's requests and their responses: one row each, matched by custom_id."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship


from webapp.models.base import Base, BigIntPK, utcnow


class RequestStatus(StrEnum):
    PENDING = "pending"  # waiting for a provider batch (first try or a retry)
    IN_FLIGHT = "in_flight"  # part of a running provider batch
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class BatchRequest(Base):
    __tablename__ = "batch_requests"
    __table_args__ = (
        UniqueConstraint("job_id", "custom_id"),
        Index("ix_batch_requests_job_id_status_id", "job_id", "status", "id"),
        Index("ix_batch_requests_job_id_id", "job_id", "id"),  # the requests table, key-paged
        Index("ix_batch_requests_provider_batch_id", "provider_batch_id"),
        # The job's phase asks on every poll whether a retry is waiting: a tiny partial index answers it.
        Index("ix_batch_requests_job_id_retried_pending", "job_id",
              postgresql_where=text("status = 'pending' AND retry_count > 0"),
              sqlite_where=text("status = 'pending' AND retry_count > 0")),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("batch_jobs.id", ondelete="CASCADE"))
    custom_id: Mapped[str] = mapped_column(String(255))
    body: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16), default=RequestStatus.PENDING)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    retry_count: Mapped[int] = mapped_column(default=0)
    provider_batch_id: Mapped[int | None] = mapped_column(ForeignKey("provider_batches.id", ondelete="SET NULL"))
    source_line: Mapped[int | None]  # line (JSONL) or row (CSV) in the user's file
    source_row: Mapped[list[Any] | None]  # a CSV row's original values, for exports in the user's own columns
    estimated_tokens: Mapped[int] = mapped_column(default=0)

    response: Mapped["BatchResponse | None"] = relationship(back_populates="request", passive_deletes=True)

    def __repr__(self) -> str:
        return f"<BatchRequest {self.job_id}/{self.custom_id} {self.status}>"


class BatchResponse(Base):
    __tablename__ = "batch_responses"
    __table_args__ = (Index("ix_batch_responses_job_id_id", "job_id", "id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    request_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"),
        ForeignKey("batch_requests.id", ondelete="CASCADE"),
        unique=True,
    )
    # Copies of the request's job and of the batch that answered, for reads by job and for the settle: no foreign
    # keys, since the request's own key already ties the response to both, and checking the two again per row
    # was a fifth of the cost of storing a batch's results (jobs.delete_job removes responses with their job).
    job_id: Mapped[int]
    provider_batch_id: Mapped[int | None]
    succeeded: Mapped[bool] = mapped_column(default=False)
    status_code: Mapped[int | None]
    body: Mapped[dict[str, Any] | None]
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

    request: Mapped[BatchRequest] = relationship(back_populates="response")

    def __repr__(self) -> str:
        return f"<BatchResponse request={self.request_id} {self.status_code}>"
