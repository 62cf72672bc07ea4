"""Logs: every record (Aviso's, RQ's, gunicorn's) as one JSON line through structlog in production, or as
readable colourless lines in development; each carries the request or broadcast it belongs to.

Aviso's modules keep logging with the standard library: a message shaped like Aviso's `inbound contact=ab12cd34
command=rights lang=es` becomes the event name ("inbound") with its fields, so nothing else has to change.
What is logged never includes a number or a message body (tests/test_privacy.py reads these lines)."""

from __future__ import annotations

import json
import logging
import random
import re
import sys
from datetime import UTC, datetime

import gunicorn.glogging
import structlog
from flask import Flask, g, request

FORMATS = ("json", "console")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_FIELDS = re.compile(r"^(?P<event>[A-Za-z][\w ]*?)((?: [a-z_]+=\S*)+)$")
_FIELD = re.compile(r" ([a-z_]+)=(\S*)")


class _AvisoHandler(logging.StreamHandler):
    """The root handler configure() installs (found again and replaced when an app is built twice); without
    a stream of its own it writes to whatever sys.stderr is at the time (as logging's last resort does)."""

    def __init__(self, stream=None):
        super().__init__(stream)
        self._own_stream = stream

    @property
    def stream(self):
        return self._own_stream or sys.stderr

    @stream.setter
    def stream(self, value):
        self._own_stream = value


def _fields_from_message(logger, method, event_dict):
    """`inbound contact=ab12 lang=es` -> event "inbound", contact "ab12", lang "es" (other messages as they are)."""
    event = event_dict.get("event")
    if isinstance(event, str):
        match = _FIELDS.match(event)
        if match:
            fields = dict(_FIELD.findall(match.group(2)))
            event_dict.update({name: value for name, value in fields.items() if name not in event_dict})
            event_dict["event"] = match.group("event")
    return event_dict


def _shared_processors() -> list:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _fields_from_message,
    ]


class _Formatter(structlog.stdlib.ProcessorFormatter):
    """structlog's formatter, without its copy of every standard-library record (the usual case, e.g. each
    webhook answer's line): the same processors on the same record give the same line, at less cost."""

    def format(self, record: logging.LogRecord) -> str:
        if (record.exc_info or record.exc_text or record.stack_info or hasattr(record, "_logger")
                or self.pass_foreign_args or not self.use_get_message or self._style._fmt != "%(message)s"):
            return super().format(record)
        method = record.levelname.lower()
        event = {"event": record.getMessage(), "_record": record, "_from_structlog": False}
        for processor in (*(self.foreign_pre_chain or ()), *self.processors):
            event = processor(self.logger, method, event)
        if not isinstance(event, str):
            return super().format(record)
        return event


def formatter(fmt: str) -> structlog.stdlib.ProcessorFormatter:
    """The formatter for one line per record: JSON, or key=value for a person to read."""
    renderer = (structlog.processors.JSONRenderer() if fmt == "json"
                else structlog.dev.ConsoleRenderer(colors=False))
    made = _Formatter(
        foreign_pre_chain=[structlog.stdlib.ExtraAdder(), *_shared_processors()],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info, renderer])
    made.json_lines = fmt == "json"
    return made


def info(logger: logging.Logger, event: str, **fields: object) -> None:
    """Log `event name=value ...` at INFO: the line logger.info would give, written straight to Aviso's JSON
    handler when that is the only place the record would go (every webhook answer logs one line).

    In a real request, with the caches cold, the standard library's record, handler and structlog's
    processors took 78 µs of a 450 µs answer; this takes a tenth of that (scripts/bench/profile_webhook.py).
    Anywhere else (a console, a test's capturing handler, a filter, Sentry's breadcrumbs) it is logger.info.
    """
    if not logger.isEnabledFor(logging.INFO):
        return
    handler = _only_json_handler(logger)
    if handler is None:
        logger.info(" ".join([event, *(f"{name}={value}" for name, value in fields.items())]))
        return
    line: dict[str, object] = {"event": event}  # the keys in the order structlog's processors add them
    for name, value in structlog.contextvars.get_contextvars().items():
        line.setdefault(name, value)
    line["level"] = "info"
    line["logger"] = logger.name
    line["timestamp"] = datetime.now(tz=UTC).isoformat().replace("+00:00", "Z")
    for name, value in fields.items():
        line.setdefault(name, str(value))
    text = json.dumps(line) + handler.terminator
    handler.acquire()
    try:
        handler.stream.write(text)
        handler.flush()
    except Exception:  # noqa: BLE001 - as logging does: a log line that cannot be written never fails an answer
        handler.handleError(logger.makeRecord(logger.name, logging.INFO, "", 0, event, (), None))
    finally:
        handler.release()


def _only_json_handler(logger: logging.Logger) -> _AvisoHandler | None:
    """Aviso's JSON handler, when it is the one handler a record of this logger reaches and nothing filters it."""
    handlers: list[logging.Handler] = []
    current: logging.Logger | None = logger
    while current is not None:
        if current.filters:
            return None
        handlers.extend(current.handlers)
        current = current.parent if current.propagate else None
    if len(handlers) != 1:
        return None
    (handler,) = handlers
    if (type(handler) is not _AvisoHandler or handler.filters or handler.level > logging.INFO
            or not getattr(handler.formatter, "json_lines", False)):
        return None
    return handler


def configure(fmt: str, stream=None, level: int = logging.INFO) -> None:
    """Send every log record to stream (stderr) in the given format, once per process (the last call wins)."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _AvisoHandler)]:
        root.removeHandler(handler)
    handler = _AvisoHandler(stream)
    handler.setFormatter(formatter(fmt))
    root.addHandler(handler)
    root.setLevel(level)
    structlog.configure(
        processors=[*_shared_processors(), structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


class GunicornLogger(gunicorn.glogging.Logger):
    """gunicorn's logger without request lines (gunicorn_conf's accesslog = None alone does not stop them once
    logconfig_dict is set): Aviso logs each answer itself, with its request id."""

    def access(self, resp, req, environ, request_time) -> None:
        """No request line."""


def handler_from_settings() -> logging.Handler:
    """The root handler for gunicorn's logging setup (bot/gunicorn_conf.py), so its master's lines are events
    too; a bad setting still gets its one-line message from gunicorn_conf.on_starting."""
    from bot.config import ConfigError, load_settings

    try:
        fmt = load_settings().log_format
    except ConfigError:
        fmt = "json"
    handler = _AvisoHandler()
    handler.setFormatter(formatter(fmt))
    return handler


def bind_broadcast(broadcast_id: str, **fields) -> None:
    """Tag every line of this job with its broadcast (a job starts with nothing bound)."""
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(broadcast_id=broadcast_id, **fields)


def request_id(offered: str) -> str:
    """The id of a request's log lines: the load balancer's X-Request-Id when it is a plain token, else a new one.

    A new id only tells lines apart, it guards nothing: random's generator (reseeded in every forked worker)
    instead of the secrets module, whose system call cost 4 µs of every webhook answer.
    """
    return offered if _REQUEST_ID.fullmatch(offered) else f"{random.getrandbits(64):016x}"


def init_app(app: Flask) -> None:
    """Give each request an id (the load balancer's X-Request-Id when it is a plain token) for its lines."""

    @app.before_request
    def _bind_request():
        g.request_id = request_id(request.headers.get("X-Request-Id", ""))
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=g.request_id)

    @app.after_request
    def _echo_request_id(response):
        if "request_id" in g:
            response.headers["X-Request-Id"] = g.request_id
        return response

    @app.teardown_request
    def _unbind(_error):
        structlog.contextvars.clear_contextvars()
