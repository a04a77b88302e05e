"""The DRF layer of the JSON REST routes: the contract's body parser, body fields, serializers, base view."""

from __future__ import annotations

from typing import Any, ClassVar

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema_field
from rest_framework import serializers
from rest_framework.fields import SkipField, empty
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.utils.serializer_helpers import BindingDict
from rest_framework.views import APIView

from core.http import (
    BODY_TOO_LARGE_TEXT,
    DEFAULT_BODY_LIMIT,
    STATUS_BY_ERROR_CODE,
    decode_json_object,
    field_type_text,
    path_id,
    read_limited,
)


class ContractJSONParser(BaseParser):
    """A JSON object body as http-api.md §1.2 decodes it, failing with the contract's exact texts.

    413 over 1 MiB (never truncated), `decode request: …` for anything that is not one JSON object, NUL and
    lone surrogates turned into U+FFFD. Its media type is what the schema documents; requests of any
    Content-Type reach it (ContractNegotiation).
    """

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None) -> dict[str, Any]:
        meta = parser_context["request"].META
        return decode_json_object(read_limited(stream, meta.get("CONTENT_LENGTH"), DEFAULT_BODY_LIMIT))


class ContractNegotiation(BaseContentNegotiation):
    """Every body is decoded as JSON whatever its Content-Type, and every success answer is JSON whatever
    the Accept header says (as upstream): DRF would answer 415 or 406, which the contract does not have."""

    def select_parser(self, request, parsers):
        return parsers[0]

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class ContractRequest(Request):
    """A DRF request that hands every body to the parser.

    DRF skips parsing when Content-Length is 0 or absent and hands the view `{}`; the contract answers an
    empty body with `decode request: EOF`, and a chunked body (no Content-Length at all) is a body like any
    other.
    """

    def _load_stream(self) -> None:
        self._stream = self._request


class FieldsOncePerClass:
    """Builds a serializer's bound fields once per class instead of once per instance.

    DRF deep-copies every declared field for each serializer it creates (about 60 µs for eight fields,
    against 10 µs to render them), and one message send renders three objects. Sharing is safe because these
    fields keep no per-request state: they read no context, and a method field's method is called on the
    class's template instance, so it must depend on its argument only.
    """

    @property
    def fields(self) -> BindingDict:
        cls = type(self)
        fields = cls.__dict__.get("_class_fields")
        if fields is None:
            template = cls()
            fields = BindingDict(template)
            for name, field in template.get_fields().items():
                fields[name] = field
            cls._class_fields = fields
        return fields


class ContractField(serializers.Field):
    """A known body field: absent or JSON null means its default; a value of another type is a decode
    error that names the field (http-api.md §1.2). Values are not trimmed here: services trim and check."""

    expected: ClassVar[str]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(required=False, **kwargs)

    def validate_empty_values(self, data: Any) -> tuple[bool, Any]:
        if data is empty or data is None:
            return True, self.get_default()
        return False, data

    def type_error(self) -> serializers.ValidationError:
        return serializers.ValidationError(field_type_text(self.field_name, self.expected), code="invalid")

    def to_representation(self, value: Any) -> Any:
        return value


@extend_schema_field({"type": "string", "nullable": True})
class ContractCharField(ContractField):
    expected = "a string"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(default="", **kwargs)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            raise self.type_error()
        return data


@extend_schema_field({"type": "array", "items": {"type": "string", "nullable": True}, "nullable": True})
class ContractStringListField(ContractField):
    """A string array; absent stays None (services tell "not given" from "empty"), a null element is ""."""

    expected = "an array of strings"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(default=None, **kwargs)

    def to_internal_value(self, data: Any) -> list[str]:
        if not isinstance(data, list) or not all(item is None or isinstance(item, str) for item in data):
            raise self.type_error()
        return ["" if item is None else item for item in data]


class ContractSerializer(FieldsOncePerClass, serializers.Serializer):
    """Input: a route's known body fields, checked in declared order; unknown fields are ignored.

    The first failing field is the answer (core.http renders a ValidationError as its first message), so the
    declaration order is the contract's check order.
    """


class WireSerializer(FieldsOncePerClass, serializers.Serializer):
    """Output: an object in its wire shape, keys in declared order.

    A field declared with `required=False` is optional on the wire: left out when its value is empty, as
    the contract omits empty optional keys (and the schema does not list it as required). Read-only fields
    (method fields, times) are never required in DRF's sense and always present.
    """

    def to_representation(self, instance: Any) -> dict[str, Any]:
        # DRF's loop over a per-class list that also knows which keys are optional: a third cheaper per
        # object (measured on a message), and the send path renders three objects per request.
        data = {}
        for field, optional in self._wire_plan():
            try:
                value = field.get_attribute(instance)
            except SkipField:
                continue
            if value is not None:
                value = field.to_representation(value)
            if value or not optional:
                data[field.field_name] = value
        return data

    @classmethod
    def _wire_plan(cls) -> list[tuple[serializers.Field, bool]]:
        plan = cls.__dict__.get("_class_wire_plan")
        if plan is None:
            readable = [field for field in cls().fields.values() if not field.write_only]
            plan = [(field, not (field.required or field.read_only)) for field in readable]
            cls._class_wire_plan = plan
        return plan


class ErrorDetailSerializer(serializers.Serializer):
    status = serializers.IntegerField()
    message = serializers.CharField()


class ErrorBodySerializer(serializers.Serializer):
    """The JSON form of an error, sent when the request's Accept lists application/json (http-api.md §1.3)."""

    error = ErrorDetailSerializer()


# What each documented error status means; the statuses of domain errors name their stable code.
_HTTP_ERROR_TEXTS = {
    401: "unauthorized",
    403: "forbidden",
    413: BODY_TOO_LARGE_TEXT,
    416: "requested range not satisfiable",
}


def _error_description(status: int) -> str:
    codes = [code.value for code, mapped in STATUS_BY_ERROR_CODE.items() if mapped == status]
    return ", ".join(codes) if codes else _HTTP_ERROR_TEXTS[status]


def error_responses(*statuses: int) -> dict[tuple[int, str], OpenApiResponse]:
    """The schema of a route's error answers: plain text (message + newline), or JSON when asked for."""
    responses: dict[tuple[int, str], OpenApiResponse] = {}
    for status in statuses:
        description = _error_description(status)
        responses[(status, "text/plain")] = OpenApiResponse(OpenApiTypes.STR, description=description)
        responses[(status, "application/json")] = OpenApiResponse(
            ErrorBodySerializer, description=description
        )
    return responses


class ApiView(APIView):
    """Base of every JSON REST route: contract bodies and errors, 404 before 405, no HEAD/OPTIONS, no auth."""

    http_method_names = ["get", "post", "put", "patch", "delete"]
    parser_classes = [ContractJSONParser]
    renderer_classes = [JSONRenderer]
    content_negotiation_class = ContractNegotiation

    def initialize_request(self, request, *args: Any, **kwargs: Any) -> ContractRequest:
        return ContractRequest(
            request,
            parsers=self.get_parsers(),
            authenticators=self.get_authenticators(),
            negotiator=self.get_content_negotiator(),
            parser_context=self.get_parser_context(request),
        )

    def initial(self, request, *args: Any, **kwargs: Any) -> None:
        # Path ids are checked before the method so that a bad path is 404 even for a wrong method.
        for name, value in kwargs.items():
            self.kwargs[name] = path_id(value)
        super().initial(request, *args, **kwargs)
