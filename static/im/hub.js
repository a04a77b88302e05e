/* What one workspace module announces and another reacts to, so that a module never imports the modules
 * that draw the page around it: a module emits a topic, and the entry module (workspace.js) decides who
 * reacts. Handlers run at once, in the order they were added, before emit returns.
 */

const handlers = new Map();

export function on(topic, handler) {
  const list = handlers.get(topic) || [];
  list.push(handler);
  handlers.set(topic, list);
}

export function emit(topic, ...args) {
  const list = handlers.get(topic);
  // A topic nobody reacts to is a wiring mistake; failing loudly keeps a missed redraw from going unseen.
  if (!list) throw new Error("no handler for workspace topic " + topic);
  list.forEach((handler) => handler(...args));
}
