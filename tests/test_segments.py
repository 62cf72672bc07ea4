"""SMS segment counting, as carriers count it."""

import pytest

from bot.content import segments


@pytest.mark.parametrize(
    ("text", "encoding", "count"),
    [
        ("a" * 160, "GSM-7", 1),
        ("a" * 161, "GSM-7", 2),
        ("a" * 306, "GSM-7", 2),
        ("a" * 307, "GSM-7", 3),
        ("ñé¿¡ü" * 32, "GSM-7", 1),
        ("€" * 80, "GSM-7", 1),
        ("€" * 81, "GSM-7", 2),
        ("a" * 152 + "€" + "a" * 152, "GSM-7", 3),  # the escape pair cannot straddle two parts
        ("á" * 70, "UCS-2", 1),
        ("á" * 71, "UCS-2", 2),
        ("Información rápida", "UCS-2", 1),
        ("😀" * 35, "UCS-2", 1),
        ("😀" * 67, "UCS-2", 3),  # a surrogate pair cannot straddle two parts
        ("“quoted”", "UCS-2", 1),
    ],
)
def test_segments_are_counted_as_carriers_count_them(text, encoding, count):
    result = segments.count(text)
    assert (result.encoding, result.segments) == (encoding, count)


def test_non_gsm7_characters_names_what_forces_ucs2():
    assert segments.non_gsm7_characters("Información rápida — sí") == ["ó", "á", "—", "í"]
