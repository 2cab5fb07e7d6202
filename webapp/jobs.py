"""RQ job functions: module-level, take ids, call services, safe to run twice; failures propagate to RQ."""

from __future__ import annotations

import logging

from webapp import queue
from webapp.extensions import db
from webapp.logs import log_context
from webapp.models import ProviderBatch
from webapp.services import sync

log = logging.getLogger(__name__)
SYNC_LOCK = "batches:sync-all"
SYNC_TIMEOUT = 3600
# A pass only plans and hands batches out, so it is short; the lock outlives a worker killed mid-pass by this.
SYNC_LOCK_SECONDS = 300
BATCH_TIMEOUT = 3600


def sync_all() -> dict:
    """The periodic pass: plan and finish jobs, and hand each open provider batch to the workers.

    One pass at a time: rq-scheduler enqueues a pass every interval even while one is still running or
    waiting, and a second one would only repeat the first.
    """
    connection = queue.connection()
    if not connection.set(SYNC_LOCK, "1", nx=True, ex=SYNC_LOCK_SECONDS):
        log.info("sync pass skipped: another one is running")
        return {"skipped": True}
    try:
        return sync.sync_all(run_batch=dispatch_batch)
    finally:
        connection.delete(SYNC_LOCK)


def process_job(job_id: int) -> None:
    """Advance one job now (after submit, cancel or retry) instead of waiting for the next periodic pass."""
    with log_context(job_id=job_id):
        sync.sync_job(job_id, run_batch=dispatch_batch)


def sync_batch(batch_id: int) -> None:
    """Move one provider batch forward (under its lease), then end its job if nothing is left open."""
    queue.started(_batch_key(batch_id))
    batch = db.session.get(ProviderBatch, batch_id)
    if batch is None:  # its job was deleted meanwhile
        return
    job_id = batch.job_id
    with log_context(job_id=job_id, batch_id=batch_id):
        sync.sync_batch(batch_id)
        sync.finish_job(job_id)


def dispatch_batch(batch_id: int) -> None:
    """Queue ``sync_batch`` for a worker, unless one is already waiting for that batch."""
    queue.enqueue_once(sync_batch, batch_id, key=_batch_key(batch_id), timeout=BATCH_TIMEOUT)


def _batch_key(batch_id: int) -> str:
    return f"sync-batch-{batch_id}"
