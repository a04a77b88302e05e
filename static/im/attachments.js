/* Message attachments (threads-attachments.md §2): the files a composer holds before sending, checked
 * against the limits of §2.1, the multipart send with upload progress, and how a message shows its files.
 */

import { api, apiUpload } from "./api.js";
import { button, make } from "./dom.js";

const MAX_FILES = 10;
const MAX_FILE_BYTES = 25 * 1024 * 1024;
const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;
// The largest box an inline image takes in a message; bigger images are scaled down to fit.
const THUMB_WIDTH = 320;
const THUMB_HEIGHT = 240;
// The server hands out relative download URLs (§2.3); anything else is not followed.
const ATTACHMENT_URL = /^\/api\/v1\/attachments\/[A-Za-z0-9-]+(\?[^#]*)?$/;

export function humanSize(bytes) {
  const value = Number(bytes) || 0;
  if (value < 1024) return value + " B";
  const units = ["KB", "MB", "GB"];
  let scaled = value / 1024;
  let unit = 0;
  while (scaled >= 1024 && unit < units.length - 1) {
    scaled /= 1024;
    unit += 1;
  }
  return (scaled < 10 ? scaled.toFixed(1) : Math.round(scaled)) + " " + units[unit];
}

function attachmentUrl(value) {
  return typeof value === "string" && ATTACHMENT_URL.test(value) ? value : "";
}

/* The files one composer will send with its next message, drawn as removable chips. */
export class FileTray {
  constructor({ chips, error, testidPrefix, onChange }) {
    this.files = [];
    this.chips = chips;
    this.error = error;
    this.testidPrefix = testidPrefix;
    this.onChange = onChange;
  }

  /* Takes the files that fit the limits; the others are named in the error line with the reason. */
  add(fileList) {
    const refused = [];
    Array.from(fileList || []).forEach((file) => {
      const reason = this.refusal(file);
      if (reason) refused.push(reason);
      else this.files.push(file);
    });
    this.showError(refused.join(" "));
    this.render();
  }

  refusal(file) {
    const name = '"' + file.name + '"';
    if (this.files.length >= MAX_FILES) return name + " not added: at most " + MAX_FILES + " files per message.";
    if (!file.size) return name + " not added: the file is empty.";
    if (file.size > MAX_FILE_BYTES) return name + " not added: a file may be at most 25 MB.";
    if (this.files.some((held) => held.name === file.name && held.size === file.size)) {
      return name + " not added: it is already attached.";
    }
    const total = this.files.reduce((sum, held) => sum + held.size, 0) + file.size;
    if (total > MAX_MESSAGE_BYTES) return name + " not added: the files of one message may total at most 64 MB.";
    return "";
  }

  remove(index) {
    this.files.splice(index, 1);
    this.showError("");
    this.render();
  }

  /* Hands the files over for sending and empties the tray. */
  take() {
    const files = this.files;
    this.files = [];
    this.render();
    return files;
  }

  /* Puts back the files of a send that failed, unless new ones were picked meanwhile. */
  restore(files) {
    if (this.files.length) return;
    this.files = files;
    this.render();
  }

  clear() {
    this.files = [];
    this.showError("");
    this.render();
  }

  showError(text) {
    this.error.textContent = text;
    this.error.hidden = !text;
  }

  render() {
    const chips = this.files.map((file, index) => {
      const chip = make("li", "file-chip");
      chip.dataset.testid = this.testidPrefix + "-file-chip";
      chip.append(make("span", "file-chip-name", file.name), make("span", "file-chip-size", humanSize(file.size)));
      const remove = button("×", "file-chip-remove", this.testidPrefix + "-file-remove");
      remove.setAttribute("aria-label", "Remove " + file.name);
      remove.addEventListener("click", () => this.remove(index));
      chip.append(remove);
      return chip;
    });
    this.chips.replaceChildren(...chips);
    this.chips.hidden = !chips.length;
    this.onChange();
  }
}

/* The files a drag or a paste carries, if any. */
export function carriedFiles(transfer) {
  return transfer && transfer.files && transfer.files.length ? Array.from(transfer.files) : [];
}

export function carriesFiles(transfer) {
  return Boolean(transfer && Array.from(transfer.types || []).includes("Files"));
}

/* Sends a message: JSON without files, otherwise multipart with `payload` and one `files` part per file
 * (§2.4), showing the upload on `progress` (a <progress> element, max 1) while it runs. */
export async function postMessage(body, files, progress) {
  if (!files.length) return api("POST", "/api/v1/messages", body);
  const form = new FormData();
  form.append("payload", JSON.stringify(body));
  files.forEach((file) => form.append("files", file, file.name));
  progress.value = 0;
  progress.hidden = false;
  try {
    return await apiUpload("/api/v1/messages", form, (fraction) => {
      progress.value = fraction;
    });
  } finally {
    progress.hidden = true;
  }
}

function thumbSize(attachment) {
  const width = Number(attachment.width) || 0;
  const height = Number(attachment.height) || 0;
  if (!width || !height) return null;
  const scale = Math.min(1, THUMB_WIDTH / width, THUMB_HEIGHT / height);
  return { width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale)) };
}

function imageNode(attachment, source) {
  const link = make("a", "att-image");
  link.href = attachmentUrl(attachment.download_url) || source;
  link.target = "_blank";
  link.rel = "noopener noreferrer";
  link.title = attachment.name + " · " + humanSize(attachment.size_bytes);
  const image = make("img");
  image.dataset.testid = "message-attachment-image";
  image.dataset.attachmentId = attachment.id;
  image.src = source;
  image.alt = attachment.name;
  image.loading = "lazy";
  const size = thumbSize(attachment);
  if (size) {
    image.width = size.width;
    image.height = size.height;
  }
  link.append(image);
  return link;
}

function extension(name) {
  const dot = String(name).lastIndexOf(".");
  const ext = dot > 0 ? String(name).slice(dot + 1, dot + 5) : "";
  return ext ? ext.toUpperCase() : "FILE";
}

function fileNode(attachment) {
  const card = make("div", "att-file");
  card.dataset.testid = "message-attachment-file";
  card.dataset.attachmentId = attachment.id;
  const icon = make("span", "att-file-icon", extension(attachment.name));
  icon.setAttribute("aria-hidden", "true");
  const text = make("span", "att-file-text");
  text.append(make("span", "att-file-name", attachment.name), make("span", "att-file-size", humanSize(attachment.size_bytes)));
  card.append(icon, text);
  const url = attachmentUrl(attachment.download_url);
  if (url) {
    const link = make("a", "btn btn-sm att-file-download", "Download");
    link.href = url;
    link.download = attachment.name;
    link.rel = "noopener noreferrer";
    link.setAttribute("aria-label", "Download " + attachment.name);
    card.append(link);
  }
  return card;
}

/* A message's attachments in upload order, or null when it has none. */
export function attachmentsNode(message) {
  const list = Array.isArray(message.attachments) ? message.attachments : [];
  if (!list.length) return null;
  const box = make("div", "msg-attachments");
  list.forEach((attachment) => {
    const preview = attachmentUrl(attachment.preview_url) || attachmentUrl(attachment.download_url);
    box.append(attachment.kind === "image" && preview ? imageNode(attachment, preview) : fileNode(attachment));
  });
  return box;
}
