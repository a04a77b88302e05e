/* The room list, the room header, switching rooms, and the new-room and invite forms. */

import { api } from "./api.js";
import { avatar, make, formatTime, showError } from "./dom.js";
import { autoGrow, clearAttachments, closeMentionMenu } from "./composer.js";
import { emit } from "./hub.js";
import { plainText } from "./markdown.js";
import { el, sortedRooms, sortedUsers, state, userName, roomFromWire } from "./state.js";
import { markRead, unreadCount } from "./unread.js";

let newRoomPickerKey = "";

function roomAvatar(room) {
  if (room.is_direct) {
    const other = room.members.find((id) => id !== state.currentUserId);
    if (other) return avatar(state.users.get(other), room.title);
  }
  const node = make("span", "avatar avatar-room", "#");
  node.setAttribute("aria-hidden", "true");
  return node;
}

function preview(room, last) {
  if (!last) return room.subtitle;
  const names = Array.isArray(last.attachments) ? last.attachments.map((attachment) => attachment.name) : [];
  const text = plainText(last.content) || (names.length ? "File: " + names.join(", ") : "");
  if (last.kind === "event") return text;
  if (last.sender_id === state.currentUserId) return "You: " + text;
  return room.is_direct ? text : userName(last.sender_id) + ": " + text;
}

export function renderRoomList() {
  const rooms = sortedRooms();
  let unreadTotal = 0;
  const items = rooms.map((room) => {
    const item = make("li", "room-item");
    item.dataset.testid = "room-item";
    item.dataset.roomId = room.id;
    item.tabIndex = 0;
    item.setAttribute("role", "button");
    if (room.id === state.activeRoomId) {
      item.classList.add("active");
      item.setAttribute("aria-current", "true");
    }
    const body = make("div", "room-item-body");
    const top = make("div", "room-item-top");
    top.append(make("span", "room-item-title", room.title));
    const last = room.messages[room.messages.length - 1];
    if (last) {
      const time = make("time", "room-item-time", formatTime(last.created_at));
      time.dateTime = last.created_at;
      top.append(time);
    }
    const bottom = make("div", "room-item-bottom");
    bottom.append(make("span", "room-item-preview", preview(room, last)));
    const unread = unreadCount(room);
    if (unread) {
      unreadTotal += unread;
      item.classList.add("has-unread");
      const count = make("span", "unread", unread > 99 ? "99+" : unread);
      count.dataset.testid = "room-unread";
      count.setAttribute("aria-label", unread + " unread");
      bottom.append(count);
    }
    body.append(top, make("div", "room-item-subtitle", room.subtitle), bottom);
    item.append(roomAvatar(room), body);
    return item;
  });
  el.roomList.replaceChildren(...items);
  el.roomEmpty.hidden = rooms.length > 0;
  el.roomCount.textContent = rooms.length ? String(rooms.length) : "";
  el.roomsToggleCount.textContent = unreadTotal ? (unreadTotal > 99 ? "99+" : String(unreadTotal)) : "";
  el.roomsToggleCount.hidden = !unreadTotal;
}

export function renderRoomHeader() {
  const room = state.rooms.get(state.activeRoomId);
  if (!room) {
    el.roomTitle.textContent = "No room selected";
    el.roomMeta.textContent = "";
    el.memberStack.replaceChildren();
    el.inviteOpen.disabled = true;
    el.inviteOpen.title = "";
    el.filesOpen.disabled = true;
    document.title = "CSGClaw IM";
    return;
  }
  el.roomTitle.textContent = room.title;
  el.roomMeta.textContent = room.description ? room.subtitle + " · " + room.description : room.subtitle;
  document.title = room.title + " · CSGClaw IM";
  const faces = room.members.slice(0, 6).map((id) => {
    const face = avatar(state.users.get(id), id, "xs");
    face.title = userName(id);
    face.removeAttribute("aria-hidden");
    face.setAttribute("role", "img");
    face.setAttribute("aria-label", userName(id));
    return face;
  });
  if (room.members.length > 6) faces.push(make("span", "avatar avatar-xs avatar-more", "+" + (room.members.length - 6)));
  el.memberStack.replaceChildren(...faces);
  el.filesOpen.disabled = false;
  el.inviteOpen.disabled = room.is_direct;
  el.inviteOpen.title = room.is_direct ? "Direct rooms cannot get new members" : "Invite people to this room";
}

/* The open room counts as read while the page is visible. */
export function markActiveRead() {
  if (document.hidden || !state.activeRoomId) return false;
  return markRead(state.activeRoomId);
}

/* On narrow screens the room list and the agents panel are drawers over the conversation. */
export function setDrawer(name) {
  const app = el.app;
  const next = app.dataset.drawer === name ? "" : name;
  if (next) app.dataset.drawer = next;
  else delete app.dataset.drawer;
  el.roomsToggle.setAttribute("aria-expanded", String(next === "rooms"));
  el.agentsToggle.setAttribute("aria-expanded", String(next === "agents"));
}

export function selectRoom(roomId) {
  if (!state.rooms.has(roomId)) return;
  if (state.activeRoomId !== roomId) {
    if (el.composerInput.value) state.drafts.set(state.activeRoomId, el.composerInput.value);
    else state.drafts.delete(state.activeRoomId);
    el.composerInput.value = state.drafts.get(roomId) || "";
    state.drafts.delete(roomId);
    state.activeRoomId = roomId;
    state.renderedRoomId = "";
    closeMentionMenu();
    clearAttachments();
    showError(el.composerError, "");
    autoGrow();
  }
  if (window.location.hash.slice(1) !== roomId) {
    window.history.replaceState(null, "", "#" + encodeURIComponent(roomId));
  }
  if (el.app.dataset.drawer) setDrawer("");
  emit("rooms.changed");
  el.composerInput.focus();
}

export function upsertRoom(wire) {
  state.rooms.set(wire.id, roomFromWire(wire, state.rooms.get(wire.id)));
  if (!state.activeRoomId) state.activeRoomId = wire.id;
  if (wire.id === state.activeRoomId) state.renderedRoomId = "";
  emit("rooms.changed");
}

function memberPicker(container, users, name) {
  const checked = new Set(Array.from(container.querySelectorAll("input:checked"), (input) => input.value));
  const options = users.map((user) => {
    const label = make("label", "pick-item");
    const input = make("input");
    input.type = "checkbox";
    input.name = name;
    input.value = user.id;
    input.checked = checked.has(user.id);
    input.dataset.testid = name + "-member";
    label.append(input, avatar(user, user.name, "xs"), make("span", "pick-name", user.name));
    return label;
  });
  container.replaceChildren(...options);
  return options.length;
}

/* Rebuilt only when the people change, so a render never steals focus from a checkbox. */
export function renderNewRoomMembers() {
  const others = sortedUsers().filter((user) => user.id !== state.currentUserId);
  const key = JSON.stringify(others.map((user) => [user.id, user.name, user.accent_hex]));
  if (key === newRoomPickerKey) return;
  newRoomPickerKey = key;
  memberPicker(el.newRoomMembers, others, "new-room");
}

export async function createRoom(event) {
  event.preventDefault();
  const title = el.newRoomTitle.value.trim();
  if (!title) {
    showError(el.newRoomError, "title is required");
    el.newRoomTitle.focus();
    return;
  }
  const memberIds = Array.from(el.newRoomMembers.querySelectorAll("input:checked"), (input) => input.value);
  el.newRoomSubmit.disabled = true;
  showError(el.newRoomError, "");
  try {
    const room = await api("POST", "/api/v1/rooms", {
      title,
      creator_id: state.currentUserId,
      member_ids: memberIds,
    });
    upsertRoom(room);
    el.newRoomForm.reset();
    selectRoom(room.id);
  } catch (err) {
    showError(el.newRoomError, err.message);
  } finally {
    el.newRoomSubmit.disabled = false;
  }
}

export function openInvite() {
  const room = state.rooms.get(state.activeRoomId);
  if (!room || room.is_direct) return;
  el.inviteRoomTitle.textContent = room.title;
  el.inviteMembers.replaceChildren();
  const candidates = sortedUsers().filter((user) => !room.members.includes(user.id));
  const count = memberPicker(el.inviteMembers, candidates, "invite");
  el.inviteEmpty.hidden = count > 0;
  el.inviteSubmit.disabled = count === 0;
  showError(el.inviteError, "");
  el.inviteDialog.dataset.roomId = room.id;
  el.inviteDialog.showModal();
}

export async function invite(event) {
  event.preventDefault();
  const roomId = el.inviteDialog.dataset.roomId;
  const userIds = Array.from(el.inviteMembers.querySelectorAll("input:checked"), (input) => input.value);
  if (!userIds.length) {
    showError(el.inviteError, "pick at least one person to invite");
    return;
  }
  el.inviteSubmit.disabled = true;
  try {
    const room = await api("POST", "/api/v1/rooms/" + encodeURIComponent(roomId) + "/members", {
      inviter_id: state.currentUserId,
      user_ids: userIds,
    });
    upsertRoom(room);
    el.inviteDialog.close();
  } catch (err) {
    showError(el.inviteError, err.message);
  } finally {
    el.inviteSubmit.disabled = false;
  }
}
