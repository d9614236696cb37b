// roomsync console. Plain browser JavaScript, no dependencies, nothing loaded from elsewhere.
// Every value from the API reaches the page through textContent (never innerHTML), the function
// key lives in sessionStorage only, and lists that refresh by themselves are redrawn only when
// their data changed, so keyboard focus stays where it was.
"use strict";

(function () {
  const KEY_STORAGE = "roomsync.functionKey";
  const INTEGRATION_STORAGE = "roomsync.integration";
  const API_BASE = location.pathname.replace(/\/console\/?$/, "/");
  const REFRESH_SECONDS = { integrations: 5, people: 0, assets: 5, reservations: 3, synclog: 10, status: 10 };

  const state = {
    integrations: [],
    integrationId: sessionStorage.getItem(INTEGRATION_STORAGE) || "",
    assets: [],
    people: [],
    peopleContinuation: null,
    importAsset: null,
    confirmingDiscard: new Set(),
    confirmingDelete: new Set(),
    activeTab: "integrations",
    lastRefresh: {},
    busy: {},
    signatures: new WeakMap(),
  };

  const $ = (id) => document.getElementById(id);

  // ---- building the page ---------------------------------------------------------------------

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(props || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (name === "class") node.className = value;
      else if (name === "text") node.textContent = String(value);
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  // Replaces a container's content only when what it shows changed.
  function show(container, signature, build) {
    const text = JSON.stringify(signature);
    if (state.signatures.get(container) === text) return false;
    state.signatures.set(container, text);
    container.replaceChildren(...[].concat(build()));
    return true;
  }

  function badge(text, tone) {
    return el("span", { class: `badge ${tone || "plain"}`, text });
  }

  function table(columns, rows, caption) {
    return el("table", {},
      caption ? el("caption", { class: "muted", text: caption }) : null,
      el("thead", {}, el("tr", {}, columns.map((c) => el("th", { scope: "col", text: c })))),
      el("tbody", {}, rows.map((cells) => el("tr", {}, cells.map((cell, i) =>
        el("td", { "data-label": columns[i] }, cell === null || cell === undefined ? "—" : cell))))));
  }

  function when(iso) {
    if (!iso) return "—";
    const date = new Date(iso);
    return isNaN(date) ? iso : date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
  }

  // A reservation's times in its asset's zone (the zone its day is counted in), else the browser's.
  function timeRange(start, end, zone) {
    const a = new Date(start), b = new Date(end);
    const timeZone = zone || undefined;
    const day = a.toLocaleDateString(undefined, { weekday: "short", day: "numeric", month: "short", timeZone });
    const t = (d) => d.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit", timeZone });
    return `${day} ${t(a)}–${t(b)}`;
  }

  // The UTC instant of a wall-clock time in an IANA zone (the asset's), without a library: take
  // the time as if it were UTC, see what the zone's clock shows at that instant, correct by the
  // difference, and check once more in case the correction crossed a DST change.
  function zonedToUtc(day, time, zone) {
    const [y, m, d] = day.split("-").map(Number);
    const [hh, mm] = time.split(":").map(Number);
    const wanted = Date.UTC(y, m - 1, d, hh, mm);
    if (!zone) return new Date(`${day}T${time}`);
    const offsetAt = (instant) => {
      const parts = Object.fromEntries(new Intl.DateTimeFormat("en-US", { timeZone: zone, hourCycle: "h23",
        year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" })
        .formatToParts(new Date(instant)).map((p) => [p.type, p.value]));
      return Date.UTC(+parts.year, +parts.month - 1, +parts.day, +parts.hour, +parts.minute) - instant;
    };
    let instant = wanted - offsetAt(wanted);
    instant = wanted - offsetAt(instant);
    return new Date(instant);
  }

  function countdown(iso) {
    if (!iso) return "—";
    let seconds = Math.round((new Date(iso) - Date.now()) / 1000);
    if (seconds <= 0) return "expired";
    const days = Math.floor(seconds / 86400); seconds -= days * 86400;
    const hours = Math.floor(seconds / 3600); seconds -= hours * 3600;
    const minutes = Math.floor(seconds / 60);
    return days ? `in ${days} d ${hours} h` : hours ? `in ${hours} h ${minutes} min` : `in ${minutes} min`;
  }

  function isoDay(date) {
    const d = date || new Date();
    return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
  }

  function notice(text, bad) {
    const box = $("notice");
    box.textContent = text || "";
    box.classList.toggle("bad", Boolean(bad));
  }

  function errorText(result) {
    const error = result.body && result.body.error;
    if (error && error.message) return error.message;
    if (result.status === 0) return "the app did not answer (is it running?)";
    return `the app answered HTTP ${result.status}`;
  }

  function unavailable(container, what, result) {
    const text = result.status === 404
      ? `${what}: not available from this server yet (it answered 404).`
      : `${what}: could not be read (${errorText(result)}).`;
    show(container, ["unavailable", text], () => el("p", { class: "notice bad", text }));
  }

  // ---- the API -------------------------------------------------------------------------------

  async function api(method, path, options) {
    const { body, params } = options || {};
    const key = sessionStorage.getItem(KEY_STORAGE);
    if (!key) { askForKey(); return { ok: false, status: 401, body: null }; }
    const query = new URLSearchParams();
    for (const [name, value] of Object.entries(params || {})) {
      if (value !== undefined && value !== null && value !== "") query.set(name, value);
    }
    const url = API_BASE + path + (query.toString() ? `?${query}` : "");
    const headers = { "x-functions-key": key, "Accept": "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body),
                                    cache: "no-store", credentials: "omit" });
    } catch (problem) {
      return { ok: false, status: 0, body: null };
    }
    let parsed = null;
    const text = await response.text();
    if (text) { try { parsed = JSON.parse(text); } catch (ignored) { parsed = null; } }
    if (response.status === 401) askForKey("The key was refused. Enter the function key again.");
    return { ok: response.ok, status: response.status, body: parsed };
  }

  // ---- the function key ----------------------------------------------------------------------

  function askForKey(message) {
    sessionStorage.removeItem(KEY_STORAGE);
    $("key-panel").hidden = false;
    $("forget-key").hidden = true;
    const error = $("key-error");
    error.hidden = !message;
    error.textContent = message || "";
    $("key-input").setAttribute("aria-invalid", message ? "true" : "false");
    $("key-input").focus();
  }

  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const value = $("key-input").value.trim();
    if (!value) { askForKey("Enter the function key."); return; }
    sessionStorage.setItem(KEY_STORAGE, value);
    $("key-input").value = "";
    $("key-panel").hidden = true;
    $("forget-key").hidden = false;
    refreshActive(true);
  });

  $("forget-key").addEventListener("click", () => askForKey());

  // ---- forms: field-level errors ---------------------------------------------------------------

  function clearErrors(form) {
    for (const node of form.querySelectorAll(".field-error, .form-error")) { node.hidden = true; node.textContent = ""; }
    for (const node of form.querySelectorAll("[aria-invalid]")) node.setAttribute("aria-invalid", "false");
  }

  // Shows an API error at its field (the API names it in error.field, e.g. "domains[0]" or
  // "recurrence.pattern"); fields the form does not have get the form-level message.
  function showError(form, prefix, fieldMap, result) {
    const error = (result.body && result.body.error) || {};
    const message = errorText(result);
    const apiField = String(error.field || "").split(/[.[]/)[0];
    const local = fieldMap[apiField];
    const summary = form.querySelector(".form-error");
    if (local) {
      const input = $(`${prefix}-${local}`);
      const box = $(`${prefix}-${local}-error`) || summary;
      box.textContent = message;
      box.hidden = false;
      if (input) { input.setAttribute("aria-invalid", "true"); input.focus(); }
      if (box !== summary && summary) { summary.textContent = "The request was refused: see the marked field."; summary.hidden = false; }
    } else if (summary) {
      summary.textContent = message;
      summary.hidden = false;
      summary.focus && summary.setAttribute("tabindex", "-1");
      summary.focus();
    }
  }

  function requireFields(form, prefix, names) {
    for (const name of names) {
      const input = $(`${prefix}-${name}`);
      if (input && !String(input.value).trim()) {
        const box = $(`${prefix}-${name}-error`);
        if (box) { box.textContent = "Required."; box.hidden = false; }
        input.setAttribute("aria-invalid", "true");
        input.focus();
        return false;
      }
    }
    return true;
  }

  // ---- integrations ------------------------------------------------------------------------------

  const STATUS_TONE = { active: "ok", credentials_invalid: "bad", paused: "warn" };

  async function loadIntegrations() {
    const result = await api("GET", "integrations");
    if (!result.ok) { unavailable($("integrations-list"), "The integrations list", result); return; }
    const integrations = result.body.value;
    const statuses = await Promise.all(integrations.map((i) => api("GET", `integrations/${i.id}/status`)));
    state.integrations = integrations.map((integration, n) => ({ ...integration, status_view: statuses[n].ok ? statuses[n].body : null }));
    updatePicker();
    show($("integrations-list"), state.integrations, () => state.integrations.length
      ? state.integrations.map(integrationCard)
      : el("p", { class: "muted", text: "No tenant is connected yet. Connect one below." }));
  }

  function countsText(counts) {
    const parts = Object.entries(counts || {}).filter(([, n]) => n).map(([name, n]) => `${n} ${name.replace(/_/g, " ")}`);
    return parts.length ? parts.join(", ") : "no changes";
  }

  function integrationCard(integration) {
    const status = integration.status_view || {};
    const sync = status.user_sync || {};
    const last = sync.last_run;
    const users = status.users || {};
    const warnings = (status.warnings || integration.warnings || []);
    const progress = el("span", { class: "progress", role: "status" });
    const title = integration.domains.join(", ");
    const confirming = state.confirmingDelete.has(integration.id);
    const deleteButton = el("button", { type: "button", class: confirming ? "danger confirm" : "danger",
                                        text: confirming ? "Confirm delete" : "Delete",
                                        "aria-label": `Delete the integration of ${title}` });
    deleteButton.addEventListener("click", () => confirmDelete(integration, deleteButton, progress));
    return el("article", { class: "card", "aria-label": `Integration ${title}` },
      el("h3", { text: title }),
      el("dl", {},
        el("dt", { text: "Status" }), el("dd", {}, badge(integration.status.replace(/_/g, " "), STATUS_TONE[integration.status]),
                                          integration.status_reason ? ` ${integration.status_reason}` : ""),
        el("dt", { text: "Tenant" }), el("dd", {}, el("code", { text: integration.tenant_id })),
        el("dt", { text: "App (client) id" }), el("dd", {}, el("code", { text: integration.client_id })),
        el("dt", { text: "Mode" }), el("dd", { text: integration.mode.replace(/_/g, " ") }),
        el("dt", { text: "Permissions" }), el("dd", { text: integration.granted_permissions.join(", ") || "none" }),
        el("dt", { text: "Secret expires" }), el("dd", { text: integration.client_secret_expires_at ? when(integration.client_secret_expires_at) : "not given" }),
        el("dt", { text: "People" }), el("dd", { text: users.total === undefined ? "—" : `${users.active} active of ${users.total}` }),
        el("dt", { text: "Last user sync" }), el("dd", {}, last
          ? `${last.outcome.replace(/_/g, " ")}${last.finished_at ? `, ${when(last.finished_at)}` : " (running)"}: ${countsText(last.counts)}`
          : "not run yet"),
        el("dt", { text: "Last success" }), el("dd", { text: when(sync.last_success_at) }),
        sync.last_error ? [el("dt", { text: "Last error" }), el("dd", { text: `${sync.last_error} (${when(sync.last_error_at)})` })] : null),
      warnings.map((warning) => el("p", { class: "warning", text: warning.message })),
      el("div", { class: "actions" },
        el("button", { type: "button", class: "secondary", text: "Sync users now", "aria-label": `Sync users now: ${title}`,
                       onclick: () => syncUsers(integration, progress) }),
        deleteButton, progress));
  }

  async function syncUsers(integration, progress) {
    progress.textContent = "Queuing a user sync…";
    const result = await api("POST", `integrations/${integration.id}/sync-users`);
    progress.textContent = result.ok ? "User sync queued; the counts update when it ends." : `Not queued: ${errorText(result)}`;
    state.signatures.delete($("integrations-list"));
    setTimeout(loadIntegrations, 1000);
  }

  function confirmDelete(integration, button, progress) {
    if (!state.confirmingDelete.has(integration.id)) {
      state.confirmingDelete.add(integration.id);
      button.classList.add("confirm");
      button.textContent = "Confirm delete";
      progress.textContent = "This unsubscribes its assets and removes its people. Press again to confirm.";
      return;
    }
    state.confirmingDelete.delete(integration.id);
    button.disabled = true;
    progress.textContent = "Deleting: unsubscribing assets, removing the integration and its people…";
    api("DELETE", `integrations/${integration.id}`).then((result) => {
      if (result.ok) {
        if (state.integrationId === integration.id) selectIntegration("");
        state.signatures.delete($("integrations-list"));
        loadIntegrations();
        followDeletion(integration.domains.join(", "), result.body && result.body.status_url);
      } else {
        button.disabled = false;
        progress.textContent = `Not deleted: ${errorText(result)}`;
      }
    });
  }

  // The purge runs in the background: its status URL lists the steps done and to do, and
  // answers 404 once the integration is gone. Shown outside the card, which is hidden at once.
  function followDeletion(label, statusUrl) {
    const line = $("delete-progress");
    line.hidden = false;
    line.textContent = `Deleting the integration of ${label}…`;
    const poll = async () => {
      const result = await api("GET", statusUrl);
      if (result.status === 404) { line.textContent = `Deleted the integration of ${label}: every step is done.`; return; }
      if (!result.ok) {
        line.textContent = `Deleting the integration of ${label}: progress unavailable (${errorText(result)}); the deletion goes on.`;
        return;
      }
      const steps = (result.body && result.body.deletion) || {};
      const done = (steps.completed_steps || []).join(", ") || "none yet";
      const pending = (steps.pending_steps || []).join(", ") || "none";
      line.textContent = `Deleting the integration of ${label}. Done: ${done}. Still to do: ${pending}.`;
      setTimeout(poll, 1000);
    };
    if (statusUrl) poll();
  }

  const CONNECT_FIELDS = { domains: "domains", domain: "domains", tenant_id: "tenant", client_id: "client",
                           client_secret: "secret", client_secret_expires_at: "expiry" };

  $("connect-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    clearErrors(form);
    if (!requireFields(form, "connect", ["domains", "tenant", "client", "secret"])) return;
    const body = {
      domains: $("connect-domains").value.split(/[\s,;]+/).filter(Boolean),
      tenant_id: $("connect-tenant").value.trim(),
      client_id: $("connect-client").value.trim(),
      client_secret: $("connect-secret").value,
    };
    if ($("connect-expiry").value) body.client_secret_expires_at = $("connect-expiry").value;
    $("connect-submit").disabled = true;
    $("connect-progress").textContent = "Trying the credentials with Entra ID…";
    const result = await api("POST", "integrations", { body });
    $("connect-submit").disabled = false;
    $("connect-progress").textContent = "";
    if (result.ok) {
      form.reset();
      notice(`Connected ${result.body.domains.join(", ")}; the first user sync is queued.`);
      selectIntegration(result.body.id);
      state.signatures.delete($("integrations-list"));
      loadIntegrations();
    } else {
      $("connect-secret").value = result.body && result.body.error && result.body.error.field === "client_secret" ? "" : $("connect-secret").value;
      showError(form, "connect", CONNECT_FIELDS, result);
    }
  });

  // ---- the integration picker --------------------------------------------------------------------

  function updatePicker() {
    const picker = $("integration-picker");
    if (!state.integrations.some((i) => i.id === state.integrationId)) {
      state.integrationId = state.integrations.length ? state.integrations[0].id : "";
      sessionStorage.setItem(INTEGRATION_STORAGE, state.integrationId);
    }
    show(picker, [state.integrations.map((i) => [i.id, i.domains]), state.integrationId], () => state.integrations.length
      ? state.integrations.map((i) => el("option", { value: i.id, selected: i.id === state.integrationId, text: i.domains.join(", ") }))
      : el("option", { value: "", text: "none yet" }));
    picker.disabled = !state.integrations.length;
  }

  function selectIntegration(id) {
    state.integrationId = id;
    sessionStorage.setItem(INTEGRATION_STORAGE, id);
    state.people = []; state.peopleContinuation = null; state.assets = [];
    refreshActive(true);
  }

  $("integration-picker").addEventListener("change", (event) => selectIntegration(event.target.value));

  async function ensureIntegrations() {
    if (!state.integrations.length) await loadIntegrations();
    return state.integrationId;
  }

  function needIntegration(container) {
    show(container, ["none"], () => el("p", { class: "muted", text: "Connect a tenant on the Integrations tab first." }));
  }

  // ---- people ----------------------------------------------------------------------------------

  async function loadPeople(more) {
    const id = await ensureIntegrations();
    if (!id) { needIntegration($("people-list")); return; }
    if (!more) { state.people = []; state.peopleContinuation = null; }
    const result = await api("GET", "users", { params: { integration_id: id, active: $("people-filter").value, page_size: 200,
                                                         continuation: more ? state.peopleContinuation : "" } });
    if (!result.ok) { unavailable($("people-list"), "The people list", result); return; }
    state.people = state.people.concat(result.body.value);
    state.peopleContinuation = result.body.continuation;
    renderPeople();
  }

  function renderPeople() {
    const needle = $("people-search").value.trim().toLowerCase();
    const shown = state.people.filter((p) => !needle || [p.display_name, p.email, p.department, p.job_title]
      .some((v) => v && String(v).toLowerCase().includes(needle)));
    $("people-count").textContent = `${shown.length} shown of ${state.people.length} loaded${state.peopleContinuation ? " (more available)" : ""}.`;
    $("people-more").hidden = !state.peopleContinuation;
    show($("people-list"), shown.map((p) => [p.id, p.active, p.updated_at]), () => shown.length
      ? table(["Name", "Email", "Department", "Job title", "State"], shown.map((p) => [
          p.display_name, p.email, p.department, p.job_title,
          p.active ? badge("active", "ok")
                   : el("span", {}, badge("deactivated", "bad"), ` ${p.deactivation_reason ? p.deactivation_reason.replace(/_/g, " ") : ""} ${p.deactivated_at ? when(p.deactivated_at) : ""}`)]))
      : el("p", { class: "muted", text: state.people.length ? "Nobody matches the search." : "No people synced yet." }));
  }

  $("people-search").addEventListener("input", renderPeople);
  $("people-filter").addEventListener("change", () => loadPeople(false));
  $("people-refresh").addEventListener("click", () => loadPeople(false));
  $("people-more").addEventListener("click", () => loadPeople(true));

  // ---- assets ------------------------------------------------------------------------------------

  const SUBSCRIPTION_TONE = { subscribed: "ok", unsubscribed: "plain", expired: "warn", error: "bad" };

  async function loadAssets() {
    const id = await ensureIntegrations();
    if (!id) { needIntegration($("assets-list")); return false; }
    const result = await api("GET", "assets", { params: { integration_id: id } });
    if (!result.ok) { unavailable($("assets-list"), "The assets list", result); state.assets = []; fillAssetPickers(); return false; }
    state.assets = result.body.value;
    fillAssetPickers();
    show($("assets-list"), [state.assets, Math.floor(Date.now() / 60000)], () => state.assets.length
      ? table(["Asset", "Mailbox", "Subscription", "Expires", "Last notification", "Last error", "Actions"], state.assets.map(assetRow))
      : el("p", { class: "muted", text: "No assets yet: add rooms below." }));
    return true;
  }

  function assetRow(asset) {
    const sub = asset.subscription || {};
    const subscribed = sub.state === "subscribed";
    const actions = el("div", { class: "actions" },
      el("button", { type: "button", class: subscribed ? "secondary" : "", text: subscribed ? "Unsubscribe" : "Subscribe",
                     "aria-label": `${subscribed ? "Unsubscribe" : "Subscribe"} ${asset.name}`,
                     onclick: () => subscription(asset, !subscribed) }),
      el("button", { type: "button", class: "secondary", text: "Resync", "aria-label": `Resync ${asset.name} now`,
                     onclick: () => resync(asset) }),
      el("button", { type: "button", class: "secondary", text: "Import", "aria-label": `Import existing bookings of ${asset.name}`,
                     onclick: () => openImport(asset) }));
    return [asset.name, asset.mailbox,
      badge(sub.state === "subscribed" ? "subscribed to Graph" : (sub.state || "unsubscribed"), SUBSCRIPTION_TONE[sub.state]),
      subscribed || sub.state === "expired" ? countdown(sub.expires_at) : "—",
      when(sub.last_notification_at), sub.last_error || "—", actions];
  }

  async function subscription(asset, subscribe) {
    notice(subscribe ? `Subscribing ${asset.name}…` : `Unsubscribing ${asset.name}…`);
    const result = await api(subscribe ? "POST" : "DELETE", `assets/${encodeURIComponent(asset.id)}/subscription`);
    notice(result.ok ? (subscribe ? `${asset.name}: subscribed to Graph${result.body && result.body.expires_at ? ` until ${when(result.body.expires_at)}` : ""}.`
                                  : `${asset.name}: unsubscribed.`)
                     : `${asset.name}: ${errorText(result)}`, !result.ok);
    loadAssets();
  }

  async function resync(asset) {
    const result = await api("POST", `assets/${encodeURIComponent(asset.id)}/resync`);
    notice(result.ok ? `${asset.name}: resync queued.` : `${asset.name}: ${errorText(result)}`, !result.ok);
  }

  function fillAssetPickers() {
    const options = (first) => [first ? el("option", { value: "", text: first }) : null]
      .concat(state.assets.map((a) => el("option", { value: a.id, text: `${a.name} (${a.mailbox})` })));
    for (const [id, first] of [["res-asset", "all assets"], ["log-asset", "all assets"], ["book-asset", null]]) {
      const select = $(id);
      const keep = select.value;
      if (show(select, [state.assets.map((a) => [a.id, a.name]), first], () => options(first).filter(Boolean))) {
        if ([...select.options].some((o) => o.value === keep)) select.value = keep;
      }
    }
  }

  $("rooms-load").addEventListener("click", async () => {
    const id = await ensureIntegrations();
    if (!id) { needIntegration($("rooms-list")); return; }
    $("rooms-progress").textContent = "Reading the tenant's rooms…";
    const result = await api("GET", `integrations/${id}/rooms`);
    $("rooms-progress").textContent = "";
    if (!result.ok) { unavailable($("rooms-list"), "The room list", result); return; }
    const linked = new Set(state.assets.map((a) => a.mailbox.toLowerCase()));
    show($("rooms-list"), [result.body.value, [...linked]], () => result.body.value.length
      ? table(["Room", "Mailbox", "Capacity", "Time zone", ""], result.body.value.map((room) => [
          room.display_name, room.email, room.capacity, room.time_zone,
          linked.has(room.email.toLowerCase()) ? badge("added", "ok")
            : el("button", { type: "button", text: "Add", "aria-label": `Add ${room.display_name || room.email} as an asset`,
                             onclick: (event) => addRoom(room, event.currentTarget) })]))
      : el("p", { class: "muted", text: "The tenant has no rooms." }));
  });

  async function addRoom(room, button) {
    button.disabled = true;
    const result = await api("POST", "assets", { body: { integration_id: state.integrationId, room: room.email } });
    notice(result.ok ? `Added ${result.body.name}.` : `${room.email}: ${errorText(result)}`, !result.ok);
    button.disabled = false;
    await loadAssets();
    state.signatures.delete($("rooms-list"));
    $("rooms-load").click();
  }

  $("asset-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    clearErrors(form);
    if (!requireFields(form, "asset", ["name", "mailbox"])) return;
    const body = { integration_id: state.integrationId, name: $("asset-name").value.trim(), mailbox: $("asset-mailbox").value.trim() };
    if ($("asset-capacity").value) body.capacity = Number($("asset-capacity").value);
    const result = await api("POST", "assets", { body });
    if (result.ok) { form.reset(); notice(`Added ${result.body.name}.`); loadAssets(); }
    else showError(form, "asset", { name: "name", mailbox: "mailbox", capacity: "capacity" }, result);
  });

  // Import: always a dry run first; the report is shown before anything is applied.
  function openImport(asset) {
    state.importAsset = asset;
    $("import-panel").hidden = false;
    $("import-title").textContent = `Import existing bookings of ${asset.name}`;
    $("import-from").value = $("import-from").value || isoDay();
    const later = new Date(); later.setDate(later.getDate() + 30);
    $("import-to").value = $("import-to").value || isoDay(later);
    $("import-apply").hidden = true;
    $("import-report").replaceChildren();
    $("import-from").focus();
  }

  function importBody(dryRun) {
    const from = new Date(`${$("import-from").value}T00:00`);
    const to = new Date(`${$("import-to").value}T00:00`); to.setDate(to.getDate() + 1);
    return { from: from.toISOString(), to: to.toISOString(), dry_run: dryRun };
  }

  function importItem(item) {
    if (item && typeof item === "object") {
      const label = [item.subject, item.start ? when(item.start) : null, item.organizer && (item.organizer.email || item.organizer.name), item.reason]
        .filter(Boolean).join(" · ");
      return el("li", { text: label || JSON.stringify(item) });
    }
    return el("li", { text: String(item) });
  }

  function renderImport(report, dryRun) {
    const groups = [["created", dryRun ? "Would create" : "Created"], ["linked", "Already linked"], ["conflicts", "Conflicts"]];
    $("import-report").replaceChildren(
      el("h4", { text: dryRun ? "Dry run: nothing was changed yet" : "Import applied" }),
      ...groups.map(([name, label]) => el("section", { "aria-label": label },
        el("p", {}, el("strong", { text: `${label}: ${(report[name] || []).length}` })),
        el("ul", {}, (report[name] || []).slice(0, 50).map(importItem)))));
  }

  $("import-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    clearErrors(form);
    if (!requireFields(form, "import", ["from", "to"])) return;
    const result = await api("POST", `assets/${encodeURIComponent(state.importAsset.id)}/import`, { body: importBody(true) });
    if (!result.ok) { showError(form, "import", { from: "from", to: "to" }, result); return; }
    renderImport(result.body, true);
    $("import-apply").hidden = false;
  });

  $("import-apply").addEventListener("click", async () => {
    const result = await api("POST", `assets/${encodeURIComponent(state.importAsset.id)}/import`, { body: importBody(false) });
    if (!result.ok) { showError($("import-form"), "import", { from: "from", to: "to" }, result); return; }
    renderImport(result.body, false);
    $("import-apply").hidden = true;
    notice(`Imported bookings of ${state.importAsset.name}.`);
  });

  $("import-close").addEventListener("click", () => { $("import-panel").hidden = true; });

  // ---- reservations --------------------------------------------------------------------------------

  const RES_TONE = { confirmed: "ok", cancelled: "plain", declined: "bad" };
  const SYNC_TONE = { synced: "ok", pending: "warn", failed: "bad", declined: "bad" };

  function reservationQueries() {
    const view = $("res-view").value;
    const asset = $("res-asset").value;
    if (view === "person") {
      const person = $("res-person").value.trim();
      return person ? [{ integration_id: state.integrationId, user: person }] : [];
    }
    if (view === "asset") {
      const from = new Date(); from.setHours(0, 0, 0, 0);
      const to = new Date(from); to.setDate(to.getDate() + 30);
      const range = { from: from.toISOString(), to: to.toISOString() };
      return (asset ? [asset] : state.assets.map((a) => a.id)).map((id) => ({ asset_id: id, ...range }));
    }
    const day = $("res-day").value || isoDay();
    return (asset ? [asset] : state.assets.map((a) => a.id)).map((id) => ({ asset_id: id, day }));
  }

  async function loadReservations() {
    const id = await ensureIntegrations();
    if (!id) { needIntegration($("res-list")); return; }
    if (!state.assets.length) await loadAssets();
    const found = [];
    for (const params of reservationQueries()) {
      let continuation = "";
      for (let page = 0; page < 5; page += 1) {
        const result = await api("GET", "reservations", { params: { ...params, continuation } });
        if (!result.ok) { unavailable($("res-list"), "The reservations list", result); return; }
        found.push(...result.body.value);
        continuation = result.body.continuation;
        if (!continuation) break;
      }
    }
    found.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
    $("res-updated").textContent = `Refreshes by itself every few seconds; last read ${new Date().toLocaleTimeString()}.`;
    const names = Object.fromEntries(state.assets.map((a) => [a.id, a.name]));
    const zones = Object.fromEntries(state.assets.map((a) => [a.id, a.time_zone]));
    show($("res-list"), found, () => found.length
      ? table(["When (asset's time)", "Asset", "Subject", "Organizer", "Origin", "Status", "Sync", "Actions"], found.map((r) => [
          timeRange(r.start, r.end, zones[r.asset_id] || r.time_zone), names[r.asset_id] || r.asset_id, r.private ? "Private" : r.subject,
          r.organizer ? (r.organizer.name || r.organizer.email) : "—",
          r.origin === "outlook" ? "Outlook" : "platform",
          badge(r.status, RES_TONE[r.status]),
          el("span", {}, badge(r.sync_status || "—", SYNC_TONE[r.sync_status]), r.sync_reason ? ` ${r.sync_reason}` : ""),
          r.status === "confirmed" ? cancelButtons(r) : "—"]))
      : el("p", { class: "muted", text: "No reservations in this view." }));
  }

  function cancelButtons(reservation) {
    const label = `${reservation.subject} ${timeRange(reservation.start, reservation.end, reservation.time_zone)}`;
    const cancel = (scope) => async () => {
      const result = await api("DELETE", `reservations/${encodeURIComponent(reservation.id)}`, { params: scope ? { scope } : {} });
      notice(result.ok ? `Cancelled: ${label}.` : `Not cancelled: ${errorText(result)}`, !result.ok);
      loadReservations();
    };
    if (!reservation.series_id) {
      return el("button", { type: "button", class: "danger", text: "Cancel", "aria-label": `Cancel ${label}`, onclick: cancel(null) });
    }
    return el("div", { class: "actions" },
      el("button", { type: "button", class: "danger", text: "Cancel this one", "aria-label": `Cancel this one: ${label}`, onclick: cancel("occurrence") }),
      el("button", { type: "button", class: "danger", text: "Cancel series", "aria-label": `Cancel series: ${label}`, onclick: cancel("series") }));
  }

  function syncReservationFilters() {
    const view = $("res-view").value;
    $("res-day-field").hidden = view !== "day";
    $("res-asset-field").hidden = view === "person";
    $("res-person-field").hidden = view !== "person";
    state.signatures.delete($("res-list"));
    loadReservations();
  }

  for (const id of ["res-view", "res-day", "res-asset"]) $(id).addEventListener("change", syncReservationFilters);
  $("res-person").addEventListener("change", syncReservationFilters);

  $("book-repeat").addEventListener("change", () => { $("book-count-field").hidden = !$("book-repeat").value; });

  const WEEKDAYS = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"];

  $("book-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    clearErrors(form);
    if (!requireFields(form, "book", ["asset", "booker", "subject", "date", "start", "end"])) return;
    const day = $("book-date").value;
    const asset = state.assets.find((a) => a.id === $("book-asset").value);
    const zone = asset && asset.time_zone;
    const start = zonedToUtc(day, $("book-start").value, zone);
    const end = zonedToUtc(day, $("book-end").value, zone);
    const body = { asset_id: $("book-asset").value, booker: $("book-booker").value.trim(), subject: $("book-subject").value.trim(),
                   start: start.toISOString(), end: end.toISOString(),
                   time_zone: zone || Intl.DateTimeFormat().resolvedOptions().timeZone,
                   private: $("book-private").checked };
    const repeat = $("book-repeat").value;
    if (repeat) {
      const pattern = repeat === "weekly"
        ? { type: "weekly", interval: 1, daysOfWeek: [WEEKDAYS[start.getDay()]], firstDayOfWeek: "monday" }
        : { type: "daily", interval: 1 };
      body.recurrence = { pattern, range: { type: "numbered", startDate: day, numberOfOccurrences: Number($("book-count").value) } };
    }
    $("book-progress").textContent = "Booking…";
    const result = await api("POST", "reservations", { body });
    $("book-progress").textContent = "";
    if (result.ok) {
      notice(`Booked “${result.body.subject}”: ${result.body.sync_status === "pending" ? "on its way to Outlook" : result.body.sync_status}.`);
      $("res-view").value = "day"; $("res-day").value = day; $("res-asset").value = body.asset_id;
      $("book-subject").value = "";
      syncReservationFilters();
    } else {
      showError(form, "book", { asset_id: "asset", booker: "booker", subject: "subject", start: "start", end: "end",
                                recurrence: "recurrence", count: "recurrence" }, result);
    }
  });

  // ---- sync log and dead letters -----------------------------------------------------------------

  // A message or input as readable JSON (a message is stored as text: shown parsed when it is JSON).
  function jsonDetails(summary, value) {
    let shown = value;
    if (typeof value === "string") { try { shown = JSON.parse(value); } catch (ignored) { shown = value; } }
    const text = typeof shown === "string" ? shown : JSON.stringify(shown, null, 2);
    return el("details", {}, el("summary", { text: summary }), el("pre", { text }));
  }

  async function loadSyncLog() {
    const id = await ensureIntegrations();
    if (!id) { needIntegration($("log-list")); return; }
    if (!state.assets.length) await loadAssets();
    const names = Object.fromEntries(state.assets.map((a) => [a.id, a.name]));
    const log = await api("GET", "synclog", { params: { integration_id: id, asset_id: $("log-asset").value,
                                                         reservation_id: $("log-reservation").value.trim() } });
    if (!log.ok) unavailable($("log-list"), "The sync log", log);
    else show($("log-list"), log.body.value, () => log.body.value.length
      ? table(["At", "Asset", "Reservation", "Decision", "Graph calls", "Outcome", "Input"], log.body.value.map((e) => [
          when(e.at), e.asset_id ? (names[e.asset_id] || e.asset_id) : "—", e.reservation_id ? el("code", { text: e.reservation_id }) : "—",
          el("span", {}, el("strong", { text: e.decision }), e.reason ? ` ${e.reason}` : ""), String(e.graph_calls ?? "—"), e.outcome,
          jsonDetails("input", e.input)]))
      : el("p", { class: "muted", text: "Nothing logged for this selection in the last days." }));

    const dead = await api("GET", "deadletters", { params: { integration_id: id } });
    if (!dead.ok) unavailable($("dead-list"), "The dead letters", dead);
    else show($("dead-list"), dead.body.value, () => dead.body.value.length
      ? table(["At", "Queue", "Error", "Message", "Actions"], dead.body.value.map((d) => [
          when(d.at), d.queue, d.error, jsonDetails("message", d.message), deadLetterActions(d)]))
      : el("p", { class: "muted", text: "No dead letters." }));
  }

  // A discard asks for a second press; which letters wait for it survives the list's redraws.
  function deadLetterActions(letter) {
    const confirming = state.confirmingDiscard.has(letter.id);
    const discard = el("button", { type: "button", class: confirming ? "danger confirm" : "danger",
                                   text: confirming ? "Confirm discard" : "Discard", "aria-label": `Discard dead letter ${letter.id}` });
    discard.addEventListener("click", async () => {
      if (!state.confirmingDiscard.has(letter.id)) {
        state.confirmingDiscard.add(letter.id);
        discard.classList.add("confirm");
        discard.textContent = "Confirm discard";
        return;
      }
      state.confirmingDiscard.delete(letter.id);
      const result = await api("DELETE", `deadletters/${encodeURIComponent(letter.id)}`);
      notice(result.ok ? "Dead letter discarded." : `Not discarded: ${errorText(result)}`, !result.ok);
      loadSyncLog();
    });
    return el("div", { class: "actions" },
      el("button", { type: "button", class: "secondary", text: "Retry", "aria-label": `Retry dead letter ${letter.id}`,
                     onclick: async () => {
                       const result = await api("POST", `deadletters/${encodeURIComponent(letter.id)}/retry`);
                       notice(result.ok ? "Put back on its queue." : `Not retried: ${errorText(result)}`, !result.ok);
                       loadSyncLog();
                     } }),
      discard);
  }

  $("log-refresh").addEventListener("click", loadSyncLog);
  $("log-asset").addEventListener("change", loadSyncLog);

  // ---- status ----------------------------------------------------------------------------------------

  async function loadStatus() {
    const result = await api("GET", "status");
    if (!result.ok) { unavailable($("status-summary"), "The status", result); return; }
    const report = result.body;
    show($("status-summary"), [report.status, report.problems, report.dead_letters], () => [
      el("p", {}, badge(report.status, report.status === "ok" ? "ok" : "warn"), ` checked ${when(report.checked_at)}; `,
         `${report.dead_letters.total} dead letter(s).`),
      report.problems.length
        ? el("ul", {}, report.problems.map((p) => el("li", {}, el("strong", { text: p.code.replace(/_/g, " ") }), `: ${p.message}`)))
        : el("p", { text: "Nothing needs attention." })]);
    show($("status-queues"), report.queues, () => table(["Queue", "Role", "Exists", "Messages (approx.)"],
      report.queues.map((q) => [el("code", { text: q.name }), q.role, q.exists ? "yes" : "not yet", String(q.approximate_messages)]),
      "Queue backlogs"));
  }

  // ---- tabs and refreshing ---------------------------------------------------------------------------

  const LOADERS = { integrations: loadIntegrations, people: () => loadPeople(false), assets: loadAssets,
                    reservations: loadReservations, synclog: loadSyncLog, status: loadStatus };
  const tabs = [...document.querySelectorAll('[role="tab"]')];

  function activate(tab, focus) {
    for (const other of tabs) {
      const selected = other === tab;
      other.setAttribute("aria-selected", String(selected));
      other.tabIndex = selected ? 0 : -1;
      $(other.getAttribute("aria-controls")).hidden = !selected;
    }
    if (focus) tab.focus();
    state.activeTab = tab.id.replace("tab-", "");
    refreshActive(true);
  }

  for (const tab of tabs) {
    tab.addEventListener("click", () => activate(tab, false));
    tab.addEventListener("keydown", (event) => {
      const index = tabs.indexOf(tab);
      const next = { ArrowRight: index + 1, ArrowLeft: index - 1, Home: 0, End: tabs.length - 1 }[event.key];
      if (next === undefined) return;
      event.preventDefault();
      activate(tabs[(next + tabs.length) % tabs.length], true);
    });
  }

  async function refreshActive(now) {
    if (!sessionStorage.getItem(KEY_STORAGE)) return;
    const name = state.activeTab;
    if (state.busy[name]) return;
    const every = REFRESH_SECONDS[name];
    if (!now && (!every || Date.now() - (state.lastRefresh[name] || 0) < every * 1000)) return;
    state.busy[name] = true;
    try { await LOADERS[name](); } finally {
      state.busy[name] = false;
      state.lastRefresh[name] = Date.now();
    }
  }

  setInterval(() => { if (!document.hidden) refreshActive(false); }, 1000);

  $("res-day").value = isoDay();
  $("book-date").value = isoDay();
  $("book-start").value = "10:00";
  $("book-end").value = "10:30";
  if (sessionStorage.getItem(KEY_STORAGE)) { $("forget-key").hidden = false; refreshActive(true); }
  else askForKey();
})();
