/* Whole-page rendering, and what every newly shown message sets off (unread, working, redraws). */

import { accent, initials } from "./dom.js";
import { renderAgents } from "./agents.js";
import { renderComposerState } from "./composer.js";
import { redrawMessage, renderMessages } from "./messages.js";
import { renderStatusLines } from "./notices.js";
import { markActiveRead, renderNewRoomMembers, renderRoomHeader, renderRoomList } from "./rooms.js";
import { el, sortedRooms, state } from "./state.js";
import { threadRootChanged } from "./threads.js";
import { noteMessage } from "./working.js";

function renderMe() {
  const me = state.users.get(state.currentUserId);
  el.me.hidden = !me;
  if (!me) return;
  el.meAvatar.textContent = me.avatar || initials(me.name);
  el.meAvatar.style.backgroundColor = accent(me.accent_hex);
  el.meName.textContent = me.name;
}

export function renderAll() {
  if (!state.activeRoomId || !state.rooms.has(state.activeRoomId)) {
    const fromHash = decodeURIComponent(window.location.hash.slice(1));
    const first = sortedRooms()[0];
    state.activeRoomId = state.rooms.has(fromHash) ? fromHash : first ? first.id : "";
    state.renderedRoomId = "";
  }
  markActiveRead();
  renderMe();
  renderRoomList();
  renderRoomHeader();
  renderMessages();
  renderStatusLines();
  renderAgents();
  renderNewRoomMembers();
  renderComposerState();
}

/* A message was added to `room` (from the stream or a send's answer). */
export function messageAdded(room, message) {
  noteMessage(room, message);
  if (room.id === state.activeRoomId) {
    markActiveRead();
    renderMessages();
  }
  renderRoomList();
  renderStatusLines();
}

/* A shown message changed in place (replaced, new thread summary, an attachment deleted). */
export function messageChanged(room, message) {
  redrawMessage(room, message);
  threadRootChanged(room.id, message);
  renderRoomList();
}

/* A shown message left the timeline: the open room is drawn again, its neighbours may regroup. */
export function messageRemoved(room) {
  if (room.id === state.activeRoomId) {
    state.renderedRoomId = "";
    renderMessages();
  }
  renderRoomList();
}
