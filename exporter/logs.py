"""Structured logging (logfmt or JSON) with secrets masked in every record."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from .redact import REDACTOR, bounded

LOGGER = logging.getLogger("exporter")


MAX_TRACEBACK = 8192
"""Characters of a logged traceback."""


def _clean(value: Any) -> Any:
    return bounded(REDACTOR(value)) if isinstance(value, str) else value


class _RedactingFilter(logging.Filter):
    """Masks secrets and bounds every string of a record (message, fields, traceback)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "cleaned", False):  # the logger's and the handler's filter
            return True
        record.cleaned = True
        record.msg = bounded(REDACTOR(record.getMessage()), MAX_TRACEBACK)
        record.args = None
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            record.fields = {k: _clean(v) for k, v in fields.items()}
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = REDACTOR(text)[-MAX_TRACEBACK:]
            record.exc_info = None
        return True


def _base(record: logging.LogRecord) -> dict[str, Any]:
    ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    out: dict[str, Any] = {
        "ts": f"{ts}.{int(record.msecs):03d}Z",
        "level": record.levelname.lower(),
        "msg": record.getMessage(),
    }
    out.update(getattr(record, "fields", None) or {})
    if record.exc_text:
        out["exc"] = record.exc_text
    return out


def _logfmt_value(value: Any) -> str:
    text = str(value)
    if text == "" or any(c in text for c in ' ="\\\n'):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


class LogfmtFormatter(logging.Formatter):
    """``key=value`` lines, values quoted when needed."""

    def format(self, record: logging.LogRecord) -> str:
        return " ".join(f"{k}={_logfmt_value(v)}" for k, v in _base(record).items())


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(_base(record), default=str, ensure_ascii=False)


LOGGER.addFilter(_RedactingFilter())


def setup(fmt: str = "logfmt", level: str = "info") -> None:
    """Send the exporter's records to stderr in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else LogfmtFormatter())
    handler.addFilter(_RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Client libraries log connection chatter (sometimes with addresses) at INFO.
    for noisy in ("asyncio", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # aiokafka logs every failed connection attempt at ERROR, without kind or
    # target; the scheduler already logs each failure and recovery once, with both.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)


def log(level: int, msg: str, **fields: Any) -> None:
    """Log ``msg`` with structured ``fields`` through the exporter's logger."""
    LOGGER.log(level, msg, extra={"fields": fields})


def log_change(
    before: object,
    after: object,
    messages: tuple[str, str],
    who: dict[str, Any],
    **details: Any,
) -> None:
    """Log a failing condition once per episode, not once per check.

    ``before`` and ``after`` identify the failure (a reason, an error) at the previous
    and the current check, None while all is well: WARNING ``messages[0]`` when it
    starts or changes, DEBUG while it repeats, INFO ``messages[1]`` when it ends.
    ``who`` names what failed (on every line); ``details`` go on failure lines only.
    """
    if after is None:
        if before is not None:
            log(logging.INFO, messages[1], **who)
        return
    log(logging.DEBUG if after == before else logging.WARNING, messages[0], **who, **details)
