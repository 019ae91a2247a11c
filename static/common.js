// Shared by the settings page and the monitor: JSON calls with the headers the API requires.
"use strict";
async function api(method, path, body, etag) {
  const headers = { "Accept": "application/json", "X-Requested-With": "XMLHttpRequest" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (etag) headers["If-Match"] = etag;
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: "same-origin" });
  let data = null;
  try { data = await response.json(); } catch (e) { data = null; }
  if (response.status === 401) { location.href = "/.auth/login/aad?post_login_redirect_uri=" + encodeURIComponent(location.pathname); }
  return { ok: response.ok, status: response.status, data, etag: response.headers.get("ETag") };
}
function text(element, value) { element.textContent = value == null ? "" : String(value); return element; }
