/* The agents panel (http-api.md §10.1 right column): cards with status, start/stop, logs, the new-worker form. */

import { agentPath, api } from "./api.js";
import { avatar, button, hideBanner, make, showBanner, showError } from "./dom.js";
import { emit } from "./hub.js";
import { logsForget, logsPanel, logsToggle } from "./logs.js";
import { selectRoom } from "./rooms.js";
import { directRoomWith, el, loadAgents, sortedAgents, state } from "./state.js";

export const STARTABLE = new Set(["created", "stopped", "exited", "failed", "unknown"]);
const DETAIL_SHOWN = new Set(["failed", "unknown"]);

const pendingAgents = new Set();
// The last failed action per agent. It is shown only while it says something the status detail does not,
// since a failed start also becomes the agent's status_detail (http-api.md §5.5).
const agentErrors = new Map();
// While an agent refetch is in flight, stream updates are kept and re-applied afterwards, so a list that
// was read before them cannot overwrite them.
const agentSync = { running: false, again: false, buffer: null };

export function agentError(agent) {
  const error = agentErrors.get(agent.id);
  return error && error.message !== agent.status_detail ? error.action + " failed: " + error.message : "";
}

export function agentBusy(agentId) {
  return pendingAgents.has(agentId);
}

export function applyAgent(agent) {
  if (!agent || !agent.id) return;
  if (agentSync.buffer) agentSync.buffer.push(agent);
  if (agent.status === "deleted") {
    state.agents.delete(agent.id);
    agentErrors.delete(agent.id);
    logsForget(agent.id);
  } else {
    state.agents.set(agent.id, agent);
  }
  renderAgents();
  emit("agents.changed");
}

export async function refreshAgents() {
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
    emit("agents.changed");
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

export async function agentAction(agentId, action) {
  pendingAgents.add(agentId);
  agentErrors.delete(agentId);
  renderAgents();
  emit("agents.changed");
  try {
    const agent = await api("POST", agentPath(agentId, action));
    pendingAgents.delete(agentId);
    applyAgent(agent);
  } catch (err) {
    pendingAgents.delete(agentId);
    agentErrors.set(agentId, { action, message: err.message });
    // The failure changed the agent's status; read it now rather than wait for the stream.
    try {
      applyAgent(await api("GET", agentPath(agentId)));
    } catch (readErr) {
      renderAgents();
      emit("agents.changed");
    }
  }
}

function badge(agent) {
  const status = String(agent.status || "unknown");
  const node = make("span", "badge badge-" + status.replace(/[^a-z]/g, ""), status);
  node.dataset.testid = "agent-status";
  if (agent.status_detail) node.title = agent.status_detail;
  return node;
}

/* Start, Stop and Logs for one agent; `place` keeps the logs panels of the card and a notice apart. */
export function agentButtons(agent, place, rerender, { stop = true } = {}) {
  const busy = pendingAgents.has(agent.id);
  const startButton = button("Start", "btn btn-sm", "agent-start");
  startButton.disabled = busy || !STARTABLE.has(agent.status);
  startButton.addEventListener("click", () => agentAction(agent.id, "start"));
  const buttons = [startButton];
  if (stop) {
    const stopButton = button("Stop", "btn btn-sm", "agent-stop");
    stopButton.disabled = busy || agent.status !== "running";
    stopButton.addEventListener("click", () => agentAction(agent.id, "stop"));
    buttons.push(stopButton);
  }
  const logs = button("Logs", "btn btn-sm btn-ghost", "agent-logs-toggle");
  logs.addEventListener("click", () => logsToggle(place + " " + agent.id, agent.id, rerender));
  buttons.push(logs);
  return buttons;
}

export function agentLogs(agent, place, rerender) {
  return logsPanel(place + " " + agent.id, rerender);
}

export function renderAgents() {
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
      const detail = make("p", "agent-detail", agent.status_detail);
      detail.dataset.testid = "agent-detail";
      item.append(detail);
    }
    const actions = make("div", "agent-actions");
    actions.append(...agentButtons(agent, "card", renderAgents));
    const direct = directRoomWith(agent.id);
    if (direct) {
      const chat = button("Open chat", "btn btn-sm btn-ghost");
      chat.addEventListener("click", () => selectRoom(direct.id));
      actions.append(chat);
    }
    item.append(actions);
    const error = agentError(agent);
    if (error) {
      const node = make("p", "form-error agent-error", error);
      node.dataset.testid = "agent-error";
      node.setAttribute("role", "alert");
      item.append(node);
    }
    const logs = agentLogs(agent, "card", renderAgents);
    if (logs) item.append(logs);
    return item;
  });
  el.agentList.replaceChildren(...items);
  el.agentEmpty.hidden = agents.length > 0;
  el.agentCount.textContent = agents.length ? String(agents.length) : "";
}

export async function createAgent(event) {
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
