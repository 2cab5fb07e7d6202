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
from pathlib import Path

from sqlalchemy import event, select
from sqlalchemy.engine import make_url

from bench import load, pages_data
from bench.database import reset_database
from bench.load import new_job
from bench.run import write_file
from bench.steps import app_for
from bench.upload import upload_file, upload_server
from webapp import bulk
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


def upload_pages(job_id: int, deep: int) -> list[Page]:
    """The pages of a job read right after its requests were uploaded: the issue-16 measurement."""
    requests, api = f"/jobs/{job_id}/requests", f"/api/v1/jobs/{job_id}/requests"
    return [
        Page("requests, first page", requests),
        Page("requests, deep page", f"{requests}?after={deep}"),
        Page("requests, status=failed", f"{requests}?status=failed"),
        Page("requests, status=pending", f"{requests}?status=pending"),
        Page("API requests, first page", f"{api}?limit=100", api=True),
        Page("API requests, deep page", f"{api}?limit=100&after={deep}", api=True),
        Page("API requests, status=failed", f"{api}?limit=100&status=failed", api=True),
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
            counts = pages_data.summary(db.engine)
            # Statistics as the app makes them after a load of this size (bulk.analyze_written), not a manual ANALYZE.
            analyzed = ", ".join(bulk.analyze_written(db.session(), counts))
            print(
                f"  loaded in {time.perf_counter() - started:.0f} s: {counts}; analyzed by the app's rule: {analyzed}"
            )
        else:
            accounts.set_password(admin, PASSWORD)  # the load run signs in with it
        accounts.start_session(admin)
        return admin.get_id(), accounts.create_token(admin, "bench")[1]


def measure(app, pages: list[Page], session_id: str, token: str, args) -> list[Timing]:
    """Time every page. No app context stays pushed meanwhile: each request gets its own, and so its own
    database session, as under gunicorn (an outer context would make every request share one session)."""
    with app.app_context():
        engine = db.engine
    client = app.test_client()
    with client.session_transaction() as session:  # signed in as tests/conftest.py:sign_in does
        session["_user_id"], session["_fresh"] = session_id, True
    timings = []
    for page in pages:
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


def upload_then_measure(args, workdir: Path) -> None:
    """A new installation's first large job: ``--upload-files`` files of requests uploaded into a new job through
    gunicorn (POST /api/v1/jobs/{id}/files, as a user would) in a database of its own, created empty (the
    tables have no statistics yet), then the job's request pages timed at once. No ANALYZE but the app's own."""
    if not args.upload_requests:
        return
    per_file = args.upload_requests // args.upload_files
    paths = [workdir / f"upload-{k}.jsonl" for k in range(args.upload_files)]
    for k, path in enumerate(paths):
        write_file(path, per_file, first=k * per_file)
    url = args.upload_database_url
    print(
        f"\nright after an upload: {args.upload_files} files of {per_file:,} requests "
        f"({paths[0].stat().st_size / 1e6:.0f} MB each) into a new job through gunicorn, in a new database "
        f"({make_url(url).render_as_string(hide_password=True)}), then the job's pages"
    )
    reset_database(url)
    app = app_for(url, str(workdir))
    app.config["API_RATE_LIMIT"] = "1000000 per minute"
    with app.app_context():
        admin = accounts.create_user(EMAIL, PASSWORD, role="admin")
        accounts.start_session(admin)
        session_id, token = admin.get_id(), accounts.create_token(admin, "bench")[1]
    with upload_server(url, paths[0]) as (host, port):
        job_id = new_job(host, port, token)
        for k, path in enumerate(paths, 1):
            result = upload_file(host, port, token, job_id, path)
            print(f"  file {k}: {result['rows']:,} requests in {result['seconds']:.1f} s")
    with app.app_context():
        deep = pages_data.deep_cursor(db.engine, job_id)
    measure(app, upload_pages(job_id, deep), session_id, token, args)


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
    parser.add_argument(
        "--upload-requests",
        type=int,
        default=1_000_000,
        help="requests uploaded through the API before the pages of their job are timed (0: skip; default 1,000,000)",
    )
    parser.add_argument("--upload-files", type=int, default=5, help="in how many files (default 5)")
    parser.add_argument(
        "--upload-database-url",
        default=os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/bench"),
        help="the new database the upload goes into (dropped and re-created; default: bench.run's)",
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
        with app.app_context():
            deep = pages_data.deep_cursor(db.engine, data.big_job_id)
        measure(app, pages_for(data.big_job_id, deep), session_id, token, args)
        upload_then_measure(args, Path(tmp))
    load.run_from_arguments(args, job_id=data.big_job_id, email=EMAIL, password=PASSWORD, token=token)


if __name__ == "__main__":
    main()
