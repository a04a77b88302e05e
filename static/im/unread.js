/* Unread counts per room: the last message read in each room, kept in localStorage across reloads and tabs.
 *
 * A room's count is the number of messages from others after its last read one. On the very first visit
 * nothing is stored yet and every room counts as read; a room that appears later starts unread.
 */

import { compareIds } from "./dom.js";
import { state } from "./state.js";

const STORAGE_KEY = "csgclaw.im.lastRead";

const lastRead = new Map();
let stored = false;

function storage() {
  try {
    return window.localStorage;
  } catch (err) {
    return null;
  }
}

/* Reads the stored marks (again, when another tab changed them); false when nothing is stored yet. */
export function loadMarks() {
  const store = storage();
  let raw = null;
  try {
    raw = store ? store.getItem(STORAGE_KEY) : null;
  } catch (err) {
    raw = null;
  }
  lastRead.clear();
  stored = false;
  if (!raw) return false;
  try {
    const data = JSON.parse(raw);
    if (data && typeof data === "object") {
      Object.entries(data).forEach(([roomId, messageId]) => {
        if (typeof messageId === "string") lastRead.set(roomId, messageId);
      });
      stored = true;
    }
  } catch (err) {
    return false;
  }
  return stored;
}

function save() {
  const store = storage();
  if (!store) return;
  const data = {};
  lastRead.forEach((messageId, roomId) => {
    if (state.rooms.has(roomId)) data[roomId] = messageId;
  });
  try {
    store.setItem(STORAGE_KEY, JSON.stringify(data));
    stored = true;
  } catch (err) {
    // A full or disabled storage only loses the counts across reloads.
  }
}

function lastMessageId(room) {
  const last = room.messages[room.messages.length - 1];
  return last ? last.id : "";
}

/* After a bootstrap: with nothing stored, everything that exists now counts as read. */
export function adoptSnapshot() {
  if (stored) return;
  state.rooms.forEach((room) => lastRead.set(room.id, lastMessageId(room)));
  save();
}

/* Marks a room read up to its newest message; true when its count changed. */
export function markRead(roomId) {
  const room = state.rooms.get(roomId);
  if (!room) return false;
  const before = unreadCount(room);
  const newest = lastMessageId(room);
  if (lastRead.get(roomId) === newest && lastRead.has(roomId)) return false;
  lastRead.set(roomId, newest);
  save();
  return before > 0;
}

export function unreadCount(room) {
  const mark = lastRead.get(room.id);
  let count = 0;
  for (let i = room.messages.length - 1; i >= 0; i -= 1) {
    const message = room.messages[i];
    if (mark !== undefined && compareIds(message.id, mark) <= 0) break;
    if (message.kind !== "event" && message.sender_id !== state.currentUserId) count += 1;
  }
  return count;
}

export function onOtherTab(callback) {
  window.addEventListener("storage", (event) => {
    if (event.key !== STORAGE_KEY) return;
    loadMarks();
    callback();
  });
}
