/* The composer: sending with a fresh client_msg_id and attached files, drafts, and the @ mention
 * autocomplete. */

import { FileTray, carriedFiles, postMessage } from "./attachments.js";
import { avatar, make, newClientMsgId, showError } from "./dom.js";
import { emit } from "./hub.js";
import { addMessage, el, sortedUsers, state } from "./state.js";

const MENTION_MENU_SIZE = 8;
const MAX_INPUT_HEIGHT = 180;

const mention = { open: false, start: 0, options: [], index: 0 };
let tray = null;
let uploading = false;

export function autoGrow() {
  const input = el.composerInput;
  input.style.height = "auto";
  input.style.height = Math.min(input.scrollHeight, MAX_INPUT_HEIGHT) + "px";
}

export function renderComposerState() {
  const hasRoom = state.rooms.has(state.activeRoomId);
  el.composerInput.disabled = !hasRoom;
  el.composerAttach.disabled = !hasRoom || uploading;
  el.composerSend.disabled = !hasRoom || uploading || (!el.composerInput.value.trim() && !tray.files.length);
}

/* Files picked, pasted or dropped for the room's composer. */
export function attachFiles(files) {
  if (state.rooms.has(state.activeRoomId)) tray.add(files);
}

/* Attached files are not drafts: switching rooms drops them, so they never go to a room not chosen. */
export function clearAttachments() {
  tray.clear();
}

export async function sendMessage() {
  const room = state.rooms.get(state.activeRoomId);
  const content = el.composerInput.value.trim();
  if (!room || uploading || (!content && !tray.files.length)) return;
  const body = {
    room_id: room.id,
    sender_id: state.currentUserId,
    content,
    client_msg_id: newClientMsgId(),
  };
  const files = tray.take();
  el.composerInput.value = "";
  autoGrow();
  closeMentionMenu();
  showError(el.composerError, "");
  uploading = files.length > 0;
  renderComposerState();
  try {
    const message = await postMessage(body, files, el.uploadProgress);
    const target = state.rooms.get(body.room_id);
    if (!target) return;
    if (addMessage(target, message)) emit("message.added", target, message);
    emit("message.sent", target, message);
  } catch (err) {
    showError(el.composerError, "Not sent: " + err.message);
    if (state.activeRoomId !== body.room_id) {
      if (!state.drafts.has(body.room_id)) state.drafts.set(body.room_id, content);
    } else {
      tray.restore(files);
      if (!el.composerInput.value) {
        el.composerInput.value = content;
        autoGrow();
      }
    }
  } finally {
    uploading = false;
    renderComposerState();
  }
}

/* Wires the attach button, the hidden file input and pasting files; called once by workspace.js. */
export function bindAttachments() {
  tray = new FileTray({
    chips: el.composerChips,
    error: el.composerError,
    testidPrefix: "composer",
    onChange: () => renderComposerState(),
  });
  el.composerAttach.addEventListener("click", () => el.composerFiles.click());
  el.composerFiles.addEventListener("change", () => {
    attachFiles(el.composerFiles.files);
    el.composerFiles.value = "";
  });
  el.composerInput.addEventListener("paste", (event) => {
    const files = carriedFiles(event.clipboardData);
    if (!files.length) return;
    // A copied screenshot is only a file; text that came with files is still pasted as text.
    if (!event.clipboardData.types.includes("text/plain")) event.preventDefault();
    attachFiles(files);
  });
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
