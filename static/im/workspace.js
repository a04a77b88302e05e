/* The IM workspace (http-api.md §10.1), entry module: finds the page's elements, wires the controls, decides
 * who reacts to what the modules announce (hub.js) and starts loading. The concepts live in their own
 * modules: api, state, stream, view, rooms, messages, markdown, composer, agents, logs, notices, working,
 * unread.
 */

import { createAgent, refreshAgents } from "./agents.js";
import { autoGrow, closeMentionMenu, onComposerKey, renderComposerState, sendMessage, updateMentionMenu } from "./composer.js";
import { $ } from "./dom.js";
import { on } from "./hub.js";
import { noteSent, renderStatusLines } from "./notices.js";
import { createRoom, invite, markActiveRead, openInvite, renderRoomList, selectRoom, setDrawer } from "./rooms.js";
import { el, state } from "./state.js";
import { start } from "./stream.js";
import { loadMarks, onOtherTab } from "./unread.js";
import { messageAdded, renderAll } from "./view.js";

// The server asks the sandbox for agent statuses only when agents are listed (http-api.md §5.1);
// listing now and then lets a box that exited on its own show up without a page reload.
const AGENT_REFRESH_MS = 60 * 1000;
// How often "is working…" lines are re-checked, so they end on their timeout without any event.
const WORKING_TICK_MS = 15 * 1000;

/* What the page does when a module announces a change (hub.js). */
function react() {
  on("rooms.changed", renderAll);
  on("agents.changed", renderStatusLines);
  on("message.added", messageAdded);
  on("message.sent", noteSent);
}

function bind() {
  Object.assign(el, {
    app: $("app"),
    connection: $("connection-status"),
    me: $("me"),
    meAvatar: $("me-avatar"),
    meName: $("me-name"),
    roomsToggle: $("rooms-toggle"),
    roomsToggleCount: $("rooms-toggle-count"),
    agentsToggle: $("agents-toggle"),
    roomList: $("room-list"),
    roomEmpty: $("room-empty"),
    roomCount: $("room-count"),
    roomTitle: $("room-title"),
    roomMeta: $("room-meta"),
    memberStack: $("member-stack"),
    inviteOpen: $("invite-open"),
    messageList: $("message-list"),
    messageEmpty: $("message-empty"),
    statusLines: $("status-lines"),
    composer: $("composer"),
    composerInput: $("composer-input"),
    composerSend: $("composer-send"),
    composerError: $("composer-error"),
    mentionMenu: $("mention-menu"),
    agentList: $("agent-list"),
    agentEmpty: $("agent-empty"),
    agentCount: $("agent-count"),
    newAgentForm: $("new-agent-form"),
    newAgentName: $("new-agent-name"),
    newAgentDescription: $("new-agent-description"),
    newAgentProfile: $("new-agent-profile"),
    newAgentSubmit: $("new-agent-submit"),
    newAgentError: $("new-agent-error"),
    newRoomForm: $("new-room-form"),
    newRoomTitle: $("new-room-title"),
    newRoomMembers: $("new-room-members"),
    newRoomSubmit: $("new-room-submit"),
    newRoomError: $("new-room-error"),
    inviteDialog: $("invite-dialog"),
    inviteForm: $("invite-form"),
    inviteRoomTitle: $("invite-room-title"),
    inviteMembers: $("invite-members"),
    inviteEmpty: $("invite-empty"),
    inviteError: $("invite-error"),
    inviteSubmit: $("invite-submit"),
  });

  el.roomList.addEventListener("click", (event) => {
    const item = event.target.closest(".room-item");
    if (item) selectRoom(item.dataset.roomId);
  });
  el.roomList.addEventListener("keydown", (event) => {
    const item = event.target.closest(".room-item");
    if (item && (event.key === "Enter" || event.key === " ")) {
      event.preventDefault();
      selectRoom(item.dataset.roomId);
    }
  });
  el.roomsToggle.addEventListener("click", () => setDrawer("rooms"));
  el.agentsToggle.addEventListener("click", () => setDrawer("agents"));
  $("drawer-scrim").addEventListener("click", () => setDrawer(""));
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && el.app.dataset.drawer) setDrawer("");
  });
  el.composer.addEventListener("submit", (event) => {
    event.preventDefault();
    sendMessage();
  });
  el.composerInput.addEventListener("keydown", onComposerKey);
  el.composerInput.addEventListener("input", () => {
    autoGrow();
    renderComposerState();
    updateMentionMenu();
  });
  el.composerInput.addEventListener("click", updateMentionMenu);
  el.composerInput.addEventListener("blur", closeMentionMenu);
  el.newAgentForm.addEventListener("submit", createAgent);
  el.newRoomForm.addEventListener("submit", createRoom);
  el.inviteOpen.addEventListener("click", openInvite);
  el.inviteForm.addEventListener("submit", invite);
  $("invite-cancel").addEventListener("click", () => el.inviteDialog.close());
  document.addEventListener("visibilitychange", () => {
    if (document.hidden) return;
    if (markActiveRead()) renderRoomList();
    refreshAgents();
  });
  onOtherTab(() => {
    if (state.rooms.size) renderRoomList();
  });
  window.setInterval(() => {
    if (!document.hidden) refreshAgents();
  }, AGENT_REFRESH_MS);
  window.setInterval(renderStatusLines, WORKING_TICK_MS);
  window.addEventListener("hashchange", () => {
    const roomId = decodeURIComponent(window.location.hash.slice(1));
    if (roomId !== state.activeRoomId) selectRoom(roomId);
  });
}

// A module script runs once the document is parsed, so the elements exist.
loadMarks();
react();
bind();
start();
