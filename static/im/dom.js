/* Small DOM and formatting helpers shared by the workspace modules.
 *
 * Every text that comes from the server goes into the page with textContent or as attribute values; the
 * only HTML the page builds from server text is sanitised markdown (markdown.js).
 */

const HEX_COLOUR = /^#[0-9a-fA-F]{3,8}$/;
const NEUTRAL_ACCENT = "#64748b";

export function $(id) {
  return document.getElementById(id);
}

export function make(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

export function button(label, className, testid) {
  const node = make("button", className || "btn btn-sm", label);
  node.type = "button";
  if (testid) node.dataset.testid = testid;
  return node;
}

export function accent(value) {
  return typeof value === "string" && HEX_COLOUR.test(value) ? value : NEUTRAL_ACCENT;
}

export function initials(name) {
  const words = String(name || "").trim().split(/\s+/).filter(Boolean);
  if (!words.length) return "?";
  const letters = words.slice(0, 2).map((word) => Array.from(word.replace(/^[-_]+/, ""))[0] || "");
  return letters.join("").toUpperCase() || "?";
}

export function avatar(user, fallbackName, size) {
  const node = make("span", "avatar" + (size ? " avatar-" + size : ""));
  node.textContent = user ? user.avatar || initials(user.name) : initials(fallbackName);
  node.style.backgroundColor = accent(user && user.accent_hex);
  node.setAttribute("aria-hidden", "true");
  return node;
}

export function timeValue(iso) {
  const value = Date.parse(iso);
  return Number.isNaN(value) ? 0 : value;
}

/* Ids end in a decimal counter (`msg-<N>`, `room-<N>`); compare it as a number of any length. */
export function compareIds(a, b) {
  const na = String(a).replace(/^\D+/, "");
  const nb = String(b).replace(/^\D+/, "");
  if (na.length !== nb.length) return na.length - nb.length;
  return na < nb ? -1 : na > nb ? 1 : 0;
}

export function formatTime(iso) {
  const date = new Date(timeValue(iso));
  const now = new Date();
  if (date.toDateString() === now.toDateString()) {
    return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }
  return date.toLocaleDateString([], { month: "short", day: "numeric" });
}

export function timeNode(className, iso) {
  const node = make("time", className, formatTime(iso));
  node.dateTime = iso;
  node.title = new Date(timeValue(iso)).toLocaleString();
  return node;
}

export function newClientMsgId() {
  if (window.crypto && typeof window.crypto.randomUUID === "function") {
    return window.crypto.randomUUID();
  }
  // randomUUID needs a secure context; a LAN address over plain HTTP is not one.
  const bytes = new Uint8Array(16);
  if (window.crypto && typeof window.crypto.getRandomValues === "function") {
    window.crypto.getRandomValues(bytes);
  } else {
    for (let i = 0; i < bytes.length; i += 1) bytes[i] = Math.floor(Math.random() * 256);
  }
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16), hex.slice(16, 20), hex.slice(20)].join("-");
}

export function showError(node, text) {
  node.textContent = text;
  node.hidden = !text;
}

/* One banner line; `source` names the operation, so its success clears only its own failure. */
export function showBanner(source, text) {
  const banner = $("banner");
  banner.dataset.source = source;
  banner.textContent = text;
  banner.hidden = false;
}

export function hideBanner(source) {
  const banner = $("banner");
  if (banner.dataset.source !== source) return;
  delete banner.dataset.source;
  banner.hidden = true;
  banner.textContent = "";
}

/* Copies text; the Clipboard API needs a secure context, a LAN address over plain HTTP is not one. */
export async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  const area = make("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.style.position = "fixed";
  area.style.opacity = "0";
  document.body.append(area);
  area.select();
  try {
    if (!document.execCommand("copy")) throw new Error("copy refused");
  } finally {
    area.remove();
  }
}
