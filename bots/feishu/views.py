"""`POST /api/v1/channels/feishu/messages` (http-api.md §8.1): send into a Feishu chat as a bot.

Security S9: the route needs the server token as bearer, like the Feishu relay stream; checked after the
method and before the body is read.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from agents.credentials import auth_disabled, bearer_token, is_server_token
from bots.feishu.relay import feishu_message_send
from core.api import ApiView, ContractCharField, ContractSerializer, error_responses
from core.http import ApiError
from im.serializers import MessageSerializer


class FeishuMessagesView(ApiView):
    class InputSerializer(ContractSerializer):
        """The body of a Feishu send (http-api.md §8.1)."""

        room_id = ContractCharField()
        sender_id = ContractCharField()
        content = ContractCharField()
        mention_id = ContractCharField()

    @extend_schema(
        request=InputSerializer,
        # The sent message has an IM message's shape; the relay frame carries the same object (`data()`).
        responses={201: MessageSerializer, **error_responses(400, 401, 413)},
        summary="Send into a Feishu chat as a bot",
    )
    def post(self, request):
        if not auth_disabled() and not is_server_token(
            bearer_token(request.headers.get("Authorization", ""))
        ):
            raise ApiError(401, "unauthorized")
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        message = feishu_message_send(**serializer.validated_data)
        return Response(message.data(), status=201)
