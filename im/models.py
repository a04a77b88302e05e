"""The built-in IM: users, rooms with ordered membership, messages, and the durable event log."""

from django.db import models
from django.utils import timezone

from im.fields import OrderedJSONField

# Lookup ids longer than this can never exist (http-api.md §1.2), so every id column fits an index.
MAX_ID_LENGTH = 128


class UserRole(models.TextChoices):
    ADMIN = "admin"
    MANAGER = "manager"
    WORKER = "worker"


class ChatUser(models.Model):
    """An IM identity: the human admin, the manager, or a worker agent (id = agent id)."""

    id = models.CharField(primary_key=True, max_length=MAX_ID_LENGTH)
    name = models.CharField(max_length=255)
    handle = models.CharField(max_length=255, unique=True)
    role = models.CharField(max_length=16, choices=UserRole.choices)
    avatar = models.CharField(max_length=16)
    accent_hex = models.CharField(max_length=16)
    is_online = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "im_user"
        ordering = ["name", "id"]
        verbose_name = "IM user"

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"


class Room(models.Model):
    id = models.CharField(primary_key=True, max_length=MAX_ID_LENGTH)
    title = models.CharField(max_length=255)
    description = models.TextField(blank=True, default="")
    is_direct = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    members = models.ManyToManyField(ChatUser, through="RoomMember", related_name="rooms")

    def __str__(self) -> str:
        return f"{self.title} ({self.id})"


class RoomMember(models.Model):
    """Membership with a position: creator first, invitees in request order, later invites appended."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(ChatUser, on_delete=models.CASCADE, related_name="memberships")
    position = models.PositiveIntegerField()

    class Meta:
        ordering = ["room", "position"]
        constraints = [models.UniqueConstraint(fields=["room", "user"], name="im_roommember_unique")]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.room_id}"


class MessageKind(models.TextChoices):
    MESSAGE = "message"
    EVENT = "event"


class Message(models.Model):
    """A room message; the integer `seq` defines history order, `message_id` is the wire id (`msg-<N>`)."""

    seq = models.BigAutoField(primary_key=True)
    message_id = models.CharField(max_length=MAX_ID_LENGTH, unique=True)
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="messages")
    sender = models.ForeignKey(ChatUser, on_delete=models.CASCADE, related_name="sent_messages")
    kind = models.CharField(max_length=16, choices=MessageKind.choices, default=MessageKind.MESSAGE)
    content = models.TextField()
    event = OrderedJSONField(null=True, blank=True)
    mentions = models.JSONField(default=list, blank=True)
    client_msg_id = models.CharField(max_length=MAX_ID_LENGTH, null=True, blank=True)
    # Caller-defined object of the participant send (participants.md §3.2), echoed in message JSON.
    metadata = OrderedJSONField(null=True, blank=True)
    # The root of the thread this message replies to (threads-attachments.md §1.1). A plain id, not a
    # foreign key: replies outlive a deleted root (§1.9).
    thread_root_id = models.CharField(max_length=MAX_ID_LENGTH, null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["seq"]
        indexes = [
            models.Index(fields=["room", "seq"], name="im_message_room_seq"),
            models.Index(fields=["room", "thread_root_id", "seq"], name="im_message_thread_seq"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["sender", "client_msg_id"], name="im_message_client_msg_id_unique"
            )
        ]

    def __str__(self) -> str:
        return self.message_id


class Thread(models.Model):
    """A room's thread state (threads-attachments.md §1.1): the root and the hidden context snapshot."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="threads")
    root_message_id = models.CharField(max_length=MAX_ID_LENGTH)
    # The Message objects around the root as the API presented them when the snapshot was taken (§1.5).
    context = OrderedJSONField(default=list, blank=True)
    # The ThreadContextSummary of that snapshot.
    summary = OrderedJSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["room", "root_message_id"], name="im_thread_room_root_unique")
        ]

    def __str__(self) -> str:
        return f"thread {self.root_message_id} in {self.room_id}"


class AttachmentKind(models.TextChoices):
    IMAGE = "image"
    FILE = "file"


class Attachment(models.Model):
    """A file of a message (threads-attachments.md §2.3); the bytes are a content-addressed blob on disk."""

    id = models.CharField(primary_key=True, max_length=96)
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="attachments")
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="attachments")
    # Upload order within the message.
    position = models.PositiveIntegerField()
    created_by = models.CharField(max_length=MAX_ID_LENGTH)
    original_name = models.CharField(max_length=255)
    safe_name = models.CharField(max_length=160)
    media_type = models.CharField(max_length=255)
    kind = models.CharField(max_length=8, choices=AttachmentKind.choices)
    size_bytes = models.BigIntegerField()
    sha256 = models.CharField(max_length=64, db_index=True)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    # Whoever holds the download URL may fetch the file (§2.3); 32 base64url characters.
    download_token = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["message_id", "position"]
        indexes = [models.Index(fields=["room", "created_at"], name="im_attachment_room_created")]

    def __str__(self) -> str:
        return f"{self.safe_name} ({self.id})"


class EventStream(models.TextChoices):
    IM = "im"
    FEISHU = "feishu"


class Event(models.Model):
    """One row of the durable log; `seq` is the cursor of every stream (events.md §5)."""

    seq = models.BigAutoField(primary_key=True)
    stream = models.CharField(max_length=16, choices=EventStream.choices, default=EventStream.IM)
    type = models.CharField(max_length=64)
    room_id = models.CharField(max_length=MAX_ID_LENGTH, null=True, blank=True)
    message_id = models.CharField(max_length=MAX_ID_LENGTH, null=True, blank=True, db_index=True)
    payload = OrderedJSONField()
    bot_payload = OrderedJSONField(null=True, blank=True)
    # The participant frame without its per-recipient keys (participants.md §2.7).
    participant_payload = OrderedJSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["seq"]
        indexes = [models.Index(fields=["stream", "seq"], name="im_event_stream_seq")]

    def __str__(self) -> str:
        return f"#{self.seq} {self.type}"


class EventRecipient(models.Model):
    """Who a bot or Feishu event is for, fixed when the event is written so replay equals live delivery."""

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="recipients")
    recipient_id = models.CharField(max_length=MAX_ID_LENGTH)
    mentioned = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["event", "recipient_id"], name="im_eventrecipient_unique")
        ]
        indexes = [models.Index(fields=["recipient_id", "event"], name="im_eventrecipient_lookup")]

    def __str__(self) -> str:
        return f"{self.recipient_id} <- #{self.event_id}"


class EventLogState(models.Model):
    """Single row: the highest seq ever pruned, so a cursor below it is known to be stale."""

    pruned_through = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"pruned through #{self.pruned_through}"


class StreamCursor(models.Model):
    """Where a stream last was, so a client that never sends Last-Event-ID still resumes.

    `kind` is a namespace the consuming app chooses for its keys; the IM defines none.
    """

    kind = models.CharField(max_length=16)
    key = models.CharField(max_length=MAX_ID_LENGTH)
    seq = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["kind", "key"], name="im_streamcursor_unique")]

    def __str__(self) -> str:
        return f"{self.kind}:{self.key} @ {self.seq}"
