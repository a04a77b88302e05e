/* The workspace's state: users, rooms with their messages, agents, drafts, and the element registry. */

import { compareIds, timeValue } from "./dom.js";

export const state = {
  currentUserId: "",
  users: new Map(),
  rooms: new Map(),
  agents: new Map(),
  // Messages of deleted users stay hidden even if an older room snapshot is replayed later.
  deletedUserIds: new Set(),
  // Unsent composer text per room, so switching rooms neither loses nor carries a draft.
  drafts: new Map(),
  activeRoomId: "",
  renderedRoomId: "",
};

// The page's elements by name, filled once by workspace.js.
export const el = {};

export function userName(id) {
  const user = state.users.get(id);
  return user ? user.name : id;
}

export function roomFromWire(wire, previous) {
  const messages = [];
  const seen = new Set();
  const add = (message) => {
    if (!message || isReply(message) || seen.has(message.id) || state.deletedUserIds.has(message.sender_id)) return;
    seen.add(message.id);
    messages.push(message);
  };
  (wire.messages || []).forEach(add);
  // Messages that arrived after the snapshot was taken are newer than all of its messages.
  if (previous) previous.messages.forEach(add);
  return {
    id: wire.id,
    title: wire.title || "",
    subtitle: wire.subtitle || "",
    description: wire.description || "",
    members: Array.isArray(wire.members) ? wire.members.slice() : [],
    is_direct: Boolean(wire.is_direct),
    messages,
    messageIds: seen,
  };
}

export function loadBootstrap(data) {
  state.currentUserId = data.current_user_id || "u-admin";
  state.users = new Map((data.users || []).map((user) => [user.id, user]));
  state.users.forEach((user, id) => state.deletedUserIds.delete(id));
  state.rooms = new Map();
  (data.rooms || []).forEach((room) => state.rooms.set(room.id, roomFromWire(room, null)));
  state.renderedRoomId = "";
}

export function loadAgents(list) {
  state.agents = new Map((list || []).map((agent) => [agent.id, agent]));
}

/* A thread reply (threads-attachments.md §1.3): it belongs to its thread, never to the room's timeline. */
export function isReply(message) {
  return Boolean(message && message.relates_to && message.relates_to.event_id);
}

/* Adds a message unless it is already shown or a thread reply; true when it was new. A send's own answer
 * can overtake an earlier message still on its way through the stream, so the message goes in id order. */
export function addMessage(room, message) {
  if (!message || isReply(message) || room.messageIds.has(message.id) || state.deletedUserIds.has(message.sender_id)) {
    return false;
  }
  room.messageIds.add(message.id);
  let index = room.messages.length;
  while (index > 0 && compareIds(room.messages[index - 1].id, message.id) > 0) index -= 1;
  room.messages.splice(index, 0, message);
  return true;
}

/* Puts a newer copy of a shown message in place of the old one (a participant replacing its message
 * sends it again under the same id, participants.md §3.6); the stored copy, or null when nothing changed. */
export function replaceMessage(room, message) {
  if (!message || !room.messageIds.has(message.id)) return null;
  const index = room.messages.findIndex((shown) => shown.id === message.id);
  const shown = room.messages[index];
  // Stream messages carry no thread summary (§2.2); a root keeps its own until thread.updated brings one.
  const next = shown.thread && !message.thread ? { ...message, thread: shown.thread } : message;
  if (JSON.stringify(shown) === JSON.stringify(next)) return null;
  room.messages[index] = next;
  return next;
}

/* Takes a message out of the timeline (replaced by a thread reply under the same id); true when shown. */
export function removeMessage(room, messageId) {
  if (!room.messageIds.delete(messageId)) return false;
  room.messages = room.messages.filter((message) => message.id !== messageId);
  return true;
}

/* The root with its new thread summary (§1.2), or null when the root is not shown. */
export function setThreadSummary(room, rootId, summary) {
  const index = room.messages.findIndex((shown) => shown.id === rootId);
  if (index < 0 || !summary) return null;
  room.messages[index] = { ...room.messages[index], thread: summary };
  return room.messages[index];
}

/* A copy of the message without one attachment, or the message itself when it does not have it. */
export function withoutAttachment(message, attachmentId) {
  const list = Array.isArray(message.attachments) ? message.attachments : [];
  if (!list.some((attachment) => attachment.id === attachmentId)) return message;
  const rest = list.filter((attachment) => attachment.id !== attachmentId);
  const copy = { ...message, attachments: rest };
  if (!rest.length) delete copy.attachments;
  return copy;
}

/* Removes a deleted attachment (§2.8) from the room's messages; returns the messages that changed. */
export function dropAttachment(room, attachmentId) {
  const changed = [];
  room.messages = room.messages.map((message) => {
    const next = withoutAttachment(message, attachmentId);
    if (next !== message) changed.push(next);
    return next;
  });
  return changed;
}

function roomSortKey(room) {
  const last = room.messages[room.messages.length - 1];
  return last ? { time: timeValue(last.created_at), id: last.id } : null;
}

/* Newest activity first; rooms without messages last; then the newest room first. */
export function sortedRooms() {
  return Array.from(state.rooms.values()).sort((a, b) => {
    const ka = roomSortKey(a);
    const kb = roomSortKey(b);
    if (ka && !kb) return -1;
    if (!ka && kb) return 1;
    if (ka && kb) {
      if (kb.time !== ka.time) return kb.time - ka.time;
      const byMessage = compareIds(kb.id, ka.id);
      if (byMessage) return byMessage;
    }
    return compareIds(b.id, a.id);
  });
}

export function sortedAgents() {
  return Array.from(state.agents.values()).sort((a, b) => {
    const byTime = timeValue(a.created_at) - timeValue(b.created_at);
    if (byTime) return byTime;
    return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
  });
}

export function sortedUsers() {
  return Array.from(state.users.values()).sort((a, b) => {
    if (a.name !== b.name) return a.name < b.name ? -1 : 1;
    return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
  });
}

export function subtitleFor(count) {
  return count === 1 ? "1 member" : count + " members";
}

export function directRoomWith(userId) {
  for (const room of state.rooms.values()) {
    if (room.is_direct && room.members.length === 2 && room.members.includes(userId)) return room;
  }
  return null;
}

/* The agents a message is addressed to, as PicoClaw decides it (picoclaw-client.md): the other member
 * of a direct room, or the agents mentioned in a group room; never the sender itself. */
export function addressedAgents(room, message) {
  if (!room || !message || message.kind === "event") return [];
  const ids = room.is_direct
    ? room.members.filter((id) => id !== message.sender_id)
    : Array.isArray(message.mentions)
      ? message.mentions.filter((id) => id !== message.sender_id && room.members.includes(id))
      : [];
  return ids.filter((id) => state.agents.has(id)).map((id) => state.agents.get(id));
}
