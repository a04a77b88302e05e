/* The message history of the open room: grouped by sender, markdown text, attachments, event lines, the
 * intro marker, and each top-level message's way into its thread. */

import { attachmentsNode } from "./attachments.js";
import { avatar, button, formatTime, make, timeNode, timeValue } from "./dom.js";
import { renderMarkdown } from "./markdown.js";
import { el, state } from "./state.js";

// Consecutive messages of one sender within this window share one header.
const GROUP_WINDOW_MS = 5 * 60 * 1000;
// The worker intro the server posts for the admin when a worker is created (http-api.md §9.3).
const INTRO = /^@(\S+) Write this down in your memory: your name is \1\./;

/* Whether a message is the automatic worker intro: from the admin, in the new worker's direct room. */
function isIntro(message, room) {
  const match = INTRO.exec(String(message.content || ""));
  if (!match || !room || !room.is_direct) return false;
  const agentId = room.members.find((id) => id !== message.sender_id);
  const agent = agentId && state.agents.get(agentId);
  const user = agentId && state.users.get(agentId);
  const name = match[1].toLowerCase();
  return Boolean((agent && agent.name.toLowerCase() === name) || (user && user.name === name));
}

function automaticTag() {
  const tag = make("span", "msg-auto", "automatic");
  tag.dataset.testid = "message-automatic";
  tag.title = "Sent by the server when the worker was created, so the agent learns its name and job";
  return tag;
}

/* The "Reply in thread" hover action; workspace.js opens the thread of any `data-thread-root` it sees clicked. */
function replyAction(message) {
  const action = button("Reply in thread", "msg-action", "reply-in-thread");
  action.dataset.threadRoot = message.id;
  return action;
}

/* The reply-count chip of a thread's root (threads-attachments.md §1.2). */
function threadChip(message) {
  const summary = message.thread;
  const count = Number(summary.reply_count) || 0;
  const chip = button(count === 1 ? "1 reply" : count + " replies", "thread-summary", "thread-summary");
  chip.dataset.threadRoot = message.id;
  chip.dataset.replyCount = String(count);
  if (summary.latest_reply && summary.latest_reply.created_at) {
    chip.append(make("span", "thread-summary-time", "last " + formatTime(summary.latest_reply.created_at)));
  }
  return chip;
}

/* One message as a list item; `inThread` leaves out the ways into a thread (the thread panel shows it). */
export function messageNode(message, previous, room, inThread) {
  const item = make("li");
  item.dataset.testid = inThread ? "thread-message" : "message-item";
  item.dataset.messageId = message.id;
  const threadable = !inThread;
  if (message.kind === "event") {
    item.className = "msg-event";
    item.append(make("span", "msg-event-text", message.content), timeNode("msg-event-time", message.created_at));
    if (threadable) item.append(replyAction(message));
    if (threadable && message.thread) item.append(threadChip(message));
    return item;
  }
  const sender = state.users.get(message.sender_id);
  const grouped =
    previous &&
    previous.kind !== "event" &&
    previous.sender_id === message.sender_id &&
    timeValue(message.created_at) - timeValue(previous.created_at) < GROUP_WINDOW_MS;
  item.className = "msg" + (grouped ? " msg-grouped" : "");
  if (message.sender_id === state.currentUserId) item.classList.add("msg-mine");
  const gutter = make("div", "msg-gutter");
  if (!grouped) gutter.append(avatar(sender, message.sender_id));
  const body = make("div", "msg-body");
  const intro = isIntro(message, room);
  if (!grouped) {
    const meta = make("div", "msg-meta");
    meta.append(make("span", "msg-author", sender ? sender.name : message.sender_id));
    if (sender && sender.role && sender.role !== "admin") meta.append(make("span", "msg-role", sender.role));
    if (intro) meta.append(automaticTag());
    meta.append(timeNode("msg-time", message.created_at));
    body.append(meta);
  } else if (intro) {
    body.append(automaticTag());
  }
  const files = attachmentsNode(message);
  if (message.content || !files) {
    const text = make("div", "msg-text");
    renderMarkdown(text, message);
    body.append(text);
  }
  if (files) body.append(files);
  if (threadable && message.thread) body.append(threadChip(message));
  item.append(gutter, body);
  if (threadable) item.append(replyAction(message));
  return item;
}

/* Draws a changed message again in place; its neighbours' grouping does not depend on what changed. */
export function redrawMessage(room, message) {
  if (room.id !== state.activeRoomId || state.renderedRoomId !== room.id) return;
  const shown = Array.from(el.messageList.children).find((node) => node.dataset.messageId === message.id);
  if (!shown) return;
  const index = room.messages.findIndex((candidate) => candidate.id === message.id);
  shown.replaceWith(messageNode(message, room.messages[index - 1], room, false));
}

export function renderMessages() {
  const room = state.rooms.get(state.activeRoomId);
  const list = el.messageList;
  if (!room) {
    list.replaceChildren();
    el.messageEmpty.hidden = true;
    state.renderedRoomId = "";
    return;
  }
  const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
  if (state.renderedRoomId !== room.id) {
    list.replaceChildren(...room.messages.map((message, i) => messageNode(message, room.messages[i - 1], room, false)));
    state.renderedRoomId = room.id;
    list.scrollTop = list.scrollHeight;
  } else {
    const shown = new Set(Array.from(list.children, (node) => node.dataset.messageId));
    const firstNew = room.messages.findIndex((message) => !shown.has(message.id));
    if (firstNew >= 0 && room.messages.slice(firstNew).some((message) => shown.has(message.id))) {
      // A message landed between shown ones: redraw rather than patch the grouping of its neighbours.
      state.renderedRoomId = "";
      renderMessages();
      return;
    }
    let appendedMine = false;
    room.messages.forEach((message, i) => {
      if (shown.has(message.id)) return;
      list.append(messageNode(message, room.messages[i - 1], room, false));
      if (message.sender_id === state.currentUserId) appendedMine = true;
    });
    if (nearBottom || appendedMine) list.scrollTop = list.scrollHeight;
  }
  el.messageEmpty.hidden = room.messages.length > 0;
}
