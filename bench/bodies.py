"""Hostile bodies: the web process's peak memory for bodies near MAX_UPLOAD_MB, and JSONL lines of growing length.

    python -m bench.bodies            (both parts)
    python -m bench.bodies --part lines

BENCH_BODIES_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/bench_bodies) is dropped and re-created.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import tempfile
import time
from collections.abc import Callable, Iterator

from bench.database import reset_database
from bench.load import gunicorn, new_job, server_environment, worker_peak_mb

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/bench_bodies"
MB = 1024 * 1024
BODY_BYTES = 256 * MB  # MAX_UPLOAD_MB's default
PIECE = MB


def items(count: int, size: int) -> Iterator[bytes]:
    """The JSON array of ``count`` chat requests of about ``size`` bytes each, a piece at a time."""
    yield b"["
    for i in range(count):
        head = json.dumps(
            {"custom_id": f"r{i}", "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": ""}]}}
        ).encode()
        text = b"Review %d: " % i + b"the battery lasts long but the screen is dim " * (size // 45)
        yield (b"," if i else b"") + head.replace(
            b'"content": ""', b'"content": "' + text[: max(0, size - len(head))] + b'"'
        )
    yield b"]"


def repeated(piece: bytes, total: int) -> Iterator[bytes]:
    for _ in range(total // len(piece)):
        yield piece


def in_pieces(parts: Iterator[bytes]) -> Iterator[bytes]:
    buffer = bytearray()
    for part in parts:
        buffer += part
        if len(buffer) >= PIECE:
            yield bytes(buffer)
            buffer.clear()
    if buffer:
        yield bytes(buffer)


def cases() -> list[tuple[str, str, Callable[[], Iterator[bytes]]]]:
    """(label, path, body pieces) of each body sent; ``{job}`` in the path is a fresh draft job."""
    big_item = b'[{"custom_id": "big", "body": {"messages": [{"role": "user", "content": "' + b"x" * (BODY_BYTES - 200)
    return [
        ("100,000 requests of 2.7 KB (accepted)", "/api/v1/jobs/{job}/requests", lambda: items(100_000, 2_680)),
        ("1,000,000 requests of 266 B (refused: count)", "/api/v1/jobs/{job}/requests", lambda: items(1_000_000, 266)),
        ("one request of 256 MB (refused: size)", "/api/v1/jobs/{job}/requests", lambda: iter([big_item, b'"}]}}]'])),
        ("256 MB of '[' (refused: depth)", "/api/v1/jobs/{job}/requests", lambda: repeated(b"[" * MB, BODY_BYTES)),
        (
            "256 MB job fields (refused: 413)",
            "/api/v1/jobs/",
            lambda: iter([b'{"name": "x", "model": "m", "description": "', b"x" * (BODY_BYTES - 60), b'"}']),
        ),
    ]


def post(host: str, port: int, path: str, token: str, pieces: Iterator[bytes]) -> tuple[int | None, float, int]:
    """POST the body (HTTP/1.1, Content-Length) piece by piece on a raw socket; (status, seconds, bytes sent).
    A server that answers early keeps draining the body (gunicorn does), so the answer is read at the end."""
    body = list(in_pieces(pieces))
    length = sum(map(len, body))
    started = time.perf_counter()
    with socket.create_connection((host, port), timeout=600) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n".encode()
        )
        sent = 0
        try:
            for piece in body:
                sock.sendall(piece)
                sent += len(piece)
        except OSError:
            pass  # the server closed the connection: its answer may still be there
        answer = b""
        try:
            while b"\r\n" not in answer and (chunk := sock.recv(4096)):
                answer += chunk
        except OSError:
            pass
    status = int(answer.split(b" ")[1]) if answer.startswith(b"HTTP/") else None
    return status, time.perf_counter() - started, sent


def memory(url: str) -> None:
    token = setup_token(url)
    env = {
        **server_environment(url, os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12"), 1),
        "WEB_THREADS": "1",
        "LOG_LEVEL": "WARNING",
    }
    print("| body (256 MB unless said) | status | seconds | peak RSS of the web process |")
    print("|---|---:|---:|---:|")
    with gunicorn(env) as (host, port):
        status, _, _ = post(host, port, "/api/v1/jobs/", token, iter([b'{"name": "idle", "model": "gpt-4o-mini"}']))
        print(f"| none (after start-up and one small request) | {status} | | {worker_peak_mb(port)} MB |")
    for label, path, pieces in cases():
        with gunicorn(env) as (host, port):
            job = new_job(host, port, token)
            status, seconds, sent = post(host, port, path.format(job=job), token, pieces())
            print(f"| {label} | {status} | {seconds:.1f} | {worker_peak_mb(port)} MB |", flush=True)


def setup_token(url: str) -> str:
    reset_database(url)
    from bench.steps import app_for
    from webapp.services import accounts

    with app_for(url, tempfile.mkdtemp()).app_context():
        user = accounts.create_user("bench-bodies@example.com", "a long enough password", role="admin")
        return accounts.create_token(user, "bench")[1]


def lines(url: str, repeats: int = 3) -> None:
    """Seconds to import a JSONL file of one long line (the fastest of ``repeats``): under MAX_REQUEST_MB
    (parsed and stored), and past it (read past, refused)."""
    from bench.steps import app_for

    reset_database(url)
    print("| line | outcome | seconds (fastest of 3) | ratio to the half-size line |")
    print("|---:|---|---:|---:|")
    with app_for(url, tempfile.mkdtemp()).app_context():
        for sizes in ((2, 4, 8), (25, 50, 100)):
            previous = None
            for size in sizes:
                line = (
                    json.dumps(
                        {
                            "custom_id": "long",
                            "body": {
                                "model": "gpt-4o-mini",
                                "messages": [{"role": "user", "content": "x" * (size * MB - 100)}],
                            },
                        }
                    ).encode()
                    + b"\n"
                )
                seconds, outcome = min(import_line(line, size) for _ in range(repeats))
                ratio = f"{seconds / previous:.2f}" if previous else ""
                print(f"| {size} MB | {outcome} | {seconds:.3f} | {ratio} |", flush=True)
                previous = seconds


def import_line(line: bytes, size: int) -> tuple[float, str]:
    from webapp.intake import imports
    from webapp.intake.store import UploadRejected
    from webapp.services import jobs

    job = jobs.create_job({"name": f"line {size}", "model": "gpt-4o-mini"})
    started = time.perf_counter()
    try:
        outcome = f"{imports.import_jsonl(job, io.BytesIO(line)).added} stored"
    except UploadRejected as exc:
        outcome = exc.report.problems[0].code
    return time.perf_counter() - started, outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_BODIES_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--part", choices=("memory", "lines", "all"), default="all")
    args = parser.parse_args()
    if args.part in ("memory", "all"):
        memory(args.database_url)
    if args.part in ("lines", "all"):
        lines(args.database_url)


if __name__ == "__main__":
    main()
