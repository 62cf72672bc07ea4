"""Gunicorn settings shared by the Procfile, `aviso dev` and the webhook benchmark."""

import os
import sys

bind = f"0.0.0.0:{os.environ.get('PORT', '5000')}"
# The webhook is short CPU work between two Redis round trips, and each worker answers one request at a time
# (bot/gunicorn_worker.py): two processes per core keep the cores busy while a worker waits for Redis (on
# 2 cores, 4x1 answered 18% more than 2x1 with the same p99 at 500/s; docs/bench-webhook.md). Threads only
# queue for the GIL and add p99 stalls of 67-233 ms. With a remote Redis, measure more workers, not threads.
workers = int(os.environ.get("WEB_CONCURRENCY", str(2 * (os.cpu_count() or 1))))
worker_class = "bot.gunicorn_worker.InlineThreadWorker"  # gthread, minus a relay (its docstring)
threads = int(os.environ.get("WEB_THREADS", "1"))
keepalive = 5
control_socket_disable = True  # several Aviso servers may share a machine (benchmarks, tests)
accesslog = None  # request lines would carry nothing useful; Aviso logs each answer itself
# ... but with logconfig_dict set, gunicorn still builds and logs one for every request (a tenth of the
# webhook's CPU under load, docs/bench-webhook.md): this logger class leaves them out.
logger_class = "bot.observability.logs.GunicornLogger"
# gunicorn's own lines (starting, booting and killing workers) go to the root logger, whose one handler
# prints them as Aviso's events (JSON in production); each web process's app then replaces that handler.
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "root": {"level": "INFO", "handlers": ["aviso"]},
    "loggers": {"gunicorn.error": {"level": "INFO", "handlers": [], "propagate": True},
                "gunicorn.access": {"level": "INFO", "handlers": [], "propagate": True}},
    "handlers": {"aviso": {"()": "bot.observability.logs.handler_from_settings"}},
}


def on_starting(server):
    """Fail at startup with one clear line when a setting is missing or malformed."""
    from bot.config import ConfigError, load_settings

    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"aviso: configuration error: {exc}", file=sys.stderr)
        sys.exit(2)
    _check_naming_key(settings)


def _check_naming_key(settings):
    """Refuse to serve with a naming key that is not the one the shared Redis was named with."""
    import redis

    from bot.people.identity import Keyring
    from bot.people.key_rotation import NamingKeyChanged, check_naming_key

    if not settings.redis_url:  # the embedded Redis starts with the first request, not here
        return
    try:
        with redis.Redis.from_url(settings.redis_url, socket_timeout=2) as connection:
            check_naming_key(connection, Keyring(settings.secret_key, settings.encryption_keys))
    except NamingKeyChanged as exc:
        print(f"aviso: configuration error: {exc}", file=sys.stderr)
        sys.exit(2)
    except redis.RedisError:  # Redis down at startup: the webhook answers from memory; the worker checks later
        pass


def child_exit(server, worker):
    """Under PROMETHEUS_MULTIPROC_DIR, a web process that exits leaves its counters but not its live gauges."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
