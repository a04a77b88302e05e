"""Every path resolves to the view and arguments it always did: fixed paths win over `{id}` patterns.

The table was taken from csgclaw_site/urls.py before the routes moved into each app's urls.py (the schema
and docs rows came after); a route that lands in the wrong order or the wrong app changes a row here.
"""

from __future__ import annotations

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.urls.exceptions import Resolver404

from core import http

pytestmark = pytest.mark.timeout(30)

IM = "im.views."
THREADS = "im.thread_views."
AGENTS = "agents.views."
BOTS_REST = "bots.rest.views."
ATTACHMENTS = "bots.attachments.views."
NOT_FOUND = "core.http.not_found"

# (request path, dotted name of the view, the arguments the view receives)
ROUTES = [
    ("/healthz", IM + "healthz", {}),
    ("/api/v1/im/bootstrap", IM + "BootstrapView", {}),
    ("/api/v1/bootstrap", IM + "BootstrapView", {}),
    ("/api/v1/im/conversations", IM + "RoomCreateView", {}),
    ("/api/v1/im/rooms", IM + "RoomCreateView", {}),
    ("/api/v1/im/conversations/members", IM + "RoomInviteView", {}),
    ("/api/v1/im/rooms/invite", IM + "RoomInviteView", {}),
    ("/api/v1/rooms/invite", IM + "RoomInviteView", {}),
    ("/api/v1/rooms", IM + "RoomsView", {}),
    ("/api/v1/rooms/room-1", IM + "RoomDetailView", {"room_id": "room-1"}),
    ("/api/v1/rooms/room-1/members", IM + "RoomMembersView", {"room_id": "room-1"}),
    ("/api/v1/rooms/invite/members", IM + "RoomMembersView", {"room_id": "invite"}),
    ("/api/v1/rooms/room-1/threads", THREADS + "ThreadsView", {"room_id": "room-1"}),
    (
        "/api/v1/rooms/room-1/threads/msg-1",
        THREADS + "ThreadDetailView",
        {"room_id": "room-1", "root_message_id": "msg-1"},
    ),
    (
        "/api/v1/rooms/room-1/relations/msg-1/m.thread",
        THREADS + "ThreadRelationsView",
        {"room_id": "room-1", "event_id": "msg-1"},
    ),
    ("/api/v1/channels/csgclaw/rooms/room-1/threads", THREADS + "ThreadsView", {"room_id": "room-1"}),
    (
        "/api/v1/channels/csgclaw/rooms/room-1/threads/msg-1",
        THREADS + "ThreadDetailView",
        {"room_id": "room-1", "root_message_id": "msg-1"},
    ),
    (
        "/api/v1/channels/csgclaw/rooms/room-1/relations/msg-1/m.thread",
        THREADS + "ThreadRelationsView",
        {"room_id": "room-1", "event_id": "msg-1"},
    ),
    ("/api/v1/users", IM + "UsersView", {}),
    ("/api/v1/users/u-alice", IM + "UserDetailView", {"user_id": "u-alice"}),
    ("/api/v1/im/messages", IM + "MessageSendView", {}),
    ("/api/v1/messages", IM + "MessagesView", {}),
    ("/api/v1/attachments/att-1", ATTACHMENTS + "AttachmentDownloadView", {"attachment_id": "att-1"}),
    ("/api/v1/rooms/room-1/attachments", ATTACHMENTS + "RoomAttachmentsView", {"room_id": "room-1"}),
    (
        "/api/v1/rooms/room-1/attachments/att-1",
        ATTACHMENTS + "RoomAttachmentDetailView",
        {"room_id": "room-1", "attachment_id": "att-1"},
    ),
    ("/api/v1/agents", AGENTS + "AgentsView", {}),
    ("/api/v1/agents/u-alice", AGENTS + "AgentDetailView", {"agent_id": "u-alice"}),
    ("/api/v1/agents/join", AGENTS + "AgentDetailView", {"agent_id": "join"}),
    ("/api/v1/agents/u-alice/start", AGENTS + "AgentStartView", {"agent_id": "u-alice"}),
    ("/api/v1/agents/u-alice/stop", AGENTS + "AgentStopView", {"agent_id": "u-alice"}),
    ("/api/v1/agents/u-alice/logs", AGENTS + "AgentLogsView", {"agent_id": "u-alice"}),
    ("/api/v1/agents/u-alice/token:rotate", AGENTS + "AgentTokenRotateView", {"agent_id": "u-alice"}),
    ("/api/v1/agents/u-alice/llm", "bots.participants.llm.agent_llm", {"agent_id": "u-alice"}),
    (
        "/api/v1/agents/u-alice/llm/v1/chat/completions",
        "bots.participants.llm.agent_llm",
        {"agent_id": "u-alice", "rest": "/v1/chat/completions"},
    ),
    ("/api/v1/agents//llm/models", "bots.participants.llm.agent_llm", {"agent_id": "", "rest": "/models"}),
    ("/api/v1/im/agents/join", AGENTS + "AgentJoinView", {}),
    ("/api/v1/bots", BOTS_REST + "BotsView", {}),
    ("/api/v1/bots/u-alice", BOTS_REST + "BotDetailView", {"bot_id": "u-alice"}),
    ("/api/v1/im/events", "im.streams.im_events", {}),
    ("/api/v1/events", "im.streams.im_events", {}),
    ("/api/bots/u-alice/events", "bots.bridge.dispatch.bot_api", {}),
    ("/api/bots/", "bots.bridge.dispatch.bot_api", {}),
    ("/api/bots/u-alice/llm/v1/chat/completions", "bots.bridge.dispatch.bot_api", {}),
    (
        "/api/v1/channels/feishu/bots/u-alice/events",
        "bots.bridge.streams.feishu_bot_events",
        {"bot_id": "u-alice"},
    ),
    (
        "/api/v1/channels/csgclaw/participants/pt-alice/events",
        "bots.participants.views.participant_events",
        {"channel": "csgclaw", "participant_id": "pt-alice"},
    ),
    (
        "/api/v1/channels/feishu/participants/pt-alice/events",
        "bots.participants.views.participant_events",
        {"channel": "feishu", "participant_id": "pt-alice"},
    ),
    (
        "/api/v1/channels/csgclaw/participants/pt-alice/messages",
        "bots.participants.views.participant_messages",
        {"channel": "csgclaw", "participant_id": "pt-alice"},
    ),
    (
        "/api/v1/channels/csgclaw/participants",
        "bots.participants.directory.ParticipantsView",
        {"channel": "csgclaw"},
    ),
    (
        "/api/v1/channels/feishu/participants/pt-alice",
        "bots.participants.directory.ParticipantDetailView",
        {"channel": "feishu", "participant_id": "pt-alice"},
    ),
    (
        "/api/v1/channels/csgclaw/participants/pt-alice/notifications",
        "bots.participants.directory.ParticipantNotificationsView",
        {"channel": "csgclaw", "participant_id": "pt-alice"},
    ),
    ("/api/v1/channels/feishu/messages", "bots.feishu.views.FeishuMessagesView", {}),
    ("/", "im.pages.workspace", {}),
    ("/login", "server.login.login_page", {}),
    ("/logout", "server.login.logout_page", {}),
    ("/admin/", "django.contrib.admin.sites.AdminSite.index", {}),
    ("/api/schema/", "drf_spectacular.views.SpectacularAPIView", {}),
    ("/api/docs/", "drf_spectacular.views.SpectacularSwaggerView", {}),
    # No trailing-slash redirect and no prefix matching: these fall through to the plain-text 404.
    ("/healthz/", NOT_FOUND, {}),
    ("/api/v1/rooms/", NOT_FOUND, {}),
    ("/api/v1/rooms/room-1/members/", NOT_FOUND, {}),
    ("/api/v1/rooms/room-1/relations/msg-1/m.reference", NOT_FOUND, {}),
    ("/api/v1/agents/u-alice/restart", NOT_FOUND, {}),
    ("/api/v1/channels/feishu/bots/u-alice/messages", NOT_FOUND, {}),
    ("/api/v1/channels/csgclaw/participants/pt-alice/", NOT_FOUND, {}),
    ("/api/v1/channels/csgclaw/participants/pt-alice/notifications/x", NOT_FOUND, {}),
    ("/api/v2/agents", NOT_FOUND, {}),
    ("/login/", NOT_FOUND, {}),
    ("/api/schema", NOT_FOUND, {}),
    ("/api/docs", NOT_FOUND, {}),
    ("/favicon.ico", NOT_FOUND, {}),
]


def _dotted(func) -> str:
    target = getattr(func, "view_class", None) or getattr(func, "__wrapped__", None) or func
    return f"{target.__module__}.{target.__qualname__}"


def _flattened(patterns, prefix: str = "") -> list[tuple[str, URLPattern]]:
    """(full route, pattern) of every leaf route, in the order the resolver tries them."""
    leaves: list[tuple[str, URLPattern]] = []
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            leaves.extend(_flattened(pattern.url_patterns, route))
        else:
            leaves.append((route, pattern))
    return leaves


@pytest.mark.parametrize(("path", "view", "kwargs"), ROUTES, ids=[row[0] for row in ROUTES])
def test_the_path_resolves_to_its_view(path: str, view: str, kwargs: dict[str, str | None]):
    match = resolve(path)
    assert (_dotted(match.func), match.kwargs) == (view, kwargs)


def test_the_catch_all_leaves_static_and_admin_paths_alone():
    """/static/ is served before routing (runserver, serve); /admin/ answers its own unknown pages."""
    with pytest.raises(Resolver404):
        resolve("/static/im/workspace.js")
    assert (
        _dotted(resolve("/admin/no-such-page/").func) == "django.contrib.admin.sites.AdminSite.catch_all_view"
    )


def test_every_route_outside_the_admin_has_a_row():
    resolved = {resolve(path).route for path, _, _ in ROUTES}
    routes = {
        route for route, pattern in _flattened(get_resolver().url_patterns) if not route.startswith("admin/")
    }
    assert routes - resolved == set()


def test_the_catch_all_comes_last():
    leaves = _flattened(get_resolver().url_patterns)
    assert leaves[-1][1].callback is http.not_found
    assert [route for route, pattern in leaves if pattern.callback is http.not_found] == [leaves[-1][0]]


def test_errors_keep_the_plain_text_handlers():
    resolver = get_resolver()
    assert resolver.resolve_error_handler(404) is http.handler404
    assert resolver.resolve_error_handler(500) is http.handler500
