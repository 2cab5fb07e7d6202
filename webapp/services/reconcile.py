"""Agreeing with the provider after an uncertain outcome, and sweeping up what no batch of ours uses.

An upload or a create whose answer was lost (a timeout, a reset connection, a 5xx after the work was done) may
have made a file or a batch. Neither call is ever sent twice blindly: the engine records what it is about to
make (the input file's name, the batch's metadata) before the call, and the next attempt looks for it in the
provider's own lists first. Whatever slips through (an answer lost with a killed worker, a file of a refused
batch, a duplicate made before this existed) is found by ``sweep`` and deleted.

A provider that takes requests inline (Anthropic) keeps no metadata and shows no request of a running batch: its
batch is sent under a label (recorded first, in ``input_file_name``) that every request's id carries. After a
lost answer, a batch of the same size created around the label's time may be it: one that has ended is ours only
if its results carry the label; while one still runs, nothing is sent again (``UNDECIDED``), so no batch is made
twice and none of someone else's is ever taken or cancelled.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask import current_app
from sqlalchemy import select

from webapp.extensions import db
from webapp.models import PROVIDER_TERMINAL, BatchStatus, ProviderBatch
from webapp.providers import BatchInfo, Provider, ProviderError, available_providers, get_provider
from webapp.services.installation import install_id, install_ids

log = logging.getLogger(__name__)
FILE_PREFIX = "abp-"
SCAN_LIMIT = 2000  # list entries read at most per search (20 pages of batches, a fraction of one of files)
CLOCK_MARGIN = timedelta(hours=1)  # the provider's clock against ours, when a list is cut by creation time
SWEEP_GRACE = timedelta(minutes=10)  # nothing younger is swept: an upload or create may be about to be recorded
SWEEP_WINDOW = timedelta(days=7)  # the sweep reads the provider's lists back this far
# A send's batch is created within this of its label's time (the create's timeout is 600 s) ...
SEND_WINDOW = timedelta(minutes=15)
CLOCK_SKEW = timedelta(minutes=5)  # ... give or take the provider's clock against ours


class Undecided:
    """A batch that may be ours still runs: whether it is shows in its results, once it has ended."""

    def __repr__(self) -> str:
        return "UNDECIDED"


UNDECIDED = Undecided()


def utcnow() -> datetime:
    return datetime.now(UTC)


def input_file_name(batch: ProviderBatch) -> str:
    """A name for one upload of the batch's input: ours (the installation), the batch's, and new each time."""
    return f"{FILE_PREFIX}{install_id()}-job{batch.job_id}-batch{batch.id}-{secrets.token_hex(3)}.jsonl"


def find_uploaded(batch: ProviderBatch, provider: Provider) -> str | None:
    """The input file an earlier attempt uploaded as ``batch.input_file_name`` though its answer was lost.

    A copy of the right size is kept (the oldest); other copies under that name are deleted. Returns its id, or
    None when the upload never arrived.
    """
    copies = [f for f in _recent(provider.list_files(), batch.created_at) if f.filename == batch.input_file_name]
    keep = next((f for f in reversed(copies) if f.bytes == batch.input_bytes), None)
    for extra in copies:
        if extra is not keep:
            provider.delete_file(extra.id)
    if keep:
        log.info("batch %s: adopted input file %s uploaded by an earlier attempt", batch.id, keep.id)
    return keep.id if keep else None


def send_label(batch: ProviderBatch) -> str:
    """A label for one send of the batch's requests inline: ours (the installation), the batch's, and when (hex
    Unix seconds, then a random tail): new each time. Fits Anthropic's custom_id with ``-<n>`` after it."""
    return f"{FILE_PREFIX}{install_id()}-{batch.id}-{int(utcnow().timestamp()):x}{secrets.token_hex(2)}"


def label_time(label: str) -> datetime:
    """When a label from ``send_label`` was made."""
    return datetime.fromtimestamp(int(label.rpartition("-")[2][:-4], 16), tz=UTC)


def find_created(batch: ProviderBatch, provider: Provider) -> BatchInfo | Undecided | None:
    """The provider batch an earlier attempt created for ``batch`` though its answer was lost; UNDECIDED while
    one that may be it still runs (a provider taking requests inline, see ``_find_sent``).

    Matched by this installation's id, the local batch id and the input file. Should two exist, the oldest is
    kept and the others are cancelled (their requests would run twice).
    """
    if provider.inline:
        return _find_sent(batch, provider)
    found = sorted(
        (info for info in _recent(provider.list_batches(), batch.created_at) if _made_from(info, batch)),
        key=lambda info: (info.created_at or utcnow(), info.id),
    )
    for duplicate in found[1:]:
        log.warning("batch %s: cancelling duplicate provider batch %s", batch.id, duplicate.id)
        _cancel_quietly(provider, duplicate.id)
    return found[0] if found else None


def _find_sent(batch: ProviderBatch, provider: Provider) -> BatchInfo | Undecided | None:
    """The batch sent under ``batch.input_file_name``: among the batches of the same size created around the
    label's time that no local batch holds, the ended one whose results carry the label. UNDECIDED while such a
    batch still runs or its results cannot be read yet; None when there is none (nothing was made: send again)."""
    label = batch.input_file_name or ""
    sent_at = label_time(label)
    candidates = [
        info
        for info in _recent(provider.list_batches(), sent_at)
        if info.counts_total == batch.request_count
        and info.created_at is not None
        and sent_at - CLOCK_SKEW <= info.created_at <= sent_at + SEND_WINDOW
    ]
    held = _column_values(ProviderBatch.provider_batch_id, [info.id for info in candidates])
    undecided = False
    for info in (info for info in candidates if info.id not in held):
        if info.status not in PROVIDER_TERMINAL:
            undecided = True
            continue
        try:
            if provider.batch_label(info.id) == label:
                log.info("batch %s: adopted provider batch %s sent by an earlier attempt", batch.id, info.id)
                return info
        except ProviderError as exc:
            if exc.status_code != 404:  # results not readable yet, right after the batch ended
                raise
            undecided = True
    return UNDECIDED if undecided else None


def _made_from(info: BatchInfo, batch: ProviderBatch) -> bool:
    return (
        info.metadata.get("install") in install_ids()
        and info.metadata.get("local_batch_id") == str(batch.id)
        and info.input_file_id == batch.input_file_id
    )


def _recent(items: Iterator, since: datetime) -> Iterator:
    """Entries of a newest-first provider list down to ``since`` (less the clock margin), at most SCAN_LIMIT."""
    cutoff = since - CLOCK_MARGIN
    for scanned, item in enumerate(items, 1):
        if item.created_at is not None and item.created_at < cutoff:
            return
        yield item
        if scanned >= SCAN_LIMIT:
            return


def _cancel_quietly(provider: Provider, batch_id: str) -> None:
    try:
        provider.cancel_batch(batch_id)
    except ProviderError as exc:
        if not exc.refused:  # a batch already ended cannot be cancelled: nothing to do
            raise


# --- the sweep ------------------------------------------------------------------------------------------


@dataclass
class SweepReport:
    files_deleted: int = 0
    batches_cancelled: int = 0
    result_files_deleted: int = 0


def sweep(provider: Provider) -> SweepReport:
    """Delete our input files that no batch uses, cancel our provider batches that no local batch is, and delete
    those batches' result files. Only what is older than SWEEP_GRACE is touched (a worker may be about to record
    it). Raises ProviderError when the provider cannot be listed."""
    report = SweepReport()
    now = utcnow()
    _sweep_files(provider, now, report)
    _sweep_batches(provider, now, report)
    db.session.rollback()  # reads only
    return report


def _sweep_files(provider: Provider, now: datetime, report: SweepReport) -> None:
    prefix = f"{FILE_PREFIX}{install_id()}-"
    ours = [f for f in _settled(provider.list_files(), now) if f.filename.startswith(prefix)]
    used_ids = _column_values(
        ProviderBatch.input_file_id, [f.id for f in ours], ProviderBatch.files_deleted_at.is_(None)
    )
    pending_names = _column_values(
        ProviderBatch.input_file_name,
        [f.filename for f in ours],
        ProviderBatch.input_file_id.is_(None),
        ProviderBatch.ingested_at.is_(None),
    )
    for orphan in (f for f in ours if f.id not in used_ids and f.filename not in pending_names):
        provider.delete_file(orphan.id)
        report.files_deleted += 1
        log.info("deleted provider file %s (%s): no batch uses it", orphan.id, orphan.filename)


def _sweep_batches(provider: Provider, now: datetime, report: SweepReport) -> None:
    ours = [b for b in _settled(provider.list_batches(), now) if b.metadata.get("install") in install_ids()]
    known = _column_values(ProviderBatch.provider_batch_id, [b.id for b in ours])
    awaiting = _column_values(
        ProviderBatch.input_file_id,
        [b.input_file_id for b in ours if b.input_file_id],
        ProviderBatch.status == BatchStatus.UPLOADED,
    )
    for stray in (b for b in ours if b.id not in known and b.input_file_id not in awaiting):
        if stray.status not in PROVIDER_TERMINAL:
            _cancel_quietly(provider, stray.id)
            report.batches_cancelled += 1
            log.warning("cancelled provider batch %s: no local batch is it", stray.id)
        for file_id in filter(None, (stray.output_file_id, stray.error_file_id)):
            provider.delete_file(file_id)
            report.result_files_deleted += 1


def _settled(items: Iterator, now: datetime) -> Iterator:
    """Entries of a newest-first list created between SWEEP_WINDOW and SWEEP_GRACE ago."""
    for item in _recent(items, now - SWEEP_WINDOW + CLOCK_MARGIN):
        if item.created_at is not None and item.created_at < now - SWEEP_GRACE:
            yield item


def _column_values(column, values: list[str], *where) -> set[str]:
    """Which of ``values`` some local batch holds in ``column`` (with ``where``)."""
    if not values:
        return set()
    return set(db.session.scalars(select(column).where(column.in_(values), *where)))


def sweep_all() -> dict[str, dict]:
    """Sweep every provider this installation can use (when DELETE_PROVIDER_FILES); one failing is logged."""
    if not current_app.config["DELETE_PROVIDER_FILES"]:
        return {}
    reports = {}
    for name in available_providers():
        try:
            reports[name] = sweep(get_provider(name)).__dict__
        except ProviderError as exc:
            log.warning("could not sweep provider %s: %s", name, exc)
    return reports
