/* The composer: sending with a fresh client_msg_id, drafts, and the @ mention autocomplete. */

import { api } from "./api.js";
import { avatar, make, newClientMsgId, showError } from "./dom.js";
import { emit } from "./hub.js";
import { addMessage, el, sortedUsers, state } from "./state.js";

const MENTION_MENU_SIZE = 8;
const MAX_INPUT_HEIGHT = 180;

const mention = { open: false, start: 0, options: [], index: 0 };

export function autoGrow() {
  const input = el.composerInput;
  input.style.height = "auto";
  input.style.height = Math.min(input.scrollHeight, MAX_INPUT_HEIGHT) + "px";
}

export function renderComposerState() {
  const hasRoom = state.rooms.has(state.activeRoomId);
  el.composerInput.disabled = !hasRoom;
  el.composerSend.disabled = !hasRoom || !el.composerInput.value.trim();
}

export async function sendMessage() {
  const room = state.rooms.get(state.activeRoomId);
  const content = el.composerInput.value.trim();
  if (!room || !content) return;
  const body = {
    room_id: room.id,
    sender_id: state.currentUserId,
    content,
    client_msg_id: newClientMsgId(),
  };
  el.composerInput.value = "";
  autoGrow();
  closeMentionMenu();
  showError(el.composerError, "");
  renderComposerState();
  try {
    const message = await api("POST", "/api/v1/messages", body);
    const target = state.rooms.get(body.room_id);
    if (!target) return;
    if (addMessage(target, message)) emit("message.added", target, message);
    emit("message.sent", target, message);
  } catch (err) {
    showError(el.composerError, "Not sent: " + err.message);
    if (state.activeRoomId !== body.room_id) {
      if (!state.drafts.has(body.room_id)) state.drafts.set(body.room_id, content);
    } else if (!el.composerInput.value) {
      el.composerInput.value = content;
      autoGrow();
      renderComposerState();
    }
  }
}

function mentionQuery() {
  const input = el.composerInput;
  if (input.selectionStart !== input.selectionEnd) return null;
  const before = input.value.slice(0, input.selectionStart);
  const match = /(^|[^A-Za-z0-9_])@([^\s@<>"]*)$/.exec(before);
  if (!match) return null;
  return { start: before.length - match[2].length - 1, text: match[2].toLowerCase() };
}

function mentionCandidates(text) {
  const room = state.rooms.get(state.activeRoomId);
  const members = new Set(room ? room.members : []);
  return sortedUsers()
    .filter((user) => user.id !== state.currentUserId)
    .filter((user) => !text || user.name.toLowerCase().includes(text) || (user.handle || "").includes(text))
    .sort((a, b) => Number(members.has(b.id)) - Number(members.has(a.id)))
    .slice(0, MENTION_MENU_SIZE)
    .map((user) => ({ user, member: members.has(user.id) }));
}

export function updateMentionMenu() {
  const query = mentionQuery();
  const options = query ? mentionCandidates(query.text) : [];
  if (!query || !options.length) {
    closeMentionMenu();
    return;
  }
  mention.open = true;
  mention.start = query.start;
  mention.options = options;
  mention.index = Math.min(mention.index, options.length - 1);
  renderMentionMenu();
}

function renderMentionMenu() {
  const nodes = mention.options.map(({ user, member }, i) => {
    const option = make("div", "mention-option" + (i === mention.index ? " selected" : ""));
    option.setAttribute("role", "option");
    option.setAttribute("aria-selected", String(i === mention.index));
    option.dataset.testid = "mention-option";
    option.dataset.userId = user.id;
    option.append(avatar(user, user.name, "xs"), make("span", "mention-name", user.name));
    option.append(make("span", "mention-handle", "@" + user.handle + (member ? "" : " · not in room")));
    // mousedown, not click: the textarea must keep its focus and caret.
    option.addEventListener("mousedown", (event) => {
      event.preventDefault();
      pickMention(i);
    });
    return option;
  });
  el.mentionMenu.replaceChildren(...nodes);
  el.mentionMenu.hidden = false;
}

export function closeMentionMenu() {
  mention.open = false;
  mention.options = [];
  mention.index = 0;
  el.mentionMenu.hidden = true;
  el.mentionMenu.replaceChildren();
}

/* Replaces the typed `@query` with an `<at>` tag, which PicoClaw agents in group rooms react to. */
function pickMention(index) {
  const choice = mention.options[index];
  if (!choice) return;
  const input = el.composerInput;
  const tag = '<at user_id="' + choice.user.id + '">' + choice.user.name + "</at> ";
  const caret = input.selectionStart;
  input.value = input.value.slice(0, mention.start) + tag + input.value.slice(caret);
  const position = mention.start + tag.length;
  input.setSelectionRange(position, position);
  closeMentionMenu();
  autoGrow();
  renderComposerState();
  input.focus();
}

export function onComposerKey(event) {
  if (mention.open) {
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      const step = event.key === "ArrowDown" ? 1 : -1;
      mention.index = (mention.index + step + mention.options.length) % mention.options.length;
      renderMentionMenu();
      return;
    }
    if (event.key === "Enter" || event.key === "Tab") {
      event.preventDefault();
      pickMention(mention.index);
      return;
    }
    if (event.key === "Escape") {
      event.preventDefault();
      closeMentionMenu();
      return;
    }
  }
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    sendMessage();
  }
}
