"""What the simulated provider holds and saw, read through the SDK and its store, and faults injected into it."""

from __future__ import annotations

import json
import time
import urllib.request
from collections import Counter
from decimal import Decimal

import openai
from sqlalchemy import func, select

from simulator.store import Store
from webapp.extensions import db
from webapp.models import BatchJob, BatchResponse, request_states
from webapp.services.pricing import price_table


def client(simulator) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{simulator.url}/simulator/v1", api_key="sim", max_retries=0)


def add_fault(simulator, **fault) -> None:
    """Inject a fault (see simulator/faults.py) into the simulator's next matching calls."""
    request = urllib.request.Request(
        f"{simulator.url}/simulator/v1/_control/faults",
        data=json.dumps(fault).encode(),
        headers={"Content-Type": "application/json", "Authorization": "Bearer sim"},
        method="POST",
    )
    urllib.request.urlopen(request, timeout=5).read()


def clear_faults(simulator) -> None:
    request = urllib.request.Request(
        f"{simulator.url}/simulator/v1/_control/faults", method="DELETE", headers={"Authorization": "Bearer sim"}
    )
    urllib.request.urlopen(request, timeout=5).read()


def provider_batches(simulator) -> list:
    return list(client(simulator).batches.list(limit=100))


def provider_files(simulator) -> list:
    return list(client(simulator).files.list())


def custom_ids_sent(simulator, batch_id: str) -> list[str]:
    """The custom_ids of a provider batch's input, as the provider keeps it."""
    store = Store(simulator.app.config["SIMULATOR_DIR"])
    with open(store.batch_input_path(batch_id), encoding="utf-8") as fh:
        return [json.loads(line)["custom_id"] for line in fh if line.strip()]


def assert_provider_ran_each_request_once(job: BatchJob, simulator) -> None:
    """No local batch ran twice at the provider (a batch refused at validation, e.g. for the token limit, ran
    nothing and is sent again), no request was in two provider batches that ran, and the provider completed as
    many requests as the job counts succeeded."""
    remote = [b for b in provider_batches(simulator) if (b.metadata or {}).get("job_id") == str(job.id)]
    ran = [b for b in remote if b.status != "failed"]
    created = Counter(b.metadata["local_batch_id"] for b in ran)
    assert all(n == 1 for n in created.values()), f"a local batch was created twice: {created}"
    sent = Counter(cid for b in ran for cid in custom_ids_sent(simulator, b.id))
    assert all(n == 1 for n in sent.values()), f"requests sent twice: {[c for c, n in sent.items() if n > 1]}"
    assert sum(b.request_counts.completed for b in ran) == job.succeeded_requests


def assert_one_response_per_request(job: BatchJob) -> None:
    """At most one response per request, and one for each request that succeeded (one that never ran has none)."""
    per_request = db.session.execute(
        select(BatchResponse.request_id, func.count(), func.count().filter(BatchResponse.succeeded.is_(True)))
        .where(BatchResponse.job_id == job.id)
        .group_by(BatchResponse.request_id)
    ).all()
    assert all(n == 1 for _, n, _ in per_request), "a request has two responses"
    assert sum(ok for _, _, ok in per_request) == job.succeeded_requests
    assert len(per_request) <= job.total_requests


def assert_counters_and_cost_exact(job: BatchJob) -> None:
    sums = db.session.execute(
        select(
            func.coalesce(func.sum(BatchResponse.prompt_tokens), 0),
            func.coalesce(func.sum(BatchResponse.completion_tokens), 0),
            func.coalesce(func.sum(BatchResponse.cached_tokens), 0),
            func.count().filter(BatchResponse.succeeded.is_(True)),
        ).where(BatchResponse.job_id == job.id)
    ).one()
    assert (job.prompt_tokens, job.completion_tokens, job.cached_tokens, job.succeeded_requests) == tuple(sums)
    assert job.pending_requests == job.in_flight_requests == 0
    by_status = dict(
        db.session.execute(
            select(request_states.c.status, func.count())
            .where(request_states.c.job_id == job.id)
            .group_by(request_states.c.status)
        ).all()
    )
    counters = {"succeeded": job.succeeded_requests, "failed": job.failed_requests, "cancelled": job.cancelled_requests}
    assert {status: by_status.get(status, 0) for status in counters} == counters
    assert sum(by_status.values()) == job.total_requests
    expected = price_table().cost(job.model, job.prompt_tokens, job.completion_tokens, job.cached_tokens)
    assert job.actual_cost == expected
    assert job.succeeded_requests == 0 or job.actual_cost > Decimal(0)


def assert_nothing_left_at_the_provider(simulator) -> None:
    """Every input, output and error file deleted, and no batch still running."""
    assert provider_files(simulator) == []
    assert {b.status for b in provider_batches(simulator)} <= {"completed", "failed", "expired", "cancelled"}


def wait_at_provider(simulator, status: str, timeout: float = 20) -> None:
    """Wait until every provider batch has ``status`` (the simulator moves batches along as it is read)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if {b.status for b in provider_batches(simulator)} == {status}:
            return
        time.sleep(0.02)
    raise AssertionError(f"provider batches still {[b.status for b in provider_batches(simulator)]}")
