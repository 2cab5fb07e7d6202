"""The batch job aggregate: a user's set of requests, its counters, cost, and its event timeline."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import BigInteger, ForeignKey, Index, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.models.base import Base, utcnow
from webapp.models.job_settings import DESCRIPTION, MAX_RETRIES, MAX_TOKENS, MODEL, NAME, TEMPERATURE

if TYPE_CHECKING:  # the two models refer to each other
    from webapp.models.batch import ProviderBatch

DEFAULT_ENDPOINT = "/v1/chat/completions"
ENDPOINTS = ("/v1/chat/completions", "/v1/responses", "/v1/embeddings", "/v1/completions", "/v1/moderations")


class JobStatus(StrEnum):
    DRAFT = "draft"  # requests being added; nothing sent yet
    QUEUED = "queued"  # submitted; waiting to be split, uploaded or for token capacity
    RUNNING = "running"  # at least one provider batch in flight
    CANCELLING = "cancelling"
    COMPLETED = "completed"
    COMPLETED_WITH_ERRORS = "completed_with_errors"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL_JOB_STATUSES = frozenset(
    {JobStatus.COMPLETED, JobStatus.COMPLETED_WITH_ERRORS, JobStatus.FAILED, JobStatus.CANCELLED}
)
ACTIVE_JOB_STATUSES = frozenset({JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.CANCELLING})


class BatchJob(Base):
    __tablename__ = "batch_jobs"
    __table_args__ = (
        Index("ix_batch_jobs_status_created_at", "status", "created_at"),
        Index("ix_batch_jobs_created_at", "created_at"),
        Index("ix_batch_jobs_owner_id_created_at", "owner_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME.max_length))
    description: Mapped[str] = mapped_column(Text, default=DESCRIPTION.default)
    status: Mapped[str] = mapped_column(String(32), default=JobStatus.DRAFT)
    provider: Mapped[str] = mapped_column(String(32))
    endpoint: Mapped[str] = mapped_column(String(64), default=DEFAULT_ENDPOINT)
    model: Mapped[str] = mapped_column(String(MODEL.max_length))
    # Each setting's default and bounds: webapp/models/job_settings.py (the service checks the bounds).
    max_tokens: Mapped[int | None] = mapped_column(default=MAX_TOKENS.default)
    temperature: Mapped[float | None] = mapped_column(default=TEMPERATURE.default)
    max_retries: Mapped[int] = mapped_column(default=MAX_RETRIES.default)

    total_requests: Mapped[int] = mapped_column(default=0)
    pending_requests: Mapped[int] = mapped_column(default=0)
    in_flight_requests: Mapped[int] = mapped_column(default=0)
    succeeded_requests: Mapped[int] = mapped_column(default=0)
    failed_requests: Mapped[int] = mapped_column(default=0)
    cancelled_requests: Mapped[int] = mapped_column(default=0)

    prompt_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    completion_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cached_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    reasoning_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    estimated_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    estimated_cost: Mapped[Decimal | None] = mapped_column(Numeric(18, 8))
    actual_cost: Mapped[Decimal] = mapped_column(Numeric(18, 8), default=Decimal(0))

    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    submitted_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    # Deleting a job removes its requests, results and batches but keeps this row and its timeline (audit).
    deleted_at: Mapped[datetime | None]

    last_error: Mapped[str | None] = mapped_column(Text)
    # "metadata" is reserved on declarative classes, so the attribute has another name.
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    # Where the requests came from (file name, format, CSV columns and template) for exports.
    source: Mapped[dict[str, Any] | None]
    # Who created the job; kept (as NULL) when the account is removed, so admins still see the job.
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    batches: Mapped[list[ProviderBatch]] = relationship(
        back_populates="job", cascade="all, delete-orphan", passive_deletes=True, order_by="ProviderBatch.id"
    )
    events: Mapped[list[JobEvent]] = relationship(
        back_populates="job", cascade="all, delete-orphan", passive_deletes=True, order_by="JobEvent.id"
    )

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_JOB_STATUSES

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_JOB_STATUSES

    @property
    def finished_requests(self) -> int:
        """Requests with a result: succeeded or failed (a cancelled request has none)."""
        return self.succeeded_requests + self.failed_requests

    @property
    def progress(self) -> float:
        """Share of requests with a stored result, 0.0 to 1.0."""
        return self.finished_requests / self.total_requests if self.total_requests else 0.0

    def answered(self, at_provider: int = 0) -> int:
        """Requests answered: those with a stored result, plus ``at_provider``, the requests of running batches
        the provider reports done (completed or failed) whose results are not stored yet."""
        return self.finished_requests + min(max(at_provider, 0), self.in_flight_requests)

    def answered_share(self, at_provider: int = 0) -> float:
        """``answered`` as a share of the job's requests, 0.0 to 1.0."""
        return self.answered(at_provider) / self.total_requests if self.total_requests else 0.0

    def __repr__(self) -> str:
        return f"<BatchJob {self.id} {self.status} {self.name!r}>"


class EventKind(StrEnum):
    CREATED = "created"
    REQUESTS_ADDED = "requests_added"
    BATCHES_PLANNED = "batches_planned"
    SUBMITTED = "submitted"
    BATCH_CREATED = "batch_created"
    BATCH_WAITING = "batch_waiting"
    BATCH_FAILED = "batch_failed"
    BATCH_ENDED = "batch_ended"
    RESULTS_INGESTED = "results_ingested"
    RETRIED = "retried"
    RESENT = "resent"  # cancelled requests sent again
    CANCEL_REQUESTED = "cancel_requested"
    CANCELLED = "cancelled"
    COMPLETED = "completed"
    FAILED = "failed"
    PROVIDER_ERROR = "provider_error"
    UPDATED = "updated"
    DELETED = "deleted"


class JobEvent(Base):
    __tablename__ = "job_events"
    __table_args__ = (Index("ix_job_events_job_id_id", "job_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("batch_jobs.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any] | None]
    actor: Mapped[str] = mapped_column(String(100), default="system")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    job: Mapped[BatchJob] = relationship(back_populates="events")

    def __repr__(self) -> str:
        return f"<JobEvent {self.job_id} {self.kind}>"
