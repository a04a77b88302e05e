"""The agent loop: conversations, their queues and steering, and how many turns run at once (§4.1)."""

from __future__ import annotations

import asyncio
import itertools
import logging

import httpx

from agent_runtime.contracts import Inbound, Journal, Outbox, RestClient, Settings, StatusBoard
from agent_runtime.history import SessionStore
from agent_runtime.llm import LLMClient
from agent_runtime.prompt import PromptBuilder
from agent_runtime.tools import ToolBox
from agent_runtime.turn import Conversation, Turn

log = logging.getLogger("agent_runtime.agent")

# A turn still running after 30 minutes is stuck (a tool or the model hangs); its room gets an error.
TURN_TIMEOUT_SECONDS = 1800.0


class AgentLoop:
    """Takes accepted messages (`submit`) and runs their turns (`run`) until `close`."""

    def __init__(
        self,
        settings: Settings,
        *,
        outbox: Outbox,
        journal: Journal,
        rest: RestClient,
        status: StatusBoard,
        llm_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.outbox = outbox
        self.journal = journal
        self.rest = rest
        self.status = status
        self.llm = LLMClient(settings, transport=llm_transport)
        self.tools = ToolBox(settings)
        self.prompt = PromptBuilder(settings)
        self.sessions = SessionStore(settings)
        self.turn_timeout = TURN_TIMEOUT_SECONDS
        self._conversations: dict[str, Conversation] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._order = itertools.count()
        self._wake = asyncio.Event()
        self._name = ""

    def submit(self, inbound: Inbound) -> None:
        """Queue an accepted message; never blocks. A busy conversation takes it as steering."""
        conversation = self._conversation(inbound.conversation_key)
        if conversation.running and conversation.steerable:
            conversation.steering.append(inbound)
        else:
            conversation.queue.append((next(self._order), inbound))
        self._wake.set()
        self.report()

    async def run(self) -> None:
        while True:
            self._start_turns()
            await self._wake.wait()
            self._wake.clear()

    async def close(self) -> None:
        """Cancel running turns (their journal entries stay open, so they run again at the next start)."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.llm.aclose()

    def report(self) -> None:
        queued = sum(len(c.queue) + len(c.steering) for c in self._conversations.values())
        self.status.update(
            turns_running=len(self._tasks),
            queued=queued,
            llm_calls=self.llm.calls,
            tools_rejected=self.llm.plain_chat,
        )

    async def agent_name(self) -> str:
        """This agent's name from the server, cached once known; `strip(BOT)` until then."""
        if self._name:
            return self._name
        try:
            status, agent = await self.rest.request("GET", f"/api/v1/agents/{self.settings.bot_id}")
        except httpx.HTTPError as exc:
            log.warning("agent name lookup failed: %s", type(exc).__name__)
            return self.settings.strip_id
        if status == 200 and isinstance(agent, dict) and agent.get("name"):
            self._name = str(agent["name"])
            return self._name
        return self.settings.strip_id

    def link(self, origin: Inbound, *, room_id: str, thread_root_id: str, text: str) -> None:
        """A turn of `origin`'s conversation sent `text` into another one: record where it came from."""
        key = f"csgclaw:{room_id}/{thread_root_id}" if thread_root_id else f"csgclaw:{room_id}"
        session = self.sessions.get(key, room_id=room_id, thread_root_id=thread_root_id)
        session.add_origin(room_id=origin.room_id, thread_root_id=origin.thread_root_id, excerpt=origin.text)
        target = self._conversation(key)
        target.notes.append(text)
        if not target.running:
            self.apply_notes(target)

    def apply_notes(self, conversation: Conversation) -> None:
        """Texts other turns sent here join this history between turns, as the agent's own words."""
        if not conversation.notes:
            return
        session = self.sessions.get(conversation.key, room_id="", thread_root_id="")
        for text in conversation.notes:
            session.append({"role": "assistant", "content": text})
        conversation.notes.clear()

    def _conversation(self, key: str) -> Conversation:
        conversation = self._conversations.get(key)
        if conversation is None:
            conversation = self._conversations[key] = Conversation(key)
        return conversation

    def _start_turns(self) -> None:
        while len(self._tasks) < max(1, self.settings.max_parallel_turns):
            waiting = [c for c in self._conversations.values() if c.queue and not c.running]
            if not waiting:
                break
            conversation = min(waiting, key=lambda c: c.queue[0][0])
            _, first = conversation.queue.popleft()
            conversation.running = True
            conversation.steerable = True
            task = asyncio.create_task(self._run_turn(conversation, first), name=f"turn {first.message_id}")
            self._tasks[conversation.key] = task
        self.report()

    async def _run_turn(self, conversation: Conversation, first: Inbound) -> None:
        try:
            await Turn(self, conversation, first).run()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("turn crashed conversation=%s message=%s", conversation.key, first.message_id)
        finally:
            conversation.running = False
            conversation.steerable = False
            # Steering that arrived after the final answer starts the next turn, in arrival order.
            while conversation.steering:
                conversation.queue.appendleft((next(self._order), conversation.steering.pop()))
            self._tasks.pop(conversation.key, None)
            self.apply_notes(conversation)
            self._wake.set()
            self.report()
