"""Upload through HTTP: gunicorn as in production, the JSONL file sent as one multipart POST to the files API."""

from __future__ import annotations

import http.client
import json
import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.database import checkpoint
from bench.load import DEFAULT_REDIS_URL, gunicorn, new_job, server_environment, worker_peak_mb

MB = 1024 * 1024


@contextmanager
def upload_server(database_url: str, largest: Path) -> Iterator[tuple[str, int]]:
    """gunicorn as in production with one worker and one thread (an upload is one request), taking files up to
    ``largest``'s size; (host, port) while it runs."""
    env = {
        **server_environment(database_url, os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL), 1),
        "WEB_THREADS": "1",
        "LOG_LEVEL": "WARNING",
        "MAX_UPLOAD_MB": str(max(256, largest.stat().st_size // MB + 16)),  # a 1,000,000-request file is 640 MB
    }
    with gunicorn(env) as (host, port):
        yield host, port


def upload_file(host: str, port: int, token: str, job_id: int, path: Path) -> dict:
    """``POST /api/v1/jobs/{id}/files`` of the file: requests stored and seconds from the first byte sent to the
    answer (validation, storage, commit and the statistics of a large load: all the user waits for)."""
    started = time.perf_counter()
    status, answer = post_file(host, port, f"/api/v1/jobs/{job_id}/files", token, path)
    seconds = time.perf_counter() - started
    if status != 201:
        raise SystemExit(f"upload through HTTP answered {status}: {answer[:2000]!r}")
    return {"rows": json.loads(answer)["added"], "seconds": seconds}


def upload_through_http(database_url: str, path: Path, token: str) -> dict:
    """The file uploaded into a new draft job (``upload_file``), with the worker's peak RSS (its ``VmHWM``,
    start-up included)."""
    with upload_server(database_url, path) as (host, port):
        job_id = new_job(host, port, token)
        checkpoint(database_url)
        result = upload_file(host, port, token, job_id, path)
        return {**result, "job_id": job_id, "peak_rss_mb": worker_peak_mb(port)}


def post_file(host: str, port: int, url: str, token: str, path: Path) -> tuple[int, bytes]:
    """The file as the ``file`` field of a multipart form, read from disk a megabyte at a time as it is sent."""
    boundary = f"bench-{secrets.token_hex(12)}"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
        "Content-Type: application/jsonl\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    def body() -> Iterator[bytes]:
        yield head
        with open(path, "rb") as fh:
            while piece := fh.read(MB):
                yield piece
        yield tail

    conn = http.client.HTTPConnection(host, port, timeout=3600)
    conn.request(
        "POST",
        url,
        body=body(),
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Content-Length": str(len(head) + path.stat().st_size + len(tail)),
        },
        encode_chunked=False,
    )
    response = conn.getresponse()
    answer = response.read()
    conn.close()
    return response.status, answer
