/* Loading the workspace and following the IM stream (events.md §2): idempotent event application,
 * reconnects with the last seen id, and a full reload on `reset`.
 */

import { api } from "./api.js";
import { applyAgent, refreshAgents } from "./agents.js";
import { hideBanner, showBanner } from "./dom.js";
import { filesMayHaveChanged } from "./files.js";
import { forgetRoom } from "./notices.js";
import { upsertRoom } from "./rooms.js";
import {
  addMessage,
  dropAttachment,
  el,
  isReply,
  loadAgents,
  loadBootstrap,
  removeMessage,
  replaceMessage,
  setThreadSummary,
  state,
  subtitleFor,
} from "./state.js";
import { threadAttachmentDeleted, threadReplyArrived, threadViewArrived } from "./threads.js";
import { adoptSnapshot } from "./unread.js";
import { messageAdded, messageChanged, messageRemoved, renderAll } from "./view.js";
import { rebuild } from "./working.js";

// A stream that ends (lifetime cap, server restart) is reopened at once; the browser's own retry
// waits about 3 s because the server sends no `retry:` line. Repeated failures back off up to 10 s.
const RECONNECT_BASE_MS = 500;
const RECONNECT_MAX_MS = 10000;
// A planned reconnect (the stream's lifetime cap) takes a few milliseconds; only a drop that lasts
// longer than this is shown as `reconnecting`, so the indicator does not flicker.
const RECONNECT_NOTICE_MS = 1000;
const BOOTSTRAP_RETRY_MS = 2000;

const stream = { source: null, lastEventId: "", attempts: 0, retryTimer: 0, noticeTimer: 0 };
// While a full reload is in flight, stream events are kept and re-applied afterwards, so a snapshot
// that was read before them cannot overwrite them.
const resync = { running: false, again: false, buffer: null };

function applyEvent(event) {
  if (resync.buffer) resync.buffer.push(event);
  switch (event.type) {
    case "message.created":
      applyMessageCreated(event);
      break;
    case "thread.created":
    case "thread.updated":
      applyThread(event);
      break;
    case "room.attachment_deleted":
      applyAttachmentDeleted(event);
      break;
    case "room.created":
    case "room.members_added":
      if (event.room) upsertRoom(event.room);
      break;
    case "room.deleted":
      removeRoom(event.room_id);
      break;
    case "user.created":
      if (event.user) {
        state.deletedUserIds.delete(event.user.id);
        state.users.set(event.user.id, event.user);
        renderAll();
      }
      refreshAgents();
      break;
    case "user.deleted":
      if (event.user) removeUser(event.user.id);
      break;
    case "agent.updated":
      applyAgent(event.agent);
      break;
    default:
      break;
  }
}

function applyMessageCreated(event) {
  if (event.sender && !state.deletedUserIds.has(event.sender.id)) state.users.set(event.sender.id, event.sender);
  const room = state.rooms.get(event.room_id);
  if (!room) {
    // A message for a room this page never saw: the snapshot is behind, read it again.
    reload();
    return;
  }
  const message = event.message;
  if (!message) return;
  if (Array.isArray(message.attachments) && message.attachments.length) filesMayHaveChanged(room.id);
  if (isReply(message)) {
    if (removeMessage(room, message.id)) messageRemoved(room);
    threadReplyArrived(room.id, message);
    return;
  }
  if (addMessage(room, message)) {
    messageAdded(room, message);
    return;
  }
  const replaced = replaceMessage(room, message);
  if (replaced) messageChanged(room, replaced);
}

/* thread.created / thread.updated (threads-attachments.md §1.9): the root gets the new summary. */
function applyThread(event) {
  const room = state.rooms.get(event.room_id);
  const view = event.thread;
  if (!room || !view || !view.root) return;
  const root = setThreadSummary(room, view.root.id, view.summary);
  if (root) messageChanged(room, root);
  threadViewArrived(room.id, view);
}

function applyAttachmentDeleted(event) {
  const room = state.rooms.get(event.room_id);
  if (!room) return;
  dropAttachment(room, event.attachment_id).forEach((message) => messageChanged(room, message));
  threadAttachmentDeleted(room.id, event.attachment_id);
  filesMayHaveChanged(room.id);
}

function removeRoom(roomId) {
  if (!state.rooms.delete(roomId)) return;
  state.drafts.delete(roomId);
  forgetRoom(roomId);
  if (state.activeRoomId === roomId) {
    state.activeRoomId = "";
    state.renderedRoomId = "";
  }
  renderAll();
}

function removeUser(userId) {
  state.users.delete(userId);
  state.deletedUserIds.add(userId);
  for (const room of state.rooms.values()) {
    room.messages = room.messages.filter((message) => message.sender_id !== userId);
    room.messageIds = new Set(room.messages.map((message) => message.id));
    if (room.members.includes(userId)) {
      room.members = room.members.filter((id) => id !== userId);
      room.subtitle = subtitleFor(room.members.length);
    }
  }
  state.renderedRoomId = "";
  renderAll();
}

/* Replaces the whole state with a fresh bootstrap; retries until it succeeds. A reload asked for
 * while one is running makes that one go round once more instead of starting a second one. */
async function reload() {
  if (resync.running) {
    resync.again = true;
    return null;
  }
  resync.running = true;
  let bootstrap = null;
  try {
    do {
      resync.again = false;
      bootstrap = await loadSnapshot();
      if (!bootstrap) await new Promise((resolve) => window.setTimeout(resolve, BOOTSTRAP_RETRY_MS));
    } while (!bootstrap || resync.again);
  } finally {
    resync.running = false;
  }
  return bootstrap;
}

async function loadSnapshot() {
  resync.buffer = [];
  try {
    const [bootstrap, agents] = await Promise.all([
      api("GET", "/api/v1/im/bootstrap"),
      api("GET", "/api/v1/agents"),
    ]);
    const buffered = resync.buffer;
    resync.buffer = null;
    loadBootstrap(bootstrap);
    loadAgents(agents);
    adoptSnapshot();
    buffered.forEach(applyEvent);
    rebuild();
    hideBanner("workspace");
    hideBanner("agents");
    renderAll();
    return bootstrap;
  } catch (err) {
    resync.buffer = null;
    showBanner("workspace", "Cannot load the workspace: " + err.message + ". Retrying…");
    return null;
  }
}

function setConnection(live) {
  window.clearTimeout(stream.noticeTimer);
  stream.noticeTimer = 0;
  const text = live ? "live" : "reconnecting";
  el.connection.textContent = text;
  el.connection.parentElement.dataset.state = text;
}

function streamOpen() {
  const query = stream.lastEventId ? "?last_event_id=" + encodeURIComponent(stream.lastEventId) : "";
  const source = new EventSource("/api/v1/im/events" + query);
  stream.source = source;
  source.onopen = () => {
    stream.attempts = 0;
    setConnection(true);
  };
  source.onmessage = (frame) => {
    if (frame.lastEventId) stream.lastEventId = frame.lastEventId;
    let event;
    try {
      event = JSON.parse(frame.data);
    } catch (err) {
      return;
    }
    applyEvent(event);
  };
  // The log was pruned past our cursor or recreated: the stream goes on live, the state is refetched.
  source.addEventListener("reset", (frame) => {
    if (frame.lastEventId) stream.lastEventId = frame.lastEventId;
    reload();
  });
  source.onerror = () => {
    if (stream.source !== source) return;
    source.close();
    stream.source = null;
    streamReconnect();
  };
}

function streamReconnect() {
  if (!stream.noticeTimer && el.connection.textContent === "live") {
    stream.noticeTimer = window.setTimeout(() => setConnection(false), RECONNECT_NOTICE_MS);
  }
  const delay = stream.attempts === 0 ? 0 : Math.min(RECONNECT_MAX_MS, RECONNECT_BASE_MS * 2 ** (stream.attempts - 1));
  stream.attempts += 1;
  window.clearTimeout(stream.retryTimer);
  stream.retryTimer = window.setTimeout(streamOpen, delay);
}

/* Loads the snapshot, then follows the stream from the cursor the snapshot was read at. */
export async function start() {
  const bootstrap = await reload();
  stream.lastEventId = String(bootstrap.last_event_id ?? "");
  streamOpen();
}
