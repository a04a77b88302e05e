"""Django admin for the IM: plain ORM edits for operators; they emit no events (http-api.md §10.2)."""

from django.contrib import admin

from im.models import Attachment, ChatUser, Event, EventRecipient, Message, Room, RoomMember

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


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ("message_id", "room", "sender", "kind", "short_content", "created_at")
    list_filter = ("kind", "created_at")
    search_fields = ("message_id", "content", "sender__id", "room__id", "client_msg_id")
    list_select_related = ("room", "sender")
    raw_id_fields = ("room", "sender")
    inlines = (AttachmentInline,)

    @admin.display(description="text")
    def short_content(self, message: Message) -> str:
        """The text on one line: agents answer in multi-line markdown, which a list cell would cut short."""
        text = " ".join(message.content.split())
        return text if len(text) <= CONTENT_PREVIEW else text[: CONTENT_PREVIEW - 1] + "…"


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
