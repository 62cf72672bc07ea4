"""The dashboard's roster (admins): everyone on it, add, edit (same id), remove, import a CSV (all or nothing),
and each member's API tokens: issued with an expiry and shown once, listed with their last use, revoked one
at a time. Thin views over bot/people/staff.py, tokens.py and roster_csv.py; never a phone number shown."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import flash, g, make_response, redirect, request, url_for
from flask_babel import gettext, ngettext

from bot.people import roster_csv
from bot.people.identity import InvalidAddress
from bot.people.staff import ROLES, StaffError
from bot.people.tokens import DEFAULT_DAYS, MAX_DAYS, TokenError
from bot.web.dashboard.auth import actor, bp, error_page, roles
from bot.web.dashboard.pages import content, page

MAX_UPLOAD = 1_000_000  # bytes of CSV: thousands of staff
PAGE = 50  # staff listed a page at a time


def _codes(raw: str) -> list[str]:
    return list(dict.fromkeys(c.strip().upper() for c in raw.replace(";", ",").split(",") if c.strip()))


def _refusal(exc: Exception) -> str:
    """A roster refusal in the admin's words."""
    if isinstance(exc, InvalidAddress):
        return gettext("That is not a mobile number. Write it with the country code, like +13105550101.")
    code = getattr(exc, "code", "")
    if code == "schools":
        return gettext("There is no school with the code %(codes)s.", codes=exc.detail)
    return {"role": gettext("Choose a role: sender, approver or admin."),
            "name": gettext("Write their name."),
            "no_school": gettext("A sender or approver needs at least one school."),
            "duplicate": gettext("That number is already on the roster."),
            "missing": gettext("That person is no longer on the roster.")}.get(code, str(exc))


def _search(members: list, args) -> tuple[list, dict[str, str]]:
    """The members a search asks for: a name (any part), a school code, a role."""
    wanted = {k: args.get(k, "").strip() for k in ("q", "school", "role") if args.get(k, "").strip()}
    name, school, role = wanted.get("q", "").casefold(), wanted.get("school", "").upper(), wanted.get("role")
    found = [m for m in members if (not name or name in m.name.casefold())
             and (not school or school in m.schools or (m.role == "admin" and not m.schools))
             and (not role or m.role == role)]
    return found, wanted


def _problem(code: str, detail: str) -> str:
    """What is wrong with a line of a CSV import, in the admin's words."""
    words = {
        "header": lambda: gettext("The first line must name the columns name, phone, role, schools (missing: "
                                  "%(columns)s).", columns=detail),
        "too_many": lambda: gettext("At most %(num)s staff per file.", num=roster_csv.MAX_ROWS),
        "name": lambda: gettext("Write their name."),
        "role": lambda: gettext("Choose a role: sender, approver or admin."),
        "schools": lambda: gettext("There is no school with the code %(codes)s.", codes=detail),
        "no_school": lambda: gettext("A sender or approver needs at least one school."),
        "phone": lambda: gettext("That is not a mobile number. Write it with the country code, like +13105550101."),
        "same_as": lambda: gettext("The same number as line %(line)s.", line=detail),
        "duplicate": lambda: gettext("That number is already on the roster."),
        "empty": lambda: gettext("There is nobody in the file."),
    }
    return words[code]() if code in words else detail


def _roster_page(form=None, error=None, problems=None, status=200):
    known = content().schools.by_code
    found, filters = _search(g.aviso.roster.all(), request.args)
    number = request.args.get("page", "0")
    number = int(number) if number.isdigit() else 0
    shown = found[number * PAGE:(number + 1) * PAGE]
    return page("staff.html", status, members=shown, total=len(found), filters=filters,
                newer=number - 1 if number > 0 else None,
                older=number + 1 if (number + 1) * PAGE < len(found) else None,
                form=form or {}, error=error, problems=problems or [], roles=ROLES, schools=sorted(known))


def _audit(action: str, subject: str, detail: str = "") -> None:
    g.aviso.audit.record(actor(g.staff), action, subject, detail)


@bp.get("/staff")
@roles("admin")
def staff_list():
    """The roster, searched by name, school and role, a page at a time; a form to add one; a CSV import."""
    return _roster_page()


@bp.post("/staff")
@roles("admin")
def staff_add():
    """Add one staff member."""
    form = request.form
    try:
        member = g.aviso.roster.add(form.get("phone", ""), form.get("name", ""), form.get("role", ""),
                                    _codes(form.get("schools", "")), set(content().schools.by_code))
    except (StaffError, InvalidAddress) as exc:
        return _roster_page(form, error=_refusal(exc), status=400)
    _audit("staff added", member.id, f"{member.name}, {member.role}")
    flash(gettext("%(name)s is on the roster.", name=member.name))
    return redirect(url_for("dashboard.staff_list"))


@bp.post("/staff/import")
@roles("admin")
def staff_import():
    """Add everyone in a CSV file, or nobody when a line is wrong (each such line named)."""
    upload = request.files.get("file")
    raw = upload.read(MAX_UPLOAD + 1) if upload else b""
    if not raw or len(raw) > MAX_UPLOAD:
        return _roster_page(error=gettext("Choose a CSV file (at most 1 MB)."), status=400)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return _roster_page(error=gettext("Save the file as CSV UTF-8 and try again."), status=400)
    known = set(content().schools.by_code)
    try:
        added = roster_csv.import_rows(g.aviso.roster, roster_csv.parse(text, g.aviso.roster, known), known)
    except roster_csv.ImportRefused as exc:
        problems = [(line, " ".join(_problem(code, detail) for code, detail in found)) for line, found in exc.codes]
        return _roster_page(error=gettext("Nobody was added. Fix these lines and import the file again."),
                            problems=problems, status=400)
    for member in added:
        _audit("staff added", member.id, f"{member.name}, {member.role}")
    flash(ngettext("%(num)d person added to the roster.", "%(num)d people added to the roster.", len(added)))
    return redirect(url_for("dashboard.staff_list"))


def _member_page(staff_id: str, form=None, error=None, new_token=None, status=200):
    member = g.aviso.roster.get(staff_id)
    if member is None:
        return error_page(404, gettext("That person is no longer on the roster."))
    tokens = g.aviso.roster.tokens.of(member.id)
    response = make_response(*page("staff_member.html", status, member=member, form=form, error=error,
                                   tokens=tokens, new_token=new_token, now=datetime.now(UTC), roles=ROLES,
                                   default_days=DEFAULT_DAYS, max_days=MAX_DAYS))
    if new_token:
        response.headers["Cache-Control"] = "no-store"  # shown once: not kept in any cache
    return response


@bp.get("/staff/<staff_id>")
@roles("admin")
def staff_member(staff_id: str):
    """One member: edit their name, role and schools; their API tokens; take them off the roster."""
    return _member_page(staff_id)


def _last_admin(staff_id: str) -> bool:
    return [m.id for m in g.aviso.roster.all() if m.role == "admin"] == [staff_id]


@bp.post("/staff/<staff_id>")
@roles("admin")
def staff_edit(staff_id: str):
    """Change a member's name, role or schools; they keep their id, sign-in and tokens."""
    form = request.form
    if form.get("role") != "admin" and _last_admin(staff_id):
        return _member_page(staff_id, form, gettext("The district needs at least one admin."), status=409)
    try:
        member = g.aviso.roster.edit(staff_id, form.get("name", ""), form.get("role", ""),
                                     _codes(form.get("schools", "")), set(content().schools.by_code))
    except StaffError as exc:
        return _member_page(staff_id, form, _refusal(exc), status=404 if exc.code == "missing" else 400)
    _audit("staff edited", member.id, f"{member.name}, {member.role}")
    flash(gettext("Saved."))
    return redirect(url_for("dashboard.staff_member", staff_id=member.id))


@bp.post("/staff/<staff_id>/remove")
@roles("admin")
def staff_remove(staff_id: str):
    """Take a member off the roster (their session and API tokens stop working)."""
    if staff_id == g.staff.id:
        return error_page(409, gettext("You cannot take yourself off the roster; ask another admin."))
    try:
        member = g.aviso.roster.remove(staff_id)
    except StaffError as exc:
        return error_page(404, _refusal(exc))
    _audit("staff removed", member.id, member.name)
    flash(gettext("%(name)s is off the roster.", name=member.name))
    return redirect(url_for("dashboard.staff_list"))


@bp.post("/staff/<staff_id>/tokens")
@roles("admin")
def token_issue(staff_id: str):
    """A new API token, valid for the days asked (1 to 365), shown once on the page that answers."""
    days = request.form.get("days", str(DEFAULT_DAYS)).strip()
    try:
        token = g.aviso.roster.issue_token(staff_id, int(days) if days.isdigit() else 0)
    except TokenError:
        return _member_page(staff_id, error=gettext("A token works for 1 to %(max)s days.", max=MAX_DAYS),
                            status=400)
    except StaffError as exc:
        return error_page(404, _refusal(exc))
    _audit("token issued", staff_id, days)
    return _member_page(staff_id, new_token=token)


@bp.post("/staff/<staff_id>/tokens/<token_id>/revoke")
@roles("admin")
def token_revoke(staff_id: str, token_id: str):
    """Revoke one API token: systems using it are refused from the next request."""
    if not g.aviso.roster.tokens.revoke(staff_id, token_id):
        return error_page(404, gettext("There is no such token."))
    _audit("token revoked", staff_id, token_id)
    flash(gettext("Token %(id)s revoked.", id=token_id))
    return redirect(url_for("dashboard.staff_member", staff_id=staff_id))
