// Shared by the settings page and the monitor: JSON calls with the headers the API requires.
"use strict";
const SIGN_IN_STAMP = "signInRedirectAt";

// App Service Authentication answers 401 (not a redirect to sign-in) to a request that carries
// X-Requested-With: XMLHttpRequest once the session is gone (expired, signed out elsewhere): the page
// then reloads itself into the sign-in flow, back to this page afterwards. Should the app itself keep
// answering 401 right after a sign-in, there is no loop: the second time, the page shows the error.
function signInAgain() {
  const last = Number(sessionStorage.getItem(SIGN_IN_STAMP) || 0);
  if (Date.now() - last < 5 * 60 * 1000) return false;
  sessionStorage.setItem(SIGN_IN_STAMP, String(Date.now()));
  location.assign("/.auth/login/aad?post_login_redirect_uri=" + encodeURIComponent(location.pathname + location.search));
  return true;
}

async function api(method, path, body, etag) {
  const headers = { "Accept": "application/json", "X-Requested-With": "XMLHttpRequest" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (etag) headers["If-Match"] = etag;
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: "same-origin" });
  } catch (e) {
    return { ok: false, status: 0, data: { error: { message: "The connector could not be reached. Check your connection and try again." } }, etag: null };
  }
  if (response.status === 401 && signInAgain()) return new Promise(() => {});  // the page is leaving: render nothing
  if (response.status !== 401) sessionStorage.removeItem(SIGN_IN_STAMP);
  let data = null;
  try { data = await response.json(); } catch (e) { data = null; }
  if (response.status === 401 && !(data && data.error)) data = { error: { message: "Your sign-in could not be confirmed. Reload the page to sign in again." } };
  return { ok: response.ok, status: response.status, data, etag: response.headers.get("ETag") };
}
function text(element, value) { element.textContent = value == null ? "" : String(value); return element; }
