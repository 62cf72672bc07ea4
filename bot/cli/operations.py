"""The operator's commands: `aviso doctor` (is this deployment set up as Aviso needs?), `aviso backup FILE` and
`aviso restore FILE` (an encrypted snapshot of everything Aviso keeps in Redis)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from bot.cli.context import settings as _settings

MARKS = {"OK": "green", "WARN": "yellow", "FAIL": "red"}


@click.command()
def doctor() -> None:
    """Check this deployment: Redis settings, keys, public URL, Twilio's URLs, worker, scheduler, content."""
    from bot.services import doctor as checks

    report = checks.diagnose(_settings())
    width = max(len(check.name) for check in report.checks)
    for check in report.checks:
        click.echo(click.style(f"{check.status:5}", fg=MARKS[check.status], bold=True) +
                   f" {check.name:{width}}  {check.advice}")
    tally = {status: sum(check.status == status for check in report.checks) for status in MARKS}
    click.echo(f"{tally['FAIL']} FAIL, {tally['WARN']} WARN, {tally['OK']} OK")
    if report.failed:
        sys.exit(1)


def _connection(settings):
    import redis

    from bot.services.doctor import redis_url_of

    if not settings.redis_url and settings.is_development:
        from bot.store import embedded_redis

        embedded_redis.ensure_running(settings.data_dir)
    return redis.Redis.from_url(redis_url_of(settings), socket_connect_timeout=5, socket_timeout=60)


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, writable=True))
def backup(file: str) -> None:
    """Write an encrypted snapshot of everything Aviso keeps in Redis to FILE (AVISO_SECRET_KEY opens it)."""
    from bot.store import backup as snapshot

    settings = _settings()
    target = Path(file)
    partial = target.with_name(target.name + ".partial")
    with _connection(settings) as connection:
        try:
            names = snapshot.key_names(connection)
        except redis_errors() as exc:
            raise click.ClickException(f"cannot read Redis: {exc}") from None
        # Only its owner reads it; written beside FILE and renamed when complete, so FILE is never half a backup.
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(descriptor, "wb") as out, click.progressbar(length=len(names), label="backing up") as bar:
                summary = snapshot.write(connection, out, settings.secret_key, progress=bar.update, names=names)
                os.fsync(out.fileno())
        except redis_errors() as exc:
            partial.unlink(missing_ok=True)
            raise click.ClickException(f"no backup written: Redis failed while reading ({exc})") from None
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    os.replace(partial, target)
    click.echo(f"{summary.written} keys written to {target} ({target.stat().st_size:,} bytes, "
               f"Redis {summary.header.redis_version}, {summary.header.created})")


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--replace", is_flag=True, help="Restore into a Redis that already holds Aviso's data: the backup's "
              "keys replace those of the same name, the others stay.")
def restore(file: str, replace: bool) -> None:
    """Check FILE whole, then bring its keys back into an empty Redis (stop web and workers first)."""
    from bot.store import backup as snapshot

    settings = _settings()
    with open(file, "rb") as source, _connection(settings) as connection:
        try:
            total = snapshot.read_header(source).keys
            source.seek(0)
            with click.progressbar(length=total, label="checking ") as bar:
                snapshot.check_restorable(connection, source, settings.secret_key, replace, checking=bar.update)
            source.seek(0)
            with click.progressbar(length=total, label="restoring") as bar:
                summary = snapshot.load(connection, source, settings.secret_key, replace, progress=bar.update)
        except snapshot.BackupError as exc:
            raise click.ClickException(str(exc)) from None
        except redis_errors() as exc:
            raise click.ClickException(f"cannot write to Redis: {exc}") from None
    click.echo(f"{summary.written} keys restored from a backup of {summary.header.created}"
               + (f"; {summary.expired} had expired since and stay gone" if summary.expired else ""))
    click.echo("Next: start the workers and web processes, then `aviso doctor`.")


def redis_errors() -> tuple[type[Exception], ...]:
    """What a command reports as Redis being unreachable or refusing."""
    import redis

    return (redis.ConnectionError, redis.TimeoutError, redis.ResponseError, OSError)


COMMANDS = (doctor, backup, restore)
