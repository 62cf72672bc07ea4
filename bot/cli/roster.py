"""`aviso staff`: the roster from the server's shell (the first admin, then the dashboard's Staff page does the
rest): add, edit, remove, import a CSV, unlock sign-in, API tokens with an expiry."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from bot.cli.context import aviso as _aviso
from bot.cli.context import member as _member
from bot.people.tokens import DEFAULT_DAYS, MAX_DAYS


def _codes(schools: str) -> list[str]:
    return [c.strip().upper() for c in schools.split(",") if c.strip()]


@click.group()
def staff() -> None:
    """The roster of staff who may send or approve broadcasts."""


def _add(phone: str, name: str, role: str, schools: str, action: str = "staff added"):
    from bot.people.identity import InvalidAddress
    from bot.people.staff import StaffError

    aviso = _aviso()
    known = set(aviso.active_content().schools.by_code)
    try:
        member = aviso.roster.add(phone, name, role, _codes(schools), known)
    except (StaffError, InvalidAddress) as exc:
        raise click.ClickException(str(exc)) from None
    aviso.audit.record("operator", action, member.id, f"{member.name}, {member.role}")
    return member


@staff.command("add")
@click.option("--phone", required=True, help="Their mobile number, +E.164 (login codes go there).")
@click.option("--name", required=True, help="Display name, shown to other staff.")
@click.option("--role", type=click.Choice(["sender", "approver", "admin"]), required=True)
@click.option("--schools", required=True, help="School codes, comma-separated (admins: any).")
def staff_add(phone: str, name: str, role: str, schools: str) -> None:
    """Add a staff member."""
    member = _add(phone, name, role, schools)
    click.echo(f"added {member.id}: {member.name} ({member.role}) for {', '.join(member.schools)}")


@staff.command("bootstrap")
@click.option("--phone", required=True, help="The first admin's mobile number, +E.164 (sign-in codes go there).")
@click.option("--name", required=True, help="Their name, shown to other staff.")
def staff_bootstrap(phone: str, name: str) -> None:
    """Create the first admin, on an empty roster only; they add everyone else in the dashboard."""
    if _aviso().roster.all():
        raise click.ClickException("the roster is not empty: an admin adds staff in the dashboard (Staff), or use "
                                   "aviso staff add")
    member = _add(phone, name, "admin", "", action="first admin")
    click.echo(f"added {member.id}: {member.name} (admin). Sign in at /dashboard/login with that number.")


@staff.command("edit")
@click.argument("staff_id")
@click.option("--name", help="A new display name.")
@click.option("--role", type=click.Choice(["sender", "approver", "admin"]), help="A new role.")
@click.option("--schools", help="Their schools now, comma-separated (replaces the list).")
def staff_edit(staff_id: str, name: str | None, role: str | None, schools: str | None) -> None:
    """Change someone's name, role or schools; they keep their id, sign-in and API tokens."""
    from bot.people.staff import StaffError

    aviso = _aviso()
    member = _member(aviso, staff_id)
    known = set(aviso.active_content().schools.by_code)
    try:
        edited = aviso.roster.edit(member.id, name or member.name, role or member.role,
                                   _codes(schools) if schools is not None else list(member.schools), known)
    except StaffError as exc:
        raise click.ClickException(str(exc)) from None
    aviso.audit.record("operator", "staff edited", edited.id, f"{edited.name}, {edited.role}")
    click.echo(f"{edited.id}: {edited.name} ({edited.role}) for {', '.join(edited.schools)}")


@staff.command("import")
@click.argument("csv_file", type=click.File("r", encoding="utf-8-sig"))
def staff_import(csv_file) -> None:
    """Add everyone in a CSV file with the columns name, phone, role, schools (schools separated by ";"):
    all of them, or none when any line is wrong (each such line is named)."""
    from bot.people import roster_csv

    aviso = _aviso()
    known = set(aviso.active_content().schools.by_code)
    try:
        added = roster_csv.import_rows(aviso.roster, roster_csv.parse(csv_file.read(), aviso.roster, known), known)
    except roster_csv.ImportRefused as exc:
        lines = "\n".join(f"  line {line}: {problem}" for line, problem in exc.problems)
        raise click.ClickException(f"nobody was added; fix these lines and import again:\n{lines}") from None
    for member in added:
        aviso.audit.record("operator", "staff added", member.id, f"{member.name}, {member.role}")
    click.echo(f"added {len(added)} staff member(s)")


@staff.command("list")
def staff_list() -> None:
    """Everyone on the roster (numbers are not shown)."""
    for member in _aviso().roster.all():
        click.echo(f"{member.id}  {member.name:30} {member.role:9} {', '.join(member.schools)}")


@staff.command("remove")
@click.argument("staff_id")
def staff_remove(staff_id: str) -> None:
    """Take someone off the roster (their sessions and API tokens stop working)."""
    from bot.people.staff import StaffError

    aviso = _aviso()
    try:
        member = aviso.roster.remove(staff_id)
    except StaffError as exc:
        raise click.ClickException(str(exc)) from None
    aviso.audit.record("operator", "staff removed", member.id, member.name)
    click.echo(f"removed {member.id}: {member.name}")


@staff.command("unlock")
@click.argument("staff_id", required=False)
@click.option("--district", is_flag=True, help="End the district-wide slowing after too many wrong codes.")
def staff_unlock(staff_id: str | None, district: bool) -> None:
    """Let a staff member ask for a sign-in code at once (forgets their number's back-off)."""
    if not staff_id and not district:
        raise click.UsageError("name a STAFF_ID (aviso staff list), or --district")
    aviso = _aviso()
    if staff_id:
        member = _member(aviso, staff_id)
        aviso.signin.unlock(aviso.roster.phone_of(member.id))
        aviso.audit.record("operator", "sign-in unlocked", member.id, member.name)
        click.echo(f"{member.name} ({member.id}) may ask for a sign-in code now")
    if district:
        aviso.signin.unslow()
        aviso.audit.record("operator", "sign-in slowing ended", "dashboard")
        click.echo("sign-in is no longer slowed")


@staff.command("token")
@click.argument("staff_id")
@click.option("--days", type=click.IntRange(1, MAX_DAYS), default=DEFAULT_DAYS, show_default=True,
              help="How long it works.")
def staff_token(staff_id: str, days: int) -> None:
    """Issue an API token for a staff member or a district system acting as them (shown once)."""
    aviso = _aviso()
    _member(aviso, staff_id)
    token = aviso.roster.issue_token(staff_id, days)
    aviso.audit.record("operator", "token issued", staff_id, str(days))
    click.echo(token)


@staff.command("tokens")
@click.argument("staff_id")
def staff_tokens(staff_id: str) -> None:
    """A member's API tokens: id, expiry, last use (never the token)."""
    aviso = _aviso()
    _member(aviso, staff_id)
    now = datetime.now(UTC)
    for info in aviso.roster.tokens.of(staff_id):
        expires = info.expires.strftime("%Y-%m-%d") if info.expires else "never (issued before expiry; replace it)"
        state = "  EXPIRED" if info.expired(now) else ""
        used = info.last_used.strftime("%Y-%m-%d %H:%M") if info.last_used else "never"
        click.echo(f"{info.id}  expires {expires}  last used {used}{state}")


@staff.command("revoke")
@click.argument("staff_id")
@click.argument("token_id")
def staff_revoke(staff_id: str, token_id: str) -> None:
    """Revoke one API token (its id from aviso staff tokens)."""
    aviso = _aviso()
    _member(aviso, staff_id)
    if not aviso.roster.tokens.revoke(staff_id, token_id):
        raise click.ClickException(f"{staff_id} has no token {token_id} (aviso staff tokens {staff_id})")
    aviso.audit.record("operator", "token revoked", staff_id, token_id)
    click.echo(f"revoked {token_id}")
