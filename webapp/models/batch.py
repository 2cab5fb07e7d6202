"""A provider batch: one chunk of a job's requests sent as one input file to the provider."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.models.base import Base, utcnow

if TYPE_CHECKING:  # the two models refer to each other
    from webapp.models.job import BatchJob


class BatchStatus(StrEnum):
    # Local states, before the provider knows the batch.
    PENDING = "pending"  # intent recorded, requests assigned, input file not uploaded yet
    WAITING = "waiting"  # held back: the model's enqueued-token limit is full
    UPLOADED = "uploaded"  # input file uploaded, batch not created yet
    # The provider's states.
    VALIDATING = "validating"
    IN_PROGRESS = "in_progress"
    FINALIZING = "finalizing"
    CANCELLING = "cancelling"
    COMPLETED = "completed"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


PROVIDER_TERMINAL = frozenset({BatchStatus.COMPLETED, BatchStatus.FAILED, BatchStatus.EXPIRED, BatchStatus.CANCELLED})
PROVIDER_RUNNING = frozenset(
    {BatchStatus.VALIDATING, BatchStatus.IN_PROGRESS, BatchStatus.FINALIZING, BatchStatus.CANCELLING}
)
PROVIDER_TIMESTAMPS = (
    "created_at",
    "in_progress_at",
    "expires_at",
    "finalizing_at",
    "completed_at",
    "failed_at",
    "expired_at",
    "cancelling_at",
    "cancelled_at",
)


class ProviderBatch(Base):
    __tablename__ = "provider_batches"
    __table_args__ = (
        Index("ix_provider_batches_status", "status"),
        Index("ix_provider_batches_job_id_status", "job_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("batch_jobs.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(default=0)  # 0 = first try, n = n-th retry round
    chunk_index: Mapped[int] = mapped_column(default=0)
    model: Mapped[str] = mapped_column(String(100))
    endpoint: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20), default=BatchStatus.PENDING)

    provider_batch_id: Mapped[str | None] = mapped_column(String(100), unique=True)
    input_file_id: Mapped[str | None] = mapped_column(String(100))
    # The name of the input file being uploaded, recorded before the upload: a lost answer is found by it.
    input_file_name: Mapped[str | None] = mapped_column(String(200))
    output_file_id: Mapped[str | None] = mapped_column(String(100))
    error_file_id: Mapped[str | None] = mapped_column(String(100))

    request_count: Mapped[int] = mapped_column(default=0)
    input_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    estimated_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    counts_total: Mapped[int] = mapped_column(default=0)
    counts_completed: Mapped[int] = mapped_column(default=0)
    counts_failed: Mapped[int] = mapped_column(default=0)
    errors: Mapped[list[Any] | None]
    usage: Mapped[dict[str, Any] | None]

    provider_created_at: Mapped[datetime | None]
    in_progress_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    finalizing_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    failed_at: Mapped[datetime | None]
    expired_at: Mapped[datetime | None]
    cancelling_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]

    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    last_synced_at: Mapped[datetime | None]
    next_sync_at: Mapped[datetime | None]  # back-off after provider errors
    sync_failures: Mapped[int] = mapped_column(default=0)
    ingested_at: Mapped[datetime | None]  # results stored: the batch needs nothing more
    # A worker's lease on the batch (claimed with SKIP LOCKED); it survives commits and expires if the worker dies.
    claimed_until: Mapped[datetime | None]
    claim_token: Mapped[str | None] = mapped_column(String(64))
    files_deleted_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)

    job: Mapped[BatchJob] = relationship(back_populates="batches")

    @property
    def remote_id(self) -> str:
        """The provider's id of a batch created there (RuntimeError before that: a bug, not a state)."""
        if self.provider_batch_id is None:
            raise RuntimeError(f"provider batch {self.id} has not been created at the provider")
        return self.provider_batch_id

    @property
    def is_provider_terminal(self) -> bool:
        return self.status in PROVIDER_TERMINAL

    def __repr__(self) -> str:
        return f"<ProviderBatch {self.id} job={self.job_id} {self.status} {self.provider_batch_id}>"
