"""`aviso twilio templates`: the WhatsApp templates of the Twilio account (the Content API) that Meta approved,
and which broadcast kind and language each one serves here (AVISO_WHATSAPP_TEMPLATES)."""

from __future__ import annotations

import click

from bot.cli.context import settings as _settings
from bot.cli.staff import twilio


def whatsapp_status(item) -> str:
    """The WhatsApp approval status of one ContentAndApprovals entry ('' when never submitted)."""
    requests = item.approval_requests or {}
    found = requests.get("whatsapp") if "whatsapp" in requests else requests
    return str((found or {}).get("status") or "").lower()


@twilio.command("templates")
@click.option("--all", "show_all", is_flag=True, help="Also those not (yet) approved, with their status.")
def twilio_templates(show_all: bool) -> None:
    """The approved WhatsApp templates (Content SID, name, language) and what they are used for here."""
    from twilio.base.exceptions import TwilioRestException

    from bot.twilio.client import make_client

    settings = _settings()
    if not settings.twilio_sending_configured:
        raise click.ClickException("set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN first (.env)")
    client = make_client(settings.twilio_account_sid, settings.twilio_auth_token,
                         api_base_url=settings.twilio_api_base_url)
    try:
        found = client.content.v1.content_and_approvals.list()
    except TwilioRestException as exc:
        raise click.ClickException(f"Twilio refused: {exc.msg} (code {exc.code})") from None
    used: dict[str, list[str]] = {}
    for kind, language, sid in settings.whatsapp_templates:
        used.setdefault(sid, []).append(f"{kind}.{language}")
    shown = 0
    for item in found:
        status = whatsapp_status(item)
        if status != "approved" and not show_all:
            continue
        shown += 1
        serves = ", ".join(used.pop(item.sid, [])) or "(not in AVISO_WHATSAPP_TEMPLATES)"
        click.echo(f"{item.sid}  {item.language or '?':7} {status or 'not submitted':10} {item.friendly_name}  "
                   f"-> {serves}")
    if not shown:
        click.echo("no approved WhatsApp templates" if not show_all else "no templates")
    for sid, entries in sorted(used.items()):
        click.echo(f"warning: {', '.join(entries)} in AVISO_WHATSAPP_TEMPLATES is {sid}, "
                   "which is not an approved template of this account", err=True)
