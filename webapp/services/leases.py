"""A worker's lease on a provider batch: claimed with SKIP LOCKED, renewed by a heartbeat, fenced before provider calls.

The lease is short (``CLAIM_LEASE_SECONDS``, 30 s by default) so that a killed worker's batch is taken over soon;
a live worker renews it every third of that from a thread of its own, on a connection of its own, so a long
upload, download or ingest keeps it. Before any call that makes something at the provider (an upload, a batch)
the worker checks that the lease is still its own (``Lease.check``): a worker that was frozen or cut off from the
database past its lease stops instead of racing the worker that took over.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from time import monotonic

from flask import current_app
from sqlalchemy import or_, select, update
from sqlalchemy.engine import Engine

from webapp import bulk
from webapp.extensions import db
from webapp.heartbeat import Heartbeat
from webapp.models import ProviderBatch

BEATS_PER_LEASE = 3


class LeaseLost(Exception):
    """This worker's lease on a batch ran out or was taken over: it must not call the provider for it."""


def utcnow() -> datetime:
    return datetime.now(UTC)


class Lease:
    """A claim on one provider batch, renewed in the background while held (``with lease:``)."""

    def __init__(self, batch_id: int, token: str, seconds: float, engine: Engine):
        self.batch_id, self.token, self.seconds, self.engine = batch_id, token, seconds, engine
        self.renewed_at = monotonic()
        self.taken_over = False
        self._heartbeat = Heartbeat(self.renew, seconds / BEATS_PER_LEASE, f"lease-batch-{batch_id}")

    @property
    def held(self) -> bool:
        return not self.taken_over and monotonic() - self.renewed_at < self.seconds

    def check(self) -> None:
        """Raise LeaseLost unless the lease is still this worker's."""
        if not self.held:
            raise LeaseLost(f"the lease on batch {self.batch_id} ran out or was taken over")

    def renew(self) -> bool:
        """Extend the lease from now (own connection and transaction); False once another worker holds it."""
        started = monotonic()
        with self.engine.begin() as conn:
            renewed = conn.execute(
                update(ProviderBatch)
                .where(ProviderBatch.id == self.batch_id, ProviderBatch.claim_token == self.token)
                .values(claimed_until=utcnow() + timedelta(seconds=self.seconds))
            ).rowcount
        if renewed:
            self.renewed_at = started
        else:
            self.taken_over = True
        return bool(renewed)

    def __enter__(self) -> Lease:
        self._heartbeat.start()
        return self

    def __exit__(self, *exc) -> None:
        self._heartbeat.stop()


def claim(batch_id: int) -> Lease | None:
    """Take the batch's lease if nobody holds it (commits); None when another worker does."""
    now = utcnow()
    token = uuid.uuid4().hex
    seconds = current_app.config["CLAIM_LEASE_SECONDS"]
    free = (ProviderBatch.id == batch_id, or_(ProviderBatch.claimed_until.is_(None), ProviderBatch.claimed_until < now))
    target = select(ProviderBatch.id).where(*free).with_for_update(skip_locked=True).scalar_subquery()
    claimed = bulk.changed(
        update(ProviderBatch)
        .where(ProviderBatch.id == target, *free)
        .values(claimed_until=now + timedelta(seconds=seconds), claim_token=token)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    # The heartbeat needs a connection of its own: db.engine is an Engine, or a Connection when tests join one.
    return Lease(batch_id, token, seconds, db.engine.engine) if claimed else None


def release(lease: Lease) -> None:
    """Give the lease up (commits); a lease another worker took over meanwhile stays theirs."""
    db.session.execute(
        update(ProviderBatch)
        .where(ProviderBatch.id == lease.batch_id, ProviderBatch.claim_token == lease.token)
        .values(claimed_until=None, claim_token=None)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
