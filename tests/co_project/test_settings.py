"""Start-up safety and the embedded/service defaults, each in a fresh Python process (settings are
read once per process). The environment is the test's minus every CO_* variable, with CO_ENV
always set explicitly because a `.env` written by `make run` may exist in the repository root."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).parents[2]

_PRINT_SETTINGS = """
import json
import django
django.setup()
from django.conf import settings
db = settings.DATABASES["default"]
print(json.dumps({
    "CO_ENV": settings.CO_ENV,
    "IS_PRODUCTION": settings.IS_PRODUCTION,
    "DEBUG": settings.DEBUG,
    "ENGINE": db["ENGINE"],
    "NAME": str(db["NAME"]),
    "HOST": db.get("HOST", ""),
    "PORT": db.get("PORT", ""),
    "USER": db.get("USER", ""),
    "CACHE_BACKEND": settings.CACHES["default"]["BACKEND"],
    "CACHE_LOCATION": settings.CACHES["default"].get("LOCATION"),
    "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
    "CELERY_TASK_ALWAYS_EAGER": settings.CELERY_TASK_ALWAYS_EAGER,
    "CO_IN_PROCESS_BEAT": settings.CO_IN_PROCESS_BEAT,
    "CONN_MAX_AGE": db["CONN_MAX_AGE"],
    "CELERY_DB_REUSE_MAX": settings.CELERY_DB_REUSE_MAX,
    "CO_JWT_PUBLIC_KEY": settings.CO_JWT_PUBLIC_KEY,
    "CO_JWT_PRIVATE_KEY": settings.CO_JWT_PRIVATE_KEY,
}))
"""

PUBLIC_KEY_PEM = "-----BEGIN PUBLIC KEY-----\\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\\n-----END PUBLIC KEY-----"


def _run(code: str, **variables: str) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("CO_")}
    env["DJANGO_SETTINGS_MODULE"] = "co_project.settings"
    env.update(variables)
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def _setup(**variables: str) -> subprocess.CompletedProcess[str]:
    return _run("import django; django.setup()", **variables)


def _settings(**variables: str) -> dict:
    result = _run(_PRINT_SETTINGS, **variables)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


# --- production refuses unsafe configuration ----------------------------------------------


def test_production_without_secret_key_refuses_to_start() -> None:
    result = _setup(CO_ENV="production", CO_JWT_PUBLIC_KEY=PUBLIC_KEY_PEM)

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "CO_SECRET_KEY" in result.stderr


def test_production_without_jwt_public_key_refuses_to_start() -> None:
    result = _setup(CO_ENV="production", CO_SECRET_KEY="s" * 64)

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "CO_JWT_PUBLIC_KEY" in result.stderr
    assert "CO_SECRET_KEY is not set" not in result.stderr


def test_production_with_secret_and_public_key_starts_with_debug_off() -> None:
    result = _run(
        "import django; django.setup(); from django.conf import settings; print(settings.DEBUG, settings.IS_PRODUCTION)",
        CO_ENV="production",
        CO_SECRET_KEY="s" * 64,
        CO_JWT_PUBLIC_KEY=PUBLIC_KEY_PEM,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False True"


def test_production_has_no_development_keys() -> None:
    values = _settings(CO_ENV="production", CO_SECRET_KEY="s" * 64, CO_JWT_PUBLIC_KEY=PUBLIC_KEY_PEM)

    assert values["CO_JWT_PRIVATE_KEY"] is None
    assert values["CO_JWT_PUBLIC_KEY"] == PUBLIC_KEY_PEM.replace("\\n", "\n")
    assert values["DEBUG"] is False


def test_debug_in_production_refuses_to_start() -> None:
    result = _setup(CO_ENV="production", CO_DEBUG="true", CO_SECRET_KEY="s" * 64, CO_JWT_PUBLIC_KEY=PUBLIC_KEY_PEM)

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "CO_DEBUG" in result.stderr


def test_unknown_environment_refuses_to_start() -> None:
    result = _setup(CO_ENV="bogus")

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "CO_ENV" in result.stderr
    assert "'bogus'" in result.stderr


def test_development_starts_without_secrets() -> None:
    values = _settings(CO_ENV="development")

    assert values["CO_ENV"] == "development"
    assert values["IS_PRODUCTION"] is False
    assert values["DEBUG"] is False
    assert values["CO_JWT_PUBLIC_KEY"] == str(REPO_ROOT / "var" / "jwt-dev-public.pem")
    assert values["CO_JWT_PRIVATE_KEY"] == str(REPO_ROOT / "var" / "jwt-dev-private.pem")


# --- production warns about risky configuration ----------------------------------------------

PRODUCTION = {"CO_ENV": "production", "CO_SECRET_KEY": "s" * 64, "CO_JWT_PUBLIC_KEY": PUBLIC_KEY_PEM}
AUDIENCE_WARNING = "(co.W001) CO_JWT_AUDIENCE is not set: learner tokens are accepted whatever audience"
AUDIENCE_RISK = "a token the issuer signed for another service can be replayed against this API"
# What `co_project.asgi` does when gunicorn or uvicorn loads it (without the periodic tasks).
_SERVER_START = "import co_project.asgi"


def _check_deploy(**variables: str) -> subprocess.CompletedProcess[str]:
    return _run(
        "from django.core.management import execute_from_command_line; "
        "execute_from_command_line(['manage.py', 'check', '--deploy'])",
        **variables,
    )


def test_production_without_jwt_audience_is_a_deploy_check_warning_naming_the_risk() -> None:
    result = _check_deploy(**PRODUCTION)

    assert result.returncode == 0, result.stderr  # a warning, not an error: start-up goes on
    assert AUDIENCE_WARNING in result.stderr
    assert AUDIENCE_RISK in result.stderr
    assert "HINT: Set CO_JWT_AUDIENCE to the audience" in result.stderr


def test_production_with_jwt_audience_or_development_without_one_has_no_audience_warning() -> None:
    with_audience = _check_deploy(**PRODUCTION, CO_JWT_AUDIENCE="co-api")
    development = _check_deploy(CO_ENV="development")

    assert with_audience.returncode == development.returncode == 0, with_audience.stderr + development.stderr
    assert "co.W001" not in with_audience.stderr + with_audience.stdout
    assert "co.W001" not in development.stderr + development.stdout


def test_the_web_server_logs_the_audience_warning_when_it_starts() -> None:
    started = _run(_SERVER_START, **PRODUCTION, CO_IN_PROCESS_BEAT="false")
    with_audience = _run(_SERVER_START, **PRODUCTION, CO_IN_PROCESS_BEAT="false", CO_JWT_AUDIENCE="co-api")

    assert started.returncode == with_audience.returncode == 0, started.stderr + with_audience.stderr
    (line,) = [json.loads(line) for line in started.stderr.splitlines() if "co.W001" in line]
    assert (line["level"], line["logger"], line["check"]) == ("WARNING", "co.checks", "co.W001")
    assert AUDIENCE_RISK in line["message"]
    assert "co.W001" not in with_audience.stderr


# --- embedded defaults and service configuration --------------------------------------------


def test_default_configuration_is_embedded() -> None:
    values = _settings(CO_ENV="development")

    assert values["ENGINE"] == "django.db.backends.sqlite3"
    assert values["NAME"] == str(REPO_ROOT / "var" / "co.sqlite3")
    assert values["CACHE_BACKEND"] == "django.core.cache.backends.locmem.LocMemCache"
    assert values["CELERY_BROKER_URL"] == "memory://"
    assert values["CELERY_TASK_ALWAYS_EAGER"] is True
    assert values["CO_IN_PROCESS_BEAT"] is True  # the server runs the periodic tasks itself


def test_the_test_process_runs_no_periodic_tasks_of_its_own() -> None:
    assert _settings(CO_ENV="test")["CO_IN_PROCESS_BEAT"] is False


def test_postgresql_connections_persist_in_web_threads_and_across_worker_tasks() -> None:
    values = _settings(CO_ENV="development", CO_DB_URL="postgres://co@db.internal:5432/co")
    assert (values["CONN_MAX_AGE"], values["CELERY_DB_REUSE_MAX"]) == (600, 1000)
    off = _settings(
        CO_ENV="development", CO_DB_URL="postgres://co@db:5432/co", CO_DB_CONN_MAX_AGE="0", CO_CELERY_DB_REUSE_MAX="0"
    )
    assert (off["CONN_MAX_AGE"], off["CELERY_DB_REUSE_MAX"]) == (0, None)


def test_relative_sqlite_path_is_anchored_at_the_repository() -> None:
    values = _settings(CO_ENV="development", CO_DB_URL="sqlite:///var/other.sqlite3")

    assert values["ENGINE"] == "django.db.backends.sqlite3"
    assert values["NAME"] == str(REPO_ROOT / "var" / "other.sqlite3")


def test_postgres_and_redis_configuration() -> None:
    values = _settings(CO_ENV="development", CO_DB_URL="postgres://u@h:5432/d", CO_REDIS_URL="redis://127.0.0.1:6379/3")

    assert values["ENGINE"] == "django.db.backends.postgresql"
    assert (values["NAME"], values["HOST"], values["PORT"], values["USER"]) == ("d", "h", 5432, "u")
    assert values["CACHE_BACKEND"] == "django_redis.cache.RedisCache"
    assert values["CACHE_LOCATION"] == "redis://127.0.0.1:6379/3"
    assert values["CELERY_BROKER_URL"] == "redis://127.0.0.1:6379/3"
    assert values["CELERY_TASK_ALWAYS_EAGER"] is False


def test_separate_celery_broker_url_wins() -> None:
    values = _settings(
        CO_ENV="development",
        CO_REDIS_URL="redis://127.0.0.1:6379/3",
        CO_CELERY_BROKER_URL="redis://127.0.0.1:6379/4",
    )

    assert values["CACHE_LOCATION"] == "redis://127.0.0.1:6379/3"
    assert values["CELERY_BROKER_URL"] == "redis://127.0.0.1:6379/4"
    assert values["CELERY_TASK_ALWAYS_EAGER"] is False


def test_recommendation_weights_override_any_subset_and_reject_unknown_terms() -> None:
    code = (
        "import django, json; django.setup(); from django.conf import settings; "
        "print(json.dumps(settings.CO_RECOMMENDATION_WEIGHTS))"
    )
    result = _run(code, CO_ENV="development", CO_RECOMMENDATION_WEIGHTS="novelty=0.5, pacing=0.2")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"weakness": 0.35, "novelty": 0.5, "pacing": 0.2, "diversity": 0.1}

    bad = _run(code, CO_ENV="development", CO_RECOMMENDATION_WEIGHTS="luck=1")
    assert bad.returncode != 0
    assert "CO_RECOMMENDATION_WEIGHTS: 'luck=1' is not term=number" in bad.stderr
