"""Form parsing and signatures: Aviso's fast paths give exactly what werkzeug and twilio's library give."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest
from twilio.request_validator import RequestValidator
from werkzeug.datastructures import MultiDict

from bot.web.forms import parse_urlencoded
from bot.web.webhook import expected_signature

BODIES = [
    "From=%2B12135550123&To=%2B12135550100&Body=DERECHOS&NumMedia=0",
    "Body=hola+mundo+%C2%BFqu%C3%A9%3F&From=whatsapp%3A%2B5215512345678",
    "Body=&Empty&&=lonely&a=1&a=2&a=1",
    "Body=%F0%9F%98%80+%26+%3D+%25&X=y%2",
    "Body=%ff%fe+bad+utf8&Other=%E9t%E9",
    "Body=a%00b&%41=%42",
    "",
]


@pytest.mark.parametrize("body", BODIES)
def test_urlencoded_bodies_parse_exactly_as_werkzeug_parses_them(body):
    assert parse_urlencoded(body) == parse_qsl(body, keep_blank_values=True, errors="werkzeug.url_quote")


@pytest.mark.parametrize("body", BODIES)
def test_signature_is_the_one_twilios_library_computes(body):
    params = MultiDict(parse_urlencoded(body))
    url = "https://aviso.example.org/twilio/messages?school=belmont"
    library = RequestValidator("token-0123456789").compute_signature(url, params)
    assert expected_signature(b"token-0123456789", url, params.items(multi=True)).decode() == library


def test_a_form_posted_to_the_app_reads_the_same_fields(app):
    with app.test_request_context("/twilio/messages", method="POST", data={"Body": "¿qué? a+b", "N": ["1", "2"]}):
        from flask import request

        assert request.form.getlist("N") == ["1", "2"]
        assert request.form["Body"] == "¿qué? a+b"
