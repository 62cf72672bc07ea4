"""Schools: the district's list (code, name, short names, region) and finding one from a family's words."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

from .matching import normalize, within_one_edit

COLUMNS = ("code", "name", "short_names", "region")
CODE_PATTERN = re.compile(r"^[A-Z0-9][A-Z0-9-]{0,15}$")
MAX_CHOICES = 8
# Words that do not tell schools apart: a query of only these finds nothing.
GENERIC_WORDS = frozenset(
    "school escuela high elementary middle primaria secundaria preparatoria learning complex "
    "center centro academy academia de la el los las the of".split()
)


@dataclass(frozen=True)
class School:
    """One school families can follow."""

    code: str
    name: str
    short_names: tuple[str, ...] = ()
    region: str = ""

    def as_row(self) -> dict[str, str]:
        """The school as a CSV row."""
        return {"code": self.code, "name": self.name, "short_names": ";".join(self.short_names),
                "region": self.region}


@dataclass(frozen=True)
class Rejected:
    """A CSV row that could not be imported, and why."""

    line: int
    reason: str


def parse_csv(text: str) -> tuple[list[School], list[Rejected]]:
    """Read a schools CSV (code,name,short_names,region; short names separated by ';')."""
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in ("code", "name") if c not in (reader.fieldnames or [])]
    if missing:
        return [], [Rejected(1, f"header must name the columns {', '.join(COLUMNS)}; missing {', '.join(missing)}")]
    schools: list[School] = []
    rejected: list[Rejected] = []
    seen: dict[str, int] = {}
    for line, row in enumerate(reader, start=2):
        code = (row.get("code") or "").strip().upper()
        name = " ".join((row.get("name") or "").split())
        if not code:
            rejected.append(Rejected(line, "code is empty"))
        elif not CODE_PATTERN.match(code):
            rejected.append(Rejected(line, f"code {code!r} must be letters, digits or '-' (16 at most)"))
        elif not name:
            rejected.append(Rejected(line, "name is empty"))
        elif code in seen:
            rejected.append(Rejected(line, f"code {code} repeats line {seen[code]}"))
        else:
            seen[code] = line
            shorts = tuple(s.strip() for s in (row.get("short_names") or "").split(";") if s.strip())
            schools.append(School(code, name, shorts, (row.get("region") or "").strip()))
    return schools, rejected


def write_csv(path: Path, schools: list[School]) -> None:
    """Write schools as the content file, sorted by code."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for school in sorted(schools, key=lambda s: s.code):
        writer.writerow(school.as_row())
    Path(path).write_text(buffer.getvalue())


def _words(text: str) -> list[str]:
    return [w for w in normalize(text).split() if w]


def _word_matches(query_word: str, name_words: list[str]) -> bool:
    for word in name_words:
        if query_word == word:
            return True
        if len(query_word) >= 4 and within_one_edit(query_word, word):
            return True
    return False


class SchoolIndex:
    """Finds schools by code, short name or name, forgiving case, accents and a typo per word."""

    def __init__(self, schools: list[School]):
        self.by_code = {s.code: s for s in schools}
        self._entries = [
            (s, normalize(s.code), {normalize(n) for n in s.short_names}, _words(s.name)) for s in schools
        ]

    def find(self, query: str) -> list[School]:
        """Schools the query may mean, best first (empty when none)."""
        wanted = normalize(query[:120])
        if not wanted:
            return []
        exact = [s for s, code, shorts, _ in self._entries if wanted == code or wanted in shorts]
        if exact:
            return exact[:MAX_CHOICES]
        words = [w for w in wanted.split() if w not in GENERIC_WORDS]
        vague = not words
        words = words or wanted.split()  # "elementary" alone: offer the elementary schools, if few
        found = [s for s, _, _, name_words in self._entries if all(_word_matches(w, name_words) for w in words)]
        if vague and len(found) > MAX_CHOICES:
            return []
        if not found:
            near = [
                s for s, _, shorts, _ in self._entries
                if any(len(wanted) >= 4 and within_one_edit(wanted, short) for short in shorts)
            ]
            found = near
        return sorted(found, key=lambda s: s.name)[:MAX_CHOICES]
