/* The room's files panel: GET /api/v1/rooms/{id}/attachments (threads-attachments.md §2.8) with a name
 * filter, each file downloadable through the room's own download route. Both routes let the admin's own
 * browser in (a local caller or a /login session), as the rest of the page's API calls do.
 */

import { api } from "./api.js";
import { humanSize } from "./attachments.js";
import { make, showError, timeNode } from "./dom.js";
import { el, state, userName } from "./state.js";

const PAGE_SIZE = 200;
const QUERY_DELAY_MS = 250;

const files = { roomId: "", loads: 0, queryTimer: 0 };

function isOpen() {
  return !el.filesPanel.hidden;
}

function listPath(roomId) {
  const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
  const text = el.filesQuery.value.trim();
  if (text) query.set("query", text);
  return "/api/v1/rooms/" + encodeURIComponent(roomId) + "/attachments?" + query.toString();
}

function downloadPath(roomId, attachmentId) {
  return "/api/v1/rooms/" + encodeURIComponent(roomId) + "/attachments/" + encodeURIComponent(attachmentId);
}

function itemNode(item) {
  const row = make("li", "file-row");
  row.dataset.testid = "room-file-item";
  row.dataset.attachmentId = item.id;
  const icon = make("span", "att-file-icon", item.kind === "image" ? "IMG" : "FILE");
  icon.setAttribute("aria-hidden", "true");
  const text = make("div", "file-row-text");
  text.append(make("span", "file-row-name", item.name));
  const meta = make("span", "file-row-meta", humanSize(item.size_bytes) + " · " + userName(item.sender_id) + " · ");
  meta.append(timeNode("file-row-time", item.created_at));
  text.append(meta);
  const link = make("a", "file-row-download", "Download");
  link.href = downloadPath(files.roomId, item.id);
  link.download = item.name;
  link.dataset.testid = "room-file-download";
  row.append(icon, text, link);
  return row;
}

function renderList(data) {
  const items = data && Array.isArray(data.items) ? data.items : [];
  el.filesList.replaceChildren(...items.map(itemNode));
  const total = data && Number.isInteger(data.total) ? data.total : items.length;
  el.filesCount.textContent = total === 1 ? "1 file" : total + " files";
  el.filesEmpty.hidden = items.length > 0;
  el.filesEmpty.textContent = el.filesQuery.value.trim() ? "No file name matches." : "No files in this room yet.";
}

async function load() {
  const roomId = state.activeRoomId;
  files.roomId = roomId;
  files.loads += 1;
  const load = files.loads;
  showError(el.filesError, "");
  if (!state.rooms.has(roomId)) {
    renderList(null);
    return;
  }
  try {
    const data = await api("GET", listPath(roomId));
    if (load !== files.loads) return;
    renderList(data);
  } catch (err) {
    if (load !== files.loads) return;
    showError(el.filesError, "Cannot list the files: " + err.message);
  }
}

function toggleFiles() {
  if (isOpen()) {
    closeFiles();
    return;
  }
  el.filesPanel.hidden = false;
  el.filesOpen.setAttribute("aria-expanded", "true");
  load();
}

export function closeFiles() {
  el.filesPanel.hidden = true;
  el.filesOpen.setAttribute("aria-expanded", "false");
  files.loads += 1;
}

/* The open panel follows the open room, and shows uploads and deletions of it. */
export function filesRoomChanged() {
  if (isOpen() && files.roomId !== state.activeRoomId) load();
}

export function filesMayHaveChanged(roomId) {
  if (isOpen() && files.roomId === roomId) load();
}

export function bindFilesPanel() {
  el.filesOpen.addEventListener("click", toggleFiles);
  el.filesClose.addEventListener("click", closeFiles);
  el.filesQuery.addEventListener("input", () => {
    window.clearTimeout(files.queryTimer);
    files.queryTimer = window.setTimeout(load, QUERY_DELAY_MS);
  });
}
