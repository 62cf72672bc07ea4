"""`aviso broadcast` and `aviso twilio` commands (operators on the server's own shell; `aviso staff` is in
bot/cli/roster.py)."""

from __future__ import annotations

import json
import sys
import time

import click

from bot.broadcasts.compose import BroadcastRequest, ComposeError, templates
from bot.cli.context import aviso as _aviso
from bot.cli.context import member as _member


@click.group()
def broadcast() -> None:
    """Create, preview, approve, cancel and follow broadcasts."""


@broadcast.command("reindex")
def broadcast_reindex() -> None:
    """Index broadcasts and audit entries stored before the per-school lists existed (safe to run again)."""
    from bot.broadcasts.index import backfill

    aviso = _aviso()
    click.echo(f"indexed {backfill(aviso.connection)} broadcasts and {aviso.audit.reindex()} audit entries")


@broadcast.command("templates")
def broadcast_templates() -> None:
    """Template names and the variables each needs (free text: --var NAME.LANG=... per language)."""
    from bot.broadcasts.variables import kind_of

    content = _aviso().active_content()
    for name, variables in templates(content).items():
        click.echo(f"{name:20} {', '.join(f'{v} ({kind_of(content, v)})' for v in variables) or '(no variables)'}")


@broadcast.command("create")
@click.option("--as", "staff_id", required=True, help="The staff member sending it.")
@click.option("--schools", required=True, help="School codes, comma-separated.")
@click.option("--kind", type=click.Choice(["update", "verified", "all_clear", "correction"]), required=True)
@click.option("--template", help="A template name (aviso broadcast templates).")
@click.option("--var", "variables", multiple=True,
              help="A template variable, name=value; free text once per language, name.lang=value (repeat).")
@click.option("--text", "texts", multiple=True, help="Custom text for one language, lang=text (repeat).")
@click.option("--languages", help="Only subscribers of these languages, comma-separated.")
@click.option("--fallback-language", "fallback_language",
              help="Language whose text goes to recipients whose language has none.")
@click.option("--fallback", "fallback_old", hidden=True, help="Deprecated: --fallback-language.")
@click.option("--verified-by", default="", help="Who verified it (verified alerts).")
@click.option("--corrects", help="The broadcast id this corrects (corrections).")
@click.option("--urgent", is_flag=True, help="Send even during quiet hours.")
@click.option("--at", "send_at", help="Send later: ISO date and time with offset, like 2026-12-03T07:00:00-08:00.")
@click.option("--preview", is_flag=True, help="Show texts, recipients and segments; store nothing.")
@click.option("--workshop", help="Send to this workshop's registrants instead of schools' subscribers.")
@click.option("--whatsapp-template", "whatsapp_templates", multiple=True,
              help="lang=ContentSid: the template WhatsApp families outside the 24-hour window get in that "
                   "language, instead of AVISO_WHATSAPP_TEMPLATES' (repeat; aviso twilio templates lists them).")
@click.option("--no-whatsapp-template", is_flag=True, help="Send no WhatsApp template, even a configured one.")
def broadcast_create(staff_id, schools, kind, template, variables, texts, languages, fallback_language,
                     verified_by, corrects, urgent, send_at, preview, workshop=None, fallback_old=None,
                     whatsapp_templates=(), no_whatsapp_template=False) -> None:
    """Create a broadcast (it goes out, waits for its time, or waits for approval)."""
    from bot.broadcasts.errors import BroadcastError
    from bot.people.staff import NotAllowed
    from bot.web.api import broadcast_json, parse_request, plan_json

    def pairs(items) -> dict[str, str]:
        try:
            return dict(item.split("=", 1) for item in items)
        except ValueError:
            raise click.ClickException("use name=value") from None

    if fallback_old:
        click.echo("warning: --fallback is deprecated; use --fallback-language", err=True)
        fallback_language = fallback_language or fallback_old
    given: dict = {}
    for name, value in pairs(variables).items():  # route.es=... : free text in one language
        var, _, language = name.partition(".")
        if language and not isinstance(given.setdefault(var, {}), dict) or not language and var in given:
            raise click.ClickException(f"give {var} either once (name=value) or per language (name.lang=value)")
        if language:
            given[var][language] = value
        else:
            given[var] = value
    aviso = _aviso()
    member = _member(aviso, staff_id)
    data = {"schools": [c for c in schools.split(",") if c], "kind": kind, "workshop": workshop,
            "template": template, "variables": given,
            "texts": pairs(texts), "languages": languages.split(",") if languages else [],
            "fallback_language": fallback_language, "verified_by": verified_by, "corrects": corrects,
            "urgent": urgent, "send_at": send_at,
            "whatsapp_templates": False if no_whatsapp_template else pairs(whatsapp_templates)}
    try:
        request: BroadcastRequest = parse_request(data)
        if preview:
            draft, plan = aviso.desk().preview(member, request)
            click.echo(json.dumps({"texts": draft.texts, "plan": plan_json(plan)}, indent=2, ensure_ascii=False))
            return
        created = aviso.desk().create(member, request)
    except (ComposeError, BroadcastError, NotAllowed) as exc:
        message = str(exc)
        raise click.ClickException("--at" + message.removeprefix("send_at") if message.startswith("send_at")
                                   else message) from None
    click.echo(json.dumps(broadcast_json(created), indent=2, ensure_ascii=False))


def _act(action: str, staff_id: str, broadcast_id: str, *args) -> None:
    from bot.broadcasts.errors import BroadcastError
    from bot.people.staff import NotAllowed

    aviso = _aviso()
    member = _member(aviso, staff_id)
    try:
        result = getattr(aviso.desk(), action)(member, broadcast_id, *args)
    except (ComposeError, BroadcastError, NotAllowed) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{result.id}: {result.status}")


@broadcast.command("approve")
@click.argument("broadcast_id")
@click.option("--as", "staff_id", required=True, help="The approving staff member (not the sender).")
def broadcast_approve(broadcast_id: str, staff_id: str) -> None:
    """Approve another staff member's broadcast."""
    _act("approve", staff_id, broadcast_id)


@broadcast.command("reject")
@click.argument("broadcast_id")
@click.option("--as", "staff_id", required=True)
@click.option("--reason", required=True, help="Why; the sender sees it.")
def broadcast_reject(broadcast_id: str, staff_id: str, reason: str) -> None:
    """Send a broadcast back to its sender."""
    _act("reject", staff_id, broadcast_id, reason)


@broadcast.command("cancel")
@click.argument("broadcast_id")
@click.option("--as", "staff_id", required=True)
def broadcast_cancel(broadcast_id: str, staff_id: str) -> None:
    """Cancel a broadcast, also while it is sending."""
    _act("cancel", staff_id, broadcast_id)


def progress_line(outcomes, width: int = 30) -> str:
    """A text progress bar with the counts so far."""
    settled = outcomes.sent + sum(outcomes.failed.values()) + sum(outcomes.skipped.values())
    total = max(outcomes.audience, 1)
    filled = int(width * settled / total)
    return (f"[{'#' * filled}{'.' * (width - filled)}] {settled}/{outcomes.audience}  sent {outcomes.sent}  "
            f"delivered {outcomes.delivered}  failed {sum(outcomes.failed.values())}  "
            f"skipped {sum(outcomes.skipped.values())}")


@broadcast.command("status")
@click.argument("broadcast_id")
@click.option("--watch/--no-watch", default=True, help="Follow it live until it is done.")
def broadcast_status(broadcast_id: str, watch: bool) -> None:
    """Live progress, then the final counts per outcome."""
    from bot.broadcasts.errors import BroadcastError
    from bot.broadcasts.store import CANCELLED, DONE, FAILED, SCHEDULED

    aviso = _aviso()
    try:
        current = aviso.broadcasts.get(broadcast_id)
    except BroadcastError:
        raise click.ClickException(f"no broadcast with id {broadcast_id}") from None
    live = watch and sys.stdout.isatty()
    while True:
        current = aviso.broadcasts.get(broadcast_id)
        outcomes = aviso.broadcasts.outcomes(broadcast_id)
        line = f"{current.status:16} {progress_line(outcomes)}"
        if not live or current.status in (DONE, CANCELLED, FAILED):
            break
        click.echo("\r" + line, nl=False)  # redraw the bar in place
        time.sleep(0.5)
    click.echo(("\r" if live else "") + line)
    if current.status == SCHEDULED and current.starts_at:
        click.echo(f"  goes out at {current.starts_at.astimezone(aviso.settings.timezone):%Y-%m-%d %H:%M %Z}")
    for code, count in sorted(outcomes.failed.items()):
        click.echo(f"  failed {code}: {count}")
    for reason, count in sorted(outcomes.skipped.items()):
        click.echo(f"  skipped {reason}: {count}")
    click.echo(f"  undelivered {outcomes.undelivered}, delivery failed {outcomes.delivery_failed}, "
               f"expired unsent {outcomes.expired}, pending {outcomes.pending}")


@click.group()
def twilio() -> None:
    """Connect Aviso to Twilio."""


@twilio.command("setup")
@click.option("--number", help="The Twilio phone number families text (+E.164), when not using a service.")
@click.option("--fallback-url", help="Where Twilio goes when the webhook fails (default: PUBLIC_BASE_URL's "
              "/twilio/fallback; a second deployment's is better, as it outlives this one).")
def twilio_setup(number: str | None, fallback_url: str | None) -> None:
    """Point the Messaging Service (or the number) at PUBLIC_BASE_URL's webhook, fallback and status callback."""
    from twilio.base.exceptions import TwilioRestException

    from bot.twilio import webhooks
    from bot.twilio.client import make_client

    aviso = _aviso()
    settings = aviso.settings
    if not settings.twilio_sending_configured:
        raise click.ClickException("set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN first (.env)")
    client = make_client(settings.twilio_account_sid, settings.twilio_auth_token,
                         api_base_url=settings.twilio_api_base_url)
    urls = webhooks.WebhookUrls.for_origin(settings.public_base_url, fallback_url)
    if not urls.fallback.startswith("https://") and not settings.is_development:
        raise click.ClickException(f"--fallback-url must be an https URL, not {urls.fallback!r}")
    voice, status = urls.voice, urls.status
    try:
        if settings.twilio_messaging_service_sid and not number:
            webhooks.point_service(client, settings.twilio_messaging_service_sid, urls)
            target = audit_target = f"Messaging Service {settings.twilio_messaging_service_sid}"
            # Calls go to the number, not the service.
            calls = webhooks.find_number(client, settings.twilio_sms_from) if settings.twilio_sms_from else None
            if calls is not None:
                webhooks.point_calls(calls, urls)
            else:
                voice = "not set (give --number or TWILIO_SMS_FROM for the number families call)"
        else:
            wanted = number or settings.twilio_sms_from
            if not wanted:
                raise click.ClickException("give --number or set TWILIO_SMS_FROM")
            found = webhooks.find_number(client, wanted)
            if found is None:
                raise click.ClickException(f"{wanted} is not a number of this Twilio account")
            webhooks.point_number(found, urls)
            target = f"number {wanted}"
            audit_target = "the Twilio number"  # even Aviso's own number stays out of Redis
            status += " (sent with each message: a number has no messaging status callback)"
    except TwilioRestException as exc:
        raise click.ClickException(f"Twilio refused: {exc.msg} (code {exc.code})") from None
    aviso.audit.record("operator", "twilio setup", audit_target, urls.inbound)
    click.echo(f"{target}: inbound -> {urls.inbound}, fallback -> {urls.fallback}, status callbacks -> {status}, "
               f"calls -> {voice}")
