"""One turn of a conversation: the user message, model calls and tool calls, then the reply (§4.4)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from agent_runtime import prompt
from agent_runtime.contracts import WORKER_ROLE, Inbound, OutboundFile, SendResult, crash_point
from agent_runtime.feedback import auto_mention, strip_think, tool_feedback
from agent_runtime.history import drop_oldest_half, sanitize, trim
from agent_runtime.llm import ContextTooLong, LLMError, Reply, ToolsRejected
from agent_runtime.tools.base import ToolContext

if TYPE_CHECKING:
    from agent_runtime.contracts import Journal, Outbox, RestClient, Settings
    from agent_runtime.history import SessionStore
    from agent_runtime.llm import LLMClient
    from agent_runtime.prompt import PromptBuilder
    from agent_runtime.tools import ToolBox

log = logging.getLogger("agent_runtime.agent")

LIMIT_TEXT = (
    "I've reached `max_tool_iterations` without a final response. Increase `max_tool_iterations` in "
    "config.json if this task needs more tool steps."
)
EMPTY_TEXT = "The model returned an empty response. This may indicate a provider error or token limit."
ERROR_PREFIX = "Error processing message: "
# PicoClaw retries a context-length error at most twice, each time with half the history.
CONTEXT_RETRIES = 2


@dataclass
class Conversation:
    """One room or thread: messages waiting for a turn, and messages steering the running one."""

    key: str
    queue: deque[tuple[int, Inbound]] = field(default_factory=deque)
    steering: deque[Inbound] = field(default_factory=deque)
    notes: list[str] = field(default_factory=list)
    running: bool = False
    # True while the running turn can still take steering (it has no final answer yet).
    steerable: bool = False


class TurnHost(Protocol):
    """What a turn uses of the loop that runs it: the loop imports turns, never the other way round."""

    settings: Settings
    outbox: Outbox
    journal: Journal
    rest: RestClient
    llm: LLMClient
    tools: ToolBox
    prompt: PromptBuilder
    sessions: SessionStore
    turn_timeout: float

    def report(self) -> None: ...

    async def agent_name(self) -> str: ...

    def link(self, origin: Inbound, *, room_id: str, thread_root_id: str, text: str) -> None: ...

    def apply_notes(self, conversation: Conversation) -> None: ...


class Turn:
    """Runs from the conversation's oldest queued message until its reply is sent."""

    def __init__(self, loop: TurnHost, conversation: Conversation, first: Inbound) -> None:
        self.loop = loop
        self.settings = loop.settings
        self.conversation = conversation
        self.first = first
        self.turn_id = first.message_id
        self.members: list[Inbound] = [first]
        self.session = loop.sessions.get(
            first.conversation_key,
            room_id=first.room_id,
            thread_root_id=first.thread_root_id,
            chat_type=first.chat_type,
        )
        self.start = 0
        self.counts: dict[tuple[str, str], int] = {}
        self.sent_here = False
        self.final_recorded = False
        self.tool_calls = 0
        self.model_ms = 0.0
        self.tool_context = ToolContext(
            settings=self.settings,
            rest=loop.rest,
            room_id=first.room_id,
            thread_root_id=first.thread_root_id,
            send=self.tool_send,
        )

    async def run(self) -> None:
        started = time.monotonic()
        first = self.first
        self.loop.journal.started(first.message_id, turn_id=self.turn_id)
        previous_run = self.session.find_user_message(first.message_id)
        if previous_run is not None:
            # The same message ran before a crash: replay it from the same history, so ids repeat.
            self.session.truncate(previous_run)
        self.loop.apply_notes(self.conversation)
        self.start = len(self.session.messages)
        if first.thread_context and self._thread_is_new():
            # Earlier room messages, told as the room's and never as the agent's own words (§3.4).
            self.session.append({"role": "user", "content": first.thread_context})
        self.session.append({"role": "user", "content": first.text, "message_id": first.message_id})
        log.info("turn start conversation=%s message=%s", self.conversation.key, first.message_id)
        iterations = 0
        try:
            async with asyncio.timeout(self.loop.turn_timeout):
                final, iterations = await self._iterate()
        except TimeoutError:
            final = f"{ERROR_PREFIX}turn timed out after {self.loop.turn_timeout:g} s"
        except LLMError as exc:
            final = f"{ERROR_PREFIX}LLM call failed: {exc}"
        except Exception as exc:
            log.exception("turn failed conversation=%s", self.conversation.key)
            final = f"{ERROR_PREFIX}{type(exc).__name__}: {exc}"
        finally:
            self.conversation.steerable = False
        await self._finish(final)
        log.info(
            "turn end conversation=%s iterations=%d tool_calls=%d ms=%d model_ms=%d",
            self.conversation.key,
            iterations,
            self.tool_calls,
            (time.monotonic() - started) * 1000,
            self.model_ms,
        )

    def _thread_is_new(self) -> bool:
        """No turn ran in this conversation yet (notes other conversations sent here do not count)."""
        if self.session.meta.get("dropped"):
            return False
        return not any(message.get("role") == "user" for message in self.session.messages)

    async def _iterate(self) -> tuple[str, int]:
        for iteration in range(1, self.settings.max_tool_iterations + 1):
            self._take_steering()
            reply = await self._call_model()
            crash_point(self.settings, "after_llm_request")
            content = strip_think(reply.content)
            assistant: dict[str, Any] = {"role": "assistant", "content": content}
            if reply.tool_calls:
                assistant["tool_calls"] = [
                    {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                    for c in reply.tool_calls
                ]
            self.session.append(assistant)
            if not reply.tool_calls:
                self.conversation.steerable = False
                self.final_recorded = bool(content)
                return content, iteration
            for call in reply.tool_calls:
                self.tool_calls += 1
                if self.settings.tool_feedback_enabled:
                    text = tool_feedback(
                        call.name, content, call.arguments, self.settings.tool_feedback_max_args_length
                    )
                    await self.send(self.first.room_id, self.first.thread_root_id, text)
                result = await self.loop.tools.call(self.tool_context, call.name, call.arguments)
                self.session.append(
                    {"role": "tool", "content": result, "tool_call_id": call.id, "name": call.name}
                )
        return LIMIT_TEXT, self.settings.max_tool_iterations

    def _take_steering(self) -> None:
        while self.conversation.steering:
            message = self.conversation.steering.popleft()
            self.loop.journal.started(message.message_id, turn_id=self.turn_id)
            self.session.append({"role": "user", "content": message.text, "message_id": message.message_id})
            self.members.append(message)
            log.info("steering message=%s joins turn=%s", message.message_id, self.turn_id)

    async def _call_model(self) -> Reply:
        max_tokens = self.settings.max_tokens
        context_retries = 0
        while True:
            self.start = trim(self.session, self.start, self.settings.context_window)
            messages = [{"role": "system", "content": await self._system_prompt()}]
            messages += sanitize(self.session.messages)
            tools = [] if self.loop.llm.plain_chat else self.loop.tools.schemas
            started = time.monotonic()
            try:
                return await self.loop.llm.complete(messages, tools, max_tokens=max_tokens)
            except ToolsRejected:
                self.loop.report()
            except ContextTooLong:
                if context_retries >= CONTEXT_RETRIES:
                    raise
                context_retries += 1
                self.start = drop_oldest_half(self.session, self.start)
                max_tokens = max(1, max_tokens // 2)
            finally:
                self.model_ms += (time.monotonic() - started) * 1000
                self.loop.report()

    async def _system_prompt(self) -> str:
        name = await self.loop.agent_name()
        static = self.loop.prompt.static(name=name, plain_chat=self.loop.llm.plain_chat)
        sender = self.members[-1]
        dynamic = await prompt.dynamic(
            self.loop.rest,
            room_id=self.first.room_id,
            thread_root_id=self.first.thread_root_id,
            chat_type=self.first.chat_type,
            sender_id=sender.sender_id,
            sender_name=sender.sender_name,
            origins=self.session.meta.get("origins", []),
            hidden=int(self.session.meta.get("dropped", 0)),
        )
        return static + prompt.PART_SEPARATOR + dynamic

    async def send(
        self, room_id: str, thread_root_id: str, text: str, *, file: OutboundFile | None = None
    ) -> SendResult:
        """Post `text` (and `file`) with the turn's next deterministic id for (room, thread)."""
        index = self.counts.get((room_id, thread_root_id), 0)
        self.counts[(room_id, thread_root_id)] = index + 1
        message_id = self.loop.outbox.message_id(
            turn_id=self.turn_id, room_id=room_id, thread_root_id=thread_root_id, index=index
        )
        result = await self.loop.outbox.send(
            message_id=message_id, room_id=room_id, thread_root_id=thread_root_id, text=text, file=file
        )
        if not result.ok:
            log.error("send failed room=%s message=%s: %s", room_id, message_id, result.error)
        return result

    async def tool_send(
        self, room_id: str, thread_root_id: str, text: str, *, file: OutboundFile | None = None
    ) -> SendResult:
        result = await self.send(room_id, thread_root_id, text, file=file)
        if not result.ok:
            return result
        if (room_id, thread_root_id) == (self.first.room_id, self.first.thread_root_id):
            self.sent_here = True
        else:
            self.loop.link(self.first, room_id=room_id, thread_root_id=thread_root_id, text=text)
        return result

    async def _finish(self, final: str) -> None:
        final = final.strip()
        if not final and not self.sent_here:
            final = EMPTY_TEXT
        if final:
            if not self.final_recorded:
                self.session.append({"role": "assistant", "content": final})
            if self._reports_to_manager():
                final = auto_mention(
                    final, manager_id=self.first.sender_id, manager_name=self.first.sender_name
                )
            await self.send(self.first.room_id, self.first.thread_root_id, final)
        crash_point(self.settings, "after_reply_send")
        for message in self.members:
            self.loop.journal.done(message.message_id)

    def _reports_to_manager(self) -> bool:
        return (
            self.settings.role == WORKER_ROLE
            and self.first.chat_type.lower() == "group"
            and self.first.sender_role == "manager"
        )
