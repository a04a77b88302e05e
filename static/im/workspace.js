/* The IM workspace (http-api.md §10.1), entry module: finds the page's elements, wires the controls, decides
 * who reacts to what the modules announce (hub.js) and starts loading. The concepts live in their own
 * modules: api, state, stream, view, rooms, messages, markdown, composer, attachments, threads, files,
 * agents, logs, notices, working, unread.
 */

import { createAgent, refreshAgents } from "./agents.js";
import { carriedFiles, carriesFiles } from "./attachments.js";
import {
  attachFiles,
  autoGrow,
  bindAttachments,
  closeMentionMenu,
  onComposerKey,
  renderComposerState,
  sendMessage,
  updateMentionMenu,
} from "./composer.js";
import { $ } from "./dom.js";
import { bindFilesPanel, closeFiles, filesRoomChanged } from "./files.js";
import { on } from "./hub.js";
import { noteSent, renderStatusLines } from "./notices.js";
import { createRoom, invite, markActiveRead, openInvite, renderRoomList, selectRoom, setDrawer } from "./rooms.js";
import { el, state } from "./state.js";
import { start } from "./stream.js";
import { attachToThread, bindThreadPanel, closeThread, followActiveRoom, openThread, threadTakesDrop } from "./threads.js";
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
  on("rooms.changed", followActiveRoom);
  on("rooms.changed", filesRoomChanged);
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
    conversation: $("conversation"),
    dropHint: $("drop-hint"),
    composerAttach: $("composer-attach"),
    composerFiles: $("composer-files"),
    composerChips: $("composer-chips"),
    uploadProgress: $("upload-progress"),
    threadPanel: $("thread-panel"),
    threadCount: $("thread-count"),
    threadClose: $("thread-close"),
    threadRoot: $("thread-root"),
    threadReplyList: $("thread-reply-list"),
    threadError: $("thread-error"),
    threadComposer: $("thread-composer"),
    threadComposerError: $("thread-composer-error"),
    threadChips: $("thread-chips"),
    threadProgress: $("thread-upload-progress"),
    threadAttach: $("thread-composer-attach"),
    threadFiles: $("thread-composer-files"),
    threadInput: $("thread-composer-input"),
    threadSend: $("thread-composer-send"),
    filesOpen: $("room-files"),
    filesPanel: $("files-panel"),
    filesCount: $("files-count"),
    filesClose: $("files-close"),
    filesQuery: $("files-query"),
    filesError: $("files-error"),
    filesList: $("files-list"),
    filesEmpty: $("files-empty"),
  });
  bindAttachments();
  bindThreadPanel();
  bindFilesPanel();

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
  // The thread panel and the files panel share the conversation's right edge: one at a time.
  el.messageList.addEventListener("click", (event) => {
    const opener = event.target.closest("[data-thread-root]");
    if (!opener) return;
    closeFiles();
    openThread(state.activeRoomId, opener.dataset.threadRoot);
  });
  el.filesOpen.addEventListener("click", closeThread);
  bindDrop();
  el.roomsToggle.addEventListener("click", () => setDrawer("rooms"));
  el.agentsToggle.addEventListener("click", () => setDrawer("agents"));
  $("drawer-scrim").addEventListener("click", () => setDrawer(""));
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape") return;
    if (el.app.dataset.drawer) setDrawer("");
    else if (!el.threadPanel.hidden) closeThread();
    else if (!el.filesPanel.hidden) closeFiles();
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

/* Files dragged over the conversation attach to the thread composer when dropped on the open thread
 * panel, otherwise to the room's composer. */
function bindDrop() {
  let depth = 0;
  const showHint = (shown) => {
    el.dropHint.hidden = !shown;
  };
  el.conversation.addEventListener("dragenter", (event) => {
    if (!carriesFiles(event.dataTransfer)) return;
    depth += 1;
    showHint(true);
  });
  el.conversation.addEventListener("dragleave", () => {
    depth = Math.max(0, depth - 1);
    if (!depth) showHint(false);
  });
  el.conversation.addEventListener("dragover", (event) => {
    if (!carriesFiles(event.dataTransfer)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
  });
  el.conversation.addEventListener("drop", (event) => {
    depth = 0;
    showHint(false);
    const files = carriedFiles(event.dataTransfer);
    if (!files.length) return;
    event.preventDefault();
    if (threadTakesDrop(event.target)) attachToThread(files);
    else attachFiles(files);
  });
}

// A module script runs once the document is parsed, so the elements exist.
loadMarks();
react();
bind();
start();
