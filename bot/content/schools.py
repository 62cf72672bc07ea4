"""Schools: the district's list (code, name, short names, region) and finding one from a family's words."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

from bot.content.matching import normalize, within_one_edit

COLUMNS = ("code", "name", "short_names", "region")
CODE_PATTERN = re.compile(r"^[A-Z0-9][A-Z0-9-]{0,15}$")
MAX_CHOICES = 8
# Words that do not tell schools apart: a query of only these finds nothing.
GENERIC_WORDS = frozenset(
    "school escuela high elementary middle primaria secundaria preparatoria learning complex "
    "center centro academy academia de la el los las the of".split()
)


_SCHOOL_KINDS = GENERIC_WORDS - {"de", "la", "el", "los", "las", "the", "of"}


def looks_like_a_school(text: str) -> bool:
    """Whether text reads like a school's name ("Lincoln High", "escuela Lincoln"), not a sentence."""
    words = normalize(text[:120]).split()
    return 0 < len(words) <= 6 and any(word in _SCHOOL_KINDS for word in words)


def without_school_words(text: str) -> str:
    """The text without the words every school name has ("Lincoln High School" -> "lincoln")."""
    return " ".join(word for word in normalize(text[:120]).split() if word not in _SCHOOL_KINDS)


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


@dataclass(frozen=True)
class SchoolsFile:
    """A district's CSV read: the schools, the rows rejected, and whether the whole file was refused."""

    schools: list[School]
    rejected: list[Rejected]
    refused: Rejected | None = None  # set when nothing in the file can be trusted (header, unreadable CSV)
    ignored_columns: tuple[str, ...] = ()  # header columns Aviso does not use


class NotText(ValueError):
    """The file is not UTF-8 text."""


def decode(data: bytes, name: str) -> str:
    """A CSV file's bytes as text: UTF-8 (a byte-order mark allowed), never a guessed encoding."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = exc.object.count(b"\n", 0, exc.start) + 1
        raise NotText(
            f"{name} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} on line {line}); save it as CSV UTF-8"
        ) from None
    if "\0" in text:
        line = text.count("\n", 0, text.index("\0")) + 1
        raise NotText(f"{name} is not a text file (a NUL byte on line {line}); save it as CSV UTF-8")
    return text


def read_csv(text: str) -> SchoolsFile:
    """Read a schools CSV (code,name,short_names,region; short names separated by ';').

    Header names are matched ignoring case and surrounding spaces; line numbers are the file's lines
    (a row whose quoted name spans lines is reported at its first line).
    """
    reader = csv.reader(io.StringIO(text, newline=None))
    schools: list[School] = []
    rejected: list[Rejected] = []
    seen: dict[str, int] = {}
    header: list[str] | None = None
    first = 1  # the file line where the next row starts
    try:
        for cells in reader:
            line, first = first, reader.line_num + 1
            if not cells or (len(cells) == 1 and not cells[0].strip()):
                continue
            if header is None:
                header = [c.strip().lower() for c in cells]
                problem = _header_problem(header)
                if problem:
                    return SchoolsFile([], [], Rejected(line, problem))
                continue
            extra = [c for c in cells[len(header):] if c.strip()]
            if extra:
                rejected.append(Rejected(
                    line, f"{len(cells)} cells but the header names {len(header)} columns "
                    f"(extra: {', '.join(repr(c) for c in extra)}; an unquoted comma in a name?)",
                ))
                continue
            row = dict(zip(header, cells, strict=False))
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
    except csv.Error as exc:
        reason = str(exc)
        if "field limit" in reason:
            reason = (f"a cell is longer than {csv.field_size_limit()} characters "
                      "(a quote left open?); the file cannot be read past it")
        return SchoolsFile([], rejected, Rejected(first, reason))
    if header is None:
        return SchoolsFile([], [], Rejected(1, _header_problem([]) or "the file is empty"))
    ignored = tuple(c for c in header if c and c not in COLUMNS)
    return SchoolsFile(schools, rejected, None, ignored)


def _header_problem(header: list[str]) -> str | None:
    repeated = sorted({c for c in header if c and header.count(c) > 1})
    if repeated:
        return f"the header names {', '.join(repeated)} more than once; keep one column of each"
    missing = [c for c in ("code", "name") if c not in header]
    if missing:
        return f"header must name the columns {', '.join(COLUMNS)}; missing {', '.join(missing)}"
    return None


def parse_csv(text: str) -> tuple[list[School], list[Rejected]]:
    """The schools in a CSV and the rows rejected (a refused file: no schools, the reason alone)."""
    read = read_csv(text)
    if read.refused:
        return [], [read.refused]
    return read.schools, read.rejected


def follower_counts(redis_url: str, codes: list[str]) -> dict[str, int] | None:
    """How many families follow each school code, or None when Redis cannot be reached."""
    import redis

    from bot.store import keys

    try:
        connection = redis.Redis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=5)
        with connection:
            pipe = connection.pipeline(transaction=False)
            for code in codes:
                pipe.scard(keys.SCHOOL_SUBSCRIBERS.format(code=code))
            return dict(zip(codes, pipe.execute(), strict=True))
    except (redis.RedisError, OSError):
        return None


def write_csv(path: Path, schools: list[School]) -> None:
    """Write schools as the content file, sorted by code."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for school in sorted(schools, key=lambda s: s.code):
        writer.writerow(school.as_row())
    Path(path).write_text(buffer.getvalue(), encoding="utf-8")


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
