"""SOURCES / FUENTES: where the last rights or resources text a family read comes from (pure, like the engine)."""

from __future__ import annotations

from bot.content.sources import as_date, sources_of
from bot.conversation.turn import Outcome, Turn, outcome
from bot.people.identity import WHATSAPP

SMS_SOURCES_SHOWN = 4  # an SMS lists the first four (sources.toml lists the most telling first); WhatsApp, all


def answer(turn: Turn) -> Outcome:
    """The public addresses behind the last sourced text, with the day its facts were checked."""
    key = turn.state.last
    found = sources_of(turn.content, key) if key else []
    if not found:
        return outcome(turn, (turn.text("sources.none"),), "sources_none")
    dates = [d for d in (as_date(source.get("checked_on")) for source in found) if d is not None]
    topic = turn.content.label(turn.lang, key) if key != "rights.intro" else turn.content.label(turn.lang, "rights")
    shown = found if turn.inbound.channel == WHATSAPP else found[:SMS_SOURCES_SHOWN]
    lines = [turn.text("sources.intro", topic=topic, checked=min(dates).isoformat() if dates else "?")]
    lines += [str(source["url"]).removeprefix("https://").removeprefix("www.") for source in shown]
    return outcome(turn, ("\n".join(lines),), "sources")
