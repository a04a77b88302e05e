"""REST routes of the built-in IM: parse, call one service or selector, render (http-api.md §6)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from core.api import ApiView, ContractCharField, ContractSerializer, ContractStringListField, error_responses
from core.http import query_value, request_locale
from im import selectors, services
from im.attachments.multipart import (
    MULTIPART_SCHEMA,
    MessageBodyParser,
    check_attachment_limits,
    discard_uploads,
    message_upload,
    payload_errors,
)
from im.realtime import eventlog
from im.serializers import (
    CURRENT_USER_ID,
    BootstrapSerializer,
    MessageSerializer,
    RoomSerializer,
    UserSerializer,
)
from im.thread_views import ContractObjectField, RelatesToField

TRUE_WORDS = ("1", "true", "yes", "on")


async def healthz(request: HttpRequest) -> HttpResponse:
    """No database and no thread hop: a load balancer may call this often."""
    return HttpResponse("ok", content_type="text/plain; charset=utf-8")


class BootstrapView(ApiView):
    @extend_schema(responses={200: BootstrapSerializer}, summary="The workspace's users, rooms and cursor")
    def get(self, request):
        # Read the cursor before the state: replaying from it may repeat, but never miss, an event.
        last_event_id = eventlog.event_newest_seq()
        state = {
            "current_user_id": CURRENT_USER_ID,
            "users": selectors.user_list(),
            "rooms": selectors.room_list(),
            "last_event_id": last_event_id,
        }
        return Response(BootstrapSerializer(state).data)


class RoomCreateView(ApiView):
    class InputSerializer(ContractSerializer):
        """The body of a room creation (http-api.md §6.3)."""

        title = ContractCharField()
        creator_id = ContractCharField()
        description = ContractCharField()
        locale = ContractCharField()
        member_ids = ContractStringListField()
        participant_ids = ContractStringListField()

    @extend_schema(
        request=InputSerializer,
        responses={201: RoomSerializer, **error_responses(400, 413)},
        summary="Create a room",
    )
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        room = services.room_create(
            creator_id=data["creator_id"],
            title=data["title"],
            member_ids=data["member_ids"],
            participant_ids=data["participant_ids"],
            description=data["description"],
            locale=request_locale(request, data["locale"]),
        )
        return Response(RoomSerializer(room).data, status=201)


class RoomsView(RoomCreateView):
    @extend_schema(responses={200: RoomSerializer(many=True)}, summary="List rooms")
    def get(self, request):
        return Response(RoomSerializer(selectors.room_list(), many=True).data)


class RoomDetailView(ApiView):
    @extend_schema(responses={204: None, **error_responses(404)}, summary="Delete a room")
    def delete(self, request, room_id: str):
        services.room_delete(room_id=room_id)
        return Response(status=204)


class RoomInviteView(ApiView):
    class InputSerializer(ContractSerializer):
        """The body of an invitation (http-api.md §6.5, §6.6); §6.5 takes the room from the path."""

        room_id = ContractCharField()
        inviter_id = ContractCharField()
        locale = ContractCharField()
        user_ids = ContractStringListField()

        def validate(self, data: dict) -> dict:
            """§6.5 names the room in the path (context `room_in_path`); a body room_id must name the same."""
            room_in_path = self.context.get("room_in_path")
            if room_in_path is not None:
                if data["room_id"].strip() and data["room_id"].strip() != room_in_path:
                    raise serializers.ValidationError("room_id does not match path room id")
                data["room_id"] = room_in_path
            return data

    @extend_schema(
        request=InputSerializer,
        responses={200: RoomSerializer, **error_responses(400, 413)},
        summary="Invite users into a room",
    )
    def post(self, request):
        return _invite(request, self.InputSerializer(data=request.data))


class RoomMembersView(ApiView):
    @extend_schema(responses={200: UserSerializer(many=True), **error_responses(404)}, summary="List members")
    def get(self, request, room_id: str):
        room = selectors.room_get(room_id)
        return Response(UserSerializer(selectors.room_members(room), many=True).data)

    @extend_schema(
        request=RoomInviteView.InputSerializer,
        responses={200: RoomSerializer, **error_responses(400, 413)},
        summary="Invite users into the room of the path",
    )
    def post(self, request, room_id: str):
        body = RoomInviteView.InputSerializer(data=request.data, context={"room_in_path": room_id})
        return _invite(request, body)


def _invite(request, body: serializers.Serializer) -> Response:
    """Both invitation routes: the parsed body to room_invite, the room to its wire shape."""
    body.is_valid(raise_exception=True)
    data = body.validated_data
    room = services.room_invite(
        room_id=data["room_id"],
        inviter_id=data["inviter_id"],
        user_ids=data["user_ids"],
        locale=request_locale(request, data["locale"]),
    )
    return Response(RoomSerializer(room).data)


class UsersView(ApiView):
    @extend_schema(responses={200: UserSerializer(many=True)}, summary="List users")
    def get(self, request):
        return Response(UserSerializer(selectors.user_list(), many=True).data)


class UserDetailView(ApiView):
    @extend_schema(responses={204: None, **error_responses(404, 409)}, summary="Delete a user")
    def delete(self, request, user_id: str):
        services.user_delete(user_id=user_id)
        return Response(status=204)


class MessageSendView(ApiView):
    parser_classes = [MessageBodyParser]

    class InputSerializer(ContractSerializer):
        """The body of a message send (http-api.md §6.10)."""

        room_id = ContractCharField()
        sender_id = ContractCharField()
        content = ContractCharField()
        mention_id = ContractCharField()
        client_msg_id = ContractCharField()
        relates_to = RelatesToField()
        metadata = ContractObjectField()

    @extend_schema(
        # Multipart: `payload` holds this JSON object, `files` parts the attachments
        # (threads-attachments.md §2.4).
        request={"application/json": InputSerializer, "multipart/form-data": MULTIPART_SCHEMA},
        responses={
            201: MessageSerializer,
            200: MessageSerializer,  # a client_msg_id already sent: the stored message again
            **error_responses(400, 413),
        },
        summary="Send a message",
    )
    def post(self, request):
        upload = message_upload(request)
        files = upload.files if upload else []
        try:
            serializer = self.InputSerializer(data=request.data)
            with payload_errors(multipart=upload is not None):
                serializer.is_valid(raise_exception=True)
            if upload:
                check_attachment_limits(upload)
            sent = services.message_send(**serializer.validated_data, files=files)
        finally:
            # Stored files were moved to their blobs; whatever is left was refused.
            discard_uploads(files)
        return Response(MessageSerializer(sent.message).data, status=201 if sent.created else 200)


class MessagesView(MessageSendView):
    @extend_schema(
        parameters=[
            OpenApiParameter("room_id", str, required=True),
            OpenApiParameter("include_thread_replies", str, description="1, true, yes or on: replies too"),
        ],
        responses={200: MessageSerializer(many=True), **error_responses(400, 404)},
        summary="List a room's messages",
    )
    def get(self, request):
        messages = selectors.message_list(
            query_value(request, "room_id"),
            include_thread_replies=query_value(request, "include_thread_replies").lower() in TRUE_WORDS,
        )
        return Response(MessageSerializer(messages, many=True).data)
