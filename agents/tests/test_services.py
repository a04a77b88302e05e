"""agents/services.py: worker creation (checks in order, one transaction), the provisioning chain's events,
IM identities, the intro message, the manager record and status records (http-api.md §5.2, §9.2, §9.3)."""

from __future__ import annotations

import pytest

from agents import records, services
from agents.models import Agent, AgentRole, AgentStatus, Bot, BotChannel
from core.config import DEFAULT_MANAGER_IMAGE, ProviderConfig
from core.errors import Invalid
from im import events
from im.identity import ADMIN_ID, MANAGER_ID
from im.models import ChatUser, Message, MessageKind, Room
from im.selectors import direct_room_between
from im.serializers import UserSerializer
from im.tests.factories import event_mark, event_types_after, events_after, make_user, row_counts

pytestmark = [pytest.mark.timeout(30), pytest.mark.usefixtures("agent_config")]

ALICE_INTRO = "@Alice Write this down in your memory: your name is Alice."


def all_row_counts() -> dict[str, int]:
    return {**row_counts(), "Bot": Bot.objects.count()}


def intro_messages(agent_id: str) -> list[Message]:
    room = direct_room_between(ADMIN_ID, agent_id)
    assert room is not None
    return list(room.messages.filter(sender_id=ADMIN_ID).order_by("seq"))


# --- worker creation: the written rows -------------------------------------------------------------------


@pytest.mark.django_db
def test_agent_create_writes_the_worker_its_im_user_direct_room_and_bot_binding(agent_config):
    agent = services.agent_create(
        config=agent_config, name="  Alice Smith ", agent_id=" u-alice ", description=" test lead "
    )

    assert (agent.id, agent.name, agent.slug, agent.description) == (
        "u-alice",
        "Alice Smith",
        "alice-smith",
        "test lead",
    )
    assert (agent.role, agent.status, agent.status_detail, agent.box_id) == ("worker", "creating", "", "")
    assert agent.image == DEFAULT_MANAGER_IMAGE
    assert (agent.profile, agent.provider, agent.model_id, agent.reasoning_effort) == (
        "remote.gpt-5.4",
        "llm-api",
        "gpt-5.4",
        "high",
    )
    assert len(agent.api_token) == 43
    assert Agent.objects.get(pk="u-alice").status == AgentStatus.CREATING

    user = ChatUser.objects.get(pk="u-alice")
    assert UserSerializer(user).data | {"created_at": None} == {
        "id": "u-alice",
        "name": "alice smith",
        "handle": "alice-smith",
        "role": "worker",
        "avatar": "AS",
        "is_online": True,
        "accent_hex": "#2563eb",
        "created_at": None,
    }

    room = direct_room_between(ADMIN_ID, "u-alice")
    assert (room.title, room.description, room.is_direct) == (
        "alice smith",
        "Bootstrap room for admin and alice smith.",
        True,
    )
    assert [m.user_id for m in room.memberships.order_by("position")] == [ADMIN_ID, "u-alice"]
    [greeting] = room.messages.all()
    assert (greeting.sender_id, greeting.kind, greeting.content) == (
        "u-alice",
        MessageKind.MESSAGE,
        "Bootstrap room created for admin and alice smith.",
    )

    bot = Bot.objects.get(channel=BotChannel.CSGCLAW, bot_id="u-alice")
    assert (bot.name, bot.role, bot.agent_id, bot.user_id, bot.description) == (
        "Alice Smith",
        "worker",
        "u-alice",
        "u-alice",
        "test lead",
    )


@pytest.mark.django_db
def test_agent_id_defaults_to_u_and_the_name_with_its_case(agent_config):
    agent = services.agent_create(config=agent_config, name="Alice")

    assert (agent.id, agent.slug) == ("u-Alice", "alice")
    assert ChatUser.objects.get(pk="u-Alice").handle == "alice"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("profile", "selector", "model_id"),
    [
        ("remote.qwen2.5:7b", "remote.qwen2.5:7b", "qwen2.5:7b"),
        ("remote:qwen2.5:7b", "remote.qwen2.5:7b", "qwen2.5:7b"),
        (" remote.gpt-5.4 ", "remote.gpt-5.4", "gpt-5.4"),
    ],
)
def test_agent_profile_is_resolved_and_stored_in_canonical_form(agent_config, profile, selector, model_id):
    agent = services.agent_create(config=agent_config, name="Alice", profile=profile)

    assert (agent.profile, agent.provider, agent.model_id) == (selector, "llm-api", model_id)


@pytest.mark.django_db
def test_agent_create_accepts_values_at_the_length_limits(agent_config):
    agent = services.agent_create(
        config=agent_config, name="n" * 64, agent_id="u-" + "i" * 126, description="d" * 2000
    )

    assert (len(agent.name), len(agent.id), len(agent.description)) == (64, 128, 2000)


# --- worker creation: checks in order, nothing written ------------------------------------------------------


@pytest.fixture
def taken(agent_config):
    """An agent `Alice` (u-alice) and an IM user with handle `bob` whose id is not u-bob."""
    services.agent_create(config=agent_config, name="Alice", agent_id="u-alice")
    make_user("u-robert", name="robert", handle="bob")


REJECTED = [
    # 2: name is required
    ({"name": ""}, "name is required"),
    ({"name": "   "}, "name is required"),
    ({"name": "", "description": "d" * 2001}, "name is required"),
    # length limits, right after the required check and before every other check
    ({"name": "n" * 65}, "name must be at most 64 characters"),
    ({"name": "n" * 65, "description": "d" * 2001}, "name must be at most 64 characters"),
    ({"name": "Zed", "description": "d" * 2001}, "description must be at most 2000 characters"),
    ({"name": "manager", "description": "d" * 2001}, "description must be at most 2000 characters"),
    # 3: reserved name, any case, reported trimmed
    ({"name": "manager"}, 'name "manager" is reserved'),
    ({"name": " MANAGER "}, 'name "MANAGER" is reserved'),
    ({"name": "Manager", "agent_id": "a/b"}, 'name "Manager" is reserved'),
    # 4: invalid id (also longer than 128, also a default id taken from a name with a space)
    ({"name": "Zed", "agent_id": "u/zed"}, 'agent id "u/zed" is invalid'),
    ({"name": "Zed", "agent_id": "u zed"}, 'agent id "u zed" is invalid'),
    ({"name": "Zed", "agent_id": "u-\tzed"}, 'agent id "u-\tzed" is invalid'),
    ({"name": "Zed", "agent_id": "u-ze\u3000d"}, 'agent id "u-ze\u3000d" is invalid'),
    ({"name": "Zed", "agent_id": "u-\x01zed"}, 'agent id "u-\x01zed" is invalid'),
    ({"name": "Zed", "agent_id": "u-zed\x7f"}, 'agent id "u-zed\x7f" is invalid'),
    # every control character (Unicode Cc), the C1 range U+0080–U+009F included
    ({"name": "Zed", "agent_id": "u-zed\x80"}, 'agent id "u-zed\x80" is invalid'),
    ({"name": "Zed", "agent_id": "u-z\x90ed"}, 'agent id "u-z\x90ed" is invalid'),
    ({"name": "Zed", "agent_id": "u-\x9fzed"}, 'agent id "u-\x9fzed" is invalid'),
    ({"name": "Zed", "agent_id": "u-" + "z" * 127}, f'agent id "u-{"z" * 127}" is invalid'),
    # an id made from a bad name reports the name, not the internal prefix (security S9)
    ({"name": "Zed Smith"}, 'invalid agent name "Zed Smith"'),
    ({"name": "a/b"}, 'invalid agent name "a/b"'),
    ({"name": "Alice", "agent_id": "u-" + "z" * 127}, f'agent id "u-{"z" * 127}" is invalid'),
    # 5: id taken by an agent, or by an IM user that belongs to no agent
    ({"name": "Zed", "agent_id": "u-alice"}, 'agent id "u-alice" already exists'),
    ({"name": "ALICE", "agent_id": "u-alice"}, 'agent id "u-alice" already exists'),
    ({"name": "Zed", "agent_id": "u-admin"}, 'agent id "u-admin" already exists'),
    ({"name": "admin"}, 'agent id "u-admin" already exists'),
    ({"name": "Zed", "agent_id": "u-robert"}, 'agent id "u-robert" already exists'),
    # 6: name taken ignoring case, or the same slug
    ({"name": "ALICE", "agent_id": "u-other"}, 'agent name "ALICE" already exists'),
    ({"name": "aLiCe"}, 'agent name "aLiCe" already exists'),
    ({"name": "alice!", "agent_id": "u-other"}, 'agent name "alice!" already exists'),
    ({"name": "Alice", "agent_id": "u-other", "profile": "nope"}, 'agent name "Alice" already exists'),
    # 7: the derived handle is another IM user's
    ({"name": "bob"}, 'handle "bob" already exists'),
    ({"name": "Bob", "agent_id": "u-b"}, 'handle "bob" already exists'),
    ({"name": "admin", "agent_id": "u-x"}, 'handle "admin" already exists'),
    ({"name": "bob", "profile": "nope"}, 'handle "bob" already exists'),
    # 8: the resolver's own texts
    ({"name": "Zed", "profile": "nope"}, 'models provider "nope" was not found'),
    (
        {"name": "Zed", "profile": "remote.gpt-4"},
        'models default "remote.gpt-4" does not match any models.providers entry',
    ),
    (
        {"name": "Zed", "profile": "remote"},
        'models provider "remote" has multiple models; set models.default to "remote.gpt-5.4"',
    ),
]


@pytest.mark.django_db
@pytest.mark.usefixtures("taken")
@pytest.mark.parametrize(("fields", "message"), REJECTED)
def test_agent_create_rejects_in_check_order_and_writes_nothing(agent_config, fields, message):
    before = all_row_counts()
    mark = event_mark()

    with pytest.raises(Invalid) as raised:
        services.agent_create(config=agent_config, **fields)

    assert raised.value.message == message
    assert all_row_counts() == before
    assert event_types_after(mark) == []


@pytest.mark.django_db
def test_agent_create_without_any_default_model_says_so(write_config):
    providers = {
        name: ProviderConfig(name=name, base_url="http://127.0.0.1:9/v1", api_key="k", models=["m"])
        for name in ("one", "two")
    }
    config = write_config(providers=providers, default="")

    with pytest.raises(Invalid, match=r"^models default is not configured$"):
        services.agent_create(config=config, name="Zed")
    assert not Agent.objects.exists()


# --- the provisioning chain ---------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_creation_emits_user_room_intro_and_running_status_in_order(agent_config):
    mark = event_mark()

    services.agent_create(config=agent_config, name="Alice")

    chain = events_after(mark)
    assert [event.type for event in chain] == [
        events.USER_CREATED,
        events.ROOM_CREATED,
        events.MESSAGE_CREATED,
        events.AGENT_UPDATED,
    ]
    user_created, room_created, intro, updated = (event.payload for event in chain)
    assert user_created["user"]["id"] == "u-Alice"
    assert user_created["user"]["handle"] == "alice"
    room = direct_room_between(ADMIN_ID, "u-Alice")
    assert room_created["room_id"] == room.id
    assert room_created["room"]["title"] == "alice"
    assert room_created["room"]["members"] == [ADMIN_ID, "u-Alice"]
    assert intro["room_id"] == room.id
    assert intro["message"]["sender_id"] == ADMIN_ID
    assert intro["message"]["kind"] == "message"
    assert intro["message"]["content"] == ALICE_INTRO
    assert intro["message"]["mentions"] == ["u-Alice"]
    assert updated["agent"]["id"] == "u-Alice"
    assert updated["agent"]["status"] == "running"
    assert updated["agent"]["box_id"] == "fake-alice"
    assert "api_token" not in updated["agent"]
    assert Agent.objects.get(pk="u-Alice").status == AgentStatus.RUNNING


@pytest.mark.django_db
def test_intro_names_the_responsibility_when_there_is_a_description(
    agent_config, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        services.agent_create(config=agent_config, name="Alice", description="  test lead  ")

    [intro] = intro_messages("u-Alice")
    assert intro.content == f"{ALICE_INTRO} Your job: test lead."
    assert (intro.kind, intro.mentions) == (MessageKind.MESSAGE, ["u-Alice"])


@pytest.mark.django_db
def test_intro_without_description_ends_after_the_name(agent_config, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        services.agent_create(config=agent_config, name="Alice", description="   ")

    assert [message.content for message in intro_messages("u-Alice")] == [ALICE_INTRO]


@pytest.mark.django_db(transaction=True)
def test_intro_with_a_delay_is_posted_once_the_delay_has_passed(agent_config, settings, until):
    settings.CSGCLAW_WORKER_INTRO_DELAY = 0.4

    services.agent_create(config=agent_config, name="Alice")

    assert intro_messages("u-Alice") == []
    [intro] = until(lambda: intro_messages("u-Alice"), timeout=5)
    assert intro.content == ALICE_INTRO


@pytest.mark.django_db
def test_intro_is_skipped_when_the_agent_is_gone(agent_config):
    services.agent_create(config=agent_config, name="Alice")
    Agent.objects.filter(pk="u-Alice").delete()
    mark = event_mark()

    services.intro_post(agent_id="u-Alice")

    assert intro_messages("u-Alice") == []
    assert event_types_after(mark) == []


@pytest.mark.django_db
def test_creation_rolls_back_everything_when_a_late_step_fails(agent_config, monkeypatch):
    before = all_row_counts()

    def broken_binding(**kwargs):
        raise RuntimeError("binding store is down")

    monkeypatch.setattr(services, "binding_upsert", broken_binding)
    with pytest.raises(RuntimeError):
        services.agent_create(config=agent_config, name="Alice")

    assert all_row_counts() == before


# --- IM identities ---------------------------------------------------------------------------------------


def make_worker(agent_id: str = "u-alice", name: str = "Alice") -> Agent:
    return Agent.objects.create(id=agent_id, name=name, slug=name.lower(), role=AgentRole.WORKER)


@pytest.mark.django_db
def test_identity_ensure_is_idempotent_and_announces_only_what_it_created():
    agent = make_worker()
    mark = event_mark()

    first = services.agent_im_identity_ensure(agent=agent)
    second_mark = event_mark()
    second = services.agent_im_identity_ensure(agent=agent)

    assert (first.user_created, first.room_created) == (True, True)
    assert (second.user_created, second.room_created) == (False, False)
    assert event_types_after(mark) == [events.USER_CREATED, events.ROOM_CREATED]
    assert event_types_after(second_mark) == []
    assert Room.objects.filter(memberships__user_id="u-alice").count() == 1


@pytest.mark.django_db
def test_identity_ensure_announces_a_reused_user_and_room_when_asked():
    agent = make_worker()
    services.agent_im_identity_ensure(agent=agent)
    rooms, users = Room.objects.count(), ChatUser.objects.count()
    mark = event_mark()

    identity = services.agent_im_identity_ensure(agent=agent, announce_reused=True)

    assert (identity.user_created, identity.room_created) == (False, False)
    assert event_types_after(mark) == [events.USER_CREATED, events.ROOM_CREATED]
    assert (Room.objects.count(), ChatUser.objects.count()) == (rooms, users)


@pytest.mark.django_db
def test_identity_ensure_reuses_an_existing_user_unchanged():
    make_user("u-alice", name="someone else", handle="alice")
    agent = make_worker()

    identity = services.agent_im_identity_ensure(agent=agent)

    assert identity.user_created is False
    assert ChatUser.objects.get(pk="u-alice").name == "someone else"


@pytest.mark.django_db
def test_identity_ensure_refuses_a_handle_of_another_user():
    make_user("u-robert", name="robert", handle="alice")
    agent = make_worker()
    before = row_counts()

    with pytest.raises(Invalid, match=r'^handle "alice" already exists$'):
        services.agent_im_identity_ensure(agent=agent)
    assert row_counts() == before


# --- the manager record ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_manager_ensure_creates_the_manager_and_its_bot_once(agent_config):
    mark = event_mark()

    manager = records.manager_ensure(config=agent_config)
    after_first = event_mark()
    again = records.manager_ensure(config=agent_config)

    assert (manager.id, manager.name, manager.slug, manager.role) == (
        MANAGER_ID,
        "manager",
        "manager",
        "manager",
    )
    assert manager.image == DEFAULT_MANAGER_IMAGE
    assert (manager.profile, manager.model_id, manager.reasoning_effort) == (
        "remote.gpt-5.4",
        "gpt-5.4",
        "high",
    )
    assert again.api_token == manager.api_token
    assert event_types_after(mark) == [events.AGENT_UPDATED]
    assert event_types_after(after_first) == []
    bot = Bot.objects.get(channel=BotChannel.CSGCLAW, bot_id=MANAGER_ID)
    assert (bot.name, bot.role, bot.agent_id, bot.user_id) == ("manager", "manager", MANAGER_ID, MANAGER_ID)
    assert Agent.objects.count() == 1


@pytest.mark.django_db
def test_manager_ensure_leaves_an_existing_manager_binding_as_it_is(agent_config):
    records.manager_ensure(config=agent_config)
    # What `POST /api/v1/bots {"name": "Boss", "role": "manager"}` stores (http-api.md §7.2).
    services.binding_upsert(
        bot_id=MANAGER_ID,
        name="Boss",
        role="manager",
        agent_id=MANAGER_ID,
        user_id=MANAGER_ID,
        description="runs things",
    )

    records.manager_ensure(config=agent_config)

    bot = Bot.objects.get(channel=BotChannel.CSGCLAW, bot_id=MANAGER_ID)
    assert (bot.name, bot.description) == ("Boss", "runs things")


@pytest.mark.django_db
def test_manager_ensure_recreates_a_deleted_manager_binding_with_the_onboarding_name(agent_config):
    records.manager_ensure(config=agent_config)
    Bot.objects.all().delete()

    records.manager_ensure(config=agent_config)

    bot = Bot.objects.get(channel=BotChannel.CSGCLAW, bot_id=MANAGER_ID)
    assert (bot.name, bot.role, bot.agent_id, bot.user_id) == ("manager", "manager", MANAGER_ID, MANAGER_ID)


@pytest.mark.django_db
def test_manager_ensure_follows_the_config_and_records_a_given_status(agent_config, write_config):
    records.manager_ensure(config=agent_config)
    changed = write_config(default="remote.qwen2.5:7b")
    changed.bootstrap.manager_image = "registry.test/picoclaw:next"
    mark = event_mark()

    manager = records.manager_ensure(config=changed, status="unknown", status_detail="box was skipped")

    assert (manager.image, manager.model_id) == ("registry.test/picoclaw:next", "qwen2.5:7b")
    assert (manager.status, manager.status_detail) == ("unknown", "box was skipped")
    [updated] = events_after(mark)
    assert updated.payload["agent"]["image"] == "registry.test/picoclaw:next"


@pytest.mark.django_db
def test_manager_ensure_without_a_resolvable_default_keeps_an_empty_profile(write_config):
    config = write_config(providers={}, default="")

    manager = records.manager_ensure(config=config)

    assert (manager.profile, manager.provider, manager.model_id) == ("", "", "")


# --- status records --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_status_record_saves_and_announces_only_changes():
    make_worker()
    mark = event_mark()

    changed = records.agent_status_record(agent_id="u-alice", status="running", box_id="box-1")
    unchanged = records.agent_status_record(agent_id="u-alice", status="running", box_id="box-1")
    kept_box = records.agent_status_record(agent_id="u-alice", status="stopped", status_detail="bye")

    assert (changed.status, changed.box_id) == ("running", "box-1")
    assert unchanged.status == "running"
    assert (kept_box.status, kept_box.status_detail, kept_box.box_id) == ("stopped", "bye", "box-1")
    assert [event.payload["agent"]["status"] for event in events_after(mark)] == ["running", "stopped"]


@pytest.mark.django_db
def test_status_record_of_a_deleted_agent_is_none():
    mark = event_mark()

    assert records.agent_status_record(agent_id="u-gone", status="running") is None
    assert event_types_after(mark) == []
