"""Django admin for the IM: plain ORM edits for operators; they emit no events (http-api.md §10.2)."""

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html_join
from django.utils.safestring import mark_safe

from im.models import Attachment, ChatUser, Event, EventRecipient, Message, Room, RoomMember, Thread

# Characters of a message shown in the admin's message list; the change page shows all of it.
CONTENT_PREVIEW = 120


@admin.register(ChatUser)
class ChatUserAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "handle", "role", "avatar", "accent_hex", "created_at")
    list_filter = ("role",)
    search_fields = ("id", "name", "handle")
    ordering = ("name", "id")


class RoomMemberInline(admin.TabularInline):
    model = RoomMember
    extra = 0
    autocomplete_fields = ("user",)
    ordering = ("position",)


class MessageInline(admin.TabularInline):
    model = Message
    extra = 0
    fields = ("message_id", "sender", "kind", "content", "created_at")
    readonly_fields = fields
    ordering = ("seq",)
    show_change_link = True
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Room)
class RoomAdmin(admin.ModelAdmin):
    list_display = ("id", "title", "is_direct", "member_count", "created_at")
    list_filter = ("is_direct",)
    search_fields = ("id", "title", "description")
    inlines = (RoomMemberInline, MessageInline)

    @admin.display(description="members")
    def member_count(self, room: Room) -> int:
        return room.memberships.count()


# Attachment rows describe blobs written with their message; the admin browses and deletes them only.
ATTACHMENT_FIELDS = (
    "id",
    "safe_name",
    "original_name",
    "kind",
    "media_type",
    "size_bytes",
    "width",
    "height",
    "sha256",
    "created_by",
    "created_at",
)


class AttachmentInline(admin.TabularInline):
    model = Attachment
    extra = 0
    fields = ("position", "safe_name", "kind", "media_type", "size_bytes", "created_at")
    readonly_fields = fields
    ordering = ("position",)
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Attachment)
class AttachmentAdmin(admin.ModelAdmin):
    """A room's files with their size and type; deleting one here releases its blob after the commit."""

    list_display = ("safe_name", "kind", "media_type", "size_bytes", "message", "room", "created_at")
    list_filter = ("room", "kind")
    search_fields = ("id", "safe_name", "original_name", "sha256", "message__message_id")
    list_select_related = ("message", "room")
    readonly_fields = ("message", "room", "position", *ATTACHMENT_FIELDS)
    exclude = ("download_token",)

    def has_add_permission(self, request) -> bool:
        return False


class ThreadPlaceFilter(admin.SimpleListFilter):
    """Top-level messages or thread replies (threads-attachments.md §1.3)."""

    title = "thread"
    parameter_name = "thread"

    def lookups(self, request, model_admin):
        return (("top", "top-level"), ("reply", "thread replies"))

    def queryset(self, request, queryset):
        if self.value() == "top":
            return queryset.filter(thread_root_id__isnull=True)
        if self.value() == "reply":
            return queryset.filter(thread_root_id__isnull=False)
        return queryset


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    """Searching a root's id lists it with its replies; a root's page links each reply."""

    list_display = ("message_id", "room", "sender", "kind", "short_content", "thread_root_id", "created_at")
    list_filter = ("kind", ThreadPlaceFilter, "created_at")
    search_fields = ("message_id", "content", "sender__id", "room__id", "client_msg_id", "thread_root_id")
    list_select_related = ("room", "sender")
    raw_id_fields = ("room", "sender")
    readonly_fields = ("thread_replies",)
    inlines = (AttachmentInline,)

    @admin.display(description="thread replies")
    def thread_replies(self, message: Message) -> str:
        replies = Message.objects.filter(room_id=message.room_id, thread_root_id=message.message_id)
        return (
            format_html_join(
                mark_safe("<br>"),
                '<a href="{}">{}</a> {}: {}',
                (
                    (
                        reverse("admin:im_message_change", args=[reply.pk]),
                        reply.message_id,
                        reply.sender_id,
                        self.short_content(reply),
                    )
                    for reply in replies.order_by("created_at", "seq")
                ),
            )
            or "—"
        )

    @admin.display(description="text")
    def short_content(self, message: Message) -> str:
        """The text on one line: agents answer in multi-line markdown, which a list cell would cut short."""
        text = " ".join(message.content.split())
        return text if len(text) <= CONTENT_PREVIEW else text[: CONTENT_PREVIEW - 1] + "…"


@admin.register(Thread)
class ThreadAdmin(admin.ModelAdmin):
    """Thread states and their hidden context snapshot; services keep them, so they are read-only here."""

    list_display = ("root_message_id", "room", "root_excerpt", "created_at")
    search_fields = ("root_message_id", "room__id")
    list_select_related = ("room",)
    readonly_fields = ("room", "root_message_id", "created_at", "summary", "context")

    @admin.display(description="root")
    def root_excerpt(self, thread: Thread) -> str:
        return thread.summary.get("root_excerpt", "")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class EventRecipientInline(admin.TabularInline):
    model = EventRecipient
    extra = 0
    readonly_fields = ("recipient_id", "mentioned")
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    """The durable log is append-only: rows are written by services, never by hand."""

    list_display = ("seq", "stream", "type", "room_id", "message_id", "created_at")
    list_filter = ("stream", "type")
    search_fields = ("type", "room_id", "message_id")
    readonly_fields = (
        "seq",
        "stream",
        "type",
        "room_id",
        "message_id",
        "payload",
        "bot_payload",
        "created_at",
    )
    inlines = (EventRecipientInline,)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
