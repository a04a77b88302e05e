"""Attachment downloads (threads-attachments.md §2.7) and room attachments (§2.8).

They live above `agents` because their bearer check accepts agents' own tokens. The answers stream the
blob (im.attachments.download); everything else is parse → one selector or service → render.
"""

from __future__ import annotations

import hmac
import re

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.response import Response

from agents.credentials import auth_disabled, bearer_token, credential_agent_id, is_server_token
from bots.participants.identity import participant_resolve
from core.api import ApiView, error_responses
from core.http import ApiError, from_admin_browser, query_value
from im import selectors as im_selectors
from im import services as im_services
from im.attachments.download import CACHE_IMMUTABLE, CACHE_NONE, attachment_response
from im.attachments.selectors import (
    ATTACHMENT_ID_PATTERN,
    attachment_find,
    room_attachment_find,
    room_attachment_list,
)
from im.attachments.storage import blob_exists
from im.attachments.wire import RoomAttachmentPageSerializer

CALLER_HEADER = "X-CSGClaw-Caller-Agent"
DEFAULT_LIMIT = 50
MAX_LIMIT = 200
_ATTACHMENT_ID = re.compile(ATTACHMENT_ID_PATTERN)
_DIGITS = re.compile(r"[0-9]+")

_FILE_RESPONSE = OpenApiResponse(OpenApiTypes.BINARY, description="the stored bytes (or the requested range)")
_RANGE_PARAMETER = OpenApiParameter(
    "Range", str, OpenApiParameter.HEADER, description="one `bytes=` range → 206; unsatisfiable → 416"
)


def _bearer_agent_or_server(request) -> str | None:
    """ "server" for no_auth, the server token or the admin's own browser (an extension: it reads every
    message and its download URL through the local routes anyway), the agent id for an agent's own token,
    else None."""
    if auth_disabled() or from_admin_browser(request):
        return "server"
    token = bearer_token(request.headers.get("Authorization", ""))
    if is_server_token(token):
        return "server"
    return credential_agent_id(token)


class AttachmentDownloadView(ApiView):
    @extend_schema(
        parameters=[
            OpenApiParameter("token", str, description="the attachment's download token (from download_url)"),
            _RANGE_PARAMETER,
        ],
        responses={(200, "*/*"): _FILE_RESPONSE, (206, "*/*"): _FILE_RESPONSE, **error_responses(401, 404)},
        summary="Download an attachment",
        operation_id="attachments_download",
    )
    def get(self, request, attachment_id: str):
        if not _ATTACHMENT_ID.fullmatch(attachment_id):
            raise ApiError(404, "attachment id is required")
        attachment = attachment_find(attachment_id)
        if attachment is None or not blob_exists(attachment.sha256, attachment.size_bytes):
            raise ApiError(404, "attachment not found")
        token = query_value(request, "token")
        by_token = bool(token) and hmac.compare_digest(token.encode(), attachment.download_token.encode())
        if not by_token and _bearer_agent_or_server(request) is None:
            raise ApiError(401, "unauthorized")
        return attachment_response(request, attachment, cache_control=CACHE_IMMUTABLE)


def _room_checked(request, room_id: str):
    """§2.8's checks before each route's own: bearer (agents must be members), room, caller header."""
    caller = _bearer_agent_or_server(request)
    room = im_selectors.room_find(room_id)
    member_ids = set(im_selectors.room_member_ids(room)) if room is not None else set()
    if caller is None or (caller != "server" and caller not in member_ids):
        raise ApiError(401, "unauthorized")
    if room is None:
        raise ApiError(404, "404 page not found")
    claimed = request.headers.get(CALLER_HEADER, "").strip()
    if claimed and participant_resolve(claimed).user_id not in member_ids:
        raise ApiError(403, "caller is not a current room member")
    return room


def _paging_value(request, name: str, default: int) -> int:
    if name not in request.GET:
        return default
    value = query_value(request, name)
    if not _DIGITS.fullmatch(value) or (name == "limit" and not 1 <= int(value) <= MAX_LIMIT):
        raise ApiError(400, f"invalid {name}")
    return int(value)


class RoomAttachmentsView(ApiView):
    @extend_schema(
        parameters=[
            OpenApiParameter("query", str, description="case-insensitive part of the name"),
            OpenApiParameter("message_id", str),
            OpenApiParameter("from", int, description="items to skip (default 0)"),
            OpenApiParameter("limit", int, description="1–200 (default 50)"),
            OpenApiParameter(CALLER_HEADER, str, OpenApiParameter.HEADER),
        ],
        responses={200: RoomAttachmentPageSerializer, **error_responses(400, 401, 403, 404)},
        summary="List a room's attachments",
        operation_id="rooms_attachments_list",
    )
    def get(self, request, room_id: str):
        room = _room_checked(request, room_id)
        page = room_attachment_list(
            room_id=room.id,
            query=query_value(request, "query"),
            message_id=query_value(request, "message_id"),
            offset=_paging_value(request, "from", 0),
            limit=_paging_value(request, "limit", DEFAULT_LIMIT),
        )
        return Response(RoomAttachmentPageSerializer(page).data)


class RoomAttachmentDetailView(ApiView):
    @extend_schema(
        parameters=[OpenApiParameter(CALLER_HEADER, str, OpenApiParameter.HEADER), _RANGE_PARAMETER],
        responses={
            (200, "*/*"): _FILE_RESPONSE,
            (206, "*/*"): _FILE_RESPONSE,
            **error_responses(401, 403, 404),
        },
        summary="Download an attachment of the room",
        operation_id="rooms_attachments_download",
    )
    def get(self, request, room_id: str, attachment_id: str):
        room = _room_checked(request, room_id)
        attachment = room_attachment_find(room_id=room.id, attachment_id=attachment_id)
        if attachment is None or not blob_exists(attachment.sha256, attachment.size_bytes):
            raise ApiError(404, "404 page not found")
        return attachment_response(
            request,
            attachment,
            cache_control=CACHE_NONE,
            extra_headers={
                "X-CSGClaw-File-SHA256": attachment.sha256,
                "X-CSGClaw-File-Size": str(attachment.size_bytes),
            },
        )

    @extend_schema(
        parameters=[OpenApiParameter(CALLER_HEADER, str, OpenApiParameter.HEADER)],
        responses={204: None, **error_responses(401, 403, 404)},
        summary="Remove an attachment from the room",
    )
    def delete(self, request, room_id: str, attachment_id: str):
        room = _room_checked(request, room_id)
        im_services.attachment_room_delete(room_id=room.id, attachment_id=attachment_id)
        return Response(status=204)
