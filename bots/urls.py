"""Bot routes: Bots REST, the /api/bots/ bridge, participant routes, Feishu, the LLM proxy."""

from django.urls import path, re_path

from bots.attachments import views as attachments
from bots.bridge import dispatch, streams
from bots.feishu import views as feishu
from bots.participants import directory as participant_directory
from bots.participants import llm as participant_llm
from bots.participants import views as participants
from bots.rest import views as rest

urlpatterns = [
    path("api/v1/attachments/<str:attachment_id>", attachments.AttachmentDownloadView.as_view()),
    path("api/v1/rooms/<str:room_id>/attachments", attachments.RoomAttachmentsView.as_view()),
    path(
        "api/v1/rooms/<str:room_id>/attachments/<str:attachment_id>",
        attachments.RoomAttachmentDetailView.as_view(),
    ),
    re_path(r"^api/v1/agents/(?P<agent_id>[^/]*)/llm(?P<rest>/.*)?$", participant_llm.agent_llm),
    path("api/v1/bots", rest.BotsView.as_view()),
    path("api/v1/bots/<str:bot_id>", rest.BotDetailView.as_view()),
    re_path(r"^api/bots/", dispatch.bot_api),
    re_path(r"^api/v1/channels/feishu/bots/(?P<bot_id>[^/]*)/events$", streams.feishu_bot_events),
    re_path(
        r"^api/v1/channels/(?P<channel>[^/]*)/participants$", participant_directory.ParticipantsView.as_view()
    ),
    re_path(
        r"^api/v1/channels/(?P<channel>[^/]*)/participants/(?P<participant_id>[^/]*)$",
        participant_directory.ParticipantDetailView.as_view(),
    ),
    re_path(
        r"^api/v1/channels/(?P<channel>[^/]*)/participants/(?P<participant_id>[^/]*)/notifications$",
        participant_directory.ParticipantNotificationsView.as_view(),
    ),
    re_path(
        r"^api/v1/channels/(?P<channel>[^/]*)/participants/(?P<participant_id>[^/]*)/events$",
        participants.participant_events,
    ),
    re_path(
        r"^api/v1/channels/(?P<channel>[^/]*)/participants/(?P<participant_id>[^/]*)/messages$",
        participants.participant_messages,
    ),
    path("api/v1/channels/feishu/messages", feishu.FeishuMessagesView.as_view()),
]
