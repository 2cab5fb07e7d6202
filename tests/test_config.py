"""Configuration from the environment: defaults, normalisation and the one-line errors for bad values."""

import subprocess
import sys

import pytest

from webapp import ROOT
from webapp.config import ConfigError, from_env


def test_defaults_give_the_embedded_setup(tmp_path):
    config = from_env(str(tmp_path), {})
    assert config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'batches.db'}"
    assert config["REDIS_URL"] is None
    assert config["DEFAULT_PROVIDER"] == "simulator"
    assert config["SYNC_INTERVAL_SECONDS"] == 5  # the simulator is quick
    assert from_env(str(tmp_path), {"OPENAI_API_KEY": "sk-x"})["SYNC_INTERVAL_SECONDS"] == 30
    assert config["LOG_FORMAT"] == "json"
    assert config["BATCH_MAX_REQUESTS"] == 50_000
    assert config["BATCH_MAX_BYTES"] == 200 * 1024 * 1024
    assert config["MAX_REQUEST_BYTES"] == 10 * 1024 * 1024
    assert from_env(str(tmp_path), {"MAX_REQUEST_MB": "40"})["MAX_REQUEST_BYTES"] == 40 * 1024 * 1024
    assert from_env(str(tmp_path), {})["MODEL_LIST_CACHE_SECONDS"] == 3600
    assert from_env(str(tmp_path), {"MODEL_LIST_CACHE_SECONDS": "0"})["MODEL_LIST_CACHE_SECONDS"] == 0


def test_generated_secret_key_is_persisted(tmp_path):
    first = from_env(str(tmp_path), {})["SECRET_KEY"]
    second = from_env(str(tmp_path), {})["SECRET_KEY"]
    assert first == second and len(first) >= 40
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("postgres://u:p@db:5432/x", "postgresql+psycopg://u:p@db:5432/x"),
        ("postgresql://u@db/x", "postgresql+psycopg://u@db/x"),
        ("postgresql+psycopg://u@db/x", "postgresql+psycopg://u@db/x"),
        ("sqlite:////tmp/x.db", "sqlite:////tmp/x.db"),
    ],
)
def test_database_url_is_normalised_for_psycopg3(tmp_path, raw, expected):
    assert from_env(str(tmp_path), {"DATABASE_URL": raw})["SQLALCHEMY_DATABASE_URI"] == expected


def test_api_key_selects_openai(tmp_path):
    config = from_env(str(tmp_path), {"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": "https://x/v1"})
    assert config["DEFAULT_PROVIDER"] == "openai"
    assert config["OPENAI_BASE_URL"] == "https://x/v1"


def test_per_model_token_limits(tmp_path):
    config = from_env(str(tmp_path), {"ENQUEUED_TOKEN_LIMITS": "gpt-4o-mini=2000000, gpt-4o=90000"})
    assert config["ENQUEUED_TOKEN_LIMITS"] == {"gpt-4o-mini": 2_000_000, "gpt-4o": 90_000}


@pytest.mark.parametrize(
    "env, fragment",
    [
        ({"DATABASE_URL": "not a url"}, "DATABASE_URL is not a database URL"),
        ({"DATABASE_URL": "mysql://x@y/z"}, "only postgresql:// and sqlite://"),
        ({"REDIS_URL": "localhost:6379"}, "REDIS_URL must start with redis://"),
        ({"APP_ENV": "production"}, "SECRET_KEY is required when APP_ENV=production"),
        ({"APP_ENV": "staging"}, "APP_ENV must be one of"),
        ({"SYNC_INTERVAL_SECONDS": "soon"}, "SYNC_INTERVAL_SECONDS must be a number"),
        ({"SYNC_INTERVAL_SECONDS": "0"}, "SYNC_INTERVAL_SECONDS must be at least 1"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT must be one of json, text"),
        ({"LOG_LEVEL": "chatty"}, "LOG_LEVEL must be one of"),
        ({"DELETE_PROVIDER_FILES": "maybe"}, "DELETE_PROVIDER_FILES must be true or false"),
        ({"ENQUEUED_TOKEN_LIMITS": "gpt-4o"}, "ENQUEUED_TOKEN_LIMITS must look like"),
        ({"TRUSTED_PROXIES": "-1"}, "TRUSTED_PROXIES must be at least 0"),
        ({"TRUSTED_PROXIES": "nginx"}, "TRUSTED_PROXIES must be a number"),
        ({"LOGIN_ACCOUNT_RATE_LIMIT": "five a minute"}, "LOGIN_ACCOUNT_RATE_LIMIT must look like"),
        ({"API_AUTH_FAILURE_LIMIT": "20 per fortnight"}, "API_AUTH_FAILURE_LIMIT must look like"),
        ({"MAX_REQUEST_MB": "0"}, "MAX_REQUEST_MB must be at least 1"),
        ({"MAX_REQUEST_MB": "ten"}, "MAX_REQUEST_MB must be a number"),
        ({"MODEL_LIST_CACHE_SECONDS": "-1"}, "MODEL_LIST_CACHE_SECONDS must be at least 0"),
    ],
)
def test_bad_settings_name_the_variable(tmp_path, env, fragment):
    with pytest.raises(ConfigError, match=fragment):
        from_env(str(tmp_path), env)


def test_production_with_secret_key_starts(tmp_path):
    config = from_env(str(tmp_path), {"APP_ENV": "production", "SECRET_KEY": "s" * 40})
    assert config["SESSION_COOKIE_SECURE"] is True and config["REMEMBER_COOKIE_SECURE"] is True


def _flask(tmp_path, env, *args):
    base = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LOG_FORMAT": "text"}
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "webapp:create_app_or_exit()", *args],
        cwd=tmp_path,
        env={**base, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    "env, fragment",
    [
        ({"DATABASE_URL": "nonsense"}, "DATABASE_URL is not a database URL"),
        ({"REDIS_URL": "redis://127.0.0.1:1/0"}, "REDIS_URL: cannot reach Redis"),
        ({"APP_ENV": "production", "DATABASE_URL": "sqlite:////tmp/x.db"}, "SECRET_KEY is required"),
    ],
)
def test_startup_error_is_one_line_without_traceback(tmp_path, env, fragment):
    result = _flask(tmp_path, env, "routes")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("configuration error:")]
    assert len(error_lines) == 1 and fragment in error_lines[0]


def test_dotenv_file_is_read(tmp_path):
    (tmp_path / ".env").write_text("SYNC_INTERVAL_SECONDS=nope\n")
    result = _flask(tmp_path, {}, "routes")
    assert "SYNC_INTERVAL_SECONDS must be a number" in result.stderr
