"""Sign-in jobs: what the dashboard's sign-in does after answering, the same way for every number typed.

Only here is a typed number decrypted and looked up on the roster, so the page's answer costs the same
whether or not the number belongs to staff. Each job is safe to run twice (a second code replaces the
first for the same browser; a notice is sent once a day; the district's alert once per hour's budget).
"""

from __future__ import annotations

import logging

from bot import services
from bot.people.identity import SMS, Address
from bot.people.signin import CODE_TTL_SECONDS
from bot.web.dashboard.locale import N_, translate

log = logging.getLogger(__name__)


def send_code(number_token: str, number_hash: str, ticket: str, lang: str, tries: int, asked_at: float) -> None:
    """Make the browser's code (its 10 minutes count from the request); text it when the number is a staff
    member's (a code nobody gets otherwise)."""
    aviso = services.for_job()
    phone = aviso.keyring.decrypt(number_token)
    member = aviso.roster.by_phone(phone)
    # A number off the roster gets a code record too (that nobody receives): checking a code then does the
    # same work for every number, so its timing does not tell who is on the roster either.
    code = aviso.signin.store_code(number_hash, ticket, member.id if member else "", tries, asked_at)
    if member is None:
        return
    # Translators: plain ASCII keeps the text one SMS segment (GSM-7); the tests check it.
    body = translate(lang, N_("Aviso staff sign-in code: %(code)s. It expires in %(minutes)s minutes. Never share it; "
                              "Aviso never asks for it."), code=code, minutes=CODE_TTL_SECONDS // 60)
    aviso.sender.send(Address(SMS, phone), body)
    log.info("dashboard sign-in code sent to staff %s", member.id)


def warn_staff(number_token: str, number_hash: str, lang: str) -> None:
    """Tell a staff member, once a day, that someone keeps asking for codes for their number."""
    aviso = services.for_job()
    member = aviso.roster.by_phone(aviso.keyring.decrypt(number_token))
    if member is None or not aviso.signin.first_notice(number_hash):
        return
    phone = aviso.roster.phone_of(member.id)
    # Translators: plain ASCII, like the sign-in code's text, keeps the SMS short (GSM-7).
    aviso.sender.send(Address(SMS, phone), translate(lang, N_(
        "Aviso: someone keeps asking for staff sign-in codes for your number. If it is not you, ignore the codes. "
        "Sign in from a browser you used before, or ask an admin to unlock you.")))
    aviso.audit.record("Aviso", "warned of repeated sign-in code requests", f"staff {member.id}")
    log.warning("repeated sign-in code requests for staff %s: told them by SMS", member.id)


def alert_admins(count: int) -> None:
    """Tell every admin by SMS that the district's hourly budget of wrong codes is spent."""
    aviso = services.for_job()
    # Translators: plain ASCII, like the sign-in code's text, keeps the SMS short (GSM-7).
    message = N_("Aviso: %(count)s wrong staff sign-in codes within the hour. Sign-in is slowed until the hour ends. "
                 "See the audit log.")
    body = "\n\n".join(translate(lang, message, count=count) for lang in aviso.settings.dashboard_languages)
    admins = [member for member in aviso.roster.all() if member.role == "admin"]
    for member in admins:
        phone = aviso.roster.phone_of(member.id)
        if phone:
            aviso.sender.send(Address(SMS, phone), body)
    aviso.audit.record("Aviso", f"sign-in slowed: {count} wrong codes within the hour", "dashboard")
    log.warning("%d wrong sign-in codes within the hour: sign-in slowed, %d admin(s) told", count, len(admins))
