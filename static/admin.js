// The admin monitor: resources, held changes with release/discard, queues, failed work with retry, activity with
// filters and paging, item detail.
"use strict";
const $ = (id) => document.getElementById(id);
let nextCursor = null;

function cell(row, value, className) { const td = document.createElement("td"); text(td, value); if (className) td.className = className; row.appendChild(td); return td; }
function when(value) { return value ? value.replace("T", " ").slice(0, 19) : "—"; }
function problem(result) {
  const banner = $("banner");
  text(banner, (result.data && result.data.error && result.data.error.message) || ("Request failed (" + result.status + ")"));
  banner.hidden = false;
}

async function loadResources() {
  const result = await api("GET", "/api/admin/resources");
  if (!result.ok) return problem(result);
  const body = $("resources"); body.replaceChildren();
  for (const r of result.data.resources) {
    const row = document.createElement("tr");
    cell(row, r.resourceNo + (r.displayName ? " · " + r.displayName : ""));
    const missing = r.missingSince ? " · missing since " + when(r.missingSince) : "";
    cell(row, r.email); cell(row, r.status + missing + (r.lastError ? ": " + r.lastError : ""), r.status === "tracked" && !missing ? "" : "outcome-failed");
    cell(row, when(r.subscriptionExpiry), r.subscriptionHealthy || r.status !== "tracked" ? "" : "outcome-failed");
    cell(row, when(r.lastSyncToPlanning)); cell(row, when(r.lastSyncToOutlook)); cell(row, r.errorCount);
    body.appendChild(row);
  }
}

async function loadHolds() {
  const result = await api("GET", "/api/admin/holds");
  if (!result.ok) return problem(result);
  const body = $("holds"); body.replaceChildren();
  for (const hold of result.data.holds) {
    const row = document.createElement("tr");
    cell(row, hold.what); cell(row, hold.items); cell(row, when(hold.since));
    const td = cell(row, "");
    for (const [label, decide] of [["Release", release], ["Discard", discard]]) {
      const button = document.createElement("button"); text(button, label); button.className = "secondary";
      button.setAttribute("aria-label", label + " " + hold.what);
      button.addEventListener("click", () => decide(hold, button));
      td.append(button, " ");
    }
    body.appendChild(row);
  }
  if (!result.data.holds.length) { const row = document.createElement("tr"); cell(row, "Nothing is held.").colSpan = 4; body.appendChild(row); }
}

async function release(hold, button) {
  if (!confirm("Release this change? " + hold.what + ". The " + hold.items + " item(s) are removed now.")) return;
  button.disabled = true;
  // If-Match: the version confirmed here; a hold that grew meanwhile is refused (412) and shown again.
  const result = await api("POST", "/api/admin/holds/" + encodeURIComponent(hold.id) + "/release", {}, hold.etag);
  text($("hold-status"), result.ok ? "Released: " + result.data.outcome + "." : "Release failed: " + ((result.data && result.data.error && result.data.error.message) || result.status));
  await Promise.all([loadHolds(), loadResources(), loadActivity(true)]);
}

async function discard(hold, button) {
  if (!confirm("Discard this change? Nothing is removed; if its cause persists, a later run holds it again.")) return;
  button.disabled = true;
  const result = await api("DELETE", "/api/admin/holds/" + encodeURIComponent(hold.id), undefined, hold.etag);
  text($("hold-status"), result.ok ? "Discarded: nothing was removed." : "Discard failed: " + ((result.data && result.data.error && result.data.error.message) || result.status));
  await Promise.all([loadHolds(), loadResources(), loadActivity(true)]);
}

async function loadQueues() {
  const result = await api("GET", "/api/admin/queues");
  if (!result.ok) return problem(result);
  const queues = $("queues"); queues.replaceChildren();
  for (const [name, depth] of Object.entries(result.data.queues)) {
    const row = document.createElement("tr"); cell(row, name); cell(row, depth, name.endsWith("-poison") && depth > 0 ? "outcome-failed" : ""); queues.appendChild(row);
  }
  const failed = $("failed"); failed.replaceChildren();
  for (const item of result.data.failed) {
    const row = document.createElement("tr");
    cell(row, item.queue);
    cell(row, item.appointmentGuid || item.userId || item.summary || "?");
    cell(row, item.attempt == null ? "—" : item.attempt);
    cell(row, when(item.insertedAt));
    const td = cell(row, "");
    const button = document.createElement("button"); text(button, "Retry"); button.className = "secondary";
    button.setAttribute("aria-label", "Retry " + (item.appointmentGuid || item.userId || item.id));
    button.addEventListener("click", () => retry(item, button));
    td.appendChild(button);
    failed.appendChild(row);
  }
  if (!result.data.failed.length) { const row = document.createElement("tr"); cell(row, "Nothing has failed.").colSpan = 5; failed.appendChild(row); }
}

async function retry(item, button) {
  button.disabled = true;
  const result = await api("POST", "/api/admin/failed/" + encodeURIComponent(item.queue) + "/" + encodeURIComponent(item.id) + "/retry", {});
  text($("retry-status"), result.ok ? "Queued again: " + (item.appointmentGuid || item.userId) + ". Watch the activity below." : "Retry failed: " + ((result.data && result.data.error && result.data.error.message) || result.status));
  await Promise.all([loadQueues(), loadActivity(true)]);
}

function filterQuery(before) {
  const params = new URLSearchParams();
  const form = $("filters");
  for (const name of ["direction", "resource", "outcome"]) if (form[name].value) params.set(name, form[name].value);
  if (form.since.value) params.set("since", form.since.value + ":00Z");
  if (before) params.set("before", before);
  return params.toString();
}

async function loadActivity(reset) {
  const result = await api("GET", "/api/admin/activity?" + filterQuery(reset ? null : nextCursor));
  if (!result.ok) return problem(result);
  const body = $("activity");
  if (reset) body.replaceChildren();
  for (const e of result.data.items) {
    const row = document.createElement("tr"); row.className = "clickable"; row.tabIndex = 0;
    cell(row, when(e.at)); cell(row, e.direction); cell(row, e.resource_no || "—"); cell(row, e.action);
    cell(row, e.outcome, "outcome-" + e.outcome); cell(row, e.error || e.detail); cell(row, e.latency_ms == null ? "" : e.latency_ms + " ms");
    const key = e.appointment_guid || e.event_id;
    if (key) {
      row.addEventListener("click", () => showItem(key));
      row.addEventListener("keydown", (ev) => { if (ev.key === "Enter") showItem(key); });
    }
    body.appendChild(row);
  }
  nextCursor = result.data.next; $("more").hidden = !nextCursor;
}

async function showItem(key) {
  const result = await api("GET", "/api/admin/activity/" + encodeURIComponent(key));
  if (!result.ok) return problem(result);
  const d = result.data, box = $("detail-body"); box.replaceChildren();
  const ids = document.createElement("p");
  ids.append("Item ", Object.assign(document.createElement("code"), { textContent: d.key }));
  for (const c of d.outlookCopies) ids.append(document.createElement("br"), "Outlook event for " + c.resourceNo + ": ", Object.assign(document.createElement("code"), { textContent: c.eventId || "(being created)" }));
  if (d.outlookItem) ids.append(document.createElement("br"), "Mirrors an Outlook item on the board.");
  box.appendChild(ids);
  if (d.lastError) box.appendChild(text(Object.assign(document.createElement("p"), { className: "error" }), "Last error: " + d.lastError));
  const list = document.createElement("ol");
  for (const e of d.history) list.appendChild(text(document.createElement("li"), when(e.at) + " · " + e.direction + " · " + e.action + " · " + e.outcome + (e.error ? " · " + e.error : "")));
  box.appendChild(list);
  $("detail").hidden = false; $("detail-title").focus();
}

$("filters").addEventListener("submit", (ev) => { ev.preventDefault(); loadActivity(true); });
$("more").addEventListener("click", () => loadActivity(false));
async function refresh() { $("banner").hidden = true; await Promise.all([loadResources(), loadHolds(), loadQueues(), loadActivity(true)]); }
setInterval(() => { if ($("auto").checked) refresh(); }, 10000);
refresh();
