"""Settings, read once from the environment.

Every variable is documented in README.md ("Configuration"). Nothing here is read per request.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent


class ConfigError(RuntimeError):
    pass


def _duration(name: str, default: str) -> timedelta:
    """Parse '7d', '24h', '30m', '45s' or a plain number of seconds."""
    raw = os.environ.get(name, default).strip().lower()
    units = {"d": 86400, "h": 3600, "m": 60, "s": 1}
    try:
        if raw and raw[-1] in units:
            return timedelta(seconds=float(raw[:-1]) * units[raw[-1]])
        return timedelta(seconds=float(raw))
    except ValueError as exc:
        raise ConfigError(f"{name}={raw!r} is not a duration like 7d, 24h, 30m or 3600") from exc


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, str(default))
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name}={raw!r} is not an integer") from exc


@dataclass(frozen=True)
class Settings:
    database_url: str
    migrate_database_url: str
    secret_key: str
    base_url: str
    smtp_url: str | None
    mail_from: str
    data_dir: Path
    export_rate: int
    invite_ttl: timedelta
    export_ttl: timedelta
    session_idle: timedelta
    session_absolute: timedelta
    dev: bool
    db_pool_size: int
    db_acquire_timeout: float
    org_create_rate: int
    invite_rate: int
    api_rate: int
    signup_rate: int
    per_principal_concurrency: int
    per_client_concurrency: int
    run_workers: bool = True
    mail_retry_base: timedelta = timedelta(seconds=30)
    mail_max_attempts: int = 8
    metrics_token: str | None = None
    db_statement_cache: int = 100

    @property
    def secure_cookies(self) -> bool:
        return self.base_url.startswith("https://")

    @property
    def app_db_role(self) -> str:
        """The login role the application connects as (the user part of DATABASE_URL)."""
        return urlsplit(self.database_url).username or ""

    @property
    def outbox_dir(self) -> Path:
        return self.data_dir / "outbox"


def load_settings() -> Settings:
    dev = os.environ.get("PORTAL_DEV", "") == "1"
    data_dir = Path(os.environ.get("PORTAL_DATA_DIR", str(ROOT / ".portal"))).resolve()
    database_url = os.environ.get("DATABASE_URL", "")
    if not database_url:
        raise ConfigError(
            "DATABASE_URL is not set. `make run` starts an embedded PostgreSQL and sets it for you; "
            "in production point it at the application's login role (see README, Deployment)."
        )
    secret_key = os.environ.get("SECRET_KEY", "")
    if not secret_key:
        if not dev:
            raise ConfigError("SECRET_KEY is required outside dev mode (PORTAL_DEV=1).")
        secret_key = "dev-only-secret-key-do-not-use-in-production"
    if len(secret_key) < 16:
        raise ConfigError("SECRET_KEY must be at least 16 characters.")
    return Settings(
        database_url=database_url,
        migrate_database_url=os.environ.get("MIGRATE_DATABASE_URL", ""),
        secret_key=secret_key,
        base_url=os.environ.get("BASE_URL", "http://127.0.0.1:8000").rstrip("/"),
        smtp_url=os.environ.get("SMTP_URL") or None,
        mail_from=os.environ.get("MAIL_FROM", "Praesidia <no-reply@praesidia.localhost>"),
        data_dir=data_dir,
        export_rate=_int("EXPORT_RATE", 3),
        invite_ttl=_duration("INVITE_TTL", "7d"),
        export_ttl=_duration("EXPORT_TTL", "24h"),
        session_idle=_duration("SESSION_IDLE_TIMEOUT", "8h"),
        session_absolute=_duration("SESSION_MAX_AGE", "14d"),
        dev=dev,
        db_pool_size=_int("DB_POOL_SIZE", 10),
        db_acquire_timeout=_duration("DB_ACQUIRE_TIMEOUT", "5s").total_seconds(),
        org_create_rate=_int("ORG_CREATE_RATE", 10),
        invite_rate=_int("INVITE_RATE", 50),
        api_rate=_int("API_RATE", 600),
        signup_rate=_int("SIGNUP_RATE", 20),
        per_principal_concurrency=_int("PER_PRINCIPAL_CONCURRENCY", 8),
        per_client_concurrency=_int("PER_CLIENT_CONCURRENCY", 32),
        run_workers=os.environ.get("RUN_WORKERS", "1").strip().lower() not in ("0", "false", "no", "off"),
        mail_retry_base=_duration("MAIL_RETRY_BASE", "30s"),
        mail_max_attempts=max(1, _int("MAIL_MAX_ATTEMPTS", 8)),
        metrics_token=os.environ.get("METRICS_TOKEN") or None,
        db_statement_cache=max(0, _int("DB_STATEMENT_CACHE", 100)),
    )


_settings: Settings | None = None


def get_settings() -> Settings:
    global _settings
    if _settings is None:
        _settings = load_settings()
    return _settings


def set_settings(settings: Settings | None) -> None:
    """Replace the process settings (tests and the CLI)."""
    global _settings
    _settings = settings
