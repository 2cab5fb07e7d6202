"""RQ job functions: module-level, take ids, call services, safe to run twice; failures propagate to RQ."""

from __future__ import annotations

import logging

from flask import current_app
from redis.exceptions import LockError, LockNotOwnedError

from webapp import queue
from webapp.extensions import db
from webapp.heartbeat import Heartbeat
from webapp.logs import log_context
from webapp.models import ProviderBatch
from webapp.services import reconcile, sync

log = logging.getLogger(__name__)
SYNC_LOCK = "batches:sync-all"
SYNC_TIMEOUT = 3600
# The pass's lock lives one sync interval (at least this) and is renewed while the pass runs: a pass killed
# with its worker delays the next one by at most about two intervals.
SYNC_LOCK_MIN_SECONDS = 3
BATCH_TIMEOUT = 3600
SWEEP_TIMEOUT = 1800


def sync_all() -> dict:
    """The periodic pass: plan and finish jobs, and hand each open provider batch to the workers.

    One pass at a time: rq-scheduler enqueues a pass every interval even while one is still running or
    waiting, and a second one would only repeat the first.
    """
    seconds = max(current_app.config["SYNC_INTERVAL_SECONDS"], SYNC_LOCK_MIN_SECONDS)
    lock = queue.connection().lock(SYNC_LOCK, timeout=seconds, blocking=False, thread_local=False)
    if not lock.acquire():
        log.info("sync pass skipped: another one is running")
        return {"skipped": True}
    try:
        with Heartbeat(lambda: _renew(lock), seconds / 3, "sync-pass-lock"):
            return sync.sync_all(run_batch=dispatch_batch)
    finally:
        try:
            lock.release()
        except LockError:
            log.warning("the sync pass outlived its lock (another pass may have run beside it)")


def _renew(lock) -> bool:
    try:
        return lock.reacquire()
    except LockNotOwnedError:
        return False  # it expired and another pass took it: nothing left to renew


def sweep_provider_files() -> dict:
    """The periodic sweep: provider files and batches of ours that no local batch uses are deleted or cancelled."""
    return reconcile.sweep_all()


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
