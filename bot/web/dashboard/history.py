"""The dashboard's history (every broadcast of the member's schools, searchable, a page at a time) and a
broadcast's report as CSV. Thin views over the indexes (bot/broadcasts/lists.py) and bot/broadcasts/report.py."""

from __future__ import annotations

from flask import Response, g, request
from flask_babel import gettext

from bot.broadcasts import report as broadcast_report
from bot.broadcasts.errors import BroadcastNotFound
from bot.broadcasts.lists import BadQuery, query_from_args
from bot.broadcasts.store import ID_PATTERN, KINDS, STATUSES
from bot.people.staff import NotAllowed
from bot.web.dashboard.auth import bp, error_page
from bot.web.dashboard.data import my_schools
from bot.web.dashboard.pages import content, page


@bp.get("/broadcasts")
def history():
    """Broadcasts of the member's schools, filtered by school, kind, status and dates, newest first."""
    try:
        query = query_from_args(request.args, g.staff, g.aviso.settings.timezone)
        found = g.aviso.desk().list(g.staff, query)
    except BadQuery:
        return error_page(400, gettext("That search is not valid. Check the dates (for example 2026-12-03)."))
    except NotAllowed:
        return error_page(403, gettext("You may not send to %(schools)s: it is not one of your schools.",
                                       schools=request.args.get("school", "")))
    filters = {k: v for k, v in request.args.items() if k != "cursor" and v}
    return page("history.html", found=found.broadcasts, next_cursor=found.next_cursor, filters=filters,
                schools=my_schools(g.staff, content()), kinds=KINDS, statuses=STATUSES)


@bp.get("/broadcasts/<broadcast_id>/report.csv")
def report_csv(broadcast_id: str):
    """Recipients per language, channel, outcome and reason, as a spreadsheet: counts, never a number."""
    if not ID_PATTERN.match(broadcast_id):
        return error_page(404, gettext("There is no such broadcast (or it has expired)."))
    try:
        found = g.aviso.desk().show(g.staff, broadcast_id)
    except BroadcastNotFound:
        return error_page(404, gettext("There is no such broadcast (or it has expired)."))
    except NotAllowed:
        return error_page(403, gettext("Your role does not allow this."))
    rows = broadcast_report.rows(g.aviso.connection, found.id, g.aviso.broadcasts.outcomes(found.id))
    return Response(broadcast_report.to_csv(rows), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="aviso-{found.code}-report.csv"'})
