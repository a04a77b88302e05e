"""`POST /api/v1/channels/feishu/messages` (http-api.md §8.1): send into a Feishu chat as a bot.

Security S9: the route needs the server token as bearer, like the Feishu relay stream; checked after the
method and before the body is read.
"""

from __future__ import annotations

from rest_framework.response import Response

from agents.credentials import auth_disabled, bearer_token, is_server_token
from bots.feishu.relay import feishu_message_send
from core.http import ApiError, ApiView, parse_json_body


class FeishuMessagesView(ApiView):
    def post(self, request):
        if not auth_disabled() and not is_server_token(
            bearer_token(request.headers.get("Authorization", ""))
        ):
            raise ApiError(401, "unauthorized")
        body = parse_json_body(request, strings=("room_id", "sender_id", "content", "mention_id"))
        message = feishu_message_send(
            room_id=body.get("room_id", ""),
            sender_id=body.get("sender_id", ""),
            content=body.get("content", ""),
            mention_id=body.get("mention_id", ""),
        )
        return Response(message.data(), status=201)
