"""The page benchmark's data set, written by PostgreSQL itself (INSERT ... SELECT generate_series) in seconds.

2,000 jobs: 1,980 older small jobs (mostly finished), then one big running job of 1,000,000 requests, then 19
recent small jobs (drafts, queued, running). Small jobs hold 1-100 requests each (about 100,000 in all), so the
big job's rows sit between other jobs' rows, as they would in a live database. Counters on batch_jobs and
provider_batches are computed from the rows, as ``ledger.recount`` would.

The big job, in 20 provider batches of 50,000 requests:
  batches 1-12   completed and ingested: 600,000 finished, every 33rd failed (HTTP 500 response)
  batch  13      finalizing, batches 14-17 in progress: 250,000 requests in flight
  batches 18-20  waiting for token capacity: 150,000 requests pending (none of them retries)
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, text

CHUNK = 50_000  # BATCH_MAX_REQUESTS' default


@dataclass(frozen=True)
class DataSet:
    jobs: int = 2_000
    big_job_id: int = 1_981  # jobs after it are the recent ones
    big_requests: int = 1_000_000


# Status of the small jobs: older ones by id % 20, recent ones by id % 4.
OLD_STATUS = """CASE WHEN id % 20 < 14 THEN 'completed' WHEN id % 20 < 17 THEN 'completed_with_errors'
                     WHEN id % 20 = 17 THEN 'failed' WHEN id % 20 = 18 THEN 'cancelled' ELSE 'draft' END"""
RECENT_STATUS = "(ARRAY['running', 'queued', 'draft', 'running'])[id % 4 + 1]"

JOBS = f"""
CREATE TEMP TABLE plan ON COMMIT DROP AS
SELECT id,
       CASE WHEN id = :big THEN :big_n ELSE (id * 7919) % 100 + 1 END AS n,
       CASE WHEN id = :big THEN 'running' WHEN id < :big THEN {OLD_STATUS} ELSE {RECENT_STATUS} END AS status,
       CASE WHEN id <= :big THEN now() - interval '60 days' + id * interval '43 minutes'
            ELSE now() - interval '3 hours' + (id - :big) * interval '9 minutes' END AS created_at
FROM generate_series(1, :jobs) AS id;

INSERT INTO batch_jobs (id, name, description, status, provider, endpoint, model, max_tokens, max_retries,
                        total_requests, pending_requests, in_flight_requests, succeeded_requests, failed_requests,
                        cancelled_requests, prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens,
                        estimated_tokens, actual_cost, created_at, updated_at, submitted_at, completed_at, metadata,
                        source, owner_id)
SELECT id, CASE WHEN id = :big THEN 'Customer reviews, full year' ELSE 'Reviews batch ' || id END, '', status,
       'openai', '/v1/chat/completions', 'gpt-4o-mini', 50, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
       created_at, created_at + interval '10 minutes',
       CASE WHEN status <> 'draft' THEN created_at + interval '5 minutes' END,
       CASE WHEN status IN ('completed', 'completed_with_errors', 'failed', 'cancelled')
            THEN created_at + interval '50 minutes' END,
       '{{}}'::jsonb, jsonb_build_object('filename', 'reviews-' || id || '.jsonl', 'format', 'jsonl'), :owner
FROM plan;
SELECT setval('batch_jobs_id_seq', :jobs);
"""

# One provider batch per submitted small job (id = the job's id); the big job's 20 have ids 3001-3020.
BATCHES = """
INSERT INTO provider_batches (id, job_id, attempt, chunk_index, model, endpoint, status, provider_batch_id,
                              input_file_id, output_file_id, input_bytes, estimated_tokens, sync_failures,
                              request_count, counts_total, counts_completed, counts_failed,
                              provider_created_at, in_progress_at, expires_at, completed_at, created_at,
                              updated_at, ingested_at)
SELECT b.id, p.id, 0, b.chunk, 'gpt-4o-mini', '/v1/chat/completions', b.status,
       CASE WHEN b.status NOT IN ('pending', 'waiting') THEN 'batch_' || md5(b.id::text) END,
       CASE WHEN b.status NOT IN ('pending', 'waiting') THEN 'file-in-' || b.id END,
       CASE WHEN b.status = 'completed' THEN 'file-out-' || b.id END, 0, 0, 0, 0, 0, 0, 0,
       p.created_at + interval '6 minutes', p.created_at + interval '7 minutes',
       CASE WHEN b.status IN ('in_progress', 'finalizing') THEN now() + interval '21 hours' END,
       CASE WHEN b.status = 'completed' THEN p.created_at + interval '45 minutes' END,
       p.created_at + interval '5 minutes', p.created_at + interval '8 minutes',
       CASE WHEN b.status IN ('completed', 'failed', 'cancelled') THEN p.created_at + interval '50 minutes' END
FROM plan p
CROSS JOIN LATERAL (
    SELECT p.id AS id, 0 AS chunk,
           CASE p.status WHEN 'completed_with_errors' THEN 'completed' WHEN 'queued' THEN 'pending'
                         WHEN 'running' THEN 'in_progress' ELSE p.status END AS status
    WHERE p.id <> :big AND p.status <> 'draft'
    UNION ALL
    SELECT 3001 + k, k, CASE WHEN k < 12 THEN 'completed' WHEN k = 12 THEN 'finalizing'
                             WHEN k < 17 THEN 'in_progress' ELSE 'waiting' END
    FROM generate_series(0, :big_n / :chunk - 1) AS k WHERE p.id = :big
) AS b;
SELECT setval('provider_batches_id_seq', 4000);
"""

# A request's status follows from its job's status and its position r in the job.
REQUEST_STATUS = """CASE
    WHEN p.id = :big THEN CASE WHEN (r - 1) / :chunk < 12 THEN CASE WHEN r % 33 = 0 THEN 'failed' ELSE 'succeeded' END
                               WHEN (r - 1) / :chunk < 17 THEN 'in_flight' ELSE 'pending' END
    WHEN p.status = 'completed' THEN 'succeeded'
    WHEN p.status = 'completed_with_errors' THEN CASE WHEN r % 10 = 0 THEN 'failed' ELSE 'succeeded' END
    WHEN p.status = 'failed' THEN 'failed'
    WHEN p.status = 'cancelled' THEN CASE WHEN r <= p.n / 2 THEN 'succeeded' ELSE 'failed' END
    WHEN p.status = 'running' THEN 'in_flight'
    ELSE 'pending' END"""
# Failures with a provider response are HTTP 500s; a failed or cancelled batch leaves its requests without one.
ERROR_CODE = """CASE WHEN s.status <> 'failed' THEN NULL WHEN p.status = 'failed' THEN 'batch_failed'
                     WHEN p.status = 'cancelled' THEN 'batch_cancelled' ELSE 'server_error' END"""

REQUESTS = f"""
INSERT INTO batch_requests (job_id, custom_id, body, source_line, estimated_tokens)
SELECT p.id, 'review-' || r,
       jsonb_build_object('model', 'gpt-4o-mini', 'max_tokens', 50, 'messages', jsonb_build_array(
           jsonb_build_object('role', 'system', 'content',
                              'You label customer reviews as positive, negative or mixed. Answer with one word.'),
           jsonb_build_object('role', 'user', 'content', 'Review #' || r || ': ' || repeat(md5(p.id || ':' || r), 8)))),
       r, 100 + r % 40
FROM plan p
CROSS JOIN LATERAL generate_series(1, p.n) AS r
ORDER BY p.id, r;

INSERT INTO request_states (request_id, job_id, status, error_code, error, retry_count, provider_batch_id)
SELECT q.id, p.id, s.status, {ERROR_CODE},
       CASE WHEN s.status = 'failed' THEN 'The request could not be completed (' || {ERROR_CODE} || ').' END,
       0,
       CASE WHEN p.id = :big THEN 3001 + (r - 1) / :chunk WHEN p.status <> 'draft' THEN p.id END
FROM batch_requests q
JOIN plan p ON p.id = q.job_id
CROSS JOIN LATERAL (SELECT q.source_line AS r) AS n
CROSS JOIN LATERAL (SELECT {REQUEST_STATUS} AS status) AS s
ORDER BY q.id;
"""

RESPONSES = """
INSERT INTO batch_responses (request_id, job_id, provider_batch_id, succeeded, status_code, body, error_code, error,
                             prompt_tokens, completion_tokens, total_tokens, cached_tokens, reasoning_tokens,
                             output_text, provider_request_id, created_at)
SELECT q.id, q.job_id, q.provider_batch_id, q.status = 'succeeded', t.code,
       CASE WHEN q.status = 'succeeded' THEN jsonb_build_object(
           'id', 'chatcmpl-' || q.id, 'object', 'chat.completion', 'created', 1735689600,
           'model', 'gpt-4o-mini-2024-07-18',
           'choices', jsonb_build_array(jsonb_build_object('index', 0, 'finish_reason', 'stop', 'logprobs', NULL,
               'message', jsonb_build_object('role', 'assistant', 'content', t.label, 'refusal', NULL))),
           'usage', jsonb_build_object('prompt_tokens', t.prompt, 'completion_tokens', 1, 'total_tokens', t.prompt + 1),
           'system_fingerprint', 'fp_bench')
       ELSE jsonb_build_object('error', jsonb_build_object(
           'message', 'The server had an error processing your request.', 'type', 'server_error', 'code', NULL)) END,
       q.error_code, q.error,
       CASE WHEN q.status = 'succeeded' THEN t.prompt ELSE 0 END, CASE WHEN q.status = 'succeeded' THEN 1 ELSE 0 END,
       CASE WHEN q.status = 'succeeded' THEN t.prompt + 1 ELSE 0 END, 0, 0,
       CASE WHEN q.status = 'succeeded' THEN t.label END, 'req_' || md5(q.id::text), now() - interval '2 hours'
FROM (SELECT r.id, r.job_id, r.estimated_tokens, s.provider_batch_id, s.status, s.error_code, s.error
      FROM batch_requests r JOIN request_states s ON s.request_id = r.id) AS q
CROSS JOIN LATERAL (SELECT CASE WHEN q.status = 'succeeded' THEN 200 ELSE 500 END AS code,
                           (ARRAY['positive', 'negative', 'mixed'])[q.id % 3 + 1] AS label,
                           q.estimated_tokens AS prompt) AS t
WHERE q.status = 'succeeded' OR q.error_code = 'server_error'
ORDER BY q.id;
"""

COUNTERS = """
UPDATE batch_jobs j SET total_requests = c.total, pending_requests = c.pending, in_flight_requests = c.in_flight,
                        succeeded_requests = c.succeeded, failed_requests = c.failed, estimated_tokens = c.estimated,
                        estimated_cost = c.estimated * 0.000000075 + c.total * 50 * 0.0000003
FROM (SELECT request_states.job_id, count(*) AS total, count(*) FILTER (WHERE status = 'pending') AS pending,
             count(*) FILTER (WHERE status = 'in_flight') AS in_flight,
             count(*) FILTER (WHERE status = 'succeeded') AS succeeded,
             count(*) FILTER (WHERE status = 'failed') AS failed, sum(estimated_tokens) AS estimated
      FROM batch_requests JOIN request_states ON request_id = id GROUP BY request_states.job_id) AS c
WHERE j.id = c.job_id;

UPDATE batch_jobs j SET prompt_tokens = t.prompt, completion_tokens = t.completion,
                        actual_cost = t.prompt * 0.000000075 + t.completion * 0.0000003
FROM (SELECT job_id, sum(prompt_tokens) AS prompt, sum(completion_tokens) AS completion
      FROM batch_responses GROUP BY job_id) AS t
WHERE j.id = t.job_id;

UPDATE provider_batches b SET request_count = c.total, counts_total = c.sent, counts_completed = c.succeeded,
                              counts_failed = c.failed, estimated_tokens = c.estimated, input_bytes = c.total * 420
FROM (SELECT provider_batch_id, count(*) AS total, count(*) FILTER (WHERE status <> 'pending') AS sent,
             count(*) FILTER (WHERE status = 'succeeded') AS succeeded,
             count(*) FILTER (WHERE status = 'failed') AS failed, sum(estimated_tokens) AS estimated
      FROM batch_requests JOIN request_states ON request_id = id
      WHERE provider_batch_id IS NOT NULL GROUP BY provider_batch_id) AS c
WHERE b.id = c.provider_batch_id;
"""

# The timeline: what the services record for a job's life, and one entry per provider batch event.
EVENTS = """
INSERT INTO job_events (job_id, kind, message, data, actor, created_at)
SELECT j.id, e.kind, e.message, NULL, e.actor, j.created_at + e.n * interval '1 minute'
FROM batch_jobs j
CROSS JOIN LATERAL (VALUES
    (0, 'created', 'Job created for gpt-4o-mini on openai', 'admin@bench.example'),
    (1, 'requests_added', 'Added ' || j.total_requests || ' request(s) from reviews.jsonl', 'admin@bench.example'),
    (2, 'submitted', 'Submitted ' || j.total_requests || ' request(s)', 'admin@bench.example'),
    (3, 'batches_planned', 'Planned provider batches', 'system')
) AS e(n, kind, message, actor)
WHERE e.n < 2 OR j.status <> 'draft'
ORDER BY j.id, e.n;

INSERT INTO job_events (job_id, kind, message, data, actor, created_at)
SELECT b.job_id, k.kind, 'Provider batch ' || coalesce(b.provider_batch_id, b.id::text) || ': ' || k.kind,
       jsonb_build_object('batch', b.id), 'system', b.created_at + e.n * interval '1 minute'
FROM provider_batches b
CROSS JOIN LATERAL (VALUES (0, 'batch_created'), (40, 'batch_ended'), (41, 'results_ingested')) AS e(n, kind)
CROSS JOIN LATERAL (SELECT CASE WHEN b.status = 'waiting' THEN 'batch_waiting' ELSE e.kind END AS kind) AS k
WHERE (e.n = 0 AND b.status <> 'pending') OR (e.n > 0 AND b.ingested_at IS NOT NULL)
ORDER BY b.id, e.n;

INSERT INTO job_events (job_id, kind, message, actor, created_at)
SELECT id, CASE status WHEN 'failed' THEN 'failed' WHEN 'cancelled' THEN 'cancelled' ELSE 'completed' END,
       'Job ' || replace(status, '_', ' '), 'system', completed_at
FROM batch_jobs WHERE completed_at IS NOT NULL ORDER BY id;
"""


def load(engine: Engine, data: DataSet, owner_id: int) -> None:
    """Write the data set in one transaction, then VACUUM it, as autovacuum would have over the 60 days the data
    stands for. Its statistics are not gathered here: the caller applies the app's own rule after a load."""
    params = {"big": data.big_job_id, "big_n": data.big_requests, "jobs": data.jobs, "chunk": CHUNK, "owner": owner_id}
    with engine.begin() as conn:
        conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
        for script in (JOBS, BATCHES, REQUESTS, RESPONSES, COUNTERS, EVENTS):
            for statement in filter(str.strip, script.split(";\n")):
                conn.execute(text(statement), params)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM")


def deep_cursor(engine: Engine, job_id: int, from_end: int = 100) -> int:
    """A request id ``from_end`` rows before the end of the job: the ``after`` of a page near its end."""
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT id FROM batch_requests WHERE job_id = :job ORDER BY id DESC OFFSET :n LIMIT 1"),
            {"job": job_id, "n": from_end},
        ).scalar_one()


def summary(engine: Engine) -> dict[str, int]:
    """Row counts of the tables the pages read."""
    tables = ("batch_jobs", "batch_requests", "request_states", "batch_responses", "provider_batches", "job_events")
    with engine.connect() as conn:
        return {name: conn.execute(text(f"SELECT count(*) FROM {name}")).scalar_one() for name in tables}
