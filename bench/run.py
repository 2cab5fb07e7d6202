"""Run the benchmarks on PostgreSQL and print every figure with its ratio to a plain COPY of the same file.

    python -m bench.run --sizes 200000,1000000      (make bench)

BENCH_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/bench) is dropped and re-created.
The page latency and load run (bench.pages, its own database) follow unless --skip-pages.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy.engine import make_url

from bench.database import checkpoint, reset_database
from bench.upload import upload_through_http
from webapp.words import count_of

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/bench"
WORDS = (
    "battery",
    "screen",
    "delivery",
    "refund",
    "quality",
    "support",
    "price",
    "excellent",
    "broken",
    "slow",
    "fast",
    "love",
    "hate",
    "works",
    "again",
    "never",
    "always",
    "order",
    "package",
    "late",
)


def request_line(i: int, rng: random.Random) -> str:
    """About 630 bytes: a chat request with a system prompt and a review to classify."""
    review = " ".join(rng.choice(WORDS) for _ in range(50))
    body = {
        "model": "gpt-4o-mini",
        "max_tokens": 50,
        "messages": [
            {
                "role": "system",
                "content": "You label customer reviews as positive, negative or mixed. Answer with one word.",
            },
            {"role": "user", "content": f"Review #{i}: {review}"},
        ],
    }
    return json.dumps({"custom_id": f"review-{i}", "method": "POST", "url": "/v1/chat/completions", "body": body})


def write_file(path: Path, size: int, first: int = 0) -> int:
    """``size`` requests numbered from ``first`` (their custom_ids are review-<number>); the file's bytes."""
    rng = random.Random(first + size)
    with open(path, "w") as out:
        for i in range(first, first + size):
            out.write(request_line(i, rng) + "\n")
    return path.stat().st_size


def step_command(name: str, url: str, instance: str, **args) -> list[str]:
    command = [sys.executable, "-m", "bench.steps", name, "--database-url", url, "--instance", instance]
    for key, value in args.items():
        command += [f"--{key.replace('_', '-')}", str(value)]
    return command


def step(name: str, url: str, instance: str, **args) -> dict:
    checkpoint(url)
    done = subprocess.run(step_command(name, url, instance, **args), cwd=ROOT, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"step {name} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def parallel_ingest(url: str, instance: str, job_id: int, workdir: Path, workers: int) -> dict:
    """Result ingest again, by ``workers`` processes started together, each taking every n-th batch (as
    workers sharing a job do); rows/s over the wall time of all, peak RSS of the largest."""
    step("reset_results", url, instance, job_id=job_id)
    checkpoint(url)
    started = time.perf_counter()
    running = [
        subprocess.Popen(
            step_command("result_ingest", url, instance, job_id=job_id, workdir=workdir, part=f"{k}/{workers}"),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for k in range(workers)
    ]
    results = []
    for process in running:
        out, err = process.communicate()
        if process.returncode:
            raise SystemExit(f"parallel result ingest failed:\n{err[-3000:]}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    return {
        "rows": sum(r["rows"] for r in results),
        "seconds": time.perf_counter() - started,
        "peak_rss_mb": max(r["peak_rss_mb"] for r in results),
    }


def rate(result: dict) -> float:
    return result["rows"] / result["seconds"]


def run_size(size: int, url: str, workdir: Path) -> list[tuple]:
    path = workdir / f"requests-{size}.jsonl"
    file_bytes = write_file(path, size)
    instance = str(workdir / "instance")
    reference = step("reference_copy", url, instance, file=path)
    baseline = step("raw_copy", url, instance, file=path)
    reset_database(url)  # each upload goes into tables as empty as the reference's was
    direct = step("upload_ingest", url, instance, file=path)
    reset_database(url)
    token = step("bench_token", url, instance)["token"]
    through_http = upload_through_http(url, path, token)
    job_id = through_http["job_id"]
    files = step("input_files", url, instance, job_id=job_id, workdir=workdir)
    step("prepare_results", url, instance, job_id=job_id, workdir=workdir)
    results = step("result_ingest", url, instance, job_id=job_id, workdir=workdir)
    export = step("csv_export", url, instance, job_id=job_id)
    parallel = parallel_ingest(url, instance, job_id, workdir, 2) if files["batches"] > 1 else None
    again = step("reference_copy", url, instance, file=path)  # the machine's speed drifts: the reference brackets
    base = (rate(reference) + rate(again)) / 2
    batches = count_of(files["batches"], "provider batch", "provider batches")
    print(f"\n{size:,} requests ({file_bytes / size:.0f} bytes a line, {batches})")
    print(
        f"  reference (orjson parse + one COPY into one table with a unique index): {rate(reference):,.0f} rows/s "
        f"before the steps, {rate(again):,.0f} after them; ratios are to their mean"
    )
    measured = [
        ("previous baseline: parse + COPY into the request tables", baseline, None),
        ("upload, called directly (validate + COPY)", direct, None),
        ("upload, through HTTP (gunicorn, multipart)", through_http, 0.6),
        ("provider input files (plan + write)", files, None),
        ("result ingest (parse + store + settle)", results, 0.5),
        ("CSV export", export, "100,000 rows/s"),
    ]
    if parallel:
        measured.append(("result ingest, 2 workers side by side", parallel, None))
    rows = [("reference COPY, mean", base, 1.0, None, max(reference["peak_rss_mb"], again["peak_rss_mb"]))]
    rows += [
        (label, rate(result), None if result is export else rate(result) / base, target, result["peak_rss_mb"])
        for label, result, target in measured
    ]
    for label, rows_per_second, ratio, target, rss in rows:
        print(f"  {label:56} {rows_per_second:>9,.0f} rows/s  {_ratio(ratio, target)}  peak RSS {rss:6.1f} MB")
    # The input files' target was set against the previous baseline, and issue 16 set none against the reference.
    print(f"  provider input files against the previous baseline: {_ratio(rate(files) / rate(baseline), 0.6)}")
    return rows


def _ratio(ratio: float | None, target: float | str | None) -> str:
    """The ratio and, where there is one, the target and whether it is met (MISSED when not)."""
    shown = f"{ratio:5.2f}x" if ratio is not None else "      "
    if target is None:
        return f"{shown}{'':26}"
    if isinstance(target, str):
        return f"{shown}  target >= {target:14}"
    verdict = "met" if ratio is not None and ratio >= target else "MISSED"
    return f"{shown}  target >= {target:<4} {verdict:10}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], epilog="Other options go to bench.pages: see python -m bench.pages --help."
    )
    parser.add_argument("--sizes", default="200000,1000000")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--skip-pages", action="store_true", help="no page latency and load run (bench.pages)")
    args, pages_args = parser.parse_known_args()  # the rest (e.g. --skip-load) is for bench.pages
    if not args.skip_pages:
        from bench.pages import build_parser

        build_parser().parse_args(pages_args)  # a mistyped option fails now, not after the throughput runs
    elif pages_args:
        parser.error(f"unrecognized arguments: {' '.join(pages_args)}")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"database {make_url(args.database_url).render_as_string(hide_password=True)}"
    )
    for size in (int(s) for s in args.sizes.split(",")):
        reset_database(args.database_url)
        with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
            run_size(size, args.database_url, Path(tmp))
    if not args.skip_pages:
        sys.stdout.flush()
        subprocess.run([sys.executable, "-m", "bench.pages", *pages_args], cwd=ROOT, check=True)


if __name__ == "__main__":
    main()
