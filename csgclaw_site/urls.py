"""Every route of the contract (spec/README.md); anything else is a plain-text 404."""

from django.contrib import admin
from django.urls import path, re_path

from agents import views as agents
from bots.bridge import dispatch as bot_dispatch
from bots.bridge import streams as bot_streams
from bots.feishu import views as feishu_views
from bots.participants import llm as participant_llm
from bots.participants import views as participant_views
from bots.rest import views as bots_api
from core import http
from im import pages as im_pages
from im import streams as im_streams
from im import views as im
from server import login

handler404 = "core.http.handler404"
handler500 = "core.http.handler500"

# Fixed paths come before `{id}` patterns, so /api/v1/rooms/invite is never "room invite".
urlpatterns = [
    path("healthz", im.healthz),
    path("api/v1/im/bootstrap", im.BootstrapView.as_view()),
    path("api/v1/bootstrap", im.BootstrapView.as_view()),
    path("api/v1/im/conversations", im.RoomCreateView.as_view()),
    path("api/v1/im/rooms", im.RoomCreateView.as_view()),
    path("api/v1/im/conversations/members", im.RoomInviteView.as_view()),
    path("api/v1/im/rooms/invite", im.RoomInviteView.as_view()),
    path("api/v1/rooms/invite", im.RoomInviteView.as_view()),
    path("api/v1/rooms", im.RoomsView.as_view()),
    path("api/v1/rooms/<str:room_id>", im.RoomDetailView.as_view()),
    path("api/v1/rooms/<str:room_id>/members", im.RoomMembersView.as_view()),
    path("api/v1/users", im.UsersView.as_view()),
    path("api/v1/users/<str:user_id>", im.UserDetailView.as_view()),
    path("api/v1/im/messages", im.MessageSendView.as_view()),
    path("api/v1/messages", im.MessagesView.as_view()),
    path("api/v1/agents", agents.AgentsView.as_view()),
    path("api/v1/agents/<str:agent_id>", agents.AgentDetailView.as_view()),
    path("api/v1/agents/<str:agent_id>/start", agents.AgentStartView.as_view()),
    path("api/v1/agents/<str:agent_id>/stop", agents.AgentStopView.as_view()),
    path("api/v1/agents/<str:agent_id>/logs", agents.AgentLogsView.as_view()),
    path("api/v1/agents/<str:agent_id>/token:rotate", agents.AgentTokenRotateView.as_view()),
    re_path(r"^api/v1/agents/(?P<agent_id>[^/]*)/llm(?P<rest>/.*)?$", participant_llm.agent_llm),
    path("api/v1/im/agents/join", agents.AgentJoinView.as_view()),
    path("api/v1/bots", bots_api.BotsView.as_view()),
    path("api/v1/bots/<str:bot_id>", bots_api.BotDetailView.as_view()),
    path("api/v1/im/events", im_streams.im_events),
    path("api/v1/events", im_streams.im_events),
    re_path(r"^api/bots/", bot_dispatch.bot_api),
    re_path(r"^api/v1/channels/feishu/bots/(?P<bot_id>[^/]*)/events$", bot_streams.feishu_bot_events),
    re_path(
        r"^api/v1/channels/(?P<channel>[^/]*)/participants/(?P<participant_id>[^/]*)/events$",
        participant_views.participant_events,
    ),
    re_path(
        r"^api/v1/channels/(?P<channel>[^/]*)/participants/(?P<participant_id>[^/]*)/messages$",
        participant_views.participant_messages,
    ),
    path("api/v1/channels/feishu/messages", feishu_views.FeishuMessagesView.as_view()),
    path("", im_pages.workspace),
    path("login", login.login_page),
    path("logout", login.logout_page),
    path("admin/", admin.site.urls),
    re_path(r"^(?!admin/|static/)", http.not_found),
]
