"""Payloads: Twilio's inbound-message form, read liberally (what Twilio really sends) and strictly (numbers)."""

from __future__ import annotations

import re
from collections.abc import Mapping

from bot.people.identity import Address, InvalidAddress, parse_address
from bot.services.conversations import InboundMessage

SID_PATTERN = re.compile(r"[A-Z]{2}[0-9a-fA-F]{32}")
MAX_BODY_CHARACTERS = 1600 * 10  # Twilio's own limit is 1,600; anything bigger is not from Twilio
ASCII_COUNT = re.compile(r"[0-9]{1,4}")  # "²" or "١" pass str.isdigit() but not int(); 4 digits bound int()


class BadRequest(ValueError):
    """A webhook request missing a field or carrying a malformed one."""


def required(form: Mapping[str, str], name: str) -> str:
    """A field that must be present (it may be empty)."""
    value = form.get(name)
    if value is None:
        raise BadRequest(f"missing {name}")
    return value


def count(form: Mapping[str, str], name: str) -> int:
    """A small count Twilio sends (NumMedia): absent or empty is 0; anything but ASCII digits is refused."""
    value = form.get(name) or "0"
    if not ASCII_COUNT.fullmatch(value):
        raise BadRequest(f"{name} must be a number of ASCII digits")
    return int(value)


def parse_inbound(form: Mapping[str, str]) -> InboundMessage:
    """The inbound message in a signed Twilio form, or BadRequest saying what is wrong.

    Only MessageSid and From are required: Twilio adds fields without notice (ProfileName, WaId,
    ButtonText, Referral…, Latitude…), and leaves Body out of some media messages. Unknown fields are
    ignored and never kept.
    """
    sid = required(form, "MessageSid")
    if not SID_PATTERN.fullmatch(sid):
        raise BadRequest("MessageSid is malformed")
    try:
        address = parse_address(required(form, "From"))
    except InvalidAddress as exc:
        raise BadRequest(f"From: {exc}") from None
    num_media = count(form, "NumMedia")
    # A tapped WhatsApp quick-reply button: its payload is what the template meant the tap to say.
    body = form.get("ButtonPayload") or form.get("Body") or ""
    return InboundMessage(
        sid=sid, address=address, body=body[:MAX_BODY_CHARACTERS], num_media=num_media,
        opt_out_type=form.get("OptOutType") or None, user_id=user_id(form, address),
    )


def user_id(form: Mapping[str, str], sender: Address) -> Address | None:
    """The WhatsApp user id (ExternalUserId) that came with a number in From, when it is a well-formed one.

    A malformed or repeated one is ignored rather than refused: the message itself is fine, and From
    still names the family.
    """
    raw = form.get("ExternalUserId")
    if not raw or sender.is_user_id:
        return None
    try:
        address = parse_address(raw)
    except InvalidAddress:
        return None
    return address if address.is_user_id and address.channel == sender.channel else None
