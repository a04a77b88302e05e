"""REST routes of threads (threads-attachments.md §1.6–§1.8) and the body fields a thread reply adds to a
message send (§1.4): parse, call one service or selector, render."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.response import Response

from core.api import (
    ApiView,
    ContractCharField,
    ContractField,
    ContractSerializer,
    WireSerializer,
    error_responses,
)
from core.errors import Invalid
from core.http import field_type_text, query_value
from im import thread_selectors
from im.serializers import MessageSerializer
from im.services import threads as thread_services

INCLUDE_ALL = "all"
INCLUDE_PARTICIPATED = "participated"


@extend_schema_field({"type": "object", "nullable": True, "additionalProperties": True})
class ContractObjectField(ContractField):
    """A JSON object; absent or null is None."""

    expected = "an object"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(default=None, **kwargs)

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise self.type_error()
        return data


@extend_schema_field(
    {
        "type": "object",
        "nullable": True,
        "properties": {"rel_type": {"type": "string"}, "event_id": {"type": "string"}},
    }
)
class RelatesToField(ContractObjectField):
    """`{"rel_type", "event_id"}` of a reply (§1.4), both strings (absent or null = "")."""

    def to_internal_value(self, data: Any) -> dict[str, str]:
        relation = super().to_internal_value(data)
        parsed = {}
        for key in ("rel_type", "event_id"):
            value = relation.get(key)
            if value is not None and not isinstance(value, str):
                raise serializers.ValidationError(field_type_text(key, "a string"), code="invalid")
            parsed[key] = value or ""
        return parsed


class ThreadContextSummarySerializer(WireSerializer):
    root_excerpt = serializers.CharField()
    message_count = serializers.IntegerField()
    before_count = serializers.IntegerField()
    after_count = serializers.IntegerField()


class ThreadParticipantSerializer(WireSerializer):
    id = serializers.CharField()
    name = serializers.CharField(required=False)


class ThreadSummarySerializer(WireSerializer):
    """ThreadSummary (§1.2); documents the dict the selectors build."""

    root_id = serializers.CharField()
    reply_count = serializers.IntegerField()
    latest_reply = MessageSerializer(required=False)
    participants = ThreadParticipantSerializer(many=True)
    current_user_participated = serializers.BooleanField()
    context_summary = ThreadContextSummarySerializer()


class ThreadViewSerializer(WireSerializer):
    """ThreadView (§1.2); `context` only in single views and events."""

    room_id = serializers.CharField()
    root = MessageSerializer()
    context = MessageSerializer(many=True, required=False)
    replies = MessageSerializer(many=True)
    summary = ThreadSummarySerializer()


class ThreadPageSerializer(WireSerializer):
    threads = ThreadViewSerializer(many=True)
    next_from = serializers.CharField(required=False)


class ThreadRelationsSerializer(WireSerializer):
    chunk = MessageSerializer(many=True)


def _offset(request, name: str) -> int:
    """A paging number of §1.7: blank = 0, otherwise ASCII digits only."""
    value = query_value(request, name)
    if not value:
        return 0
    if not (value.isascii() and value.isdigit()):
        raise Invalid(f"invalid {name}")
    return int(value)


class ThreadsView(ApiView):
    collection_methods = ("get",)

    class InputSerializer(ContractSerializer):
        """The body of a thread start (§1.6); `room_id` is ignored, the path wins."""

        root_message_id = ContractCharField()
        room_id = ContractCharField()

    @extend_schema(
        parameters=[
            OpenApiParameter("include", str, enum=[INCLUDE_ALL, INCLUDE_PARTICIPATED]),
            OpenApiParameter("limit", int),
            OpenApiParameter("from", int),
        ],
        responses={200: ThreadPageSerializer, **error_responses(400, 404)},
        summary="List a room's threads",
    )
    def get(self, request, room_id: str):
        limit = _offset(request, "limit")
        offset = _offset(request, "from")
        include = query_value(request, "include").lower()
        if include not in ("", INCLUDE_ALL, INCLUDE_PARTICIPATED):
            raise Invalid("invalid include")
        page = thread_selectors.thread_list(
            room_id=room_id, participated_only=include == INCLUDE_PARTICIPATED, offset=offset, limit=limit
        )
        return Response(page)

    @extend_schema(
        request=InputSerializer,
        responses={
            201: ThreadViewSerializer,
            200: ThreadViewSerializer,  # the thread existed already: returned unchanged
            **error_responses(400, 404, 413),
        },
        summary="Start a thread from a message",
    )
    def post(self, request, room_id: str):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        started = thread_services.thread_start(
            room_id=room_id, root_message_id=serializer.validated_data["root_message_id"]
        )
        return Response(started.view, status=201 if started.created else 200)


class ThreadDetailView(ApiView):
    @extend_schema(responses={200: ThreadViewSerializer, **error_responses(400, 404)}, summary="Get a thread")
    def get(self, request, room_id: str, root_message_id: str):
        return Response(thread_selectors.thread_get(room_id=room_id, root_message_id=root_message_id))


class ThreadRelationsView(ApiView):
    @extend_schema(
        responses={200: ThreadRelationsSerializer, **error_responses(400, 404)},
        summary="List the replies of a thread (Matrix relations)",
    )
    def get(self, request, room_id: str, event_id: str):
        replies = thread_selectors.thread_relations(room_id=room_id, root_message_id=event_id)
        return Response({"chunk": replies})
