"""Load run: gunicorn configured as in production, wrk's clients polling the big job's status on 127.0.0.1 only."""

from __future__ import annotations

import argparse
import ctypes
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
WRK_SCRIPT = Path(__file__).with_name("poll.lua")
WRK_THREADS = 2
USER_AGENT = "bench-load"  # the same for sign-in and polling, so Flask-Login's session protection is content
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/12"


@dataclass(frozen=True)
class Target:
    label: str
    path: str
    headers: dict[str, str]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("load run (gunicorn + wrk)")
    group.add_argument("--skip-load", action="store_true")
    group.add_argument("--load-seconds", type=int, default=20)
    group.add_argument("--load-clients", type=int, default=50)
    group.add_argument("--load-max-requests", type=int, default=100_000, help="stop a target's run after this many")
    group.add_argument("--load-workers", type=int, default=2, help="WEB_CONCURRENCY for gunicorn")
    group.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL))


def run_from_arguments(args, *, job_id: int, email: str, password: str, token: str) -> None:
    if args.skip_load:
        return
    if shutil.which("wrk") is None:
        print("\nload run skipped: wrk is not installed (Debian: apt-get install -y wrk; `make bench` does it as root)")
        return
    env = server_environment(args.database_url, args.redis_url, args.load_workers)
    print(
        f"\nload run: gunicorn {env['WEB_CONCURRENCY']} workers x {env['WEB_THREADS']} threads (APP_ENV=production, "
        f"JSON access log), wrk {args.load_clients} connections on 127.0.0.1, {args.load_seconds} s or "
        f"{args.load_max_requests:,} requests per target"
    )
    with gunicorn(env) as (host, port):
        cookie = sign_in(host, port, email, password)
        targets = [
            Target("API GET /api/v1/jobs/<big>", f"/api/v1/jobs/{job_id}", {"Authorization": f"Bearer {token}"}),
            Target("dashboard status fragment", f"/jobs/{job_id}", {"Cookie": cookie, "HX-Request": "true"}),
        ]
        for target in targets:
            result = wrk(f"http://{host}:{port}{target.path}", target.headers, args)
            print_result(target, result)


def server_environment(database_url: str, redis_url: str, workers: int) -> dict[str, str]:
    return {
        **os.environ,
        "APP_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(32),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "WEB_CONCURRENCY": str(workers),
        "WEB_THREADS": os.environ.get("WEB_THREADS", "4"),
        # The limits guard a real server; here 50 clients poll from one address with one token on purpose.
        "API_RATE_LIMIT": "1000000 per minute",
        "LOGIN_RATE_LIMIT": "1000 per minute",
        "LOG_LEVEL": "INFO",
        "LOG_FORMAT": "json",
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    """In the child before exec: Linux sends SIGTERM to gunicorn if this process dies without cleaning up."""
    try:
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


@contextmanager
def gunicorn(env: dict[str, str]):
    """gunicorn with the project's gunicorn.conf.py on a free loopback port; stopped on exit, whatever happens."""
    host, port = "127.0.0.1", free_port()
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--config",
        "gunicorn.conf.py",
        "--bind",
        f"{host}:{port}",
        "webapp:create_app_or_exit()",
    ]
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so `finally` runs on kill <pid> too
    with tempfile.TemporaryFile() as log:
        server = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        try:
            wait_until_ready(server, host, port, log)
            yield host, port
        finally:
            stop(server)
            signal.signal(signal.SIGTERM, previous)


def wait_until_ready(server: subprocess.Popen, host: str, port: int, log, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            log.seek(0)
            raise SystemExit(f"gunicorn exited with {server.returncode}:\n{log.read().decode()[-3000:]}")
        try:
            if get(host, port, "/health").status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"gunicorn did not answer /health within {seconds:.0f} s")


def stop(server: subprocess.Popen) -> None:
    """SIGTERM to gunicorn's own process group (master and workers), SIGKILL if it lingers."""
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        try:
            os.killpg(server.pid, sig)
        except ProcessLookupError:
            return
        try:
            server.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def get(host: str, port: int, path: str, headers: dict[str, str] | None = None) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection(host, port, timeout=10)
    conn.request("GET", path, headers={"User-Agent": USER_AGENT, **(headers or {})})
    response = conn.getresponse()
    response.body = response.read()
    conn.close()
    return response


def sign_in(host: str, port: int, email: str, password: str) -> str:
    """Sign in through /login with the form's CSRF token; the session cookie ("session=...") to send back.

    The cookie is taken from Set-Cookie by hand: in production it is marked Secure, which cookie jars
    rightly refuse to send over plain http://127.0.0.1.
    """
    page = get(host, port, "/login")
    csrf = re.search(rb'name="csrf_token"[^>]*value="([^"]+)"', page.body)
    if csrf is None:
        raise SystemExit(f"GET /login answered {page.status} without a CSRF token")
    form = urlencode({"csrf_token": csrf.group(1).decode(), "email": email, "password": password})
    conn = http.client.HTTPConnection(host, port, timeout=10)
    conn.request(
        "POST",
        "/login",
        body=form.encode(),
        headers={
            "User-Agent": USER_AGENT,
            "Cookie": session_cookie(page),
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    response = conn.getresponse()
    response.read()
    conn.close()
    if response.status != 302:
        raise SystemExit(f"POST /login answered {response.status}, not the redirect of a successful sign-in")
    return session_cookie(response)


def session_cookie(response: http.client.HTTPResponse) -> str:
    for header in response.headers.get_all("Set-Cookie") or []:
        if header.startswith("session="):
            return header.split(";", 1)[0]
    raise SystemExit(f"{response.status} answer without a session cookie")


def wrk(url: str, headers: dict[str, str], args) -> dict:
    command = [
        "wrk",
        "--threads",
        str(WRK_THREADS),
        "--connections",
        str(args.load_clients),
        "--duration",
        f"{args.load_seconds}s",
        "--timeout",
        "10s",
        "--script",
        str(WRK_SCRIPT),
        "--header",
        f"User-Agent: {USER_AGENT}",
    ]
    for name, value in headers.items():
        command += ["--header", f"{name}: {value}"]
    command += [url, "--", str(max(1, args.load_max_requests // WRK_THREADS))]
    done = subprocess.run(command, capture_output=True, text=True, timeout=args.load_seconds + 60)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if done.returncode or line is None:
        raise SystemExit(f"wrk failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return json.loads(line.removeprefix("BENCH_JSON "))


def print_result(target: Target, result: dict) -> None:
    rate = result["requests"] / (result["duration_us"] / 1e6)
    problems = result["unexpected_status"] + result["socket_errors"] + result["timeouts"]
    print(
        f"  {target.label:30} {rate:8,.0f} req/s  p50 {result['p50_us'] / 1000:7.1f} ms  "
        f"p95 {result['p95_us'] / 1000:7.1f} ms  p99 {result['p99_us'] / 1000:7.1f} ms  "
        f"max {result['max_us'] / 1000:7.1f} ms  {result['requests']:,} requests, {problems} errors "
        f"(status {result['unexpected_status']}, socket {result['socket_errors']}, timeouts {result['timeouts']})"
    )


def new_job(host: str, port: int, token: str) -> int:
    conn = http.client.HTTPConnection(host, port, timeout=30)
    conn.request(
        "POST",
        "/api/v1/jobs/",
        body=b'{"name": "bench", "model": "gpt-4o-mini"}',
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    return json.loads(conn.getresponse().read())["id"]


def worker_peak_mb(port: int) -> float:
    """VmHWM (peak resident memory) of the gunicorn worker serving ``port``: the process whose parent runs the
    same command line."""
    pids = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if f":{port}".encode() in (proc / "cmdline").read_bytes():
                    status = (proc / "status").read_text()
                    pids[int(proc.name)] = status
            except OSError:
                continue
    peaks = [_field(status, "VmHWM") for pid, status in pids.items() if _field(status, "PPid") in pids]
    return round(max(peaks) / 1024, 1)


def _field(status: str, name: str) -> int:
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith(f"{name}:")))
