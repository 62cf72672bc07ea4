"""Importing staff from a CSV file (name, phone, role, schools): all of it or none, every problem named with
its line, so a district can put a school year's roster on in one go."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from bot.people.identity import InvalidAddress, parse_address
from bot.people.staff import ROLES, Roster, StaffError, StaffMember

COLUMNS = ("name", "phone", "role", "schools")
MAX_ROWS = 5000


@dataclass(frozen=True)
class Row:
    """One staff member to add, with the line of the file they are on."""

    line: int
    name: str
    phone: str
    role: str
    schools: tuple[str, ...]


# What can be wrong with a line, in English (the dashboard words each code in the admin's language).
PROBLEMS = {
    "header": "the first line must name the columns name, phone, role, schools (missing: {detail})",
    "too_many": f"at most {MAX_ROWS} staff per file",
    "name": "name is required",
    "role": "role must be one of " + ", ".join(ROLES),
    "schools": "unknown school code(s): {detail}",
    "no_school": "a sender or approver needs at least one school",
    "phone": "the phone number is not a valid +E.164 number",
    "same_as": "the same number as line {detail}",
    "duplicate": "that number is already on the roster",
    "empty": "no staff in the file",
}


class ImportRefused(ValueError):
    """Nothing was imported; `problems` lists (line, what is wrong) for every line that is wrong, `codes`
    the same as (line, [(code, detail)]) for words in another language."""

    def __init__(self, codes: list[tuple[int, list[tuple[str, str]]]]):
        self.codes = codes
        self.problems = [(line, "; ".join(PROBLEMS.get(code, "{detail}").format(detail=detail)
                                          for code, detail in found)) for line, found in codes]
        super().__init__("; ".join(f"line {line}: {problem}" for line, problem in self.problems))


def parse(text: str, roster: Roster, known_schools: set[str]) -> list[Row]:
    """The rows of a roster CSV (a header line naming the columns first); ImportRefused lists every problem."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [(name or "").strip().lower() for name in reader.fieldnames or []]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise ImportRefused([(1, [("header", ", ".join(missing))])])
    reader.fieldnames = header
    rows, problems, seen = [], [], {}
    for number, record in enumerate(reader, start=2):
        if number - 1 > MAX_ROWS:
            problems.append((number, [("too_many", "")]))
            break
        values = {c: (record.get(c) or "").strip() for c in COLUMNS}
        if not any(values.values()):
            continue
        codes = tuple(dict.fromkeys(c.strip().upper() for c in values["schools"].replace(";", ",").split(",")
                                    if c.strip()))
        row_problems = []
        if not values["name"]:
            row_problems.append(("name", ""))
        if values["role"].lower() not in ROLES:
            row_problems.append(("role", ""))
        unknown = sorted(set(codes) - known_schools)
        if unknown:
            row_problems.append(("schools", ", ".join(unknown)))
        elif not codes and values["role"].lower() != "admin":
            row_problems.append(("no_school", ""))
        try:
            e164 = parse_address(values["phone"]).e164
        except InvalidAddress:
            row_problems.append(("phone", ""))
        else:
            if e164 in seen:
                row_problems.append(("same_as", str(seen[e164])))
            elif roster.by_phone(e164) is not None:
                row_problems.append(("duplicate", ""))
            seen.setdefault(e164, number)
        if row_problems:
            problems.append((number, row_problems))
        else:
            rows.append(Row(number, values["name"], e164, values["role"].lower(), codes))
    if problems:
        raise ImportRefused(problems)
    if not rows:
        raise ImportRefused([(2, [("empty", "")])])
    return rows


def import_rows(roster: Roster, rows: list[Row], known_schools: set[str]) -> list[StaffMember]:
    """Add every row, or (one fails, say added meanwhile) take back the ones added and refuse."""
    added: list[StaffMember] = []
    for row in rows:
        try:
            added.append(roster.add(row.phone, row.name, row.role, list(row.schools), known_schools))
        except (StaffError, InvalidAddress) as exc:
            for member in added:
                roster.remove(member.id)
            code = getattr(exc, "code", "")
            found = (code, exc.detail) if code in PROBLEMS else ("other", str(exc))
            raise ImportRefused([(row.line, [found])]) from None
    return added
