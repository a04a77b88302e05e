/* Lines under the conversation: "<name> is working…", and a notice when a message went to an agent that
 * cannot receive it (failed, stopped, creating …) with the reason and Start / Logs actions.
 */

import { agentButtons, agentError, agentLogs } from "./agents.js";
import { button, make } from "./dom.js";
import { addressedAgents, el, state } from "./state.js";
import { workingIn } from "./working.js";

// Room id → agent ids with an open notice, in the order they were raised.
const notices = new Map();

const STATUS_TEXT = {
  creating: "is still being created",
  created: "has not been started",
  stopped: "is stopped",
  exited: "has exited",
  failed: "failed",
  unknown: "is in an unknown state",
};

/* After the user's own message was stored: a notice for each addressed agent that is not running. */
export function noteSent(room, message) {
  addressedAgents(room, message)
    .filter((agent) => agent.status !== "running")
    .forEach((agent) => {
      const open = notices.get(room.id) || new Set();
      open.delete(agent.id);
      open.add(agent.id);
      notices.set(room.id, open);
    });
  renderStatusLines();
}

export function forgetRoom(roomId) {
  notices.delete(roomId);
}

function dismiss(roomId, agentId) {
  const open = notices.get(roomId);
  if (open) open.delete(agentId);
  renderStatusLines();
}

function noticeNode(roomId, agent) {
  const node = make("div", "notice");
  node.dataset.testid = "agent-notice";
  node.dataset.agentId = agent.id;
  node.setAttribute("role", "status");
  const status = String(agent.status || "unknown");
  const head = make("p", "notice-title");
  head.append(
    make("strong", "", agent.name),
    document.createTextNode(" cannot answer: it " + (STATUS_TEXT[status] || "is " + status) + "."),
  );
  node.append(head);
  if (agent.status_detail) {
    const reason = make("p", "notice-reason", agent.status_detail);
    reason.dataset.testid = "agent-notice-reason";
    node.append(reason);
  }
  const error = agentError(agent);
  if (error) node.append(make("p", "form-error", error));
  const actions = make("div", "notice-actions");
  const dismissButton = button("Dismiss", "btn btn-sm btn-ghost", "agent-notice-dismiss");
  dismissButton.addEventListener("click", () => dismiss(roomId, agent.id));
  actions.append(...agentButtons(agent, "notice", renderStatusLines, { stop: false }), dismissButton);
  node.append(actions);
  const logs = agentLogs(agent, "notice", renderStatusLines);
  if (logs) node.append(logs);
  return node;
}

function workingNode(agent) {
  const node = make("div", "working");
  node.dataset.testid = "working-indicator";
  node.dataset.agentId = agent.id;
  node.append(make("span", "working-dots"), document.createTextNode(agent.name + " is working…"));
  return node;
}

/* Redraws the lines for the open room; notices of agents that run again are dropped. */
export function renderStatusLines() {
  if (!el.statusLines) return;
  const roomId = state.activeRoomId;
  const nodes = [];
  const open = notices.get(roomId);
  if (open) {
    for (const agentId of Array.from(open)) {
      const agent = state.agents.get(agentId);
      if (!agent || agent.status === "running") open.delete(agentId);
      else nodes.push(noticeNode(roomId, agent));
    }
  }
  workingIn(roomId).forEach((agent) => nodes.push(workingNode(agent)));
  el.statusLines.replaceChildren(...nodes);
  el.statusLines.hidden = nodes.length === 0;
}
