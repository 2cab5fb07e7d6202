"""One benchmark step per process (so peak memory is the step's own): prints one JSON line of figures."""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import orjson
import psycopg
from psycopg.types.json import Jsonb, set_json_dumps
from sqlalchemy import delete, update

from webapp import bulk, create_app
from webapp.extensions import db
from webapp.intake import imports, requests
from webapp.models import BatchJob, BatchResponse, JobStatus, ProviderBatch, RequestStatus, request_states
from webapp.services import exports, ingest, jobs, ledger, planning


def app_for(database_url: str, instance: str):
    return create_app(
        {
            "ENVIRON": {
                "LOG_LEVEL": "WARNING",
                "LOG_FORMAT": "text",
                "SECRET_KEY": "bench",
                "DATABASE_URL": database_url,
            },
            "INSTANCE_PATH": instance,
            "EMBEDDED_WORKERS": False,
            "TESTING": False,
            "BATCH_MAX_BYTES": 1024 * 1024 * 1024,
            "ENQUEUED_TOKEN_LIMIT": 10**12,
        }
    )


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def new_job(name: str) -> BatchJob:
    return jobs.create_job({"name": name, "model": "gpt-4o-mini", "provider": "simulator"})


REFERENCE_TABLE = """CREATE TABLE copy_reference (job_id bigint NOT NULL, custom_id text NOT NULL, body jsonb NOT NULL,
                                    UNIQUE (job_id, custom_id))"""


def reference_copy(database_url: str, path: Path) -> dict:
    """The reference: orjson parses each line and one psycopg ``COPY`` writes (job_id, custom_id, body) into a
    table of its own with a unique (job_id, custom_id) index. What the database and the parser do with this file,
    and nothing else: no validation, no second table, no other index."""
    with psycopg.connect(database_url) as conn:
        conn.execute("DROP TABLE IF EXISTS copy_reference")
        conn.execute(REFERENCE_TABLE)
        conn.commit()
        set_json_dumps(orjson.dumps, conn)
        started = time.perf_counter()
        count = 0
        with open(path, "rb") as fh, conn.cursor() as cursor:
            with cursor.copy("COPY copy_reference (job_id, custom_id, body) FROM STDIN") as copy:
                for line in fh:
                    obj = orjson.loads(line)
                    copy.write_row((1, obj["custom_id"], Jsonb(obj["body"])))
                    count += 1
        conn.commit()
        seconds = time.perf_counter() - started
        conn.execute("DROP TABLE copy_reference")
        conn.commit()
    return {"rows": count, "seconds": seconds}


def bench_token() -> dict:
    """Untimed: an admin and a personal API token, for the upload through HTTP."""
    from webapp.services import accounts

    user = accounts.create_user("bench@example.com", "bench password, not a secret", role="admin")
    return {"token": accounts.create_token(user, "bench")[1]}


def raw_copy(path: Path) -> dict:
    """The app's own bulk write without validation (the reference before issue 16): orjson parses each line and
    ``requests.insert_rows`` writes the request tables with all their indexes, with no checks and no estimates."""
    job = new_job("baseline copy")
    started = time.perf_counter()

    def rows():
        with open(path, "rb") as fh:
            for number, line in enumerate(fh, 1):
                obj = orjson.loads(line)
                yield {
                    "job_id": job.id,
                    "custom_id": obj["custom_id"],
                    "body": obj["body"],
                    "source_line": number,
                    "estimated_tokens": 0,
                }

    with bulk.gc_paused():
        count, _ = requests.insert_rows(rows())
    db.session.commit()
    return {"rows": count, "seconds": time.perf_counter() - started, "job_id": job.id}


def upload_ingest(path: Path) -> dict:
    job = new_job("upload ingest")
    started = time.perf_counter()
    with open(path, "rb") as fh:
        report = imports.import_jsonl(job, fh, filename=path.name)
    return {"rows": report.added, "seconds": time.perf_counter() - started, "job_id": job.id}


def input_files(job_id: int, workdir: Path) -> dict:
    """Split the job into provider batches and write every input file, as submission does."""
    job = db.session.get(BatchJob, job_id)
    job.status = JobStatus.QUEUED
    started = time.perf_counter()
    batches = planning.plan_batches(job)
    db.session.commit()
    lines = size = 0
    for batch in batches:
        count, written = planning.write_input_file(batch, workdir / f"input-{batch.id}.jsonl")
        lines, size = lines + count, size + written
    return {"rows": lines, "seconds": time.perf_counter() - started, "batches": len(batches), "bytes": size}


def prepare_results(job_id: int, workdir: Path) -> dict:
    """Untimed: mark the job's batches sent and write a provider output file for each from its input file."""
    from simulator import simulated_output

    job = db.session.get(BatchJob, job_id)
    for batch in job.batches:
        batch.status, batch.provider_batch_id = "completed", f"batch_bench_{batch.id}"
        with (
            open(workdir / f"input-{batch.id}.jsonl", "rb") as src,
            open(workdir / f"output-{batch.id}.jsonl", "w") as out,
        ):
            for line in src:
                out.write(json.dumps(simulated_output(json.loads(line), batch_id=batch.provider_batch_id)) + "\n")
    db.session.execute(
        update(request_states).where(request_states.c.job_id == job_id).values(status=RequestStatus.IN_FLIGHT)
    )
    job.status = JobStatus.RUNNING
    db.session.commit()
    return {"batches": len(job.batches)}


def result_ingest(job_id: int, workdir: Path, part: str = "0/1") -> dict:
    """Ingest the job's batches in order, as sync does; ``part`` k/n takes every n-th batch from the k-th, so n
    processes started together ingest one job side by side, as n workers would."""
    index, parts = (int(n) for n in part.split("/"))
    job = db.session.get(BatchJob, job_id)
    batch_ids = [b.id for b in sorted(job.batches, key=lambda b: b.id)][index::parts]
    started = time.perf_counter()
    total = 0
    for batch_id in batch_ids:
        batch = db.session.get(ProviderBatch, batch_id)
        summary = ingest.ingest_files(batch, batch.job, [workdir / f"output-{batch_id}.jsonl"], cancelled=False)
        ledger.adjust_counters(batch.job, tokens=summary.tokens, **summary.counter_changes())  # as sync does
        db.session.commit()
        total += summary.succeeded + summary.failed
    return {"rows": total, "seconds": time.perf_counter() - started}


def reset_results(job_id: int) -> dict:
    """Untimed: undo result ingest (requests back in flight, responses gone) so it can be measured again."""
    job = db.session.get(BatchJob, job_id)
    db.session.execute(delete(BatchResponse).where(BatchResponse.job_id == job_id))
    db.session.execute(
        update(request_states)
        .where(request_states.c.job_id == job_id)
        .values(status=RequestStatus.IN_FLIGHT, error_code=None, error=None, retry_count=0)
    )
    for batch in job.batches:
        batch.ingested_at = None
    ledger.recount(job)
    db.session.commit()
    return {"requests": job.total_requests}


def csv_export(job_id: int) -> dict:
    job = db.session.get(BatchJob, job_id)
    started = time.perf_counter()
    rows = size = 0
    for chunk in exports.csv_chunks(job):
        rows += chunk.count(b"\n")  # outputs hold no newlines here; header line counted below
        size += len(chunk)
    return {"rows": rows - 1, "seconds": time.perf_counter() - started, "bytes": size}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("step")
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--instance", required=True)
    parser.add_argument("--file")
    parser.add_argument("--job-id", type=int)
    parser.add_argument("--workdir")
    parser.add_argument("--part", default="0/1")
    args = parser.parse_args()
    if args.step == "reference_copy":  # psycopg alone, without the app
        result = reference_copy(args.database_url, Path(args.file))
        result["peak_rss_mb"] = peak_rss_mb()
        print(json.dumps(result))
        return
    app = app_for(args.database_url, args.instance)
    with app.app_context():
        if args.step == "bench_token":
            result = bench_token()
        elif args.step in ("raw_copy", "upload_ingest"):
            result = globals()[args.step](Path(args.file))
        elif args.step == "result_ingest":
            result = result_ingest(args.job_id, Path(args.workdir), args.part)
        elif args.step in ("input_files", "prepare_results"):
            result = globals()[args.step](args.job_id, Path(args.workdir))
        elif args.step == "reset_results":
            result = reset_results(args.job_id)
        else:
            result = csv_export(args.job_id)
    result["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(result))


if __name__ == "__main__":
    sys.exit(main())
