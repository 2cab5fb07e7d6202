"""The batch lifecycle engine: plan, upload, create, poll, ingest, retry, cancel and finish jobs.

Every step records its intent in the database before calling the provider, and each provider batch is
worked on by one worker at a time (a lease claimed with SKIP LOCKED and renewed while held), so a killed
worker or two workers syncing at once never create a batch twice nor lose a result. An upload or a create
whose answer was lost is never sent again blindly: the next attempt finds it in the provider's lists first
(``reconcile``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from flask import current_app
from sqlalchemy import func, select, update

from webapp import bulk
from webapp.extensions import db
from webapp.logs import log_context
from webapp.models import (
    ACTIVE_JOB_STATUSES,
    PROVIDER_RUNNING,
    PROVIDER_TERMINAL,
    BatchJob,
    BatchRequest,
    BatchStatus,
    EventKind,
    JobStatus,
    ProviderBatch,
    RequestStatus,
    request_states,
)
from webapp.providers import BatchInfo, Provider, ProviderError, get_provider
from webapp.services import copies, ingest, leases, planning, queries, reconcile
from webapp.services.installation import install_id
from webapp.services.leases import Lease, LeaseLost
from webapp.services.ledger import adjust_counters, record_event, recount
from webapp.services.results import CANCELLED, CANCELLED_UNSENT
from webapp.words import count_of, tally

log = logging.getLogger(__name__)
STATE = request_states.c
UNSENT = (BatchStatus.PENDING, BatchStatus.WAITING)
TOKEN_LIMIT_CODE = "token_limit_exceeded"
MAX_BACKOFF_SECONDS = 600
# A result file may answer 404 for a moment after its batch ended; after this many tries it is given up for lost.
RESULT_FILE_TRIES = 6
AWAITING_SENT = "waiting for a provider batch that may be this one to end"
FINAL_EVENTS: dict[str, EventKind] = {JobStatus.CANCELLED: EventKind.CANCELLED, JobStatus.FAILED: EventKind.FAILED}


def utcnow() -> datetime:
    return datetime.now(UTC)


def sync_all(run_batch: Callable[[int], None] | None = None) -> dict:
    """One pass over every active job; returns a summary. A failing job is logged and the pass goes on.

    ``run_batch`` handles each open provider batch: ``sync_batch`` here and now (the default, for the CLI
    and tests), or a function that hands it to a worker so that several workers share the batches.
    """
    job_ids = list(
        db.session.scalars(select(BatchJob.id).where(BatchJob.status.in_(ACTIVE_JOB_STATUSES)).order_by(BatchJob.id))
    )
    failures = []
    for job_id in job_ids:
        try:
            with log_context(job_id=job_id):
                sync_job(job_id, run_batch)
        except Exception:  # noqa: BLE001 - one broken job must not stop the others; it is logged and re-raised below
            db.session.rollback()
            log.exception("sync of job %s failed", job_id)
            failures.append(job_id)
    cleaned = clean_up_files()
    if failures:
        raise RuntimeError(f"sync failed for jobs {failures}; see the log")
    return {"jobs": len(job_ids), "files_cleaned": cleaned}


def sync_job(job_id: int, run_batch: Callable[[int], None] | None = None) -> None:
    """Advance one job as far as it can go now; safe to run again at any time and in parallel."""
    job = db.session.get(BatchJob, job_id)
    if job is None or job.status not in ACTIVE_JOB_STATUSES:
        return
    if job.status == JobStatus.CANCELLING:
        _cancel_unassigned(job_id)
    else:
        _plan(job_id)
    open_batches = db.session.scalars(
        select(ProviderBatch.id)
        .where(ProviderBatch.job_id == job_id, ProviderBatch.ingested_at.is_(None))
        .order_by(ProviderBatch.id)
    ).all()
    for batch_id in open_batches:
        (run_batch or sync_batch)(batch_id)
    finish_job(job_id)


def _lock_job(job_id: int) -> BatchJob | None:
    """The job row, locked for this transaction; None when another worker holds it (PostgreSQL)."""
    return db.session.scalars(
        select(BatchJob)
        .where(BatchJob.id == job_id)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    ).first()


def _plan(job_id: int) -> None:
    job = _lock_job(job_id)
    if job is None or job.status not in (JobStatus.QUEUED, JobStatus.RUNNING):
        db.session.rollback()
        return
    batches = planning.plan_batches(job)
    if batches:
        requests = sum(b.request_count for b in batches)
        record_event(
            job,
            EventKind.BATCHES_PLANNED,
            f"Split {count_of(requests, 'request')} into "
            f"{count_of(len(batches), 'provider batch', 'provider batches')}",
            data={"batches": [b.id for b in batches]},
        )
    db.session.commit()


def _cancel_unassigned(job_id: int) -> None:
    job = _lock_job(job_id)
    if job is None:
        db.session.rollback()
        return
    _settle_requests(planning.unassigned(job_id), RequestStatus.CANCELLED, CANCELLED, CANCELLED_UNSENT)
    db.session.commit()


def _settle_requests(conditions: tuple, status: RequestStatus, code: str, message: str) -> int:
    """End the requests ``conditions`` select as ``status`` (failed or cancelled) with the error code and message."""
    return bulk.changed(
        update(request_states)
        .where(*conditions)
        .values(status=status, error_code=code, error=message)
        .execution_options(synchronize_session=False)
    )


# --- one provider batch -------------------------------------------------------------------------------


def sync_batch(batch_id: int) -> None:
    """Move one provider batch one or more steps forward, under its lease."""
    lease = leases.claim(batch_id)
    if lease is None:
        return
    try:
        with lease:
            batch = db.session.get_one(ProviderBatch, batch_id, populate_existing=True)
            if batch.ingested_at is None and not (batch.next_sync_at and batch.next_sync_at > utcnow()):
                _step(batch, get_provider(batch.job.provider), lease)
    except ProviderError as exc:
        db.session.rollback()
        _provider_failed(batch_id, exc)
    except LeaseLost as exc:
        log.warning("stopped work on batch %s: %s", batch_id, exc)
    finally:
        db.session.rollback()
        leases.release(lease)


def _step(batch: ProviderBatch, provider: Provider, lease: Lease) -> None:
    job = batch.job
    cancelling = job.status == JobStatus.CANCELLING
    if batch.status in UNSENT:
        if cancelling:
            return _cancel_unsent(batch, provider)
        if not _has_capacity(batch):
            return _wait_for_capacity(batch)
        _send(batch, provider, lease)
    elif batch.status == BatchStatus.UPLOADED:
        # An earlier attempt stopped after the upload (or lost the create's answer, or an inline send's): the batch
        # may exist already.
        found = reconcile.find_created(batch, provider)
        if isinstance(found, reconcile.Undecided):
            return _await_sent(batch)
        if found:
            _record_created(batch, found, adopted=True)
        elif cancelling:
            return _cancel_unsent(batch, provider)
        elif provider.inline:
            _send_inline(batch, provider, lease)
        else:
            _create(batch, provider, lease)
    if batch.status in PROVIDER_RUNNING:
        cancellable = cancelling and batch.status in (BatchStatus.VALIDATING, BatchStatus.IN_PROGRESS)
        info = _cancel(batch, provider) if cancellable else provider.get_batch(batch.remote_id)
        _apply_info(batch, info)
        db.session.commit()
    if batch.status in PROVIDER_TERMINAL and batch.ingested_at is None:
        _finish_batch(batch, provider)


def _cancel(batch: ProviderBatch, provider: Provider) -> BatchInfo:
    """Ask the provider to cancel the batch. One that is finalizing or has ended meanwhile refuses (a 4xx): it is
    read instead, and its results are stored when it ends, like any other batch's."""
    try:
        return provider.cancel_batch(batch.remote_id)
    except ProviderError as exc:
        if not exc.refused:
            raise
        log.info("cancel of batch %s refused (%s): reading it instead", batch.id, exc)
        return provider.get_batch(batch.remote_id)


def _has_capacity(batch: ProviderBatch) -> bool:
    """Whether the model's enqueued tokens, counting this batch, stay under the limit."""
    in_use = db.session.scalar(
        select(func.coalesce(func.sum(ProviderBatch.estimated_tokens), 0))
        .join(BatchJob, BatchJob.id == ProviderBatch.job_id)
        .where(
            ProviderBatch.model == batch.model,
            ProviderBatch.id != batch.id,
            ProviderBatch.status.in_(
                (BatchStatus.UPLOADED, BatchStatus.VALIDATING, BatchStatus.IN_PROGRESS, BatchStatus.FINALIZING)
            ),
            BatchJob.provider == batch.job.provider,
        )
    )
    return not in_use or in_use + batch.estimated_tokens <= planning.token_limit(batch.model)


def _wait_for_capacity(batch: ProviderBatch) -> None:
    if batch.status != BatchStatus.WAITING:
        batch.status = BatchStatus.WAITING
        record_event(
            batch.job,
            EventKind.BATCH_WAITING,
            f"Batch {batch.id} waits: the enqueued-token limit for {batch.model} is reached",
        )
    db.session.commit()


def _send(batch: ProviderBatch, provider: Provider, lease: Lease) -> None:
    """Make the batch at the provider: upload its input file and create the batch from it, or send its requests
    with the create call to a provider that takes them inline."""
    if provider.inline:
        return _send_inline(batch, provider, lease)
    _upload(batch, provider, lease)
    _create(batch, provider, lease)


def _send_inline(batch: ProviderBatch, provider: Provider, lease: Lease) -> None:
    """Send the batch's requests with the create call, under a label recorded first (with the status UPLOADED: the
    batch may exist from now on): if the answer is lost, the next attempt recognises the batch by it."""
    with ingest.temporary_workdir() as tmp:
        path = Path(tmp) / "input.jsonl"
        planning.write_input_file(batch, path)  # the same lines as an upload's, translated by the provider
        batch.input_file_name = reconcile.send_label(batch)
        batch.status = BatchStatus.UPLOADED
        db.session.commit()
        lease.check()
        info = provider.send_batch(path, batch.endpoint, batch.input_file_name)
    lease.check()
    _record_created(batch, info, adopted=False)


def _await_sent(batch: ProviderBatch) -> None:
    """A batch the provider may have made from an earlier send still runs: nothing is sent again until it ends
    and its results show whether it is this one (or the job's cancel, which cannot touch what may be another's)."""
    if batch.last_error != AWAITING_SENT:  # said once, not on every pass
        record_event(
            batch.job,
            EventKind.BATCH_WAITING,
            f"Batch {batch.id}: the answer to its sending was lost; a provider batch that may be it still runs, "
            "and is recognised by its results when it ends (nothing is sent again meanwhile)",
            data={"batch": batch.id},
        )
    batch.last_error = AWAITING_SENT
    batch.last_synced_at = utcnow()
    db.session.commit()


def _upload(batch: ProviderBatch, provider: Provider, lease: Lease) -> None:
    """Write and upload the input file, under a name recorded first: if the answer is lost, the next attempt
    finds the file by that name instead of uploading a second copy."""
    if batch.input_file_name:
        found = reconcile.find_uploaded(batch, provider)
        if found:
            return _uploaded(batch, found)
    with ingest.temporary_workdir() as tmp:
        path = Path(tmp) / "input.jsonl"
        planning.write_input_file(batch, path)  # sets the batch's request count and size to the file's
        batch.input_file_name = reconcile.input_file_name(batch)
        db.session.commit()
        lease.check()
        file_id = provider.upload_input(path, batch.input_file_name)
    lease.check()  # a worker that froze meanwhile records nothing: the one that took over decides
    _uploaded(batch, file_id)


def _uploaded(batch: ProviderBatch, file_id: str) -> None:
    batch.input_file_id = file_id
    batch.status = BatchStatus.UPLOADED
    db.session.commit()


def _create(batch: ProviderBatch, provider: Provider, lease: Lease) -> None:
    if batch.input_file_id is None:
        raise RuntimeError(f"batch {batch.id} is {batch.status} without an input file")
    lease.check()
    info = provider.create_batch(batch.input_file_id, batch.endpoint, batch_metadata(batch))
    lease.check()
    _record_created(batch, info, adopted=False)


def batch_metadata(batch: ProviderBatch) -> dict[str, str]:
    """Names the job and chunk on the provider's side, and lets a restarted worker find the batch again."""
    return {
        "app": "ai-batch-processor",
        "install": install_id(),
        "job_id": str(batch.job_id),
        "job_name": batch.job.name[:500],
        "local_batch_id": str(batch.id),
        "chunk": str(batch.chunk_index),
        "attempt": str(batch.attempt),
    }


def _record_created(batch: ProviderBatch, info: BatchInfo, *, adopted: bool) -> None:
    batch.provider_batch_id = info.id
    _apply_info(batch, info)
    sent = bulk.changed(
        update(request_states)
        .where(STATE.provider_batch_id == batch.id, STATE.status == RequestStatus.PENDING)
        .values(status=RequestStatus.IN_FLIGHT)
        .execution_options(synchronize_session=False)
    )
    job = batch.job
    if job.status == JobStatus.QUEUED:
        job.status = JobStatus.RUNNING
    adjust_counters(job, pending_requests=-sent, in_flight_requests=sent)
    how = "found again after a restart" if adopted else "created"
    round_ = f" (retry round {batch.attempt})" if batch.attempt else ""
    record_event(
        job,
        EventKind.BATCH_CREATED,
        f"Provider batch {info.id} {how} with {count_of(batch.request_count, 'request')}{round_}",
        data={"batch": batch.id, "provider_batch_id": info.id},
    )
    db.session.commit()


def _apply_info(batch: ProviderBatch, info: BatchInfo) -> None:
    batch.status = info.status
    batch.output_file_id = info.output_file_id
    batch.error_file_id = info.error_file_id
    batch.counts_total, batch.counts_completed, batch.counts_failed = (
        info.counts_total,
        info.counts_completed,
        info.counts_failed,
    )
    batch.errors = info.errors or None
    batch.usage = info.usage
    for name, value in info.timestamps.items():
        setattr(batch, "provider_created_at" if name == "created_at" else name, value)
    batch.last_synced_at = utcnow()
    batch.sync_failures = 0
    batch.next_sync_at = None
    batch.last_error = None


def _provider_failed(batch_id: int, exc: ProviderError) -> None:
    """A provider call failed: back off and try later, or give the batch up when retrying cannot help."""
    batch = db.session.get_one(ProviderBatch, batch_id, populate_existing=True)
    if exc.retryable:
        batch.sync_failures += 1
        delay = _backoff(2 ** (batch.sync_failures - 1))
        batch.next_sync_at = utcnow() + timedelta(seconds=delay)
        batch.last_error = str(exc)
        if batch.sync_failures == 1:
            record_event(
                batch.job,
                EventKind.PROVIDER_ERROR,
                f"Provider error, retrying in {delay}s: {exc}",
                data={"batch": batch.id},
            )
        log.warning("provider error on batch %s, retry in %ss: %s", batch_id, delay, exc)
    else:
        log.error("provider rejected batch %s: %s", batch_id, exc)
        _give_up(batch, str(exc), sent=batch.provider_batch_id is not None)
    db.session.commit()


def _backoff(factor: float) -> float:
    """Seconds to wait before the next try: PROVIDER_BACKOFF_SECONDS times ``factor``, capped."""
    return round(min(current_app.config["PROVIDER_BACKOFF_SECONDS"] * factor, MAX_BACKOFF_SECONDS), 3)


def _give_up(batch: ProviderBatch, reason: str, *, sent: bool) -> None:
    """End a batch locally; its requests fail (retryable if it had reached the provider)."""
    batch.status = BatchStatus.FAILED
    batch.last_error = reason
    batch.ingested_at = utcnow()
    db.session.flush()
    if sent:  # its requests were in flight: settle them as results that never came
        ingest.ingest_files(batch, batch.job, [], cancelled=False)
    else:
        _settle_requests(
            (STATE.provider_batch_id == batch.id, STATE.status == RequestStatus.PENDING),
            RequestStatus.FAILED,
            "provider_rejected",
            reason[:1000],
        )
    recount(batch.job)
    record_event(batch.job, EventKind.BATCH_FAILED, f"Batch {batch.id} failed: {reason}", data={"batch": batch.id})


def _cancel_unsent(batch: ProviderBatch, provider: Provider) -> None:
    if batch.input_file_name and not batch.input_file_id:  # an upload whose answer was lost may have arrived
        batch.input_file_id = reconcile.find_uploaded(batch, provider)
    if batch.input_file_id:  # unused now, whatever DELETE_PROVIDER_FILES says: it never became a batch
        provider.delete_file(batch.input_file_id)
        batch.files_deleted_at = utcnow()
    batch.status = BatchStatus.CANCELLED
    batch.ingested_at = utcnow()
    _settle_requests(
        (STATE.provider_batch_id == batch.id, STATE.status == RequestStatus.PENDING),
        RequestStatus.CANCELLED,
        CANCELLED,
        CANCELLED_UNSENT,
    )
    recount(batch.job)
    db.session.commit()


# --- a batch that ended at the provider -----------------------------------------------------------------


def _finish_batch(batch: ProviderBatch, provider: Provider) -> None:
    if batch.status == BatchStatus.FAILED:
        return _batch_failed(batch, provider)
    job = batch.job
    with ingest.temporary_workdir() as tmp:
        paths = _download_results(batch, provider, Path(tmp))
        summary = ingest.ingest_files(batch, job, paths, cancelled=job.status == JobStatus.CANCELLING)
    batch.ingested_at = utcnow()
    adjust_counters(job, tokens=summary.tokens, **summary.counter_changes())
    record_event(
        job,
        EventKind.RESULTS_INGESTED,
        f"Batch {batch.provider_batch_id} {batch.status}: "
        + tally(
            succeeded=summary.succeeded,
            failed=summary.failed,
            cancelled=summary.cancelled,
            to_send_again=summary.retried,
        ),
        data={"batch": batch.id, **summary.as_dict()},
    )
    if summary.retried:
        record_event(
            job,
            EventKind.RETRIED,
            f"{count_of(summary.retried, 'request')} failed for a passing reason and will be sent again "
            "in a follow-up batch",
        )
    db.session.commit()
    _delete_files(batch, provider)


def _download_results(batch: ProviderBatch, provider: Provider, workdir: Path) -> list[Path]:
    """The batch's result files on disk. Right after a batch ends its files may answer 404 for a moment: that is
    tried again later (with back-off) a few times before the results are given up for lost."""
    try:
        if provider.inline:
            return [_download_inline(batch, provider, workdir)]
        return ingest.download_results(provider, batch, workdir)
    except ProviderError as exc:
        if exc.status_code == 404 and batch.sync_failures + 1 < RESULT_FILE_TRIES:
            raise ProviderError(
                f"{exc} (the batch's results may not be readable yet)", retryable=True, status_code=404
            ) from exc
        raise


def _download_inline(batch: ProviderBatch, provider: Provider, workdir: Path) -> Path:
    """The results of a batch sent inline, written as OpenAI output lines under the requests' own custom_ids."""
    path = workdir / f"batch-{batch.id}-results.jsonl"
    provider.download_results(batch.remote_id, planning.custom_ids_in_file_order(batch), path)
    return path


def _batch_failed(batch: ProviderBatch, provider: Provider) -> None:
    """A batch the provider refused as a whole: wait and resend on a token limit, else map line errors."""
    errors = batch.errors or []
    if any(e.get("code") == TOKEN_LIMIT_CODE for e in errors):
        return _requeue_for_tokens(batch, errors, provider)
    ids = planning.request_ids_in_file_order(batch)
    line_errors = {e["line"]: e for e in errors if isinstance(e.get("line"), int) and 0 < e["line"] <= len(ids)}
    general = next((e for e in errors if not e.get("line")), None)
    outcomes_failed = 0
    for line, error in line_errors.items():
        source = db.session.get_one(BatchRequest, ids[line - 1])
        where = f" (line {source.source_line} of the uploaded file)" if source.source_line else ""
        source.status, source.error_code = RequestStatus.FAILED, error.get("code") or "invalid_request"
        source.error = f"{error.get('message') or 'rejected by the provider'}{where}"
        outcomes_failed += 1
    db.session.flush()
    if general and not line_errors:
        _settle_requests(
            (STATE.provider_batch_id == batch.id, STATE.status == RequestStatus.IN_FLIGHT),
            RequestStatus.FAILED,
            general.get("code") or "batch_failed",
            general.get("message") or "the batch failed",
        )
    # Requests on good lines never ran: they go to a follow-up batch (ingest treats them as missing results).
    ingest.ingest_files(batch, batch.job, [], cancelled=batch.job.status == JobStatus.CANCELLING)
    batch.ingested_at = utcnow()
    recount(batch.job)
    message = (
        "; ".join(
            f"line {e.get('line')}: {e.get('message')}" if e.get("line") else str(e.get("message")) for e in errors[:5]
        )
        or "no reason given"
    )
    record_event(
        batch.job,
        EventKind.BATCH_FAILED,
        f"Batch {batch.provider_batch_id} failed validation: {message}",
        data={"batch": batch.id, "errors": errors[:50]},
    )
    db.session.commit()


def _requeue_for_tokens(batch: ProviderBatch, errors: list, provider: Provider) -> None:
    """token_limit_exceeded is not the job's fault: resend the same chunk later, when capacity frees up.

    The refused batch's input file is deleted (a new one is uploaded then); should that fail, the sweep will.
    """
    old, old_file = batch.provider_batch_id, batch.input_file_id
    db.session.execute(
        update(request_states)
        .where(STATE.provider_batch_id == batch.id, STATE.status == RequestStatus.IN_FLIGHT)
        .values(status=RequestStatus.PENDING)
        .execution_options(synchronize_session=False)
    )
    batch.status = BatchStatus.WAITING
    batch.provider_batch_id = None
    batch.input_file_id = batch.input_file_name = None
    batch.errors = errors
    batch.sync_failures += 1
    delay = _backoff(6 * batch.sync_failures)
    batch.next_sync_at = utcnow() + timedelta(seconds=delay)
    recount(batch.job)
    record_event(
        batch.job,
        EventKind.BATCH_WAITING,
        f"Provider batch {old} hit the enqueued-token limit for {batch.model}; resending in {delay}s",
        data={"batch": batch.id, "provider_batch_id": old},
    )
    db.session.commit()
    if old_file and current_app.config["DELETE_PROVIDER_FILES"]:
        _delete_quietly(provider, batch, [old_file])


def _delete_files(batch: ProviderBatch, provider: Provider) -> None:
    if not current_app.config["DELETE_PROVIDER_FILES"] or batch.files_deleted_at:
        return
    if _delete_quietly(provider, batch, [batch.input_file_id, batch.output_file_id, batch.error_file_id]):
        batch.files_deleted_at = utcnow()
        db.session.commit()


def _delete_quietly(provider: Provider, batch: ProviderBatch, file_ids: list[str | None]) -> bool:
    """Delete the files; a failure is logged (the clean-up or the sweep tries again later), not raised."""
    try:
        for file_id in filter(None, file_ids):
            provider.delete_file(file_id)
    except ProviderError as exc:
        log.warning("could not delete the files of batch %s yet: %s", batch.id, exc)
        return False
    return True


def clean_up_files() -> int:
    """Delete provider files of ended batches whose clean-up failed earlier (or that never reached the provider)."""
    if not current_app.config["DELETE_PROVIDER_FILES"]:
        return 0
    pending = db.session.scalars(
        select(ProviderBatch.id)
        .where(
            ProviderBatch.ingested_at.is_not(None),
            ProviderBatch.files_deleted_at.is_(None),
            ProviderBatch.input_file_id.is_not(None)
            | ProviderBatch.output_file_id.is_not(None)
            | ProviderBatch.error_file_id.is_not(None),
        )
        .limit(100)
    ).all()
    for batch_id in pending:
        lease = leases.claim(batch_id)
        if lease is None:
            continue
        try:
            batch = db.session.get_one(ProviderBatch, batch_id, populate_existing=True)
            _delete_files(batch, get_provider(batch.job.provider))
        finally:
            leases.release(lease)
    return len(pending)


# --- the job as a whole ---------------------------------------------------------------------------------


def finish_job(job_id: int) -> None:
    """End the job once no request or batch is open: completed, with errors, failed or cancelled."""
    job = _lock_job(job_id)
    if job is None or job.status not in ACTIVE_JOB_STATUSES:
        db.session.rollback()
        return
    copies.settle(job_id)
    recount(job)
    open_batches = db.session.scalar(
        select(func.count())
        .select_from(ProviderBatch)
        .where(ProviderBatch.job_id == job_id, ProviderBatch.ingested_at.is_(None))
    )
    if job.pending_requests or job.in_flight_requests or open_batches:
        db.session.commit()
        return
    job.status = _final_status(job)
    job.completed_at = utcnow()
    errors = queries.error_counts(job_id) if job.failed_requests else []
    job.last_error = _error_summary(errors) if errors else None
    record_event(
        job,
        FINAL_EVENTS.get(job.status, EventKind.COMPLETED),
        f"Job {job.status.replace('_', ' ')}: "
        + tally(succeeded=job.succeeded_requests, failed=job.failed_requests, cancelled=job.cancelled_requests),
        data={"errors": errors} if errors else None,  # the job page explains them without counting again
    )
    db.session.commit()


def _final_status(job: BatchJob) -> str:
    if job.status == JobStatus.CANCELLING or job.cancelled_requests:  # requests a cancel stopped are left
        return JobStatus.CANCELLED
    if not job.failed_requests:
        return JobStatus.COMPLETED
    return JobStatus.FAILED if not job.succeeded_requests else JobStatus.COMPLETED_WITH_ERRORS


def _error_summary(errors: list[tuple[str | None, int]]) -> str:
    return "errors: " + ", ".join(f"{code or 'error'} ×{count}" for code, count in errors[:5])
