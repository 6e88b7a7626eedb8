"""The service's logs: one JSON object a line on standard error, each carrying the ids of what it concerns, with
personal data masked.

* `log_context(message_id=…, review_id=…)` binds ids for the code below it (and `bind_log` adds some inside such a
  block). They live in a context variable, so they flow into asyncio tasks, `asyncio.to_thread` and langgraph's
  node executor (all three copy the context), and onto every record logged there.
* `JsonFormatter` writes `{"timestamp", "level", "logger", "message", <bound ids>, "trace_id", "span_id",
  "exc"?}`. The trace and span are those of the current OpenTelemetry span when there is one (a desk-graph node, an
  assistant turn), else the ids bound with the run (`Tracing.log_ids`). Ids given in a call's `extra` win.
* Both formatters pass the message (its arguments interpolated) and any traceback through `app.pii.mask_pii`, so a
  careless `log.info("%s", text)` cannot leak an ID number, a mobile or a bank account.
* `configure_logging(fmt)`: `json` (`otcdesk serve`'s default) or `text`, on standard error; `OTCDESK_LOG_FORMAT`.
"""
from __future__ import annotations

import contextvars
import json
import logging
import sys
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Iterator

from opentelemetry import trace

from otcdesk.app.pii import mask_pii

FIELDS = ("message_id", "inbound_id", "review_id", "thread_id", "trace_id", "span_id")
FORMATS = ("json", "text")
_IDS: contextvars.ContextVar[dict] = contextvars.ContextVar("otcdesk_log_ids", default={})


@contextmanager
def log_context(**ids) -> Iterator[None]:
    """Bind `ids` (None values skipped) onto every record logged inside the block, in this context and those copied
    from it."""
    token = _IDS.set({**_IDS.get(), **{k: v for k, v in ids.items() if v is not None}})
    try:
        yield
    finally:
        _IDS.reset(token)


def bind_log(**ids) -> None:
    """Add ids to the enclosing `log_context` block (which drops them when it ends); use only inside one."""
    _IDS.set({**_IDS.get(), **{k: v for k, v in ids.items() if v is not None}})


def current_ids(record: logging.LogRecord | None = None) -> dict:
    """The ids of a record: bound ones, the current span's trace and span, then the record's own `extra`."""
    ids = dict(_IDS.get())
    ctx = trace.get_current_span().get_span_context()
    if ctx.is_valid:
        ids["trace_id"], ids["span_id"] = format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")
    if record is not None:
        ids.update({k: getattr(record, k) for k in FIELDS if getattr(record, k, None) is not None})
    return ids


class JsonFormatter(logging.Formatter):
    """One JSON object per record, personal data masked."""

    def format(self, record: logging.LogRecord) -> str:
        doc = {"timestamp": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
               "level": record.levelname, "logger": record.name, "message": mask_pii(record.getMessage())}
        doc.update(current_ids(record))
        if record.exc_info:
            doc["exc"] = mask_pii(self.formatException(record.exc_info))
        if record.stack_info:
            doc["stack"] = mask_pii(self.formatStack(record.stack_info))
        return json.dumps(doc, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """`time LEVEL logger: message [ids]`, personal data masked."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        ids = current_ids(record)
        tail = " ".join(f"{k}={ids[k]}" for k in FIELDS if k in ids and k != "span_id")
        return mask_pii(f"{line} [{tail}]" if tail else line)

    def formatException(self, ei) -> str:
        return mask_pii(super().formatException(ei))


def configure_logging(fmt: str = "text", level: int = logging.INFO) -> None:
    """Log at `level` to standard error in `fmt` (`json` or `text`), replacing what an earlier call installed; Python
    warnings go through logging too, so nothing else writes free text there. Like `logging.basicConfig`, it leaves
    a root logger that someone else gave handlers (a test runner, a host application) as it is."""
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {FORMATS}, got {fmt!r}")
    logging.getLogger("alembic").setLevel(logging.WARNING)  # per-connection chatter; app.migrations logs changes
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "otcdesk", False)]:
        root.removeHandler(old)
    if root.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.otcdesk = True
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)
