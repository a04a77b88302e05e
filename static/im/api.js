/* The public REST API as the workspace calls it: JSON in, JSON (or plain text) out, errors as ApiFailure. */

export class ApiFailure extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function call(method, path, body) {
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
  const text = response.status === 204 ? "" : await response.text();
  if (!response.ok) {
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch (err) {
      data = null;
    }
    const message =
      data && data.error && typeof data.error.message === "string"
        ? data.error.message
        : text.trim() || "request failed with status " + response.status;
    throw new ApiFailure(response.status, message);
  }
  return text;
}

export async function api(method, path, body) {
  const text = await call(method, path, body);
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch (err) {
    return null;
  }
}

/* A plain-text route, such as an agent's logs (http-api.md §5.6). */
export function apiText(path) {
  return call("GET", path);
}

export function agentPath(agentId, action) {
  return "/api/v1/agents/" + encodeURIComponent(agentId) + (action ? "/" + action : "");
}
