#!/usr/bin/env python3
"""Run a file of requests through the batch processor's API: create a job, upload, submit, wait, download.

    python examples/sample_batch_job.py --base-url http://127.0.0.1:5000 examples/requests.jsonl
    python examples/sample_batch_job.py examples/reviews.csv --id-column review_id \\
        --template "Classify the sentiment of this review: {{ review }}" --format csv -o reviews-results.csv

Only the standard library is used. On any failure the API's error message is printed and the exit code is 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from pathlib import Path
from urllib.error import HTTPError, URLError
from urllib.parse import urlencode
from urllib.request import Request, urlopen

FINISHED = {"completed", "completed_with_errors", "failed", "cancelled"}


class ApiError(Exception):
    """A failed call, with the API's message (and field details) ready to print."""


class Client:
    """A tiny client for /api/v1: JSON in and out, multipart uploads, streamed downloads."""

    def __init__(self, base_url: str, token: str | None = None, timeout: float = 60):
        self.base = base_url.rstrip("/") + "/api/v1"
        self.headers = {"Accept": "application/json", "User-Agent": "sample-batch-job/1"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        self.timeout = timeout

    def call(self, method: str, path: str, body: bytes | None = None, content_type: str | None = None):
        headers = dict(self.headers, **({"Content-Type": content_type} if content_type else {}))
        request = Request(self.base + path, data=body, method=method, headers=headers)
        try:
            return urlopen(request, timeout=self.timeout)
        except HTTPError as exc:
            raise ApiError(_describe(exc)) from None
        except URLError as exc:
            raise ApiError(f"cannot reach {self.base}: {exc.reason}") from None

    def json(self, method: str, path: str, payload: dict | None = None) -> dict:
        body = json.dumps(payload).encode("utf-8") if payload is not None else None
        with self.call(method, path, body, "application/json" if body is not None else None) as response:
            return json.load(response)

    def upload(self, path: str, file: Path, fields: dict[str, str]) -> dict:
        body, content_type = _multipart(file, fields)
        with self.call("POST", path, body, content_type) as response:
            return json.load(response)

    def download(self, path: str, target: Path) -> int:
        size = 0
        with self.call("GET", path) as response, open(target, "wb") as out:
            while chunk := response.read(256 * 1024):
                out.write(chunk)
                size += len(chunk)
        return size


def _describe(exc: HTTPError) -> str:
    """``HTTP 422 validation_error: message`` plus one line per field detail."""
    try:
        error = json.load(exc)["error"]
    except (ValueError, KeyError, TypeError):
        return f"HTTP {exc.code}: {exc.reason}"
    lines = [f"HTTP {exc.code} {error.get('code')}: {error.get('message')}"]
    lines += [f"  {d.get('field')}: {d.get('message')}" for d in error.get("details", [])[:20]]
    return "\n".join(lines)


def _multipart(file: Path, fields: dict[str, str]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{file.name}"\r\n'
        f"Content-Type: application/octet-stream\r\n\r\n".encode()
    )
    parts.append(file.read_bytes() + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def _model_of(file: Path) -> str | None:
    """The model named by the first line of a JSONL file, so the job matches its requests."""
    if file.suffix.lower() != ".jsonl":
        return None
    with open(file, encoding="utf-8-sig") as fh:
        for line in fh:
            if line.strip():
                try:
                    return json.loads(line).get("body", {}).get("model")
                except (ValueError, AttributeError):
                    return None
    return None


def run(args: argparse.Namespace) -> dict:
    client = Client(args.base_url, args.token)
    job_fields = {"name": args.name or args.file.name, "model": args.model or _model_of(args.file) or "gpt-4o-mini"}
    if args.provider:
        job_fields["provider"] = args.provider
    if args.allow_unknown_model:
        job_fields["allow_unknown_model"] = True
    job = client.json("POST", "/jobs/", job_fields)
    print(f"created job {job['id']} ({job['model']} on {job['provider']})")

    fields = {"skip_invalid": "true" if args.skip_invalid else "false"}
    fields.update({k: v for k, v in (("template", args.template), ("id_column", args.id_column)) if v})
    report = client.upload(f"/jobs/{job['id']}/files", args.file, fields)
    added = f"{report['added']} request{'' if report['added'] == 1 else 's'}"
    print(f"uploaded {args.file.name}: {added} added, {report['skipped']} skipped")

    client.json("POST", f"/jobs/{job['id']}/submit")
    job = wait(client, job["id"], args.poll_interval, args.timeout)

    query = urlencode({"format": args.format, **({"failed_only": "true"} if args.failed_only else {})})
    output = args.output or Path(f"job-{job['id']}-results.{args.format}")
    size = client.download(f"/jobs/{job['id']}/results?{query}", output)
    print(f"saved results to {output} ({size:,} bytes); cost ${job['cost']['actual']}")
    return job


def wait(client: Client, job_id: int, interval: float, timeout: float) -> dict:
    """Poll the job until it ends; raises ApiError when it takes longer than ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        job = client.json("GET", f"/jobs/{job_id}")
        counts = job["counts"]
        status = f"{job['status']}: {job['phase']} ({counts['finished']}/{counts['total']} finished)"
        if status != last:
            print(status, flush=True)
            last = status
        if job["status"] in FINISHED:
            return job
        if time.monotonic() > deadline:
            raise ApiError(f"job {job_id} is still {job['status']} after {timeout:g}s; it keeps running on the server")
        time.sleep(interval)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "file",
        type=Path,
        nargs="?",
        default=Path(__file__).with_name("requests.jsonl"),
        help="a JSONL batch file, or a CSV file with --template (default: examples/requests.jsonl)",
    )
    parser.add_argument(
        "--base-url",
        default=os.environ.get("BATCH_API_URL", "http://127.0.0.1:5000"),
        help="the processor's address (default: $BATCH_API_URL or http://127.0.0.1:5000)",
    )
    parser.add_argument("--token", default=os.environ.get("BATCH_API_TOKEN"), help="API token, if the server needs one")
    parser.add_argument("--name", help="the job's name (default: the file name)")
    parser.add_argument("--model", help="the model (default: the first request's, else gpt-4o-mini)")
    parser.add_argument(
        "--provider",
        choices=["openai", "anthropic", "simulator", "simulator-anthropic"],
        help="default: the server's (anthropic and simulator-anthropic need a Claude --model)",
    )
    parser.add_argument(
        "--allow-unknown-model",
        action="store_true",
        help="use a model the server does not know (not in its price table or the provider's list, e.g. an Azure "
        "deployment); without it such a model is refused, as a typo would be",
    )
    parser.add_argument("--template", help="CSV only: the prompt, e.g. 'Classify: {{ review }}'")
    parser.add_argument("--id-column", help="CSV only: the column holding each row's id")
    parser.add_argument("--skip-invalid", action="store_true", help="store the valid lines, skip the others")
    parser.add_argument("--format", choices=["jsonl", "csv"], default="jsonl", help="results format")
    parser.add_argument("--failed-only", action="store_true", help="download only the failed requests")
    parser.add_argument("-o", "--output", type=Path, help="where to save the results")
    parser.add_argument("--poll-interval", type=float, default=5.0, help="seconds between status checks")
    parser.add_argument("--timeout", type=float, default=26 * 3600, help="give up waiting after this many seconds")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if not args.file.is_file():
            raise ApiError(f"no such file: {args.file}")
        job = run(args)
        if job["status"] not in ("completed", "completed_with_errors"):
            raise ApiError(f"job {job['id']} ended {job['status']}: {job['last_error'] or 'no reason given'}")
    except ApiError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
