/* Message text as safe markdown: markdown-it renders with raw HTML off, DOMPurify keeps an allow-list,
 * links open in a new tab without an opener, code blocks get a Copy button, mentions become chips.
 *
 * `<at user_id="…">Name</at>` tags are taken out before markdown and put back as chip elements, so the
 * markdown never sees them and a hostile tag cannot smuggle markup through them.
 */

import markdownit from "../vendor/markdown-it/markdown-it.min.js";
import DOMPurify from "../vendor/dompurify/purify.es.js";
import { button, copyText, make } from "./dom.js";
import { state } from "./state.js";

// Sources only: each use makes its own global RegExp, so no two loops share a lastIndex.
export const AT_TAG = '<at user_id="([^"]+)">(.*?)</at>';
// An @handle token as the server resolves it (http-api.md §2.6).
const HANDLE_TOKEN = "(^|[^A-Za-z0-9_])@([A-Za-z0-9._-]+)";
// Private-use characters mark where a mention was; any in the content itself are replaced first.
const MARK_OPEN = "\uE000";
const MARK_CLOSE = "\uE001";
const MARKS = /[\uE000\uE001]/g;
const PLACEHOLDER = /\uE000(\d+)\uE001/g;
const COPIED_MS = 1500;

const ALLOWED_TAGS = [
  "a", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "li", "ol",
  "p", "pre", "s", "strong", "table", "tbody", "td", "th", "thead", "tr", "ul",
];
const ALLOWED_ATTR = ["href", "title", "start"];
// Chips inside these stay plain text: code shows what was written, a link keeps one target.
const NO_CHIPS = new Set(["CODE", "PRE", "A"]);

// Images are off: a remote image would load from wherever an agent or a user points it.
const md = markdownit({ html: false, linkify: true, breaks: true }).disable(["image"]);

/* Plain text of a message for previews: `<at>` tags become `@Name`, whitespace collapses. */
export function plainText(content) {
  return String(content || "")
    .replace(new RegExp(AT_TAG, "g"), (_, id, name) => "@" + name)
    .replace(/\s+/g, " ")
    .trim();
}

export function chip(userId, name) {
  const node = make("span", "mention", "@" + name);
  node.dataset.userId = userId;
  node.title = userId;
  if (userId === state.currentUserId) node.classList.add("mention-me");
  return node;
}

/* Renders `message.content` into `container` as sanitised markdown with mention chips. */
export function renderMarkdown(container, message) {
  const tags = [];
  const source = String(message.content || "")
    .replace(MARKS, "\uFFFD")
    .replace(new RegExp(AT_TAG, "g"), (_, id, name) => {
      tags.push({ id, name });
      return MARK_OPEN + (tags.length - 1) + MARK_CLOSE;
    });
  const fragment = DOMPurify.sanitize(md.render(source), {
    ALLOWED_TAGS,
    ALLOWED_ATTR,
    RETURN_DOM_FRAGMENT: true,
  });
  const mentioned = new Set(Array.isArray(message.mentions) ? message.mentions : []);
  fragment.querySelectorAll("a[href]").forEach((link) => {
    link.target = "_blank";
    link.rel = "noopener noreferrer";
  });
  placeChips(fragment, tags, mentioned);
  fragment.querySelectorAll("pre").forEach(addCopyButton);
  container.replaceChildren(fragment);
}

function placeChips(root, tags, mentioned) {
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  const texts = [];
  for (let node = walker.nextNode(); node; node = walker.nextNode()) texts.push(node);
  texts.forEach((node) => {
    const plain = insidePlain(node);
    const parts = [];
    const text = node.nodeValue;
    let position = 0;
    for (const match of text.matchAll(PLACEHOLDER)) {
      const tag = tags[Number(match[1])];
      pushHandles(parts, text.slice(position, match.index), mentioned, plain);
      if (tag) parts.push(plain ? document.createTextNode("@" + tag.name) : chip(tag.id, tag.name));
      position = match.index + match[0].length;
    }
    pushHandles(parts, text.slice(position), mentioned, plain);
    if (parts.length !== 1 || parts[0].nodeType !== Node.TEXT_NODE || parts[0].nodeValue !== text) {
      node.replaceWith(...parts);
    }
  });
}

function insidePlain(node) {
  for (let parent = node.parentNode; parent; parent = parent.parentNode) {
    if (NO_CHIPS.has(parent.nodeName)) return true;
  }
  return false;
}

/* `@handle` tokens that the server resolved to a mentioned user are shown as chips too. */
function pushHandles(parts, text, mentioned, plain) {
  if (!text) return;
  let position = 0;
  if (!plain && mentioned.size) {
    for (const match of text.matchAll(new RegExp(HANDLE_TOKEN, "g"))) {
      const handle = match[2].toLowerCase();
      const user = Array.from(state.users.values()).find((u) => u.handle === handle);
      if (!user || !mentioned.has(user.id)) continue;
      const start = match.index + match[1].length;
      if (start > position) parts.push(document.createTextNode(text.slice(position, start)));
      parts.push(chip(user.id, match[2]));
      position = start + 1 + match[2].length;
    }
  }
  if (position < text.length) parts.push(document.createTextNode(text.slice(position)));
}

function addCopyButton(pre) {
  const wrapper = make("div", "code-block");
  const copy = button("Copy", "btn btn-sm code-copy", "code-copy");
  copy.addEventListener("click", async () => {
    try {
      await copyText(pre.textContent);
      copy.textContent = "Copied";
    } catch (err) {
      copy.textContent = "Copy failed";
    }
    window.setTimeout(() => {
      copy.textContent = "Copy";
    }, COPIED_MS);
  });
  pre.replaceWith(wrapper);
  wrapper.append(copy, pre);
}
