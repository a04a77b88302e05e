"""REST routes of the built-in IM: parse, call one service or selector, render (http-api.md §6)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from rest_framework.response import Response

from core.errors import Invalid
from core.http import ApiView, parse_json_body, query_value, request_locale
from im import selectors, services
from im.realtime import eventlog
from im.serializers import CURRENT_USER_ID, MessageSerializer, RoomSerializer, UserSerializer


async def healthz(request: HttpRequest) -> HttpResponse:
    """No database and no thread hop: a load balancer may call this often."""
    return HttpResponse("ok", content_type="text/plain; charset=utf-8")


class BootstrapView(ApiView):
    def get(self, request):
        # Read the cursor before the state: replaying from it may repeat, but never miss, an event.
        last_event_id = eventlog.event_newest_seq()
        return Response(
            {
                "current_user_id": CURRENT_USER_ID,
                "users": UserSerializer(selectors.user_list(), many=True).data,
                "rooms": RoomSerializer(selectors.room_list(), many=True).data,
                "last_event_id": last_event_id,
            }
        )


class RoomCreateView(ApiView):
    def post(self, request):
        body = parse_json_body(
            request,
            strings=("title", "creator_id", "description", "locale"),
            string_lists=("member_ids", "participant_ids"),
        )
        room = services.room_create(
            creator_id=body.get("creator_id", ""),
            title=body.get("title", ""),
            member_ids=body.get("member_ids"),
            participant_ids=body.get("participant_ids"),
            description=body.get("description", ""),
            locale=request_locale(request, body.get("locale", "")),
        )
        return Response(RoomSerializer(room).data, status=201)


class RoomsView(RoomCreateView):
    def get(self, request):
        return Response(RoomSerializer(selectors.room_list(), many=True).data)


class RoomDetailView(ApiView):
    def delete(self, request, room_id: str):
        services.room_delete(room_id=room_id)
        return Response(status=204)


def _invite(request, *, room_in_path: str | None = None) -> Response:
    """§6.5 names the room in the path; a body room_id, if any, must name the same one."""
    body = parse_json_body(request, strings=("room_id", "inviter_id", "locale"), string_lists=("user_ids",))
    room_id = body.get("room_id", "")
    if room_in_path is not None:
        if room_id.strip() and room_id.strip() != room_in_path:
            raise Invalid("room_id does not match path room id")
        room_id = room_in_path
    room = services.room_invite(
        room_id=room_id,
        inviter_id=body.get("inviter_id", ""),
        user_ids=body.get("user_ids"),
        locale=request_locale(request, body.get("locale", "")),
    )
    return Response(RoomSerializer(room).data)


class RoomInviteView(ApiView):
    def post(self, request):
        return _invite(request)


class RoomMembersView(ApiView):
    def get(self, request, room_id: str):
        room = selectors.room_get(room_id)
        return Response(UserSerializer(selectors.room_members(room), many=True).data)

    def post(self, request, room_id: str):
        return _invite(request, room_in_path=room_id)


class UsersView(ApiView):
    def get(self, request):
        return Response(UserSerializer(selectors.user_list(), many=True).data)


class UserDetailView(ApiView):
    def delete(self, request, user_id: str):
        services.user_delete(user_id=user_id)
        return Response(status=204)


class MessageSendView(ApiView):
    def post(self, request):
        body = parse_json_body(
            request, strings=("room_id", "sender_id", "content", "mention_id", "client_msg_id")
        )
        sent = services.message_send(
            room_id=body.get("room_id", ""),
            sender_id=body.get("sender_id", ""),
            content=body.get("content", ""),
            mention_id=body.get("mention_id", ""),
            client_msg_id=body.get("client_msg_id", ""),
        )
        return Response(MessageSerializer(sent.message).data, status=201 if sent.created else 200)


class MessagesView(MessageSendView):
    def get(self, request):
        messages = selectors.message_list(query_value(request, "room_id"))
        return Response(MessageSerializer(messages, many=True).data)
