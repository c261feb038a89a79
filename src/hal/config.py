"""One typed Settings object, read from `HAL_*` environment variables when built, not on import."""

from __future__ import annotations

from datetime import timedelta
from functools import cached_property
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from hal.domain.limits import Limits
from hal.domain.rates import check_retry_schedule, parse_rate


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HAL_", extra="ignore")

    database_url: str = "sqlite:///hal.db"
    session_token_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=60)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    # POST /api/projects/{app_id}/batch and .../imports take larger bodies than the rest.
    max_batch_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_import_bytes: int = Field(default=25 * 1024 * 1024, ge=1024)
    max_metadata_keys: int = Field(default=100, ge=1)
    max_company_ids: int = Field(default=50, ge=1)
    max_attributes: int = Field(default=250, ge=1)  # per model (contact, company) and project
    # Abuse limits on the widget routes ("N/second|minute|hour", or "off"). Counted in this
    # process ("memory://") or shared by every process ("redis://127.0.0.1:6379").
    rate_limit_storage: str = "memory://"
    widget_rate_per_project: str = "600/second"
    widget_rate_per_visitor: str = "120/minute"
    new_visitors_per_project: str = "1000/minute"
    # ...and per client address, so one client cannot spend the project's whole budget.
    new_visitors_per_client: str = "300/minute"
    # Slow clients are cut off with 408: a request's line and headers must arrive within
    # header_timeout_seconds of its first byte (hal.server), its body within
    # body_timeout_seconds of the headers (BodyLimitMiddleware).
    header_timeout_seconds: float = Field(default=10, gt=0)
    body_timeout_seconds: float = Field(default=10, gt=0)
    # Proxies whose X-Forwarded-For/-Proto are believed (uvicorn's forwarded_allow_ips):
    # comma-separated addresses or networks, "*" for any. Empty: no proxy headers are believed.
    forwarded_allow_ips: str = ""
    # Failed inbox logins allowed per email and per client address before 429 (same store).
    login_failures_per_email: str = "10/15 minutes"
    login_failures_per_client: str = "30/15 minutes"
    # How long the change log keeps changes for streams to replay (seconds, or ISO 8601
    # like PT72H); older ones are purged in bounded batches.
    stream_retention: timedelta = timedelta(hours=72)
    # Open live streams allowed per visitor, per client address (an office shares one) and
    # in all, counted by each process; past them a stream is refused (429; 503 for the
    # process's own cap).
    streams_per_visitor: int = Field(default=5, ge=1)
    streams_per_client: int = Field(default=200, ge=1)
    streams_per_process: int = Field(default=2000, ge=1)
    # How long the webhook delivery log keeps a message and its attempts (same formats); the
    # retry schedule ends within about 28 hours, so older messages are settled.
    webhook_log_retention: timedelta = timedelta(days=30)
    # Webhooks (README "Webhooks"). Delivery runs inside `hal serve` unless webhook_worker is
    # false (then `hal worker` processes do it). Seconds before each attempt, the first one
    # included; private and loopback receivers only for development and tests.
    webhook_worker: bool = True
    webhook_retry_schedule: Annotated[str, AfterValidator(check_retry_schedule)] = (
        "0,5,300,1800,7200,18000,36000,36000"
    )
    webhooks_allow_private: bool = False
    webhook_timeout_seconds: float = Field(default=15, gt=0)
    webhook_poll_seconds: float = Field(default=0.5, gt=0)
    webhook_concurrency: int = Field(default=16, ge=1, le=256)
    # Import jobs (README "Batch writes and imports"): `hal serve` runs uploaded imports
    # unless import_worker is false (then `hal worker` processes do). A job's process renews
    # its lease with each chunk of rows; another process takes over a job whose lease ran
    # out. Finished jobs and their failed rows are kept for import_retention. A project's
    # webhooks wait while it imports (sent once the import ends).
    import_worker: bool = True
    import_lease_seconds: float = Field(default=30, gt=0)
    import_poll_seconds: float = Field(default=1, gt=0)
    import_chunk_rows: int = Field(default=1000, ge=1, le=10_000)
    import_retention: timedelta = timedelta(days=7)
    # The installation check (README "Installation check and refusals"): each process adds
    # its widget-call counts and refusals to the database this often; 0 turns counting off.
    installation_flush_seconds: float = Field(default=5, ge=0, le=10)
    # Operations: GET /metrics (Prometheus) when true; log lines as text or one JSON object.
    metrics: bool = False
    log_format: Literal["text", "json"] = "text"
    # Adds POST /api/widget/echo, the same stack without database work (benchmark ceiling).
    bench_echo: bool = False
    # Serves the demo customer app at /demo for the `demo` project (`hal serve --demo`).
    demo: bool = False

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql", "postgres")):
            raise ValueError("HAL_DATABASE_URL must be a sqlite:// or postgresql:// URL")
        return value

    @field_validator(
        "widget_rate_per_project",
        "widget_rate_per_visitor",
        "new_visitors_per_project",
        "new_visitors_per_client",
        "login_failures_per_email",
        "login_failures_per_client",
    )
    @classmethod
    def _valid_rate(cls, value: str) -> str:
        parse_rate(value)  # raises ValueError for a malformed rate
        return value

    @cached_property
    def limits(self) -> Limits:
        return Limits(
            max_body_bytes=self.max_body_bytes,
            max_metadata_keys=self.max_metadata_keys,
            max_company_ids=self.max_company_ids,
            max_attributes=self.max_attributes,
        )
