"""The dashboard's languages: gettext catalogs complete and in step with the code, pages in Spanish through the
real app, a district adding a staff language with files and a setting only, and a missing catalog stopping
startup in one line."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from bot import create_app, dashboard_languages
from bot.config import ConfigError, load_settings
from bot.content import segments
from bot.people.identity import parse_address

from . import test_dashboard
from .test_dashboard import ADMIN, SENDER, ask_code, post, sign_in

# The dashboard tests' fixtures: no quiet hours, a roster of four staff members, five families.
settings, staff, families = test_dashboard.settings, test_dashboard.staff, test_dashboard.families

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "bot" / "translations"
# The keywords the README's `pybabel extract` command names (lazy_gettext and lazy_pgettext are not Babel's defaults).
KEYWORDS = {"_": None, "N_": None, "gettext": None, "ngettext": (1, 2), "pgettext": ((1, "c"), 2),
            "lazy_gettext": None, "lazy_pgettext": ((1, "c"), 2), "lazy_ngettext": (1, 2)}
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def catalog(path: Path):
    with path.open("rb") as file:
        return read_po(file)


def messages(found) -> dict:
    return {(m.context, m.id if isinstance(m.id, str) else m.id[0]): m for m in found if m.id}


def test_the_template_lists_every_string_the_dashboard_shows():
    with (ROOT / "babel.cfg").open() as mapping:
        methods, options = parse_mapping_cfg(mapping)
    extracted = {(context, ids if isinstance(ids, str) else ids[0])
                 for _file, _line, ids, _comments, context in
                 extract_from_dir(str(ROOT), method_map=methods, options_map=options, keywords=KEYWORDS)}
    listed = set(messages(catalog(TRANSLATIONS / "messages.pot")))
    assert extracted - listed == set(), "run the README's pybabel extract and update commands"
    assert listed - extracted == set(), "the template lists strings no code uses any more"


def test_every_string_has_a_spanish_translation_with_the_same_placeholders():
    template = messages(catalog(TRANSLATIONS / "messages.pot"))
    spanish = catalog(TRANSLATIONS / "es" / "LC_MESSAGES" / "messages.po")
    translated = messages(spanish)
    for key, source in template.items():
        found = translated.get(key)
        assert found is not None and not found.fuzzy, f"no Spanish for {key}"
        forms = found.string if isinstance(found.string, tuple) else (found.string,)
        assert forms and all(form.strip() for form in forms), f"empty Spanish for {key}"
        ids = source.id if isinstance(source.id, tuple) else (source.id,)
        wanted = set().union(*(PLACEHOLDER.findall(i) for i in ids))
        for form in forms:
            assert set(PLACEHOLDER.findall(form)) <= wanted, (key, form)
            assert set(PLACEHOLDER.findall(form)) >= wanted - {"num"}, (key, form)  # "1 idioma" may say "un"
            assert "%" not in PLACEHOLDER.sub("", form).replace("%%", ""), (key, form)  # templates format every string
    assert [error for _message, errors in spanish.check() for error in errors] == []


def test_pages_show_counts_in_the_right_plural_in_each_language(client, aviso, staff, families):
    sign_in(client, aviso, ADMIN)  # an admin sees every school: Belmont has 4 families, Venice 1
    english = client.get("/dashboard/").text
    assert "4 subscribers" in english and "1 subscriber<" in english
    post(client, "/dashboard/language", {"lang": "es", "next": "/dashboard/"})
    spanish = client.get("/dashboard/")
    assert spanish.status_code == 200 and '<html lang="es">' in spanish.text
    assert "4 suscriptores" in spanish.text and "1 suscriptor<" in spanish.text
    assert "Mis escuelas" in spanish.text and "Sesión de District Admin (administrador)" in spanish.text


def test_the_language_switch_offers_the_other_languages_by_their_own_names(client, aviso, staff):
    sign_in(client, aviso, SENDER)
    assert 'value="es" lang="es">Español</button>' in client.get("/dashboard/").text
    post(client, "/dashboard/language", {"lang": "es"})
    assert 'value="en" lang="en">English</button>' in client.get("/dashboard/").text
    post(client, "/dashboard/language", {"lang": "ko"})  # not offered: nothing changes
    assert '<html lang="es">' in client.get("/dashboard/").text


@pytest.mark.parametrize(("accept", "greeting"), [("en-US", "Aviso staff sign-in code"),
                                                  ("es-MX,es", "Codigo de acceso de Aviso")])
def test_the_sign_in_code_text_is_one_gsm7_segment_in_each_language(client, aviso, staff, accept, greeting):
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = accept
    _, code = ask_code(client, aviso, SENDER)
    body = next(m["body"] for m in reversed(aviso.sender.messages_for(parse_address(SENDER)))
                if code in m["body"])
    count = segments.count(body)
    assert body.startswith(greeting) and (count.encoding, count.segments) == ("GSM-7", 1), body


@pytest.fixture
def french_catalog(tmp_path, monkeypatch):
    """What a district does to add French: init a catalog from the template, translate, compile; no Python."""
    folder = tmp_path / "translations"
    shutil.copytree(TRANSLATIONS, folder)
    french = catalog(TRANSLATIONS / "messages.pot")
    french.locale = "fr"
    for message in french:
        if message.id == "Staff sign-in":
            message.string = "Connexion du personnel"
    target = folder / "fr" / "LC_MESSAGES"
    target.mkdir(parents=True)
    with (target / "messages.mo").open("wb") as file:
        write_mo(file, french)
    monkeypatch.setattr(dashboard_languages, "TRANSLATIONS", folder)
    return folder


def test_a_district_adds_a_staff_language_with_a_catalog_and_a_setting(french_catalog, settings):
    environ = {"AVISO_ENV": "development", "AVISO_DASHBOARD_LANGUAGES": "en,es,fr",
               "AVISO_DATA_DIR": str(settings.data_dir), "AVISO_SECRET_KEY": settings.secret_key}
    offered = load_settings(environ, dotenv_path=None).dashboard_languages
    app = create_app(settings.with_overrides(dashboard_languages=offered))
    page = app.test_client().get("/dashboard/login", headers={"Accept-Language": "fr-CA,fr"}).text
    assert '<html lang="fr">' in page and "Connexion du personnel" in page
    assert "Text me a code" in page  # what the French catalog does not translate yet stays English
    assert 'lang="es">Español</button>' in page and 'lang="en">English</button>' in page


def test_an_offered_language_without_a_compiled_catalog_stops_startup_in_one_line(french_catalog, settings):
    (french_catalog / "fr" / "LC_MESSAGES" / "messages.mo").unlink()
    with pytest.raises(ConfigError) as error:
        create_app(settings.with_overrides(dashboard_languages=("en", "es", "fr")))
    message = str(error.value)
    assert "'fr'" in message and "pybabel compile" in message and "\n" not in message


def test_gunicorn_refuses_to_start_without_the_catalog_of_an_offered_language(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "AVISO_ENV": "development", "AVISO_DATA_DIR": str(tmp_path),
           "HOME": str(tmp_path), "AVISO_DASHBOARD_LANGUAGES": "en,es,ko", "PORT": "0"}
    command = [sys.executable, "-m", "gunicorn", "--config", "python:bot.gunicorn_conf", "bot:create_app()"]
    result = subprocess.run(command,
                            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "aviso: configuration error: AVISO_DASHBOARD_LANGUAGES offers 'ko'" in result.stderr


def test_the_compiled_catalog_is_what_the_app_reads(tmp_path):
    """The bootstrap compiles catalogs; a .mo written from the .po gives the same Spanish (no stale build)."""
    spanish = catalog(TRANSLATIONS / "es" / "LC_MESSAGES" / "messages.po")
    fresh = io.BytesIO()
    write_mo(fresh, spanish)
    assert fresh.getvalue() == (TRANSLATIONS / "es" / "LC_MESSAGES" / "messages.mo").read_bytes()
