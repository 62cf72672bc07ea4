"""Offline answers: what Aviso can say from the content in memory alone, when Redis cannot be reached.

A pure function like the engine it wraps: no Redis, no clock. The sender's state is unknown, so the
message is answered as if it were a first message; only answers that neither remember nor look anything
up are given, and everything else gets the honest "unavailable" text in the message's language.
"""

from __future__ import annotations

from bot.content.matching import fold_case
from bot.content.model import Content
from bot.conversation.engine import DEFAULT_POLICY, respond
from bot.conversation.turn import Inbound, Outcome, Policy
from bot.people.state import ContactState

UNAVAILABLE = "unavailable"
# Answers that come from the content alone: the rights and resources menus (and their entries), the
# main and language menus, HELP, the welcome, "not understood", the interpreters' entry.
FROM_MEMORY = frozenset({"rights", "resources", "menu", "help", "language", "welcome", "unknown", "interpreters",
                         "thanks", "media", "alerts_unknown_school"})


def respond_offline(inbound: Inbound, content: Content, policy: Policy = DEFAULT_POLICY) -> Outcome:
    """The answer to a message while Redis is unreachable: from memory, or the "unavailable" text."""
    answered = respond(ContactState(), inbound, content, policy)
    if fold_case(inbound.text).isdigit():  # it answers a menu Aviso cannot remember having sent
        return Outcome((unavailable_text(content, None),), ContactState(), "unavailable")
    if not answered.replies:  # STOP/START on SMS: Twilio's Advanced Opt-Out answered and acted already
        return answered
    if answered.command in FROM_MEMORY or _menu_entry(answered.command, content):
        if not answered.effects and answered.state.pending is None:
            return answered
    return Outcome((unavailable_text(content, answered.language),), ContactState(), "unavailable")


def unavailable_text(content: Content, language: str | None) -> str:
    """"Can't do that right now" in the message's language, or in every welcome language when unknown."""
    languages = (language,) if language else content.welcome_languages
    return "\n\n".join(content.text(code, UNAVAILABLE) for code in languages)


def _menu_entry(command: str, content: Content) -> bool:
    return any(command in menu["items"] for menu in content.menus.values())
