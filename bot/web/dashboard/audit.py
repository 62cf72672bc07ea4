"""The dashboard's audit log: who did what and when, a page at a time, its details in the staff member's
language (the stored details are English or codes; free text such as a send-back reason is shown as
written, with anything like a phone number hidden)."""

from __future__ import annotations

from datetime import datetime

from flask import g, request
from flask_babel import gettext

from bot.broadcasts.errors import BroadcastNotFound
from bot.broadcasts.store import ID_PATTERN
from bot.people.audit import Entry
from bot.web.dashboard import data
from bot.web.dashboard.auth import bp
from bot.web.dashboard.labels import label
from bot.web.dashboard.pages import local, page

AUDIT_SHOWN = 200
AUDIT_PAGES = 50  # pages of the audit log a viewer can go back (a school's own list keeps 10,000 entries)
STAFF_ACTIONS = ("staff added", "staff edited", "staff removed", "first admin", "token issued", "token revoked",
                 "sign-in unlocked")


def detail(entry: Entry) -> str:
    """An entry's detail in the staff member's words: codes and times translated, free text masked."""
    text = entry.detail or ""
    if entry.action == "created" and " for " in text:
        kind, schools = text.split(" for ", 1)
        # Translators: the audit log's detail of a new broadcast: its kind, then its school codes
        return gettext("%(kind)s for %(schools)s", kind=label("kind", kind), schools=schools)
    if entry.action == "scheduled":
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return data.mask_numbers(text)
        return gettext("goes out at %(time)s", time=local(moment))
    if entry.action in ("staff added", "staff edited") and ", " in text:
        name, role = text.rsplit(", ", 1)
        return gettext("%(name)s, %(role)s", name=name, role=label("role", role))
    if entry.action == "token issued" and text.isdigit():
        return gettext("valid for %(days)s days", days=text)
    return data.mask_numbers(text)


@bp.get("/audit")
def audit():
    """Who did what and when (an admin sees everything; others their schools' broadcasts and content)."""
    shown, cache, owners = [], {}, g.aviso.desk().owners
    number = request.args.get("page", "0")
    number = min(int(number), AUDIT_PAGES) if number.isdigit() else 0
    offset = number * AUDIT_SHOWN
    entries = (g.aviso.audit.recent(AUDIT_SHOWN, offset) if g.staff.role == "admin"
               else g.aviso.audit.for_schools(g.staff.schools, AUDIT_SHOWN, offset))
    for entry in entries:
        target = None
        if ID_PATTERN.match(entry.subject):
            if entry.subject not in cache:
                try:
                    cache[entry.subject] = g.aviso.broadcasts.get(entry.subject)
                except BroadcastNotFound:
                    cache[entry.subject] = None
            target = cache[entry.subject]
            allowed = g.staff.role == "admin" or (target is not None and g.staff.covers(owners(target)))
        else:
            allowed = g.staff.role == "admin" or entry.subject.startswith("content ")
        if allowed:
            shown.append((entry, target, detail(entry)))
    older = number + 1 if len(entries) == AUDIT_SHOWN and number < AUDIT_PAGES else None
    people = {}  # an admin's entries about a staff member name them and lead to their roster page
    if g.staff.role == "admin":
        subjects = {e.subject for e, _, _ in shown if e.action in STAFF_ACTIONS}
        people = {s: m for s in subjects if (m := g.aviso.roster.get(s)) is not None}
    return page("audit.html", entries=shown, older=older, people=people)
