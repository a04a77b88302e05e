"""IM routes: health, bootstrap, rooms, users, messages, the IM event stream and the workspace page."""

from django.urls import path

from im import pages, streams, thread_views, views

# Fixed paths come before `{id}` patterns, so /api/v1/rooms/invite is never "room invite".
urlpatterns = [
    path("healthz", views.healthz),
    path("api/v1/im/bootstrap", views.BootstrapView.as_view()),
    path("api/v1/bootstrap", views.BootstrapView.as_view()),
    path("api/v1/im/conversations", views.RoomCreateView.as_view()),
    path("api/v1/im/rooms", views.RoomCreateView.as_view()),
    path("api/v1/im/conversations/members", views.RoomInviteView.as_view()),
    path("api/v1/im/rooms/invite", views.RoomInviteView.as_view()),
    path("api/v1/rooms/invite", views.RoomInviteView.as_view()),
    path("api/v1/rooms", views.RoomsView.as_view()),
    path("api/v1/rooms/<str:room_id>", views.RoomDetailView.as_view()),
    path("api/v1/rooms/<str:room_id>/members", views.RoomMembersView.as_view()),
    *(
        route
        for prefix in ("api/v1/rooms", "api/v1/channels/csgclaw/rooms")
        for route in (
            path(f"{prefix}/<str:room_id>/threads", thread_views.ThreadsView.as_view()),
            path(
                f"{prefix}/<str:room_id>/threads/<str:root_message_id>",
                thread_views.ThreadDetailView.as_view(),
            ),
            path(
                f"{prefix}/<str:room_id>/relations/<str:event_id>/m.thread",
                thread_views.ThreadRelationsView.as_view(),
            ),
        )
    ),
    path("api/v1/users", views.UsersView.as_view()),
    path("api/v1/users/<str:user_id>", views.UserDetailView.as_view()),
    path("api/v1/im/messages", views.MessageSendView.as_view()),
    path("api/v1/messages", views.MessagesView.as_view()),
    path("api/v1/im/events", streams.im_events),
    path("api/v1/events", streams.im_events),
    path("", pages.workspace),
]
