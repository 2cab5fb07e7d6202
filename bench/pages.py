"""Page latency over 2,000 jobs and a 1,000,000-request job (Flask test client in-process), then the load run.

    python -m bench.pages        (python -m bench.run runs it last unless --skip-pages)

BENCH_PAGES_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/bench_pages) is dropped and re-created.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import event, select
from sqlalchemy.engine import make_url

from bench import load, pages_data
from bench.database import reset_database
from bench.steps import app_for
from webapp.extensions import db
from webapp.models import User
from webapp.services import accounts

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/bench_pages"
TARGET_P95_MS = 50.0
EMAIL, PASSWORD = "admin@bench.example", "bench password, not a secret"


@dataclass(frozen=True)
class Page:
    label: str
    path: str
    fragment: bool = False  # sent with HX-Request: true, as htmx does
    api: bool = False  # sent with the bearer token instead of the session


@dataclass
class Statement:
    sql: str
    parameters: object
    ms: float


@dataclass
class Timing:
    page: Page
    samples: list[float]
    wanted: int = 0
    statements: list[Statement] = field(default_factory=list)

    def percentile(self, p: int) -> float:
        return statistics.quantiles(self.samples, n=100, method="inclusive")[p - 1]

    @property
    def missed(self) -> bool:
        return self.percentile(95) >= TARGET_P95_MS


def pages_for(job_id: int, deep: int) -> list[Page]:
    requests = f"/jobs/{job_id}/requests"
    return [
        Page("jobs list", "/jobs"),
        Page("jobs list fragment", "/jobs", fragment=True),
        Page("job page", f"/jobs/{job_id}"),
        Page("job status fragment (polled)", f"/jobs/{job_id}", fragment=True),
        Page("requests, first page", requests),
        Page("requests, deep page", f"{requests}?after={deep}"),
        Page("requests, status=failed", f"{requests}?status=failed"),
        Page("requests, status=pending", f"{requests}?status=pending"),  # the rows at the job's end
        Page("API job (polled)", f"/api/v1/jobs/{job_id}", api=True),
        Page("API requests, deep page", f"/api/v1{requests}?after={deep}", api=True),
    ]


def headers_for(page: Page, token: str) -> dict[str, str]:
    if page.api:
        return {"Authorization": f"Bearer {token}"}
    return {"HX-Request": "true"} if page.fragment else {}


def fetch(client, page: Page, headers: dict[str, str]) -> None:
    response = client.get(page.path, headers=headers)
    if response.status_code not in (200, 286):  # 286: a finished job's fragment stops htmx polling
        raise SystemExit(f"{page.label}: GET {page.path} answered {response.status_code}")


def time_page(client, page: Page, headers: dict[str, str], n: int, warmup: int, seconds: float) -> Timing:
    """``n`` timed requests after ``warmup``; fewer if they take over ``seconds`` (a slow page says so)."""
    for _ in range(warmup):
        fetch(client, page, headers)
    samples: list[float] = []
    deadline = time.perf_counter() + seconds
    while len(samples) < n and (len(samples) < 2 or time.perf_counter() < deadline):
        started = time.perf_counter()
        fetch(client, page, headers)
        samples.append((time.perf_counter() - started) * 1000)
    return Timing(page, samples, n)


@contextmanager
def captured_sql(engine):
    """Every statement the engine runs meanwhile, with its parameters and duration."""
    statements: list[Statement] = []

    def before(conn, cursor, statement, parameters, context, executemany):
        conn.info.setdefault("bench_started", []).append(time.perf_counter())

    def after(conn, cursor, statement, parameters, context, executemany):
        started = conn.info["bench_started"].pop()
        statements.append(Statement(statement, parameters, (time.perf_counter() - started) * 1000))

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)


def explain(engine, statement: Statement) -> list[str]:
    with engine.connect() as conn:
        rows = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement.sql, statement.parameters)
        return [row[0] for row in rows]


def print_timing(timing: Timing) -> None:
    sql_ms = sum(s.ms for s in timing.statements)
    heaviest = max((s.ms for s in timing.statements), default=0.0)
    verdict = "MISSED" if timing.missed else "ok"
    count = f"  (only {len(timing.samples)} requests: time limit)" if len(timing.samples) < timing.wanted else ""
    print(
        f"  {timing.page.label:30} p50 {timing.percentile(50):7.1f} ms  p95 {timing.percentile(95):7.1f} ms  "
        f"max {max(timing.samples):7.1f} ms  {verdict:6}  {len(timing.statements):2} SQL {sql_ms:6.1f} ms "
        f"(heaviest {heaviest:5.1f} ms)  {timing.page.path}{count}"
    )


def one_line(sql: str) -> str:
    return re.sub(r"\s+", " ", sql).strip()


def print_explain(engine, timing: Timing, explained: dict[str, str]) -> None:
    """The page's statements, then EXPLAIN (ANALYZE, BUFFERS) of its heaviest (once per distinct statement)."""
    print(f"\n  {timing.page.label} ({timing.page.path}): the SQL of one request")
    for statement in timing.statements:
        print(f"    {statement.ms:6.1f} ms  {one_line(statement.sql)[:110]}")
    heaviest = max(timing.statements, key=lambda s: s.ms)
    if not heaviest.sql.lstrip().upper().startswith("SELECT"):
        print("  the heaviest is not a SELECT: not run again under EXPLAIN ANALYZE")
        return
    if heaviest.sql in explained:
        print(f"  the heaviest is the one explained under {explained[heaviest.sql]!r}")
        return
    explained[heaviest.sql] = timing.page.label
    print(f"  the heaviest, with parameters {heaviest.parameters}:\n    {one_line(heaviest.sql)}")
    for line in explain(engine, heaviest):
        print(f"    | {line}")


def prepare(app, data: pages_data.DataSet, reuse: bool) -> tuple[str, str]:
    """The admin's session id and a fresh API token; loads the data set unless ``reuse`` finds it loaded."""
    with app.app_context():
        admin = db.session.scalar(select(User).where(User.email == EMAIL)) if reuse else None
        if admin is None:
            admin = accounts.create_user(EMAIL, PASSWORD, role="admin")
            started = time.perf_counter()
            pages_data.load(db.engine, data, admin.id)
            print(f"  loaded in {time.perf_counter() - started:.0f} s: {pages_data.summary(db.engine)}")
        else:
            accounts.set_password(admin, PASSWORD)  # the load run signs in with it
        accounts.start_session(admin)
        return admin.get_id(), accounts.create_token(admin, "bench")[1]


def measure(app, data: pages_data.DataSet, session_id: str, token: str, args) -> list[Timing]:
    """Time every page. No app context stays pushed meanwhile: each request gets its own, and so its own
    database session, as under gunicorn (an outer context would make every request share one session)."""
    with app.app_context():
        engine = db.engine
        deep = pages_data.deep_cursor(engine, data.big_job_id)
    client = app.test_client()
    with client.session_transaction() as session:  # signed in as tests/conftest.py:sign_in does
        session["_user_id"], session["_fresh"] = session_id, True
    timings = []
    for page in pages_for(data.big_job_id, deep):
        headers = headers_for(page, token)
        # Fresh connections: psycopg prepares a statement after 5 runs and PostgreSQL may then keep a generic
        # plan, so a page measured after another with the same SQL would inherit that page's plan.
        engine.dispose()
        timing = time_page(client, page, headers, args.requests, args.warmup, args.page_seconds)
        with captured_sql(engine) as timing.statements:
            fetch(client, page, headers)
        print_timing(timing)
        timings.append(timing)
    explained: dict[str, str] = {}
    for timing in sorted((t for t in timings if t.missed), key=lambda t: -t.percentile(95)):
        print_explain(engine, timing, explained)
    return timings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.pages", description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_PAGES_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--requests", type=int, default=200, help="timed requests per page (default 200)")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument(
        "--page-seconds",
        type=float,
        default=40,
        help="stop timing a page after this long even if it has had fewer requests (default 40)",
    )
    parser.add_argument(
        "--reuse-data",
        action="store_true",
        help="keep the database of an earlier run instead of re-creating and re-loading it",
    )
    load.add_arguments(parser)
    return parser


def main() -> None:
    args = build_parser().parse_args()
    data = pages_data.DataSet()
    print(
        f"\npage latency: database {make_url(args.database_url).render_as_string(hide_password=True)}, "
        f"{data.jobs:,} jobs, big job {data.big_job_id} with {data.big_requests:,} requests"
    )
    if not args.reuse_data:
        reset_database(args.database_url)
    with tempfile.TemporaryDirectory(prefix="bench-pages-") as tmp:
        app = app_for(args.database_url, tmp)
        app.config["API_RATE_LIMIT"] = "1000000 per minute"  # 200 polls a page would trip the default limit
        session_id, token = prepare(app, data, args.reuse_data)
        print(
            f"  Flask test client in-process, {args.requests} requests a page after {args.warmup} warm-up "
            f"(target p95 < {TARGET_P95_MS:.0f} ms; SQL = statements and their time in one more request)"
        )
        measure(app, data, session_id, token, args)
    load.run_from_arguments(args, job_id=data.big_job_id, email=EMAIL, password=PASSWORD, token=token)


if __name__ == "__main__":
    main()
