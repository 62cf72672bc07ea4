"""What every dashboard page is rendered with: the active content, names, local times, notices."""

from __future__ import annotations

from datetime import datetime

from flask import g, get_flashed_messages, render_template

from bot.content.model import Content
from bot.web.dashboard import data


def content() -> Content:
    """The content version live now."""
    return g.aviso.active_content()


def name_of(staff_id: str | None) -> str:
    """A staff member's name (their id when no longer on the roster)."""
    member = g.aviso.roster.get(staff_id) if staff_id else None
    return member.name if member else (staff_id or "")


def local(moment: datetime | None) -> str:
    """A time in the district's time zone with the zone's abbreviation (PST, PDT), as pages show it."""
    return moment.astimezone(g.aviso.settings.timezone).strftime("%Y-%m-%d %H:%M %Z") if moment else ""


def page(template: str, status: int = 200, **context):
    """A dashboard page with the helpers its templates use."""
    context.setdefault("notices", get_flashed_messages())
    return render_template(f"dashboard/{template}", local=local, name_of=name_of, content=content(),
                           language_name=lambda code: data.language_name(content(), code), **context), status
