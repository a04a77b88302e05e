"""The Bots REST v1 routes (http-api.md §7.1–7.3): parse, call one service or selector, render."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response

from agents.lifecycle import current_config_for_request
from agents.selectors import bot_id_resolve
from agents.views import AliasPathMixin
from bots import selectors, services
from bots.rest.serializers import BotSerializer
from core.api import ApiView, ContractCharField, ContractSerializer, error_responses
from core.http import query_value

CHANNEL_PARAMETER = OpenApiParameter("channel", str, description="csgclaw (default) or feishu")


class BotsView(ApiView):
    class InputSerializer(ContractSerializer):
        """The body of a bot creation (http-api.md §7.2)."""

        name = ContractCharField()
        role = ContractCharField()
        channel = ContractCharField()
        id = ContractCharField(source="bot_id")
        description = ContractCharField()
        # Accepted for upstream's clients and ignored, but a value of another type is still a decode error.
        model_id = ContractCharField()

    @extend_schema(
        parameters=[CHANNEL_PARAMETER, OpenApiParameter("role", str, description="manager or worker")],
        responses={200: BotSerializer(many=True), **error_responses(400)},
        summary="List bots",
    )
    def get(self, request):
        bots = selectors.bot_list(channel=query_value(request, "channel"), role=query_value(request, "role"))
        return Response(BotSerializer(bots, many=True).data)

    @extend_schema(
        request=InputSerializer,
        responses={201: BotSerializer, **error_responses(400, 413, 503)},
        summary="Create or update a bot",
    )
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        bot = services.bot_create(
            config=current_config_for_request(),
            name=data["name"],
            role=data["role"],
            channel=data["channel"],
            bot_id=data["bot_id"],
            description=data["description"],
        )
        return Response(BotSerializer(bot).data, status=201)


class BotDetailView(AliasPathMixin, ApiView):
    """The path id is the bot's id, or a name of its agent (participants.md §1.3): `pt-alice` for the bot
    `u-alice`. An id that names no bot is not found, with the id as given."""

    path_aliases = {"bot_id": bot_id_resolve}

    @extend_schema(
        parameters=[CHANNEL_PARAMETER],
        responses={204: None, **error_responses(400, 404)},
        summary="Delete a bot",
    )
    def delete(self, request, bot_id: str):
        services.bot_delete(bot_id=bot_id, channel=query_value(request, "channel"))
        return Response(status=204)
