"""Development runner: embedded Redis, gunicorn and an RQ worker, started and stopped together."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import click

from bot.config import Settings
from bot.publishing.check import check
from bot.publishing.store import ContentStore
from bot.services import shipped_content
from bot.store import embedded_redis


def _publish_if_new(settings: Settings, redis_url: str) -> str:
    """In development the content folder is the truth: publish it when its version is not live."""
    import redis

    store = ContentStore(redis.Redis.from_url(redis_url))
    report = check(settings.content_dir)
    active = store.active_version()
    content = shipped_content(settings)
    if report.errors:
        for error in report.errors[:10]:
            click.echo(f"content error  {error}", err=True)
        if not active:
            raise click.ClickException("the content has errors and nothing is published: aviso content check")
        click.echo(f"content has errors; still serving version {active}", err=True)
        return active
    if active != content.version:
        store.publish(content, by="aviso dev")
    return content.version


def run(settings: Settings, port: int) -> None:
    """Start everything and wait; Ctrl-C stops it all."""
    embedded = settings.redis_url is None
    redis_url = settings.redis_url or embedded_redis.ensure_running(settings.data_dir)
    version = _publish_if_new(settings, redis_url)
    env = dict(os.environ, REDIS_URL=redis_url, PUBLIC_BASE_URL=settings.public_base_url, AVISO_ENV=settings.env)
    if settings.public_base_url == "http://127.0.0.1:5000" and port != 5000:
        env["PUBLIC_BASE_URL"] = f"http://127.0.0.1:{port}"
    web = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--config", "python:bot.gunicorn_conf",
         "--bind", f"127.0.0.1:{port}", "bot:create_app()"],
        env=env,
    )
    worker = subprocess.Popen([sys.executable, "-m", "bot.cli", "worker"], env=env)
    sender = "Twilio" if settings.twilio_sending_configured else "the outbox (no Twilio account configured)"
    click.echo(
        "\nAviso is running.\n"
        f"  Phone simulator: http://127.0.0.1:{port}/dev/phone\n"
        f"  Terminal chat:   aviso chat --url http://127.0.0.1:{port}\n"
        f"  Health:          http://127.0.0.1:{port}/healthz\n"
        f"  Redis:           {'embedded, data in ' + str(settings.data_dir) if embedded else 'REDIS_URL'}\n"
        f"  Content:         version {version}\n"
        f"  Outbound:        {sender}\n"
        "Press Ctrl-C to stop.\n"
    )
    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        while not stopping and web.poll() is None and worker.poll() is None:
            time.sleep(0.3)
    finally:
        for process in (web, worker):
            if process.poll() is None:
                process.terminate()
        for process in (web, worker):
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        if embedded:
            embedded_redis.stop(settings.data_dir)
    if web.returncode not in (0, None, -signal.SIGTERM) and not stopping:
        raise click.ClickException("the web server stopped; see the lines above")
