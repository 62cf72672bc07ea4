"""evolve: the engine's fast copy of a frozen dataclass gives exactly what dataclasses.replace gives."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, dataclass, replace
from datetime import UTC, datetime

import pytest

from bot.people.state import ContactState, evolve


@pytest.mark.parametrize("changes", [
    {}, {"language": "es"}, {"at": "main", "schools": ("BELMONT",), "is_new": False},
    {"pending_until": datetime(2026, 1, 2, tzinfo=UTC), "choices": ("a", "b"), "opted_out": True},
])
def test_evolve_gives_what_replace_gives(changes):
    state = ContactState(language="fa", workshops=("kyr",), last="rights.home")
    copied = evolve(state, **changes)
    assert copied == replace(state, **changes) and hash(copied) == hash(replace(state, **changes))
    assert state == ContactState(language="fa", workshops=("kyr",), last="rights.home")  # the original is left
    with pytest.raises(FrozenInstanceError):
        copied.language = "en"


def test_evolve_refuses_a_field_the_class_does_not_have():
    with pytest.raises(TypeError, match="nope"):
        evolve(ContactState(), nope=1)


def test_evolve_runs_post_init_where_a_class_has_one():
    @dataclass(frozen=True)
    class Checked:
        value: int

        def __post_init__(self):
            if self.value < 0:
                raise ValueError("negative")

    with pytest.raises(ValueError, match="negative"):
        evolve(Checked(1), value=-1)
