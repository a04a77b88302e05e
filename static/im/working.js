/* "<name> is working…": which running agents owe an answer in which room, as far as the IM stream tells.
 *
 * An agent starts working when a message reaches it (direct room, or a group mention) and stops with its
 * next message in that room. The server keeps no such state, so this is an estimate: it also ends after
 * WORKING_TIMEOUT_MS, and is never shown for an agent that is not running.
 */

import { timeValue } from "./dom.js";
import { addressedAgents, state } from "./state.js";

// An agent that takes longer than this has most likely given up or lost the message.
export const WORKING_TIMEOUT_MS = 5 * 60 * 1000;

// "<roomId>\u0001<agentId>" → the time (ms) the message that started the work was created.
const since = new Map();

function key(roomId, agentId) {
  return roomId + "\u0001" + agentId;
}

/* Follows one new message; `at` is when it happened (its created_at). */
export function noteMessage(room, message) {
  if (!room || !message || message.kind === "event") return;
  since.delete(key(room.id, message.sender_id));
  const at = timeValue(message.created_at) || Date.now();
  addressedAgents(room, message).forEach((agent) => since.set(key(room.id, agent.id), at));
}

/* Rebuilds the estimate from the loaded history, so a reload keeps showing work in progress. */
export function rebuild() {
  since.clear();
  state.rooms.forEach((room) => room.messages.forEach((message) => noteMessage(room, message)));
  prune();
}

/* Drops expired work and agents that are no longer running or no longer exist. */
export function prune() {
  const now = Date.now();
  for (const [entry, at] of since) {
    const [roomId, agentId] = entry.split("\u0001");
    const agent = state.agents.get(agentId);
    if (now - at > WORKING_TIMEOUT_MS || !state.rooms.has(roomId) || !agent || agent.status !== "running") {
      since.delete(entry);
    }
  }
}

/* Agents working in a room, in the order they were asked. */
export function workingIn(roomId) {
  prune();
  const agents = [];
  for (const [entry, at] of since) {
    const [entryRoom, agentId] = entry.split("\u0001");
    if (entryRoom === roomId) agents.push({ agent: state.agents.get(agentId), at });
  }
  return agents.sort((a, b) => a.at - b.at).map((item) => item.agent);
}
