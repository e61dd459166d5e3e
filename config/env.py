"""Read and validate settings from the environment, failing with one clear line."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

BROKER_SCHEMES = {"redis", "rediss", "sqla+sqlite", "sqla+postgresql", "amqp", "memory"}
DATABASE_SCHEMES = {"postgres", "postgresql", "pgsql", "sqlite"}
# Web, workers and training runners write concurrently: wait for the lock rather than
# fail, and let readers go on while one process writes.
SQLITE_OPTIONS = {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, got {raw!r}")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {value}")
    return value


def env_float(name: str, default: float, *, minimum: float | None = None, maximum: float | None = None) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}") from None
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ImproperlyConfigured(f"{name} must be between {minimum} and {maximum}, got {value}")
    return value


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = os.environ.get(name) or default
    if value not in choices:
        raise ImproperlyConfigured(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def url_origin(url: str) -> str:
    """scheme://host[:port] of a URL, as a Content-Security-Policy source names it."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ImproperlyConfigured(f"{url!r} is not an http(s) URL")
    return f"{parts.scheme}://{parts.netloc}"


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def database_from_url(url: str) -> dict:
    """Parse DATABASE_URL; a URL we cannot use is a configuration error, not a traceback."""
    import dj_database_url

    scheme = urlsplit(url).scheme
    if scheme not in DATABASE_SCHEMES:
        raise ImproperlyConfigured(
            f"DATABASE_URL is malformed: scheme {scheme or '(none)'!r} is not one of "
            "postgres://USER@HOST:PORT/NAME or sqlite:///PATH"
        )
    try:
        config = dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True)
    except Exception as exc:  # dj-database-url raises bare ValueErrors of several kinds
        raise ImproperlyConfigured(f"DATABASE_URL is malformed: {exc}") from None
    if not config.get("NAME"):
        raise ImproperlyConfigured("DATABASE_URL is malformed: it names no database")
    if config["ENGINE"].endswith("sqlite3"):
        config["OPTIONS"] = dict(SQLITE_OPTIONS)
        config["CONN_MAX_AGE"] = 0
    if config["ENGINE"].endswith("postgresql") and not config.get("HOST"):
        raise ImproperlyConfigured("DATABASE_URL is malformed: it names no host")
    return config


def broker_url(url: str) -> str:
    scheme = urlsplit(url).scheme
    if scheme not in BROKER_SCHEMES:
        raise ImproperlyConfigured(
            f"CELERY_BROKER_URL is malformed: scheme {scheme or '(none)'!r} is not one of "
            "redis://HOST:PORT/DB or sqla+sqlite:///PATH"
        )
    if scheme in {"redis", "rediss"}:
        parts = urlsplit(url)
        try:
            parts.port  # noqa: B018 - raises ValueError on a non-numeric port
        except ValueError:
            raise ImproperlyConfigured("CELERY_BROKER_URL is malformed: the port is not a number") from None
        if not parts.hostname:
            raise ImproperlyConfigured("CELERY_BROKER_URL is malformed: it names no host")
    return url
