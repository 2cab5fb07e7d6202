"""Settings from the environment: the only module that reads os.environ, failing fast on bad values."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from simulator.settings import TUNABLES as SIMULATOR_TUNABLES

ENVIRONMENTS = ("development", "production")
LOG_FORMATS = ("json", "text")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
SECRET_KEY_FILE = "secret_key"
DEFAULT_SIMULATOR_URL = "http://127.0.0.1:5000/simulator/v1"
REMEMBER_ME = timedelta(days=365)  # how long "Remember me" keeps a browser signed in (the cookie and the server)


class ConfigError(Exception):
    """A setting is missing or malformed; the message says which and how to fix it."""


def from_env(instance_path: str, environ: Mapping[str, str] | None = None) -> dict:
    """Return the Flask config built from ``environ`` (default: os.environ plus a ``.env`` file).

    Raises ConfigError naming the variable when a value is malformed or a production
    setting without a safe default is missing.
    """
    env = _environment(environ)
    app_env = _choice(env, "APP_ENV", "development", ENVIRONMENTS)
    api_key = env.get("OPENAI_API_KEY") or None
    anthropic_key = env.get("ANTHROPIC_API_KEY") or None
    secret_key = _secret_key(env, app_env, instance_path)
    simulator = _flag(env, "SIMULATOR_ENABLED", not (api_key or anthropic_key))
    if not (api_key or anthropic_key or simulator):
        raise ConfigError(
            "SIMULATOR_ENABLED is off and neither OPENAI_API_KEY nor ANTHROPIC_API_KEY is set: "
            "no provider could run a job"
        )
    return {
        "APP_ENV": app_env,
        "SECRET_KEY": secret_key,
        "SQLALCHEMY_DATABASE_URI": database_url(env.get("DATABASE_URL"), instance_path),
        "REDIS_URL": _redis_url(env.get("REDIS_URL")),
        "OPENAI_API_KEY": api_key,
        "OPENAI_BASE_URL": env.get("OPENAI_BASE_URL") or None,
        "ANTHROPIC_API_KEY": anthropic_key,
        "ANTHROPIC_BASE_URL": env.get("ANTHROPIC_BASE_URL") or None,
        "DEFAULT_PROVIDER": "openai" if api_key else "anthropic" if anthropic_key else "simulator",
        "SIMULATOR_ENABLED": simulator,
        "SIMULATOR_API_KEY": env.get("SIMULATOR_API_KEY") or _derived_key(secret_key, "simulator-api-key"),
        "SIMULATOR_CONTROL": _flag(env, "SIMULATOR_CONTROL", False),
        "SIMULATOR_BASE_URL": env.get("SIMULATOR_BASE_URL") or DEFAULT_SIMULATOR_URL,
        "SIMULATOR_DIR": env.get("SIMULATOR_DIR") or str(Path(instance_path) / "simulator"),
        **_simulator_tunables(env),
        # Simulated batches finish in seconds, real ones in minutes to hours.
        "SYNC_INTERVAL_SECONDS": _number(
            env, "SYNC_INTERVAL_SECONDS", 30 if api_key or anthropic_key else 5, int, minimum=1
        ),
        "SWEEP_INTERVAL_SECONDS": _number(env, "SWEEP_INTERVAL_SECONDS", 900, int, minimum=60),
        "LOG_LEVEL": _choice(env, "LOG_LEVEL", "INFO", LOG_LEVELS, upper=True),
        "LOG_FORMAT": _choice(env, "LOG_FORMAT", "json", LOG_FORMATS),
        "MAX_CONTENT_LENGTH": _number(env, "MAX_UPLOAD_MB", 256, int, minimum=1) * 1024 * 1024,
        "MAX_REQUEST_BYTES": _number(env, "MAX_REQUEST_MB", 10, int, minimum=1) * 1024 * 1024,
        "BATCH_MAX_REQUESTS": _number(env, "BATCH_MAX_REQUESTS", 50_000, int, minimum=1),
        "BATCH_MAX_BYTES": _number(env, "BATCH_MAX_MB", 200, int, minimum=1) * 1024 * 1024,
        "ENQUEUED_TOKEN_LIMIT": _number(env, "ENQUEUED_TOKEN_LIMIT", 2_000_000, int, minimum=1),
        "ENQUEUED_TOKEN_LIMITS": _model_limits(env.get("ENQUEUED_TOKEN_LIMITS", "")),
        "PRICES_FILE": env.get("PRICES_FILE") or None,
        "MODEL_LIST_CACHE_SECONDS": _number(env, "MODEL_LIST_CACHE_SECONDS", 3600, int, minimum=0),
        "DELETE_PROVIDER_FILES": _flag(env, "DELETE_PROVIDER_FILES", True),
        "PROVIDER_BACKOFF_SECONDS": _number(env, "PROVIDER_BACKOFF_SECONDS", 5.0, float, minimum=0),
        "MAX_ACTIVE_JOBS_PER_USER": _number(env, "MAX_ACTIVE_JOBS_PER_USER", 10, int, minimum=0),
        **{name: _rate_limit(env, name, default) for name, default in RATE_LIMITS.items()},
        "TRUSTED_PROXIES": _number(env, "TRUSTED_PROXIES", 0, int, minimum=0),
        "CLAIM_LEASE_SECONDS": _number(env, "CLAIM_LEASE_SECONDS", 30, int, minimum=10),
        **_cookies(app_env == "production"),
        "REMEMBER_COOKIE_DURATION": REMEMBER_ME,
    }


RATE_LIMITS = {
    "API_RATE_LIMIT": "600 per minute",  # calls per token (or per address without one)
    "API_AUTH_FAILURE_LIMIT": "20 per minute",  # refused tokens per address
    "LOGIN_RATE_LIMIT": "10 per minute;100 per hour",  # failed sign-ins per address
    "LOGIN_ACCOUNT_RATE_LIMIT": "5 per minute;20 per hour",  # failed sign-ins per account
}


def _rate_limit(env, name: str, default: str) -> str:
    """A limits string ("10 per minute;100 per hour"), checked now rather than at the first request."""
    from limits import parse_many

    value = env.get(name) or default
    try:
        parse_many(value)
    except ValueError:
        raise ConfigError(f"{name} must look like '10 per minute;100 per hour' (got {value!r})") from None
    return value


def _cookies(secure: bool) -> dict:
    """Session and remember-me cookies: never read by scripts, not sent on cross-site posts, HTTPS-only in production.

    Set here, not with ``setdefault``: Flask defines SESSION_COOKIE_SAMESITE (as None), so a default would not stick.
    """
    return {
        f"{cookie}_COOKIE_{name}": value
        for cookie in ("SESSION", "REMEMBER")
        for name, value in (("HTTPONLY", True), ("SAMESITE", "Lax"), ("SECURE", secure))
    }


def _simulator_tunables(env) -> dict:
    """The built-in simulator's tunables (how long its batches spend in each state, its limits, failure rate and
    retention), each with the default the simulator defines."""
    return {key: _number(env, key, default, kind, minimum=least) for key, _, kind, default, least in SIMULATOR_TUNABLES}


def _derived_key(secret_key: str, purpose: str) -> str:
    """A key for one purpose derived from SECRET_KEY (HMAC-SHA256): every process shares it, and it reveals nothing
    of SECRET_KEY to whoever sees it."""
    return hmac.new(secret_key.encode(), purpose.encode(), hashlib.sha256).hexdigest()


def database_url(raw: str | None, instance_path: str) -> str:
    """Normalise DATABASE_URL to a SQLAlchemy URL for psycopg 3 or SQLite; default to SQLite in the instance folder."""
    if not raw:
        return f"sqlite:///{Path(instance_path) / 'batches.db'}"
    url = raw.strip()
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            url = "postgresql+psycopg://" + url[len(prefix) :]
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(
            f"DATABASE_URL is not a database URL ({raw!r}); "
            "use postgresql://user:pass@host:5432/name or sqlite:///path/to/file.db"
        ) from None
    if parsed.get_backend_name() not in ("postgresql", "sqlite"):
        raise ConfigError(
            f"DATABASE_URL uses {parsed.get_backend_name()!r}; only postgresql:// and sqlite:// are supported"
        )
    return url


def _environment(environ: Mapping[str, str] | None) -> Mapping[str, str]:
    if environ is not None:
        return environ
    from dotenv import load_dotenv

    load_dotenv(override=False)
    return os.environ


def _secret_key(env: Mapping[str, str], app_env: str, instance_path: str) -> str:
    key = env.get("SECRET_KEY")
    if key:
        return key
    if app_env == "production":
        raise ConfigError("SECRET_KEY is required when APP_ENV=production; set it to a long random string")
    return _persisted_secret_key(Path(instance_path))


def _persisted_secret_key(instance: Path) -> str:
    """Generate the embedded default's key once and keep it, so sessions survive restarts."""
    path = instance / SECRET_KEY_FILE
    if path.exists():
        return path.read_text().strip()
    instance.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key


def _redis_url(raw: str | None) -> str | None:
    if not raw:
        return None
    if not raw.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"REDIS_URL must start with redis://, rediss:// or unix:// (got {raw!r})")
    return raw


def _choice(env, name: str, default: str, allowed: tuple[str, ...], upper: bool = False) -> str:
    value = env.get(name) or default
    value = value.upper() if upper else value.lower()
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)} (got {env.get(name)!r})")
    return value


def _number(env, name: str, default, kind=int, minimum=None):
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number (got {raw!r})") from None
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name} must be at least {minimum} (got {raw!r})")
    return value


def _flag(env, name: str, default: bool) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false (got {env.get(name)!r})")


def _model_limits(raw: str) -> dict[str, int]:
    """Parse ``model=tokens,model=tokens`` into a per-model enqueued-token limit table."""
    limits: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        model, sep, value = item.partition("=")
        if not sep or not model.strip() or not value.strip().isdigit():
            raise ConfigError(
                f"ENQUEUED_TOKEN_LIMITS must look like 'gpt-4o-mini=2000000,gpt-4o=90000' (bad item {item!r})"
            )
        limits[model.strip()] = int(value)
    return limits
