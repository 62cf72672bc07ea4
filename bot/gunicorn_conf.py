"""Gunicorn settings shared by the Procfile, `aviso dev` and the webhook benchmark."""

import os
import sys

bind = f"0.0.0.0:{os.environ.get('PORT', '5000')}"
# The webhook is short, CPU-bound work plus two Redis round trips: a few processes per core,
# threads so that a slow Redis moment does not stall a whole process.
workers = int(os.environ.get("WEB_CONCURRENCY", str(2 * (os.cpu_count() or 1))))
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", "4"))
keepalive = 5
control_socket_disable = True  # several Aviso servers may share a machine (benchmarks, tests)
accesslog = None  # request lines would carry nothing useful; Aviso logs each answer itself


def on_starting(server):
    """Fail at startup with one clear line when a setting is missing or malformed."""
    from bot.config import ConfigError, load_settings

    try:
        load_settings()
    except ConfigError as exc:
        print(f"aviso: configuration error: {exc}", file=sys.stderr)
        sys.exit(2)
