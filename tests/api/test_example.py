"""The example script, end to end, against the app served over real HTTP with the simulator behind it."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import Server
from webapp.extensions import db
from webapp.services import accounts, sync

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SCRIPT = EXAMPLES / "sample_batch_job.py"


def script_token(app) -> str:
    """A member's API token in the committed database, as a real user would create one."""
    with app.app_context():
        user = accounts.create_user(f"script-{uuid.uuid4().hex[:8]}@example.com", "a long enough password")
        return accounts.create_token(user, "example script")[1]


def run_script(app, args: list[str], timeout: float = 90) -> subprocess.CompletedProcess:
    """Run the script (with a fresh token) while this thread plays the worker: sync passes until it exits."""
    process = subprocess.Popen(
        [sys.executable, str(SCRIPT), "--token", script_token(app), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + timeout
    with app.app_context():
        while process.poll() is None and time.monotonic() < deadline:
            sync.sync_all()
            db.session.remove()
            time.sleep(0.1)
    if process.poll() is None:
        process.kill()
    stdout, stderr = process.communicate()
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def test_example_runs_a_jsonl_file_to_results(app, simulator, committed_db, tmp_path):
    server = Server(app)
    try:
        output = tmp_path / "results.jsonl"
        done = run_script(
            app,
            ["--base-url", server.url, "--poll-interval", "0.2", "-o", str(output), str(EXAMPLES / "requests.jsonl")],
        )
    finally:
        server.stop()
    assert done.returncode == 0, done.stderr
    assert "5 requests added" in done.stdout and "completed" in done.stdout
    lines = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert [line["custom_id"] for line in lines][:2] == ["capital-fr", "haiku-autumn"]
    assert all(line["response"]["status_code"] == 200 for line in lines)


@pytest.mark.parametrize(
    "provider", [[], ["--provider", "simulator-anthropic", "--model", "claude-haiku-4-5"]], ids=["openai", "anthropic"]
)
def test_example_runs_a_csv_file_with_a_template(app, simulator, committed_db, tmp_path, provider):
    server = Server(app)
    try:
        output = tmp_path / "reviews-results.csv"
        done = run_script(
            app,
            [
                "--base-url",
                server.url,
                "--poll-interval",
                "0.2",
                "-o",
                str(output),
                "--template",
                "Classify the sentiment of this review: {{ review }}",
                "--id-column",
                "review_id",
                "--format",
                "csv",
                *provider,
                str(EXAMPLES / "reviews.csv"),
            ],
        )
    finally:
        server.stop()
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(output.open(encoding="utf-8", newline="")))
    assert [row["review_id"] for row in rows] == [f"R-100{i}" for i in range(1, 7)]
    assert rows[1]["review"] == "Stopped heating after a month.\nSupport never answered my emails."
    assert all(row["status"] == "succeeded" and row["output_text"] for row in rows)


def test_example_exits_non_zero_with_the_api_error(app, committed_db):
    server = Server(app)
    try:
        refused = run_script(app, ["--base-url", server.url, "--provider", "openai", str(EXAMPLES / "requests.jsonl")])
        bad_csv = run_script(app, ["--base-url", server.url, str(EXAMPLES / "reviews.csv")])
    finally:
        server.stop()
    assert refused.returncode == 1
    assert "HTTP 422 validation_error: invalid job settings" in refused.stderr
    assert "provider: provider 'openai' is not available here" in refused.stderr
    assert bad_csv.returncode == 1 and "a CSV file needs a prompt template" in bad_csv.stderr
    unreachable = subprocess.run(
        [sys.executable, str(SCRIPT), "--base-url", "http://127.0.0.1:9"], capture_output=True, text=True, timeout=60
    )
    assert unreachable.returncode == 1 and "cannot reach" in unreachable.stderr


def test_example_uses_an_unknown_model_only_when_told(app, simulator, committed_db, tmp_path):
    body = {"model": "my-deployment", "messages": [{"role": "user", "content": "hi"}]}
    lines = [{"custom_id": "d-1", "method": "POST", "url": "/v1/chat/completions", "body": body}]
    requests = tmp_path / "deployment.jsonl"
    requests.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    server = Server(app)
    try:
        quick = ["--base-url", server.url, "--poll-interval", "0.2"]
        refused = run_script(app, [*quick, str(requests)])
        told = run_script(app, [*quick, "-o", str(tmp_path / "out.jsonl"), "--allow-unknown-model", str(requests)])
    finally:
        server.stop()
    assert refused.returncode == 1 and "HTTP 422 unknown_model" in refused.stderr
    assert told.returncode == 0, told.stderr
    assert "created job" in told.stdout and "(my-deployment on simulator)" in told.stdout
