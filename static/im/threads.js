/* The thread panel (threads-attachments.md §1, §3.2): a root with its replies beside the timeline, loaded
 * from GET …/threads/{root}, kept current by the IM stream, with its own composer that posts replies
 * (`relates_to` m.thread, files allowed).
 */

import { api } from "./api.js";
import { FileTray, carriedFiles, postMessage } from "./attachments.js";
import { compareIds, newClientMsgId, showError } from "./dom.js";
import { messageNode } from "./messages.js";
import { el, state, withoutAttachment } from "./state.js";

const MAX_INPUT_HEIGHT = 140;

const thread = { roomId: "", rootId: "", root: null, replies: [], loads: 0, sending: false };
let tray = null;

function isOpen() {
  return Boolean(thread.rootId) && !el.threadPanel.hidden;
}

function shows(roomId, rootId) {
  return isOpen() && thread.roomId === roomId && (rootId === undefined || thread.rootId === rootId);
}

function threadPath(roomId, rootId) {
  return "/api/v1/rooms/" + encodeURIComponent(roomId) + "/threads/" + encodeURIComponent(rootId);
}

function autoGrow() {
  const input = el.threadInput;
  input.style.height = "auto";
  input.style.height = Math.min(input.scrollHeight, MAX_INPUT_HEIGHT) + "px";
}

function renderComposerState() {
  el.threadSend.disabled = thread.sending || (!el.threadInput.value.trim() && !tray.files.length);
  el.threadAttach.disabled = thread.sending;
}

function render() {
  const room = state.rooms.get(thread.roomId);
  if (!room || !thread.root) return;
  const list = el.threadReplyList;
  const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
  el.threadRoot.replaceChildren(messageNode(thread.root, null, room, true));
  const count = thread.replies.length;
  el.threadCount.textContent = count === 1 ? "1 reply" : count ? count + " replies" : "No replies yet";
  list.replaceChildren(...thread.replies.map((reply, i) => messageNode(reply, thread.replies[i - 1], room, true)));
  if (nearBottom) list.scrollTop = list.scrollHeight;
}

/* Adds or replaces one reply; replies keep creation order, which their ids follow. */
function upsertReply(message) {
  const index = thread.replies.findIndex((reply) => reply.id === message.id);
  if (index >= 0) thread.replies[index] = message;
  else thread.replies.push(message);
  thread.replies.sort((a, b) => compareIds(a.id, b.id));
}

/* Takes a ThreadView (§1.2); replies that arrived on the stream after it was read are kept. */
function adoptView(view) {
  if (!view || !view.root || view.root.id !== thread.rootId) return;
  thread.root = view.root;
  (Array.isArray(view.replies) ? view.replies : []).forEach(upsertReply);
  render();
}

async function load() {
  const { roomId, rootId } = thread;
  thread.loads += 1;
  const load = thread.loads;
  showError(el.threadError, "");
  try {
    const view = await api("GET", threadPath(roomId, rootId));
    if (load === thread.loads && shows(roomId, rootId)) adoptView(view);
  } catch (err) {
    if (load === thread.loads && shows(roomId, rootId)) showError(el.threadError, "Cannot load the thread: " + err.message);
  }
}

export function openThread(roomId, rootId) {
  const room = state.rooms.get(roomId);
  const root = room && room.messages.find((message) => message.id === rootId);
  if (!root) return;
  if (thread.roomId !== roomId || thread.rootId !== rootId) {
    Object.assign(thread, { roomId, rootId, replies: [] });
    el.threadInput.value = "";
    tray.clear();
    showError(el.threadComposerError, "");
    autoGrow();
  }
  thread.root = root;
  el.threadPanel.hidden = false;
  render();
  renderComposerState();
  el.threadInput.focus();
  // A root without a summary has no thread state yet (§1.1): nothing to read, the first reply makes one.
  if (root.thread) load();
}

export function closeThread() {
  el.threadPanel.hidden = true;
  thread.rootId = "";
  thread.root = null;
  thread.replies = [];
  thread.loads += 1;
}

/* Closes the panel when its room is no longer the open one (switched away, or deleted). */
export function followActiveRoom() {
  if (isOpen() && (state.activeRoomId !== thread.roomId || !state.rooms.has(thread.roomId))) closeThread();
}

/* A reply arrived (message.created with relates_to, §1.3): it goes to the open panel of its root only. */
export function threadReplyArrived(roomId, message) {
  if (shows(roomId, message.relates_to.event_id)) {
    upsertReply(message);
    render();
  }
}

/* thread.created / thread.updated carry the whole ThreadView. */
export function threadViewArrived(roomId, view) {
  if (view && view.root && shows(roomId, view.root.id)) adoptView(view);
}

/* A timeline message changed; if it is the open root, the panel shows the new copy. */
export function threadRootChanged(roomId, message) {
  if (shows(roomId, message.id)) {
    thread.root = message;
    render();
  }
}

export function threadAttachmentDeleted(roomId, attachmentId) {
  if (!shows(roomId)) return;
  thread.root = withoutAttachment(thread.root, attachmentId);
  thread.replies = thread.replies.map((reply) => withoutAttachment(reply, attachmentId));
  render();
}

/* True when files dropped at this point belong to the thread composer rather than the room's. */
export function threadTakesDrop(target) {
  return isOpen() && el.threadPanel.contains(target);
}

export function attachToThread(files) {
  tray.add(files);
}

async function sendReply() {
  const content = el.threadInput.value.trim();
  if (thread.sending || !thread.rootId || (!content && !tray.files.length)) return;
  const { roomId, rootId } = thread;
  const body = {
    room_id: roomId,
    sender_id: state.currentUserId,
    content,
    client_msg_id: newClientMsgId(),
    relates_to: { rel_type: "m.thread", event_id: rootId },
  };
  const files = tray.take();
  el.threadInput.value = "";
  autoGrow();
  showError(el.threadComposerError, "");
  thread.sending = true;
  renderComposerState();
  try {
    const message = await postMessage(body, files, el.threadProgress);
    if (message && shows(roomId, rootId)) {
      upsertReply(message);
      render();
      el.threadReplyList.scrollTop = el.threadReplyList.scrollHeight;
    }
  } catch (err) {
    if (shows(roomId, rootId)) {
      showError(el.threadComposerError, "Not sent: " + err.message);
      tray.restore(files);
      if (!el.threadInput.value) el.threadInput.value = content;
      autoGrow();
    }
  } finally {
    thread.sending = false;
    renderComposerState();
  }
}

/* Wires the panel's controls; called once by workspace.js after the elements are found. */
export function bindThreadPanel() {
  tray = new FileTray({
    chips: el.threadChips,
    error: el.threadComposerError,
    testidPrefix: "thread-composer",
    onChange: () => renderComposerState(),
  });
  el.threadClose.addEventListener("click", closeThread);
  el.threadComposer.addEventListener("submit", (event) => {
    event.preventDefault();
    sendReply();
  });
  el.threadInput.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      sendReply();
    }
  });
  el.threadInput.addEventListener("input", () => {
    autoGrow();
    renderComposerState();
  });
  el.threadInput.addEventListener("paste", (event) => {
    const files = carriedFiles(event.clipboardData);
    if (!files.length) return;
    if (!event.clipboardData.types.includes("text/plain")) event.preventDefault();
    tray.add(files);
  });
  el.threadAttach.addEventListener("click", () => el.threadFiles.click());
  el.threadFiles.addEventListener("change", () => {
    tray.add(el.threadFiles.files);
    el.threadFiles.value = "";
  });
}
