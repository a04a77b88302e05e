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
  if (!response.ok) throw failure(response.status, text);
  return text;
}

function failure(status, text) {
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch (err) {
    data = null;
  }
  const message =
    data && data.error && typeof data.error.message === "string"
      ? data.error.message
      : text.trim() || "request failed with status " + status;
  return new ApiFailure(status, message);
}

function parsed(text) {
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch (err) {
    return null;
  }
}

export async function api(method, path, body) {
  return parsed(await call(method, path, body));
}

/* A multipart POST (threads-attachments.md §2.4). XMLHttpRequest rather than fetch, because only it
 * reports upload progress; `onProgress` gets the sent fraction, 0 to 1. */
export function apiUpload(path, form, onProgress) {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open("POST", path);
    request.setRequestHeader("Accept", "application/json");
    request.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable && event.total) onProgress(event.loaded / event.total);
    });
    request.upload.addEventListener("load", () => onProgress(1));
    request.addEventListener("load", () => {
      if (request.status >= 200 && request.status < 300) resolve(parsed(request.responseText));
      else reject(failure(request.status, request.responseText || ""));
    });
    request.addEventListener("error", () => reject(new ApiFailure(0, "cannot reach the server")));
    request.addEventListener("abort", () => reject(new ApiFailure(0, "upload cancelled")));
    request.send(form);
  });
}

/* A plain-text route, such as an agent's logs (http-api.md §5.6). */
export function apiText(path) {
  return call("GET", path);
}

export function agentPath(agentId, action) {
  return "/api/v1/agents/" + encodeURIComponent(agentId) + (action ? "/" + action : "");
}
