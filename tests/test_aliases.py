"""The pure rules of a family's other names: which names point where, what the contact records, how long."""

from __future__ import annotations

import pytest

from bot.people import aliases
from bot.people.identity import WHATSAPP, Address, Keyring

KEYRING = Keyring("test-secret-key-that-is-long-enough-0123456789")
NUMBER, USER_ID = Address(WHATSAPP, "+13105550142"), Address(WHATSAPP, "US.13491208655302741918")
N, U = KEYRING.contact_key(NUMBER), KEYRING.contact_key(USER_ID)
DAY = 24 * 3600


@pytest.mark.parametrize(("names", "contact", "expected"), [
    ([N], N, ()),  # a number alone: no other name
    ([U], U, ()),  # a user id alone, known by it
    ([U], N, (U,)),  # a user id alone, known by its number: the alias is kept alive
    ([N, U], N, (U,)),  # both: the user id leads to the number's contact
    ([N, U], U, (N,)),  # both, the family first known by its user id: the number leads there
])
def test_the_other_names_of_a_message_point_to_its_contact(names, contact, expected):
    assert aliases.naming(names, contact) == aliases.Naming(contact, expected)


@pytest.mark.parametrize(("fields", "addresses", "contact", "aliases_field", "stores_user_id"), [
    ({}, (NUMBER,), N, None, False),  # nothing to remember
    ({}, (NUMBER, USER_ID), N, U, True),  # first time together: alias listed, user id stored encrypted
    ({b"aliases": U.encode(), b"uid": b"x"}, (NUMBER, USER_ID), N, None, False),  # already known
    ({b"aliases": U.encode(), b"uid": b"x"}, (USER_ID,), N, None, False),  # the user id alone, later
    ({}, (NUMBER, USER_ID), U, N, False),  # known by its user id: num is it, nothing more to store
    ({b"aliases": b"f" * 32}, (NUMBER, USER_ID), N, ",".join(sorted([U, "f" * 32])), True),  # a list grows
])
def test_what_the_contact_records_about_its_other_names(fields, addresses, contact, aliases_field, stores_user_id):
    names = [KEYRING.contact_key(address) for address in addresses]
    extra = aliases.contact_fields(fields, addresses, aliases.naming(names, contact), KEYRING)
    assert extra.get(aliases.ALIASES_FIELD) == aliases_field
    assert (aliases.USER_ID_FIELD in extra) is stores_user_id
    if stores_user_id:
        assert KEYRING.decrypt(extra[aliases.USER_ID_FIELD]) == USER_ID.handle


@pytest.mark.parametrize(("contact_ttl", "subscribed", "kept_until", "expected"), [
    (180 * DAY, False, [], 180 * DAY),  # the contact expires: so does the alias, at the same time
    (None, True, [], 0),  # a subscriber stays until a message ends that, and that message sets the alias
    (None, True, [1_000 + 10 * DAY], 0),
    (None, False, [1_000 + 10 * DAY, 1_000 + 3 * DAY], 10 * DAY + 180 * DAY),  # the last sign-up's data, then idle
    (None, False, [1_000 - DAY], 180 * DAY),  # data already due for deletion
])
def test_an_alias_lives_as_long_as_its_contact(contact_ttl, subscribed, kept_until, expected):
    assert aliases.lifetime(contact_ttl, subscribed, kept_until, 1_000.0, 180 * DAY) == expected
