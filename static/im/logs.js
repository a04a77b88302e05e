/* An agent's last log lines (http-api.md §5.6), fetched on demand and kept across re-renders. */

import { agentPath, apiText } from "./api.js";
import { button, make } from "./dom.js";

const LOG_LINES = 40;

// Place key (e.g. "card u-alice") → { agentId, open, loading, text, error }.
const views = new Map();

export async function logsToggle(key, agentId, rerender) {
  const view = views.get(key) || { agentId, open: false, loading: false, text: "", error: "" };
  views.set(key, view);
  view.open = !view.open;
  rerender();
  if (view.open) await logsLoad(view, rerender);
}

async function logsLoad(view, rerender) {
  view.loading = true;
  view.error = "";
  rerender();
  try {
    view.text = await apiText(agentPath(view.agentId, "logs") + "?lines=" + LOG_LINES);
  } catch (err) {
    view.text = "";
    view.error = "Cannot read the logs: " + err.message;
  } finally {
    view.loading = false;
    rerender();
  }
}

export function logsOpen(key) {
  const view = views.get(key);
  return Boolean(view && view.open);
}

export function logsForget(agentId) {
  for (const [key, view] of views) if (view.agentId === agentId) views.delete(key);
}

/* The open panel for `key`, or null when closed. */
export function logsPanel(key, rerender) {
  const view = views.get(key);
  if (!view || !view.open) return null;
  const panel = make("div", "logs");
  panel.dataset.testid = "agent-logs";
  const head = make("div", "logs-head");
  head.append(make("span", "logs-title", "Last " + LOG_LINES + " log lines"));
  const refresh = button("Refresh", "btn btn-sm btn-ghost", "agent-logs-refresh");
  refresh.disabled = view.loading;
  refresh.addEventListener("click", () => logsLoad(view, rerender));
  head.append(refresh);
  panel.append(head);
  if (view.loading && !view.text) panel.append(make("p", "logs-note", "Loading…"));
  else if (view.error) {
    const error = make("p", "form-error", view.error);
    error.setAttribute("role", "alert");
    panel.append(error);
  } else panel.append(make("pre", "logs-text", view.text.trim() ? view.text : "(the log is empty)"));
  return panel;
}
