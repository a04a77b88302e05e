/* The IM workspace (http-api.md §10.1): shows the public API's state and follows the IM event stream.
 *
 * Every text that comes from the server is put into the page with textContent or as attribute values,
 * never as HTML: message contents, names and titles are written by agents and other clients.
 */
(function () {
  "use strict";

  // A stream that ends (lifetime cap, server restart) is reopened at once; the browser's own retry
  // waits about 3 s because the server sends no `retry:` line. Repeated failures back off up to 10 s.
  const RECONNECT_BASE_MS = 500;
  const RECONNECT_MAX_MS = 10000;
  // A planned reconnect (the stream's lifetime cap) takes a few milliseconds; only a drop that lasts
  // longer than this is shown as `reconnecting`, so the indicator does not flicker.
  const RECONNECT_NOTICE_MS = 1000;
  const BOOTSTRAP_RETRY_MS = 2000;
  // Consecutive messages of one sender within this window share one header.
  const GROUP_WINDOW_MS = 5 * 60 * 1000;
  const MENTION_MENU_SIZE = 8;
  // The server asks the sandbox for agent statuses only when agents are listed (http-api.md §5.1);
  // listing now and then lets a box that exited on its own show up without a page reload.
  const AGENT_REFRESH_MS = 60 * 1000;

  // Sources only: each use makes its own global RegExp, so no two loops share a lastIndex.
  const AT_TAG = '<at user_id="([^"]+)">(.*?)</at>';
  // An @handle token as the server resolves it (http-api.md §2.6).
  const HANDLE_TOKEN = "(^|[^A-Za-z0-9_])@([A-Za-z0-9._-]+)";
  const HEX_COLOUR = /^#[0-9a-fA-F]{3,8}$/;
  const NEUTRAL_ACCENT = "#64748b";
  const STARTABLE = new Set(["created", "stopped", "exited", "failed", "unknown"]);
  const DETAIL_SHOWN = new Set(["failed", "unknown"]);

  const state = {
    currentUserId: "",
    users: new Map(),
    rooms: new Map(),
    agents: new Map(),
    // Messages of deleted users stay hidden even if an older room snapshot is replayed later.
    deletedUserIds: new Set(),
    unread: new Map(),
    // Unsent composer text per room, so switching rooms neither loses nor carries a draft.
    drafts: new Map(),
    activeRoomId: "",
    renderedRoomId: "",
  };

  const stream = { source: null, lastEventId: "", attempts: 0, retryTimer: 0, noticeTimer: 0 };
  // While a full reload or an agent refetch is in flight, stream events are kept and re-applied
  // afterwards, so a snapshot that was read before them cannot overwrite them.
  const resync = { running: false, again: false, buffer: null };
  const agentSync = { running: false, again: false, buffer: null };
  const pendingAgents = new Set();
  const agentErrors = new Map();
  let newRoomPickerKey = "";

  const el = {};

  /* ---------- small helpers ---------- */

  function $(id) {
    return document.getElementById(id);
  }

  function make(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function accent(value) {
    return typeof value === "string" && HEX_COLOUR.test(value) ? value : NEUTRAL_ACCENT;
  }

  function initials(name) {
    const words = String(name || "").trim().split(/\s+/).filter(Boolean);
    if (!words.length) return "?";
    const letters = words.slice(0, 2).map((word) => Array.from(word.replace(/^[-_]+/, ""))[0] || "");
    return letters.join("").toUpperCase() || "?";
  }

  function avatar(user, fallbackName, size) {
    const node = make("span", "avatar" + (size ? " avatar-" + size : ""));
    node.textContent = user ? user.avatar || initials(user.name) : initials(fallbackName);
    node.style.backgroundColor = accent(user && user.accent_hex);
    node.setAttribute("aria-hidden", "true");
    return node;
  }

  function userName(id) {
    const user = state.users.get(id);
    return user ? user.name : id;
  }

  function timeValue(iso) {
    const value = Date.parse(iso);
    return Number.isNaN(value) ? 0 : value;
  }

  /* Ids end in a decimal counter (`msg-<N>`, `room-<N>`); compare it as a number of any length. */
  function compareIds(a, b) {
    const na = String(a).replace(/^\D+/, "");
    const nb = String(b).replace(/^\D+/, "");
    if (na.length !== nb.length) return na.length - nb.length;
    return na < nb ? -1 : na > nb ? 1 : 0;
  }

  function formatTime(iso) {
    const date = new Date(timeValue(iso));
    const now = new Date();
    if (date.toDateString() === now.toDateString()) {
      return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    }
    return date.toLocaleDateString([], { month: "short", day: "numeric" });
  }

  function newClientMsgId() {
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

  /* ---------- API ---------- */

  class ApiFailure extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  async function api(method, path, body) {
    const init = { method, headers: { Accept: "application/json" }, cache: "no-store" };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (err) {
      throw new ApiFailure(0, "cannot reach the server");
    }
    if (response.status === 204) return null;
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch (err) {
      data = null;
    }
    if (!response.ok) {
      const message =
        data && data.error && typeof data.error.message === "string"
          ? data.error.message
          : text.trim() || "request failed with status " + response.status;
      throw new ApiFailure(response.status, message);
    }
    return data;
  }

  /* ---------- state ---------- */

  function roomFromWire(wire, previous) {
    const messages = [];
    const seen = new Set();
    const add = (message) => {
      if (!message || seen.has(message.id) || state.deletedUserIds.has(message.sender_id)) return;
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

  function loadBootstrap(data) {
    state.currentUserId = data.current_user_id || "u-admin";
    state.users = new Map((data.users || []).map((user) => [user.id, user]));
    state.users.forEach((user, id) => state.deletedUserIds.delete(id));
    state.rooms = new Map();
    (data.rooms || []).forEach((room) => state.rooms.set(room.id, roomFromWire(room, null)));
    for (const id of state.unread.keys()) {
      if (!state.rooms.has(id)) state.unread.delete(id);
    }
    state.renderedRoomId = "";
  }

  function loadAgents(list) {
    state.agents = new Map((list || []).map((agent) => [agent.id, agent]));
  }

  function roomSortKey(room) {
    const last = room.messages[room.messages.length - 1];
    return last ? { time: timeValue(last.created_at), id: last.id } : null;
  }

  /* Newest activity first; rooms without messages last; then the newest room first. */
  function sortedRooms() {
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

  function sortedAgents() {
    return Array.from(state.agents.values()).sort((a, b) => {
      const byTime = timeValue(a.created_at) - timeValue(b.created_at);
      if (byTime) return byTime;
      return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
    });
  }

  function sortedUsers() {
    return Array.from(state.users.values()).sort((a, b) => {
      if (a.name !== b.name) return a.name < b.name ? -1 : 1;
      return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
    });
  }

  function subtitleFor(count) {
    return count === 1 ? "1 member" : count + " members";
  }

  function directRoomWith(userId) {
    for (const room of state.rooms.values()) {
      if (room.is_direct && room.members.length === 2 && room.members.includes(userId)) return room;
    }
    return null;
  }

  /* ---------- events (events.md §2) ---------- */

  function applyEvent(event) {
    if (resync.buffer) resync.buffer.push(event);
    switch (event.type) {
      case "message.created":
        applyMessageCreated(event);
        break;
      case "room.created":
      case "room.members_added":
        if (event.room) upsertRoom(event.room);
        break;
      case "room.deleted":
        removeRoom(event.room_id);
        break;
      case "user.created":
        if (event.user) {
          state.deletedUserIds.delete(event.user.id);
          state.users.set(event.user.id, event.user);
          renderAll();
        }
        refreshAgents();
        break;
      case "user.deleted":
        if (event.user) removeUser(event.user.id);
        break;
      case "agent.updated":
        if (agentSync.buffer) agentSync.buffer.push(event.agent);
        applyAgent(event.agent);
        break;
      default:
        break;
    }
  }

  function applyMessageCreated(event) {
    if (event.sender && !state.deletedUserIds.has(event.sender.id)) state.users.set(event.sender.id, event.sender);
    const room = state.rooms.get(event.room_id);
    if (!room) {
      // A message for a room this page never saw: the snapshot is behind, read it again.
      reload();
      return;
    }
    if (addMessage(room, event.message) && event.message.sender_id !== state.currentUserId) {
      if (room.id !== state.activeRoomId || document.hidden) {
        state.unread.set(room.id, (state.unread.get(room.id) || 0) + 1);
      }
    }
    renderRoomList();
    if (room.id === state.activeRoomId) renderMessages();
  }

  /* Adds a message unless it is already shown; true when it was new. A send's own answer can overtake
   * an earlier message still on its way through the stream, so the message goes in id order. */
  function addMessage(room, message) {
    if (!message || room.messageIds.has(message.id) || state.deletedUserIds.has(message.sender_id)) return false;
    room.messageIds.add(message.id);
    let index = room.messages.length;
    while (index > 0 && compareIds(room.messages[index - 1].id, message.id) > 0) index -= 1;
    room.messages.splice(index, 0, message);
    return true;
  }

  function upsertRoom(wire) {
    state.rooms.set(wire.id, roomFromWire(wire, state.rooms.get(wire.id)));
    if (!state.activeRoomId) state.activeRoomId = wire.id;
    if (wire.id === state.activeRoomId) state.renderedRoomId = "";
    renderAll();
  }

  function removeRoom(roomId) {
    if (!state.rooms.delete(roomId)) return;
    state.unread.delete(roomId);
    state.drafts.delete(roomId);
    if (state.activeRoomId === roomId) {
      state.activeRoomId = "";
      state.renderedRoomId = "";
    }
    renderAll();
  }

  function removeUser(userId) {
    state.users.delete(userId);
    state.deletedUserIds.add(userId);
    for (const room of state.rooms.values()) {
      room.messages = room.messages.filter((message) => message.sender_id !== userId);
      room.messageIds = new Set(room.messages.map((message) => message.id));
      if (room.members.includes(userId)) {
        room.members = room.members.filter((id) => id !== userId);
        room.subtitle = subtitleFor(room.members.length);
      }
    }
    state.renderedRoomId = "";
    renderAll();
  }

  function applyAgent(agent) {
    if (!agent || !agent.id) return;
    if (agent.status === "deleted") {
      state.agents.delete(agent.id);
      agentErrors.delete(agent.id);
    } else {
      state.agents.set(agent.id, agent);
    }
    renderAgents();
  }

  /* ---------- loading and the stream ---------- */

  /* Replaces the whole state with a fresh bootstrap; retries until it succeeds. A reload asked for
   * while one is running makes that one go round once more instead of starting a second one. */
  async function reload() {
    if (resync.running) {
      resync.again = true;
      return null;
    }
    resync.running = true;
    let bootstrap = null;
    try {
      do {
        resync.again = false;
        bootstrap = await loadSnapshot();
        if (!bootstrap) await new Promise((resolve) => window.setTimeout(resolve, BOOTSTRAP_RETRY_MS));
      } while (!bootstrap || resync.again);
    } finally {
      resync.running = false;
    }
    return bootstrap;
  }

  async function loadSnapshot() {
    resync.buffer = [];
    try {
      const [bootstrap, agents] = await Promise.all([
        api("GET", "/api/v1/im/bootstrap"),
        api("GET", "/api/v1/agents"),
      ]);
      const buffered = resync.buffer;
      resync.buffer = null;
      loadBootstrap(bootstrap);
      loadAgents(agents);
      buffered.forEach(applyEvent);
      hideBanner("workspace");
      hideBanner("agents");
      renderAll();
      return bootstrap;
    } catch (err) {
      resync.buffer = null;
      showBanner("workspace", "Cannot load the workspace: " + err.message + ". Retrying…");
      return null;
    }
  }

  async function refreshAgents() {
    if (agentSync.running) {
      agentSync.again = true;
      return;
    }
    agentSync.running = true;
    agentSync.buffer = [];
    try {
      const list = await api("GET", "/api/v1/agents");
      const buffered = agentSync.buffer;
      agentSync.buffer = null;
      loadAgents(list);
      buffered.forEach(applyAgent);
      renderAgents();
      hideBanner("agents");
    } catch (err) {
      showBanner("agents", "Cannot refresh the agents: " + err.message + ".");
    } finally {
      agentSync.buffer = null;
      agentSync.running = false;
      if (agentSync.again) {
        agentSync.again = false;
        refreshAgents();
      }
    }
  }

  function setConnection(live) {
    window.clearTimeout(stream.noticeTimer);
    stream.noticeTimer = 0;
    const text = live ? "live" : "reconnecting";
    el.connection.textContent = text;
    el.connection.parentElement.dataset.state = text;
  }

  function streamOpen() {
    const query = stream.lastEventId ? "?last_event_id=" + encodeURIComponent(stream.lastEventId) : "";
    const source = new EventSource("/api/v1/im/events" + query);
    stream.source = source;
    source.onopen = () => {
      stream.attempts = 0;
      setConnection(true);
    };
    source.onmessage = (frame) => {
      if (frame.lastEventId) stream.lastEventId = frame.lastEventId;
      let event;
      try {
        event = JSON.parse(frame.data);
      } catch (err) {
        return;
      }
      applyEvent(event);
    };
    // The log was pruned past our cursor or recreated: the stream goes on live, the state is refetched.
    source.addEventListener("reset", (frame) => {
      if (frame.lastEventId) stream.lastEventId = frame.lastEventId;
      reload();
    });
    source.onerror = () => {
      if (stream.source !== source) return;
      source.close();
      stream.source = null;
      streamReconnect();
    };
  }

  function streamReconnect() {
    if (!stream.noticeTimer && el.connection.textContent === "live") {
      stream.noticeTimer = window.setTimeout(() => setConnection(false), RECONNECT_NOTICE_MS);
    }
    const delay = stream.attempts === 0 ? 0 : Math.min(RECONNECT_MAX_MS, RECONNECT_BASE_MS * 2 ** (stream.attempts - 1));
    stream.attempts += 1;
    window.clearTimeout(stream.retryTimer);
    stream.retryTimer = window.setTimeout(streamOpen, delay);
  }

  async function start() {
    const bootstrap = await reload();
    stream.lastEventId = String(bootstrap.last_event_id ?? "");
    streamOpen();
  }

  /* ---------- rendering ---------- */

  /* One banner line; `source` names the operation, so its success clears only its own failure. */
  function showBanner(source, text) {
    el.banner.dataset.source = source;
    el.banner.textContent = text;
    el.banner.hidden = false;
  }

  function hideBanner(source) {
    if (el.banner.dataset.source !== source) return;
    delete el.banner.dataset.source;
    el.banner.hidden = true;
    el.banner.textContent = "";
  }

  function showError(node, text) {
    node.textContent = text;
    node.hidden = !text;
  }

  function renderAll() {
    if (!state.activeRoomId || !state.rooms.has(state.activeRoomId)) {
      const fromHash = decodeURIComponent(window.location.hash.slice(1));
      const first = sortedRooms()[0];
      state.activeRoomId = state.rooms.has(fromHash) ? fromHash : first ? first.id : "";
      state.renderedRoomId = "";
    }
    renderMe();
    renderRoomList();
    renderRoomHeader();
    renderMessages();
    renderAgents();
    renderNewRoomMembers();
    renderComposerState();
  }

  function renderMe() {
    const me = state.users.get(state.currentUserId);
    el.me.hidden = !me;
    if (!me) return;
    el.meAvatar.textContent = me.avatar || initials(me.name);
    el.meAvatar.style.backgroundColor = accent(me.accent_hex);
    el.meName.textContent = me.name;
  }

  /* Plain text of a message for previews: `<at>` tags become `@Name`, whitespace collapses. */
  function plainText(content) {
    return String(content || "")
      .replace(new RegExp(AT_TAG, "g"), (_, id, name) => "@" + name)
      .replace(/\s+/g, " ")
      .trim();
  }

  function roomAvatar(room) {
    if (room.is_direct) {
      const other = room.members.find((id) => id !== state.currentUserId);
      if (other) return avatar(state.users.get(other), room.title);
    }
    const node = make("span", "avatar avatar-room", "#");
    node.setAttribute("aria-hidden", "true");
    return node;
  }

  function renderRoomList() {
    const rooms = sortedRooms();
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
      let preview = room.subtitle;
      if (last) {
        const text = plainText(last.content);
        if (last.kind === "event") preview = text;
        else if (last.sender_id === state.currentUserId) preview = "You: " + text;
        else preview = room.is_direct ? text : userName(last.sender_id) + ": " + text;
      }
      bottom.append(make("span", "room-item-preview", preview));
      const unread = state.unread.get(room.id);
      if (unread) bottom.append(make("span", "unread", unread > 99 ? "99+" : unread));
      const subtitle = make("div", "room-item-subtitle", room.subtitle);
      body.append(top, subtitle, bottom);
      item.append(roomAvatar(room), body);
      return item;
    });
    el.roomList.replaceChildren(...items);
    el.roomEmpty.hidden = rooms.length > 0;
    el.roomCount.textContent = rooms.length ? String(rooms.length) : "";
  }

  function renderRoomHeader() {
    const room = state.rooms.get(state.activeRoomId);
    if (!room) {
      el.roomTitle.textContent = "No room selected";
      el.roomMeta.textContent = "";
      el.memberStack.replaceChildren();
      el.inviteOpen.disabled = true;
      el.inviteOpen.title = "";
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
    el.inviteOpen.disabled = room.is_direct;
    el.inviteOpen.title = room.is_direct ? "Direct rooms cannot get new members" : "Invite people to this room";
  }

  function appendRichText(container, message) {
    const content = String(message.content || "");
    const mentioned = new Set(Array.isArray(message.mentions) ? message.mentions : []);
    const tags = new RegExp(AT_TAG, "g");
    let position = 0;
    for (let match = tags.exec(content); match; match = tags.exec(content)) {
      appendHandles(container, content.slice(position, match.index), mentioned);
      container.append(chip(match[1], match[2]));
      position = match.index + match[0].length;
    }
    appendHandles(container, content.slice(position), mentioned);
  }

  /* `@handle` tokens that the server resolved to a mentioned user are shown as chips too. */
  function appendHandles(container, text, mentioned) {
    const tokens = new RegExp(HANDLE_TOKEN, "g");
    let position = 0;
    for (let match = tokens.exec(text); match; match = tokens.exec(text)) {
      const user = Array.from(state.users.values()).find((u) => u.handle === match[2].toLowerCase());
      if (!user || !mentioned.has(user.id)) continue;
      const start = match.index + match[1].length;
      if (start > position) container.append(document.createTextNode(text.slice(position, start)));
      container.append(chip(user.id, match[2]));
      position = start + 1 + match[2].length;
    }
    if (position < text.length) container.append(document.createTextNode(text.slice(position)));
  }

  function chip(userId, name) {
    const node = make("span", "mention", "@" + name);
    node.dataset.userId = userId;
    node.title = userId;
    if (userId === state.currentUserId) node.classList.add("mention-me");
    return node;
  }

  function messageNode(message, previous) {
    const item = make("li");
    item.dataset.testid = "message-item";
    item.dataset.messageId = message.id;
    if (message.kind === "event") {
      item.className = "msg-event";
      const line = make("span", "msg-event-text", message.content);
      const time = make("time", "msg-event-time", formatTime(message.created_at));
      time.dateTime = message.created_at;
      time.title = new Date(timeValue(message.created_at)).toLocaleString();
      item.append(line, time);
      return item;
    }
    const sender = state.users.get(message.sender_id);
    const grouped =
      previous &&
      previous.kind !== "event" &&
      previous.sender_id === message.sender_id &&
      timeValue(message.created_at) - timeValue(previous.created_at) < GROUP_WINDOW_MS;
    item.className = "msg" + (grouped ? " msg-grouped" : "");
    if (message.sender_id === state.currentUserId) item.classList.add("msg-mine");
    const gutter = make("div", "msg-gutter");
    if (!grouped) gutter.append(avatar(sender, message.sender_id));
    const body = make("div", "msg-body");
    if (!grouped) {
      const meta = make("div", "msg-meta");
      meta.append(make("span", "msg-author", sender ? sender.name : message.sender_id));
      if (sender && sender.role && sender.role !== "admin") meta.append(make("span", "msg-role", sender.role));
      const time = make("time", "msg-time", formatTime(message.created_at));
      time.dateTime = message.created_at;
      time.title = new Date(timeValue(message.created_at)).toLocaleString();
      meta.append(time);
      body.append(meta);
    }
    const text = make("div", "msg-text");
    appendRichText(text, message);
    body.append(text);
    item.append(gutter, body);
    return item;
  }

  function renderMessages() {
    const room = state.rooms.get(state.activeRoomId);
    const list = el.messageList;
    if (!room) {
      list.replaceChildren();
      el.messageEmpty.hidden = true;
      state.renderedRoomId = "";
      return;
    }
    const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
    if (state.renderedRoomId !== room.id) {
      list.replaceChildren(...room.messages.map((message, i) => messageNode(message, room.messages[i - 1])));
      state.renderedRoomId = room.id;
      list.scrollTop = list.scrollHeight;
    } else {
      const shown = new Set(Array.from(list.children, (node) => node.dataset.messageId));
      const firstNew = room.messages.findIndex((message) => !shown.has(message.id));
      if (firstNew >= 0 && room.messages.slice(firstNew).some((message) => shown.has(message.id))) {
        // A message landed between shown ones: redraw rather than patch the grouping of its neighbours.
        state.renderedRoomId = "";
        renderMessages();
        return;
      }
      let appendedMine = false;
      room.messages.forEach((message, i) => {
        if (shown.has(message.id)) return;
        list.append(messageNode(message, room.messages[i - 1]));
        if (message.sender_id === state.currentUserId) appendedMine = true;
      });
      if (nearBottom || appendedMine) list.scrollTop = list.scrollHeight;
    }
    el.messageEmpty.hidden = room.messages.length > 0;
  }

  function badge(agent) {
    const status = String(agent.status || "unknown");
    const node = make("span", "badge badge-" + status.replace(/[^a-z]/g, ""), status);
    node.dataset.testid = "agent-status";
    if (agent.status_detail) node.title = agent.status_detail;
    return node;
  }

  function renderAgents() {
    const agents = sortedAgents();
    const items = agents.map((agent) => {
      const item = make("li", "agent-item");
      item.dataset.testid = "agent-item";
      item.dataset.agentId = agent.id;
      const head = make("div", "agent-head");
      const names = make("div", "agent-names");
      const nameLine = make("div", "agent-name-line");
      nameLine.append(make("span", "agent-name", agent.name), make("span", "agent-role", agent.role));
      names.append(nameLine);
      if (agent.description) names.append(make("div", "agent-desc", agent.description));
      if (agent.model_id) names.append(make("div", "agent-model", agent.model_id));
      head.append(avatar(state.users.get(agent.id), agent.name), names, badge(agent));
      item.append(head);
      if (agent.status_detail && DETAIL_SHOWN.has(agent.status)) {
        item.append(make("p", "agent-detail", agent.status_detail));
      }
      const actions = make("div", "agent-actions");
      const busy = pendingAgents.has(agent.id);
      const startButton = make("button", "btn btn-sm", "Start");
      startButton.type = "button";
      startButton.dataset.testid = "agent-start";
      startButton.disabled = busy || !STARTABLE.has(agent.status);
      startButton.addEventListener("click", () => agentAction(agent.id, "start"));
      const stopButton = make("button", "btn btn-sm", "Stop");
      stopButton.type = "button";
      stopButton.dataset.testid = "agent-stop";
      stopButton.disabled = busy || agent.status !== "running";
      stopButton.addEventListener("click", () => agentAction(agent.id, "stop"));
      actions.append(startButton, stopButton);
      const direct = directRoomWith(agent.id);
      if (direct) {
        const chat = make("button", "btn btn-sm btn-ghost", "Open chat");
        chat.type = "button";
        chat.addEventListener("click", () => selectRoom(direct.id));
        actions.append(chat);
      }
      item.append(actions);
      if (agentErrors.has(agent.id)) {
        const error = make("p", "form-error agent-error", agentErrors.get(agent.id));
        error.setAttribute("role", "alert");
        item.append(error);
      }
      return item;
    });
    el.agentList.replaceChildren(...items);
    el.agentEmpty.hidden = agents.length > 0;
    el.agentCount.textContent = agents.length ? String(agents.length) : "";
  }

  async function agentAction(agentId, action) {
    pendingAgents.add(agentId);
    agentErrors.delete(agentId);
    renderAgents();
    try {
      const agent = await api("POST", "/api/v1/agents/" + encodeURIComponent(agentId) + "/" + action);
      pendingAgents.delete(agentId);
      applyAgent(agent);
    } catch (err) {
      pendingAgents.delete(agentId);
      agentErrors.set(agentId, action + " failed: " + err.message);
      renderAgents();
    }
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
  function renderNewRoomMembers() {
    const others = sortedUsers().filter((user) => user.id !== state.currentUserId);
    const key = JSON.stringify(others.map((user) => [user.id, user.name, user.accent_hex]));
    if (key === newRoomPickerKey) return;
    newRoomPickerKey = key;
    memberPicker(el.newRoomMembers, others, "new-room");
  }

  function renderComposerState() {
    const hasRoom = state.rooms.has(state.activeRoomId);
    el.composerInput.disabled = !hasRoom;
    el.composerSend.disabled = !hasRoom || !el.composerInput.value.trim();
  }

  function selectRoom(roomId) {
    if (!state.rooms.has(roomId)) return;
    if (state.activeRoomId !== roomId) {
      if (el.composerInput.value) state.drafts.set(state.activeRoomId, el.composerInput.value);
      else state.drafts.delete(state.activeRoomId);
      el.composerInput.value = state.drafts.get(roomId) || "";
      state.drafts.delete(roomId);
      state.activeRoomId = roomId;
      state.renderedRoomId = "";
      closeMentionMenu();
      showError(el.composerError, "");
      autoGrow();
    }
    state.unread.delete(roomId);
    if (window.location.hash.slice(1) !== roomId) {
      window.history.replaceState(null, "", "#" + encodeURIComponent(roomId));
    }
    renderAll();
    el.composerInput.focus();
  }

  /* ---------- composer ---------- */

  function autoGrow() {
    const input = el.composerInput;
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight, 180) + "px";
  }

  async function sendMessage() {
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
      if (target && addMessage(target, message)) {
        renderRoomList();
        if (target.id === state.activeRoomId) renderMessages();
      }
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

  const mention = { open: false, start: 0, options: [], index: 0 };

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

  function updateMentionMenu() {
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

  function closeMentionMenu() {
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

  function onComposerKey(event) {
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

  /* ---------- forms ---------- */

  async function createAgent(event) {
    event.preventDefault();
    const name = el.newAgentName.value.trim();
    const description = el.newAgentDescription.value.trim();
    const profile = el.newAgentProfile.value.trim();
    if (!name) {
      showError(el.newAgentError, "name is required");
      el.newAgentName.focus();
      return;
    }
    const body = { name, description };
    if (profile) body.profile = profile;
    el.newAgentSubmit.disabled = true;
    showError(el.newAgentError, "");
    try {
      const agent = await api("POST", "/api/v1/agents", body);
      if (agent && !state.agents.has(agent.id)) applyAgent(agent);
      el.newAgentForm.reset();
    } catch (err) {
      showError(el.newAgentError, err.message);
    } finally {
      el.newAgentSubmit.disabled = false;
    }
  }

  async function createRoom(event) {
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

  function openInvite() {
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

  async function invite(event) {
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

  /* ---------- wiring ---------- */

  function bind() {
    Object.assign(el, {
      connection: $("connection-status"),
      banner: $("banner"),
      me: $("me"),
      meAvatar: $("me-avatar"),
      meName: $("me-name"),
      roomList: $("room-list"),
      roomEmpty: $("room-empty"),
      roomCount: $("room-count"),
      roomTitle: $("room-title"),
      roomMeta: $("room-meta"),
      memberStack: $("member-stack"),
      inviteOpen: $("invite-open"),
      messageList: $("message-list"),
      messageEmpty: $("message-empty"),
      composer: $("composer"),
      composerInput: $("composer-input"),
      composerSend: $("composer-send"),
      composerError: $("composer-error"),
      mentionMenu: $("mention-menu"),
      agentList: $("agent-list"),
      agentEmpty: $("agent-empty"),
      agentCount: $("agent-count"),
      newAgentForm: $("new-agent-form"),
      newAgentName: $("new-agent-name"),
      newAgentDescription: $("new-agent-description"),
      newAgentProfile: $("new-agent-profile"),
      newAgentSubmit: $("new-agent-submit"),
      newAgentError: $("new-agent-error"),
      newRoomForm: $("new-room-form"),
      newRoomTitle: $("new-room-title"),
      newRoomMembers: $("new-room-members"),
      newRoomSubmit: $("new-room-submit"),
      newRoomError: $("new-room-error"),
      inviteDialog: $("invite-dialog"),
      inviteForm: $("invite-form"),
      inviteRoomTitle: $("invite-room-title"),
      inviteMembers: $("invite-members"),
      inviteEmpty: $("invite-empty"),
      inviteError: $("invite-error"),
      inviteSubmit: $("invite-submit"),
    });

    el.roomList.addEventListener("click", (event) => {
      const item = event.target.closest(".room-item");
      if (item) selectRoom(item.dataset.roomId);
    });
    el.roomList.addEventListener("keydown", (event) => {
      const item = event.target.closest(".room-item");
      if (item && (event.key === "Enter" || event.key === " ")) {
        event.preventDefault();
        selectRoom(item.dataset.roomId);
      }
    });
    el.composer.addEventListener("submit", (event) => {
      event.preventDefault();
      sendMessage();
    });
    el.composerInput.addEventListener("keydown", onComposerKey);
    el.composerInput.addEventListener("input", () => {
      autoGrow();
      renderComposerState();
      updateMentionMenu();
    });
    el.composerInput.addEventListener("click", updateMentionMenu);
    el.composerInput.addEventListener("blur", closeMentionMenu);
    el.newAgentForm.addEventListener("submit", createAgent);
    el.newRoomForm.addEventListener("submit", createRoom);
    el.inviteOpen.addEventListener("click", openInvite);
    el.inviteForm.addEventListener("submit", invite);
    $("invite-cancel").addEventListener("click", () => el.inviteDialog.close());
    document.addEventListener("visibilitychange", () => {
      if (document.hidden) return;
      if (state.unread.delete(state.activeRoomId)) renderRoomList();
      refreshAgents();
    });
    window.setInterval(() => {
      if (!document.hidden) refreshAgents();
    }, AGENT_REFRESH_MS);
    window.addEventListener("hashchange", () => {
      const roomId = decodeURIComponent(window.location.hash.slice(1));
      if (roomId !== state.activeRoomId) selectRoom(roomId);
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    bind();
    start();
  });
})();
