"""The participant list and detail routes (participants.md §4.1), and those not implemented here (§4.2
create/update/delete, §4.3 notifications).

For the upstream web UI and the in-box `csgclaw-cli`; the reads are in bots/participants/selectors.py. No
auth, as upstream. Check order: 404 (path: an empty id or a channel other than csgclaw/feishu) → 405 → the
route's own.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from agents.models import BotChannel
from bots.participants.selectors import participant_get, participant_list
from core.api import ApiView, WireSerializer, error_responses
from core.errors import NotFound
from core.http import NOT_FOUND_TEXT, ApiError, query_value
from im.serializers import TimeField

NOTIFICATION_NOT_FOUND_TEXT = "notification participant not found"


class ParticipantSerializer(WireSerializer):
    """A participant (participants.md §4.1); empty strings are left out, as upstream's `omitempty`."""

    id = serializers.CharField()
    channel = serializers.CharField()
    type = serializers.CharField()
    name = serializers.CharField(required=False)
    channel_user_ref = serializers.CharField(required=False)
    channel_user_kind = serializers.CharField()
    agent_id = serializers.CharField(required=False)
    agent_name = serializers.CharField(required=False)
    user_id = serializers.CharField(required=False)
    user_name = serializers.CharField(required=False)
    lifecycle_status = serializers.CharField()
    mentionable = serializers.BooleanField()
    created_at = TimeField()
    updated_at = TimeField()


CHANNEL_PARAMETER = OpenApiParameter(
    "channel", str, OpenApiParameter.PATH, enum=[BotChannel.CSGCLAW.value, BotChannel.FEISHU.value]
)
PARTICIPANT_PARAMETER = OpenApiParameter(
    "participant_id",
    str,
    OpenApiParameter.PATH,
    description="csgclaw: `pt-<name>`, `u-<name>`, `agent-<name>` or the bare name; feishu: the bot's id",
)


class ParticipantChannelView(ApiView):
    """A route of a channel's participants: a channel other than `csgclaw` or `feishu` is not found."""

    def initial(self, request, *args, **kwargs) -> None:
        # After the path ids are trimmed and before the method is checked: 404 comes before 405.
        super().initial(request, *args, **kwargs)
        if self.kwargs["channel"] not in BotChannel.values:
            raise ApiError(404, NOT_FOUND_TEXT)


class ParticipantsView(ParticipantChannelView):
    """Derived from the admin and the agents (csgclaw) or from the stored Feishu bots (feishu)."""

    @extend_schema(
        parameters=[
            CHANNEL_PARAMETER,
            OpenApiParameter(
                "type", str, description="human, agent or notification; other values match none"
            ),
            OpenApiParameter(
                "agent_id", str, description="any name of an agent (`pt-alice`, `u-alice`, `alice`)"
            ),
        ],
        responses={200: ParticipantSerializer(many=True), **error_responses(404)},
        summary="List a channel's participants",
        # drf-spectacular names a GET under a path variable "retrieve", as it does the detail route.
        operation_id="channels_participants_list",
    )
    def get(self, request, channel: str):
        participants = participant_list(
            channel=channel,
            participant_type=query_value(request, "type"),
            agent_id=query_value(request, "agent_id"),
        )
        return Response(ParticipantSerializer(participants, many=True).data)


class ParticipantDetailView(ParticipantChannelView):
    """On csgclaw the id is resolved as participants.md §1.3 says; on feishu it is the exact bot id."""

    @extend_schema(
        parameters=[CHANNEL_PARAMETER, PARTICIPANT_PARAMETER],
        responses={200: ParticipantSerializer, **error_responses(404)},
        summary="Get a participant",
    )
    def get(self, request, channel: str, participant_id: str):
        return Response(
            ParticipantSerializer(participant_get(channel=channel, participant_id=participant_id)).data
        )


class ParticipantNotificationsView(ParticipantChannelView):
    """Upstream's webhook push to a notification participant (§4.3); none exist on this server."""

    @extend_schema(
        parameters=[CHANNEL_PARAMETER, PARTICIPANT_PARAMETER],
        request=None,
        responses=error_responses(404),
        summary="Push to a notification participant (there are none: always 404)",
    )
    def post(self, request, channel: str, participant_id: str):
        raise NotFound(NOTIFICATION_NOT_FOUND_TEXT)
