"""Logging for every process (`hal serve` and its workers, `hal worker`): one configuration,
text or one JSON object per line (`HAL_LOG_FORMAT`), uvicorn's loggers included, and the
request id of the request being served on every line written while serving it."""

from __future__ import annotations

import logging
import logging.config
from contextvars import ContextVar
from typing import Any, Literal

import structlog

LogFormat = Literal["text", "json"]

# Set by the outermost middleware for the request being served (each request is its own task,
# so the value never leaks into another request).
request_id: ContextVar[str | None] = ContextVar("hal_request_id", default=None)

# What the access line adds beside its message (hal.api.operations).
ACCESS_FIELDS = ("method", "route", "status", "duration_ms")


class RequestIdFilter(logging.Filter):
    """Stamps each record with the current request id (`missing` outside a request)."""

    def __init__(self, missing: str | None = None) -> None:
        super().__init__()
        self.missing = missing

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get() or self.missing
        return True


def json_formatter() -> logging.Formatter:
    """One JSON object per line: timestamp, level, logger, message, request_id, the access
    line's fields, and the traceback as text."""
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
            structlog.stdlib.ExtraAdder(allow=("request_id", *ACCESS_FIELDS)),
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.EventRenamer("message"),
            structlog.processors.JSONRenderer(),
        ],
    )


def logging_config(log_format: LogFormat, level: str) -> dict[str, Any]:
    """A `logging.config.dictConfig` document: one stderr handler on the root logger, which
    hal's, uvicorn's and the libraries' loggers all reach."""
    level = level.upper()
    text = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
    formatter = {"()": json_formatter} if log_format == "json" else {"format": text}
    return {
        "version": 1,
        "disable_existing_loggers": False,  # hal's loggers exist already (module globals)
        "filters": {
            "request_id": {"()": RequestIdFilter, "missing": None if log_format == "json" else "-"}
        },
        "formatters": {"hal": formatter},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "hal",
                "filters": ["request_id"],
            }
        },
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            # uvicorn's own handlers would print a second, unformatted line.
            "uvicorn": {"handlers": [], "propagate": True, "level": level},
            "uvicorn.error": {"handlers": [], "propagate": True, "level": level},
            "uvicorn.access": {"handlers": [], "propagate": False},
            # A line per webhook request would name receivers' URLs.
            "httpx": {"level": "WARNING"},
            "httpcore": {"level": "WARNING"},
        },
    }


def configure_logging(log_format: LogFormat, level: str) -> dict[str, Any]:
    """Configure this process's logging; returns the document (uvicorn applies it again in
    each worker process it starts)."""
    config = logging_config(log_format, level)
    logging.config.dictConfig(config)
    return config
