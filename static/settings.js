// The settings page: load my settings, show locks, save with If-Match, errors next to the field.
"use strict";
const form = document.getElementById("settings");
const statusLine = document.getElementById("status");
const FIELDS = ["syncToPlanning", "showAs", "sensitivity", "privateItems"];
let etag = null;

function show(settings, editable, mode, resource) {
  text(document.getElementById("who"), resource.displayName ? resource.displayName + " · " + resource.email : resource.email);
  form.syncToPlanning.checked = settings.syncToPlanning;
  for (const box of form.querySelectorAll('input[name="showAs"]')) box.checked = settings.showAs.includes(box.value);
  for (const box of form.querySelectorAll('input[name="sensitivity"]')) box.checked = settings.sensitivity.includes(box.value);
  for (const radio of form.querySelectorAll('input[name="privateItems"]')) radio.checked = radio.value === settings.privateItems;
  for (const field of FIELDS) {
    for (const input of form.querySelectorAll('[name="' + field + '"]')) input.disabled = !editable[field];
    const lock = form.querySelector('[data-lock="' + field + '"]');
    lock.hidden = editable[field] || mode === "global";
  }
  const banner = document.getElementById("banner");
  banner.hidden = mode !== "global";
  text(banner, "Your administrator manages these settings for everyone; you can see them but not change them.");
  document.getElementById("save").disabled = FIELDS.every(f => !editable[f]);
  form.hidden = false;
}

function clearErrors() {
  for (const field of FIELDS) { const e = document.getElementById(field + "-error"); e.hidden = true; e.textContent = ""; }
}

function fieldError(field, message) {
  const element = document.getElementById((FIELDS.includes(field) ? field : "privateItems") + "-error");
  text(element, message).hidden = false;
}

async function load() {
  const result = await api("GET", "/api/settings/me");
  if (!result.ok) {
    const banner = document.getElementById("banner");
    text(banner, (result.data && result.data.error && result.data.error.message) || "The settings could not be loaded.");
    banner.hidden = false;
    return;
  }
  etag = result.etag;
  show(result.data.settings, result.data.editable, result.data.mode, result.data.resource);
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearErrors();
  const body = {
    syncToPlanning: form.syncToPlanning.checked,
    showAs: [...form.querySelectorAll('input[name="showAs"]:checked')].map(b => b.value),
    sensitivity: [...form.querySelectorAll('input[name="sensitivity"]:checked')].map(b => b.value),
    privateItems: (form.querySelector('input[name="privateItems"]:checked') || {}).value,
  };
  statusLine.className = ""; text(statusLine, "Saving…");
  const result = await api("PUT", "/api/settings/me", body, etag);
  if (result.ok) {
    etag = result.etag;
    show(result.data.settings, result.data.editable, result.data.mode, result.data.resource);
    statusLine.className = "ok"; text(statusLine, "Saved. Your board items follow at the next sync.");
    return;
  }
  const error = (result.data && result.data.error) || { message: "Saving failed (" + result.status + ")." };
  statusLine.className = "bad";
  if (result.status === 412) { text(statusLine, "Your settings were changed elsewhere. They have been reloaded; check and save again."); await load(); return; }
  text(statusLine, "Not saved.");
  fieldError(error.field, error.message);
});

load();
