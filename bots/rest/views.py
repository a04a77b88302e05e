"""The Bots REST v1 routes (http-api.md §7.1–7.3): parse, call one service or selector, render."""

from __future__ import annotations

from rest_framework.response import Response

from agents.lifecycle import current_config_for_request
from bots import selectors, services
from bots.rest.serializers import BotSerializer
from core.http import ApiView, parse_json_body, query_value


class BotsView(ApiView):
    def get(self, request):
        bots = selectors.bot_list(channel=query_value(request, "channel"), role=query_value(request, "role"))
        return Response(BotSerializer(bots, many=True).data)

    def post(self, request):
        body = parse_json_body(request, strings=("name", "role", "channel", "id", "description", "model_id"))
        bot = services.bot_create(
            config=current_config_for_request(),
            name=body.get("name", ""),
            role=body.get("role", ""),
            channel=body.get("channel", ""),
            bot_id=body.get("id", ""),
            description=body.get("description", ""),
        )
        return Response(BotSerializer(bot).data, status=201)


class BotDetailView(ApiView):
    def delete(self, request, bot_id: str):
        services.bot_delete(bot_id=bot_id, channel=query_value(request, "channel"))
        return Response(status=204)
