"""core/api.py through the real REST routes: the parser's texts, the fields' check order, the shared bits.

The routes are reached by URL only: core imports none of the apps, its tests neither.
"""

from __future__ import annotations

import json

import pytest
from django.test import RequestFactory
from django.urls import resolve
from rest_framework import serializers

from core import errors
from core.api import ContractCharField, ContractSerializer, ContractStringListField, WireSerializer
from core.config import clear_config_cache
from core.http import STATUS_BY_ERROR_CODE, field_type_text, response_for_exception

pytestmark = pytest.mark.timeout(30)

TOKEN = "api-test-server-token"
STRING = ContractCharField.expected
STRINGS = ContractStringListField.expected

# Every write route with its known body fields in check order (the order of http-api.md's field tables;
# strings before string arrays where a route has both, as upstream's decoder checks them).
ROOM_FIELDS = [
    ("title", STRING),
    ("creator_id", STRING),
    ("description", STRING),
    ("locale", STRING),
    ("member_ids", STRINGS),
    ("participant_ids", STRINGS),
]
INVITE_FIELDS = [("room_id", STRING), ("inviter_id", STRING), ("locale", STRING), ("user_ids", STRINGS)]
WRITE_ROUTES = {
    "/api/v1/rooms": ROOM_FIELDS,
    "/api/v1/im/rooms": ROOM_FIELDS,
    "/api/v1/im/conversations": ROOM_FIELDS,
    "/api/v1/rooms/invite": INVITE_FIELDS,
    "/api/v1/im/rooms/invite": INVITE_FIELDS,
    "/api/v1/im/conversations/members": INVITE_FIELDS,
    "/api/v1/rooms/{room}/members": INVITE_FIELDS,
    "/api/v1/messages": [
        ("room_id", STRING),
        ("sender_id", STRING),
        ("content", STRING),
        ("mention_id", STRING),
        ("client_msg_id", STRING),
    ],
    "/api/v1/im/messages": [
        ("room_id", STRING),
        ("sender_id", STRING),
        ("content", STRING),
        ("mention_id", STRING),
        ("client_msg_id", STRING),
    ],
    "/api/v1/agents": [
        ("name", STRING),
        ("id", STRING),
        ("description", STRING),
        ("profile", STRING),
        ("runtime", STRING),
    ],
    "/api/v1/im/agents/join": [
        ("agent_id", STRING),
        ("room_id", STRING),
        ("inviter_id", STRING),
        ("locale", STRING),
    ],
    "/api/v1/bots": [
        ("name", STRING),
        ("role", STRING),
        ("channel", STRING),
        ("id", STRING),
        ("description", STRING),
        ("model_id", STRING),
    ],
    "/api/v1/channels/feishu/messages": [
        ("room_id", STRING),
        ("sender_id", STRING),
        ("content", STRING),
        ("mention_id", STRING),
    ],
}
WRONG_VALUE = {STRING: 7, STRINGS: ["ok", 7]}


@pytest.fixture(autouse=True)
def server_token(settings, tmp_path):
    """The Feishu send needs the server token; a config that names one is also a loadable config."""
    settings.CSGCLAW_CONFIG = tmp_path / "config.toml"
    settings.CSGCLAW_CONFIG.write_text(f'[server]\naccess_token = "{TOKEN}"\n')
    clear_config_cache()
    yield
    clear_config_cache()


def _post(client, path: str, body):
    # A form content type: the body is JSON whatever the request says (http-api.md §1.2).
    return client.post(
        path.replace("{room}", "room-any"),
        data=json.dumps(body),
        content_type="application/x-www-form-urlencoded",
        headers={"Authorization": f"Bearer {TOKEN}"},
    )


def _error_text(response) -> str:
    assert response["Content-Type"] == "text/plain; charset=utf-8", response.content
    return response.content.decode().removesuffix("\n")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "first"),
    [(path, index) for path, fields in WRITE_ROUTES.items() for index in range(len(fields))],
)
def test_the_first_wrong_field_in_check_order_is_the_answer(client, path, first):
    # Every field from `first` on has the wrong type; those before it are absent, which alone would
    # fail a later business check ("… is required"): the decode check comes first.
    fields = WRITE_ROUTES[path]
    body = {name: WRONG_VALUE[expected] for name, expected in reversed(fields[first:])}

    response = _post(client, path, body)

    name, expected = fields[first]
    assert (response.status_code, _error_text(response)) == (400, field_type_text(name, expected))


@pytest.mark.django_db
@pytest.mark.parametrize("path", sorted(WRITE_ROUTES))
def test_nulls_everywhere_are_absent_fields_not_decode_errors(client, path):
    body = dict.fromkeys((name for name, _ in WRITE_ROUTES[path]), None)

    response = _post(client, path, body)

    assert not _error_text(response).startswith("decode request:")


def _view_answer(path: str, raw: bytes, *, content_length: str | None):
    request = RequestFactory().generic("POST", path, data=raw, content_type="application/json")
    request.META.pop("CONTENT_LENGTH", None)
    if content_length is not None:
        request.META["CONTENT_LENGTH"] = content_length
    match = resolve(path)
    return match.func(request, *match.args, **match.kwargs)


@pytest.mark.django_db
def test_a_body_without_content_length_is_still_read(client):
    # A chunked request has no Content-Length; DRF alone would treat its body as empty.
    response = _view_answer("/api/v1/rooms", b'{"title": 7}', content_length=None)

    assert (response.status_code, _error_text(response)) == (400, field_type_text("title", STRING))


@pytest.mark.django_db
@pytest.mark.parametrize("content_length", ["0", None])
def test_an_empty_body_is_eof_with_or_without_content_length(content_length):
    response = _view_answer("/api/v1/messages", b"", content_length=content_length)

    assert (response.status_code, _error_text(response)) == (400, "decode request: EOF")


class _TwoFields(ContractSerializer):
    first = ContractCharField()
    second = ContractStringListField()


def test_absent_and_null_fields_take_their_defaults():
    serializer = _TwoFields(data={"first": None, "unknown": {"any": 1}})

    assert serializer.is_valid()
    assert serializer.validated_data == {"first": "", "second": None}


def test_a_null_array_element_counts_as_an_empty_string():
    serializer = _TwoFields(data={"second": ["a", None]})

    assert serializer.is_valid()
    assert serializer.validated_data["second"] == ["a", ""]


class _Shape(WireSerializer):
    name = serializers.CharField()
    note = serializers.CharField(required=False)
    tags = serializers.ListField(child=serializers.CharField())
    size = serializers.SerializerMethodField()

    def get_size(self, shape: dict) -> int:
        return len(shape["tags"])


FULL = {"name": "a", "note": "n", "tags": ["x"]}


@pytest.mark.parametrize(
    ("shape", "wire"),
    [
        (FULL, [("name", "a"), ("note", "n"), ("tags", ["x"]), ("size", 1)]),
        # Empty optional keys are left out; empty required and method keys stay.
        ({"name": "", "note": "", "tags": []}, [("name", ""), ("tags", []), ("size", 0)]),
        ({"name": "a", "tags": []}, [("name", "a"), ("tags", []), ("size", 0)]),
    ],
)
def test_wire_keys_come_in_declared_order_and_empty_optional_ones_are_left_out(shape, wire):
    assert list(_Shape(shape).data.items()) == wire


def test_output_fields_are_built_once_per_class_and_shared_safely():
    # Building them per object costs more than rendering it (FieldsOncePerClass).
    assert _Shape().fields is _Shape().fields
    names = [_Shape(shape).data["name"] for shape in (FULL, {"name": "b", "tags": []})]
    assert names == ["a", "b"]


def test_error_codes_are_stable_strings():
    assert {code.name: code.value for code in errors.ErrorCode} == {
        "INVALID": "invalid",
        "NOT_FOUND": "not_found",
        "CONFLICT": "conflict",
        "UPSTREAM_FAILED": "upstream_failed",
        "UNAVAILABLE": "unavailable",
    }


@pytest.mark.parametrize(
    ("error_class", "code", "status"),
    [
        (errors.Invalid, errors.ErrorCode.INVALID, 400),
        (errors.NotFound, errors.ErrorCode.NOT_FOUND, 404),
        (errors.Conflict, errors.ErrorCode.CONFLICT, 409),
        (errors.UpstreamFailed, errors.ErrorCode.UPSTREAM_FAILED, 502),
        (errors.Unavailable, errors.ErrorCode.UNAVAILABLE, 503),
    ],
)
def test_each_domain_error_has_a_code_and_the_code_a_status(rf, error_class, code, status):
    request = rf.get("/api/v1/rooms", HTTP_ACCEPT="application/json")

    response = response_for_exception(request, error_class("it went wrong"))

    assert error_class.code is code
    assert STATUS_BY_ERROR_CODE[code] == status
    # The code is for code and docs only: the wire keeps status and message.
    assert response.status_code == status
    assert response.content == f'{{"error": {{"status": {status}, "message": "it went wrong"}}}}'.encode()
