"""Schools: finding one from a family's words, and importing a district's list."""

from __future__ import annotations

import shutil

import pytest

from bot.cli.main import cli
from bot.content.schools import School, SchoolIndex, parse_csv
from bot.publishing import check as content_check

from .conftest import CONTENT_DIR

SCHOOLS = [
    School("BELMONT", "Belmont High School", ("Belmont",)),
    School("RUSSELL", "Russell Elementary School", ("Russell",)),
    School("GRATTS", "Gratts Elementary School", ("Gratts",)),
    School("MCLC", "Miguel Contreras Learning Complex", ("Miguel Contreras", "MCLC")),
]


@pytest.mark.parametrize(
    ("query", "codes"),
    [
        ("Belmont", ["BELMONT"]),
        ("  belmont high school!! ", ["BELMONT"]),
        ("belmnt", ["BELMONT"]),
        ("mclc", ["MCLC"]),
        ("Contreras", ["MCLC"]),
        ("miguel contreras learning", ["MCLC"]),
        ("elementary", ["GRATTS", "RUSSELL"]),
        ("escuela", []),
        ("Hogwarts", []),
        ("", []),
    ],
)
def test_a_school_is_found_by_code_short_name_or_name_with_a_typo(query, codes):
    assert [s.code for s in SchoolIndex(SCHOOLS).find(query)] == codes


def test_csv_rows_are_checked_and_rejections_say_why():
    text = (
        "code,name,short_names,region\n"
        "1001,Belmont High School,Belmont;Belmont High,Central\n"
        ",No Code Elementary,,\n"
        "1002,,,\n"
        "1001,Again,,\n"
        "bad code!,Bad Code Middle,,\n"
        "1003,Venice High School,,West\n"
    )
    schools, rejected = parse_csv(text)
    assert [s.code for s in schools] == ["1001", "1003"]
    assert schools[0].short_names == ("Belmont", "Belmont High")
    assert [(r.line, r.reason) for r in rejected] == [
        (3, "code is empty"),
        (4, "name is empty"),
        (5, "code 1001 repeats line 2"),
        (6, "code 'BAD CODE!' must be letters, digits or '-' (16 at most)"),
    ]


def test_csv_without_the_header_is_refused_whole():
    schools, rejected = parse_csv("Belmont,1001\n")
    assert schools == [] and "header" in rejected[0].reason


def test_import_command_writes_the_content_file_and_reports_rejections(runner, tmp_path):
    content = tmp_path / "content"
    shutil.copytree(CONTENT_DIR, content)
    district = tmp_path / "district.csv"
    district.write_text("code,name,short_names,region\n1001,Belmont High School,Belmont,Central\n,Nameless,,\n")
    result = runner.invoke(cli, ["schools", "import", str(district), "--dir", str(content)])
    assert result.exit_code == 0, result.output
    assert "rejected line 3: code is empty" in result.output
    assert "imported 1 school(s), rejected 1" in result.output
    assert (content / "schools.csv").read_text().splitlines()[1].startswith("1001,Belmont High School")
    assert any("without a version bump" in str(e) for e in content_check.check(content).errors)


def _import(runner, tmp_path, data: bytes | str, env=None):
    """Run `aviso schools import` on a file holding data, into a copy of the shipped content."""
    content = tmp_path / "content"
    if not content.exists():
        shutil.copytree(CONTENT_DIR, content)
    district = tmp_path / "district.csv"
    if isinstance(data, str):
        district.write_text(data, encoding="utf-8")
    else:
        district.write_bytes(data)
    env = env if env is not None else {"REDIS_URL": "redis://127.0.0.1:1"}
    result = runner.invoke(cli, ["schools", "import", str(district), "--dir", str(content)], env=env)
    return result, content / "schools.csv"


SHIPPED_CODES = ["BELMONT", "ESTEBAN-TORRES", "GARFIELD", "GRATTS", "HOLLENBECK", "LILLIAN", "MCLC", "ROOSEVELT",
                 "RUSSELL", "VENICE"]


def _rows_for(codes):
    return "".join(f"{code},{code.title()} School\n" for code in codes)


def test_a_latin1_file_is_refused_with_the_byte_and_line_and_nothing_is_imported(runner, tmp_path):
    result, schools_csv = _import(runner, tmp_path, b"code,name\nFFF,Caf\xe9\n")
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert "district.csv is not UTF-8 text (byte 0xe9 on line 2); save it as CSV UTF-8" in result.output
    assert "Traceback" not in result.output
    assert schools_csv.read_text() == (CONTENT_DIR / "schools.csv").read_text()


def test_a_binary_file_is_refused_as_not_text(runner, tmp_path):
    result, _ = _import(runner, tmp_path, b"code,name\nAAA,x\x00y\n")
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert "not a text file (a NUL byte on line 2)" in result.output
    result, _ = _import(runner, tmp_path, b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00\xa4")
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert "is not UTF-8 text (byte 0xa4 on line 1)" in result.output


def test_a_utf8_file_with_a_byte_order_mark_imports_its_accents(runner, tmp_path):
    result, schools_csv = _import(runner, tmp_path, "\ufeffcode,name\nFFF,Café Elementary\n".encode())
    assert result.exit_code == 0, result.output
    assert "FFF,Café Elementary" in schools_csv.read_text(encoding="utf-8")


def test_a_cell_over_the_csv_limit_refuses_the_file_with_its_line(runner, tmp_path):
    text = "code,name\nAAA,Alpha School\nBBB," + "x" * 140_000 + "\nCCC,Gamma School\n"
    result, schools_csv = _import(runner, tmp_path, text)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert "no school imported: line 3: a cell is longer than 131072 characters" in result.output
    assert schools_csv.read_text() == (CONTENT_DIR / "schools.csv").read_text()


def test_rejected_rows_give_the_file_line_after_blank_lines_and_multiline_names():
    schools, rejected = parse_csv('code,name\nAAA,"Multi\nLine"\n\n\nBBB,\n"CCC","Two\nLines",\nDDD,\n')
    assert [(s.code, s.name) for s in schools] == [("AAA", "Multi Line"), ("CCC", "Two Lines")]
    assert [(r.line, r.reason) for r in rejected] == [(6, "name is empty"), (9, "name is empty")]


def test_a_header_naming_a_column_twice_is_refused(runner, tmp_path):
    result, schools_csv = _import(runner, tmp_path, "code,name,code\nAAA,Alpha School,BBB\n")
    assert result.exit_code == 1
    assert "line 1: the header names code more than once" in result.output
    assert schools_csv.read_text() == (CONTENT_DIR / "schools.csv").read_text()


def test_header_names_are_matched_ignoring_case_and_spaces():
    schools, rejected = parse_csv(" Code , Name ,Short_Names, REGION\nAAA,Alpha School,Alpha,North\n")
    assert rejected == []
    assert schools == [School("AAA", "Alpha School", ("Alpha",), "North")]


def test_a_row_with_more_cells_than_the_header_is_rejected_saying_so():
    schools, rejected = parse_csv("code,name\nAAA,Alpha, The School\nBBB,Beta School,,\n")
    assert [s.code for s in schools] == ["BBB"]  # empty trailing cells are harmless
    assert [(r.line, r.reason) for r in rejected] == [
        (2, "3 cells but the header names 2 columns (extra: ' The School'; an unquoted comma in a name?)"),
    ]


def test_columns_aviso_does_not_use_are_named(runner, tmp_path):
    result, _ = _import(runner, tmp_path, "code,name,short_name\n" + _rows_for(SHIPPED_CODES))
    assert result.exit_code == 0, result.output
    assert "ignored column(s) Aviso does not use: short_name" in result.output


def test_an_import_names_the_schools_it_removes_and_how_many_families_follow_them(runner, tmp_path, aviso, cli_env):
    from bot.store import keys

    aviso.connection.sadd(keys.SCHOOL_SUBSCRIBERS.format(code="VENICE"), "contact:a", "contact:b")
    kept = [c for c in SHIPPED_CODES if c not in ("VENICE", "GARFIELD")]
    result, schools_csv = _import(runner, tmp_path, "code,name\n" + _rows_for(kept), env=cli_env)
    assert result.exit_code == 0, result.output
    assert "removed 2 school(s) the file does not list: GARFIELD (0 following), VENICE (2 following)" in result.output
    assert [line.split(",")[0] for line in schools_csv.read_text().splitlines()[1:]] == kept


def test_an_import_names_the_removed_schools_even_without_redis(runner, tmp_path):
    result, _ = _import(runner, tmp_path, "code,name\n" + _rows_for(SHIPPED_CODES[1:]))
    assert result.exit_code == 0, result.output
    assert "removed 1 school(s) the file does not list: BELMONT\n" in result.output
    assert "how many families follow them is unknown" in result.output


def test_an_import_of_the_same_codes_removes_nothing(runner, tmp_path):
    result, _ = _import(runner, tmp_path, "code,name\n" + _rows_for(SHIPPED_CODES))
    assert result.exit_code == 0, result.output
    assert "removed" not in result.output
