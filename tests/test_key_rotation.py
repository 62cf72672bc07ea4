"""Key rotation: encryption keys rotate (and `aviso rekey` re-encrypts) without changing anyone's id."""

from __future__ import annotations

import pytest

from bot import create_app, services
from bot.cli.main import cli
from bot.config import ConfigError, load_settings
from bot.people import contacts
from bot.people.identity import Address, InvalidToken
from bot.people.key_rotation import NamingKeyChanged, check_naming_key, rekey
from bot.store import keys

from .conftest import PARENT, Phone
from .test_config import PRODUCTION
from .test_dashboard import SENDER, sign_in

NEW_KEY = "a-new-encryption-key-made-for-the-rotation-0001"
OTHER_NAMING_KEY = "another-naming-key-that-would-orphan-everyone-02"


def rotated(settings, *encryption_keys: str):
    """A fresh app (as after a restart) with these encryption keys, on the same Redis."""
    app = create_app(settings.with_overrides(encryption_keys=encryption_keys))
    app.testing = True
    return app, services.current_from(app)


@pytest.fixture
def subscribed(client, aviso):
    """A Spanish-speaking family following Belmont (through the webhook) and a staff sender."""
    phone = Phone(client)
    phone.text("ALERTAS Belmont")
    phone.text("1")
    assert "Belmont" in " ".join(phone.text("MIS ALERTAS"))
    known = set(aviso.active_content().schools.by_code)
    aviso.roster.add(SENDER, "Ms. Rivera", "sender", ["BELMONT"], known)


def test_after_an_encryption_key_rotation_a_family_keeps_its_alerts_and_staff_still_sign_in(settings, subscribed):
    app, aviso = rotated(settings, NEW_KEY, settings.secret_key)
    assert "Belmont" in " ".join(Phone(app.test_client()).text("MIS ALERTAS"))
    assert sign_in(app.test_client(), aviso, SENDER).get("/dashboard/").status_code == 200


def test_rekey_then_dropping_the_old_key_keeps_everyone(settings, subscribed, runner, cli_env):
    app, aviso = rotated(settings, NEW_KEY, settings.secret_key)
    env = {**cli_env, "AVISO_ENCRYPTION_KEYS": f"{NEW_KEY},{settings.secret_key}"}
    result = runner.invoke(cli, ["rekey"], env=env)
    assert result.exit_code == 0, result.output
    assert "re-encrypting numbers" in result.output  # the progress bar's label
    assert "2 number(s) re-encrypted" in result.output  # the family's and the staff member's
    assert "the older keys may be dropped" in result.output
    again = runner.invoke(cli, ["rekey"], env=env)
    assert again.exit_code == 0 and "0 number(s) re-encrypted" in again.output  # idempotent

    app, aviso = rotated(settings, NEW_KEY)  # the old key is gone
    assert "Belmont" in " ".join(Phone(app.test_client()).text("MIS ALERTAS"))
    key = aviso.keyring.contact_key(Address("sms", PARENT))
    assert contacts.number_of(aviso.connection, aviso.keyring, key) == PARENT
    assert sign_in(app.test_client(), aviso, SENDER).get("/dashboard/").status_code == 200


def test_without_rekey_dropping_the_old_key_leaves_numbers_unreadable(settings, subscribed):
    _, aviso = rotated(settings, NEW_KEY)
    key = aviso.keyring.contact_key(Address("sms", PARENT))
    with pytest.raises(InvalidToken):
        contacts.number_of(aviso.connection, aviso.keyring, key)
    assert rekey(aviso.connection, aviso.keyring).unreadable == 2


def test_an_interrupted_rekey_resumes_where_it_stopped(settings, aviso):
    for n in range(30):
        number = f"+1213555{2000 + n:04d}"
        aviso.connection.hset(contacts.contact_redis_key(aviso.keyring.contact_key(Address("sms", number))),
                              "num", aviso.keyring.encrypt(number))
    _, rotated_aviso = rotated(settings, NEW_KEY, settings.secret_key)

    def stop_after_first_batch(scanned: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        rekey(rotated_aviso.connection, rotated_aviso.keyring, batch=5, progress=stop_after_first_batch)
    first = rotated_aviso.connection.hgetall(keys.REKEY)
    assert int(first[b"cursor"]) != 0 and int(first[b"rekeyed"]) < 30
    report = rekey(rotated_aviso.connection, rotated_aviso.keyring, batch=5)
    assert report.resumed and report.rekeyed == 30 and report.unreadable == 0
    assert not rotated_aviso.connection.exists(keys.REKEY)


def test_a_changed_naming_key_is_refused_instead_of_orphaning_everyone(settings, aviso, runner, cli_env):
    check_naming_key(aviso.connection, aviso.keyring)
    _, other = rotated(settings.with_overrides(secret_key=OTHER_NAMING_KEY))
    with pytest.raises(NamingKeyChanged):
        check_naming_key(other.connection, other.keyring)
    result = runner.invoke(cli, ["rekey"], env={**cli_env, "AVISO_SECRET_KEY": OTHER_NAMING_KEY})
    assert result.exit_code != 0 and "AVISO_SECRET_KEY is not the key that named" in result.output


@pytest.mark.parametrize("value", [f"{NEW_KEY},short", f"{NEW_KEY},,{OTHER_NAMING_KEY}", f"{NEW_KEY},{NEW_KEY}",
                                   f"{NEW_KEY},{'b' * 40}"])
def test_a_bad_encryption_key_list_fails_at_startup_in_one_line(value):
    with pytest.raises(ConfigError) as error:
        load_settings({**PRODUCTION, "AVISO_ENCRYPTION_KEYS": value})
    assert "AVISO_ENCRYPTION_KEYS" in str(error.value) and "\n" not in str(error.value)


def test_the_old_list_of_secret_keys_is_refused_with_how_to_split_it():
    naming = PRODUCTION["AVISO_SECRET_KEY"]
    with pytest.raises(ConfigError) as error:
        load_settings({**PRODUCTION, "AVISO_SECRET_KEY": f"{naming},{NEW_KEY}"})
    assert "AVISO_ENCRYPTION_KEYS to the whole list" in str(error.value) and naming not in str(error.value)


def test_gunicorn_refuses_to_start_with_another_naming_key(settings, aviso, capsys):
    from bot import gunicorn_conf

    check_naming_key(aviso.connection, aviso.keyring)
    gunicorn_conf._check_naming_key(settings)  # the same key: starts
    with pytest.raises(SystemExit):
        gunicorn_conf._check_naming_key(settings.with_overrides(secret_key=OTHER_NAMING_KEY))
    assert "AVISO_SECRET_KEY is not the key that named" in capsys.readouterr().err


def test_rekey_reencrypts_a_whatsapp_user_id_kept_with_the_number(settings, aviso):
    user_id = "US.13491208655302741918"
    name = contacts.contact_redis_key(aviso.keyring.contact_key(Address("whatsapp", PARENT)))
    aviso.connection.hset(name, mapping={"num": aviso.keyring.encrypt(PARENT), "uid": aviso.keyring.encrypt(user_id)})
    _, rotated_aviso = rotated(settings, NEW_KEY, settings.secret_key)
    assert rekey(rotated_aviso.connection, rotated_aviso.keyring).rekeyed == 2
    _, new_only = rotated(settings, NEW_KEY)
    stored = new_only.connection.hgetall(name)
    assert new_only.keyring.decrypt(stored[b"num"].decode()) == PARENT
    assert new_only.keyring.decrypt(stored[b"uid"].decode()) == user_id


def test_an_upgrade_with_the_wrong_key_of_an_old_list_is_refused_before_anyone_is_orphaned(settings, subscribed):
    aviso = services.current_from(create_app(settings))
    aviso.connection.delete(keys.NAMING_KEY)  # a Redis from before the fingerprint
    # The old list was "naming key, other key": the operator split it the wrong way round.
    _, wrong = rotated(settings.with_overrides(secret_key=OTHER_NAMING_KEY), settings.secret_key)
    with pytest.raises(NamingKeyChanged):
        check_naming_key(wrong.connection, wrong.keyring)
    assert not wrong.connection.exists(keys.NAMING_KEY)
    _, right = rotated(settings, OTHER_NAMING_KEY, settings.secret_key)
    check_naming_key(right.connection, right.keyring)  # the key that named them: recorded
    assert right.connection.get(keys.NAMING_KEY).decode() == right.keyring.naming_fingerprint()
