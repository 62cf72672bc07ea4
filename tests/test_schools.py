"""Schools: finding one from a family's words, and importing a district's list."""

from __future__ import annotations

import shutil

import pytest

from bot import content_check
from bot.cli import cli
from bot.schools import School, SchoolIndex, parse_csv

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
