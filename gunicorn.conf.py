"""gunicorn settings for the web process; each can be overridden with GUNICORN_* style CLI flags."""

import os

bind = os.environ.get("BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
threads = int(os.environ.get("WEB_THREADS", "4"))
worker_class = "gthread"
timeout = 120  # uploads of large batch files
graceful_timeout = 30
# Build the app once in the master: a configuration error then stops start-up with its one line.
preload_app = True
accesslog = None  # the app logs one JSON line per request itself
