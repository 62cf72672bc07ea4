"""`aviso workshops` commands: registrations per workshop and language, attendance sheets (counts, never numbers)."""

from __future__ import annotations

import csv
import sys
from contextlib import contextmanager
from datetime import UTC, datetime

import click

from bot.cli.context import services as _services
from bot.cli.context import settings as _settings
from bot.conversation.workshops import format_when, title_of
from bot.workshops import registrations


@contextmanager
def _aviso():
    """The services for one command; the Redis connections are closed after it."""
    app, aviso = _services(_settings())
    try:
        yield aviso
    finally:
        aviso.connection.close()


def _english_name(content, code: str) -> str:
    if code in content.languages:
        return content.language(code)["language"].get("english_name", code)
    return "unknown" if code == "-" else code


@click.group()
def workshops() -> None:
    """Workshop sign-ups: counts per workshop and language, attendance sheets."""


@workshops.command("list")
@click.option("--all", "show_all", is_flag=True, help="Also workshops that are over.")
def workshops_list(show_all: bool) -> None:
    """Each workshop's seats, waitlist and registrations per language (counts only)."""
    with _aviso() as aviso:
        _list(aviso, show_all)


def _list(aviso, show_all: bool) -> None:
    content = aviso.active_content()
    now = datetime.now(UTC)
    registered = set(registrations.registered_workshops(aviso.connection))
    shown = [w for w in content.workshops if show_all or w.ends > now or w.id in registered]
    click.echo(f"{'workshop':36} {'starts':17} {'seats':>9} {'waitlist':>8}  by language (seat/waitlist)")
    for workshop in shown:
        counts = registrations.counts(aviso.connection, workshop.id)
        capacity = str(workshop.capacity) if workshop.capacity > 0 else "-"
        languages = sorted(set(counts.seats_by_language) | set(counts.waitlist_by_language))
        split = ", ".join(
            f"{code} {counts.seats_by_language.get(code, 0)}/{counts.waitlist_by_language.get(code, 0)}"
            for code in languages
        )
        click.echo(f"{workshop.id:36} {workshop.starts:%Y-%m-%d %H:%M} {counts.seats:>4}/{capacity:<4} "
                   f"{counts.waitlist:>8}  {split or '-'}")
    for workshop_id in sorted(registered - set(content.workshops_by_id)):
        counts = registrations.counts(aviso.connection, workshop_id)
        click.echo(f"{workshop_id:36} {'(not in content)':17} {counts.seats:>4}/-    {counts.waitlist:>8}")


@workshops.command("attendance")
@click.argument("workshop_id")
@click.option("--csv", "as_csv", is_flag=True, help="CSV for a spreadsheet instead of a printable page.")
def workshops_attendance(workshop_id: str, as_csv: bool) -> None:
    """A sign-in sheet: row number, language, seat or waitlist, a blank signature column. No numbers, no names."""
    with _aviso() as aviso:
        _attendance(aviso, workshop_id, as_csv)


def _attendance(aviso, workshop_id: str, as_csv: bool) -> None:
    content = aviso.active_content()
    workshop = content.workshop(workshop_id)
    if workshop is None:
        raise click.ClickException(f"no workshop {workshop_id} in content {content.version} (aviso workshops list)")
    rows = registrations.attendance(aviso.connection, workshop_id)
    lang = content.default_language
    title = title_of(content, lang, workshop)
    when = format_when(content, lang, workshop.starts)
    place = workshop.place or content.text(lang, "workshops.online")
    if as_csv:
        out = csv.writer(sys.stdout)
        out.writerow(["workshop", title, when, place])
        out.writerow(["no", "language", "seat or waitlist", "signature"])
        for row in rows:
            out.writerow([row.number, _english_name(content, row.language), "seat" if row.seat else "waitlist", ""])
        return
    seats = sum(row.seat for row in rows)
    click.echo(f"{title} ({workshop.id})")
    click.echo(f"{when} - {workshop.ends:%H:%M}, {place}")
    capacity = f" of {workshop.capacity}" if workshop.capacity > 0 else ""
    click.echo(f"Seats taken: {seats}{capacity}. Waitlist: {len(rows) - seats}.")
    click.echo()
    click.echo(f"{'No.':>4}  {'Language':14} {'Seat':9} Signature")
    for row in rows:
        kind = "seat" if row.seat else "waitlist"
        click.echo(f"{row.number:>4}  {_english_name(content, row.language):14} {kind:9} {'_' * 30}")
    if not rows:
        click.echo("(nobody has signed up)")


@workshops.command("message")
@click.argument("workshop_id")
@click.option("--as", "staff_id", required=True, help="The staff member sending it.")
@click.option("--template", help="A template name (aviso broadcast templates), e.g. workshop.")
@click.option("--var", "variables", multiple=True,
              help="A template variable, name=value; free text once per language, name.lang=value (repeat).")
@click.option("--text", "texts", multiple=True, help="Text for one language, lang=text (repeat).")
@click.option("--fallback-language", "fallback_language",
              help="Language whose text goes to registrants whose language has none.")
@click.option("--fallback", "fallback_old", hidden=True, help="Deprecated: --fallback-language.")
def workshops_message(workshop_id, staff_id, template, variables, texts, fallback_language, fallback_old=None) -> None:
    """Message one workshop's registrants (seats and waitlist) through the broadcast pipeline."""
    from bot.cli.staff import broadcast_create

    ctx = click.get_current_context()
    ctx.invoke(broadcast_create, staff_id=staff_id, schools="", kind="update", template=template,
               variables=variables, texts=texts, languages=None, fallback_language=fallback_language,
               fallback_old=fallback_old, verified_by="",
               corrects=None, urgent=True, send_at=None, preview=False, workshop=workshop_id)
