// liverec's live page: plain JavaScript over the public API, no framework, no build step.
"use strict";

const $ = (sel) => document.querySelector(sel);
const K = 12;
let user = "";
let session = { auth_required: false, scopes: ["admin", "ingest", "read"], csrf_token: null };
let shownIds = [];        // the last list's item ids, in order: what a new list is compared with
let shownTags = new Map(); // tag -> weight of the last interests shown

function newId(prefix) {
  const random = (globalThis.crypto && crypto.randomUUID) ? crypto.randomUUID()
    : Math.random().toString(36).slice(2) + Date.now().toString(36);
  return `${prefix}-${random}`;
}

function say(text, isError = false) {
  const status = $("#status");
  status.textContent = text;
  status.classList.toggle("error", isError);
}

function can(scope) {
  return session.scopes.includes(scope) || session.scopes.includes("admin");
}

async function api(method, path, body) {
  const init = { method, headers: { accept: "application/json" } };
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  // Signed in with a key, the browser sends the session cookie by itself; a state-changing call
  // also carries the session's CSRF token, which only this page (same origin) could read.
  if (method !== "GET" && session.csrf_token) init.headers["x-csrf-token"] = session.csrf_token;
  let response = await fetch(path, init);
  // A busy service answers 503 with Retry-After at once rather than queueing: wait and ask again
  // (every call here is safe to repeat: events carry their id, so a repeat is not counted twice).
  for (let attempt = 0; response.status === 503 && response.headers.has("retry-after") && attempt < 3; attempt++) {
    say("the service is busy; retrying…");
    await new Promise((r) => setTimeout(r, 1000 * Number(response.headers.get("retry-after") || 1)));
    response = await fetch(path, init);
  }
  const text = await response.text();
  const data = text && response.headers.get("content-type")?.includes("json") ? JSON.parse(text) : text;
  if (!response.ok) {
    const message = data?.error?.message || `${response.status} ${response.statusText}`;
    const error = new Error(message);
    error.status = response.status;
    if (response.status === 401 && session.auth_required && !path.startsWith("/session")) askForKey(message);
    throw error;
  }
  return data;
}

// ------------------------------------------------------------------ signing in

async function loadSession() {
  try {
    session = await api("GET", "/session");
    return true;
  } catch (e) {
    if (e.status !== 401) throw e;
    session = { auth_required: true, scopes: [], csrf_token: null };
    askForKey();
    return false;
  }
}

function askForKey(why = "") {
  $("#signin").hidden = false;
  for (const id of ["#live", "#catalog", "#ops"]) $(id).hidden = true;
  $("#who").hidden = true;
  $("#signin-error").textContent = why;
  say("sign in to continue");
  $("#key").focus();
}

async function signIn(key) {
  try {
    session = await api("POST", "/session", { key });
  } catch (e) {
    $("#signin-error").textContent = e.message;
    return;
  }
  $("#key").value = "";
  $("#signin").hidden = true;
  start();
}

async function signOut() {
  await api("DELETE", "/session").catch(() => {});
  session = { auth_required: true, scopes: [], csrf_token: null };
  // What the last key was shown goes with it: the next key's view starts empty, not stale.
  for (const id of ["#recs", "#timeline", "#results"]) $(id).replaceChildren();
  askForKey("signed out");
}

function showWho() {
  $("#who").hidden = !session.auth_required;
  if (session.auth_required) $("#who-text").textContent = `${session.name} (${session.scopes.join(", ")})`;
  // What the key may not do is not offered; the service refuses it anyway.
  const writes = can("ingest");
  document.body.classList.toggle("read-only", !writes);
  $("#retrain").disabled = !can("admin");
  $("#retrain").title = can("admin") ? "" : "needs a key with the admin scope";
}

// ------------------------------------------------------------------ the live view

function setUser(id) {
  user = id.trim();
  $("#user-id").value = user;
  const url = new URL(location.href);
  url.searchParams.set("user", user);
  history.replaceState(null, "", url);
  shownIds = [];
  shownTags = new Map();
  $("#timeline").replaceChildren();
  $("#results").replaceChildren();
  return refresh();
}

async function refresh() {
  if (!user) return;
  const enc = encodeURIComponent(user);
  try {
    const [recs, interests] = await Promise.all([
      api("GET", `/users/${enc}/recommendations?k=${K}`),
      api("GET", `/users/${enc}/interests?k=8&summary=true`)
        .catch((e) => (e.status === 404 ? { interests: [] } : Promise.reject(e))),
    ]);
    renderInterests(interests.interests);
    renderGroups(interests.groups || []);
    renderSummary(interests.summary);
    renderRecs(recs.items);
    $("#recs-note").textContent = interests.interests.length
      ? `(model ${recs.model_version ?? "none"})` : "(a new visitor: what is popular now)";
    say(`showing ${user}`);
  } catch (e) {
    say(e.message, true);
  }
}

// The user's several interests (shown when there is more than one), each with its share.
function renderGroups(groups) {
  $("#groups-box").hidden = groups.length < 2;
  $("#groups").replaceChildren(...groups.map(({ tags, share }) => {
    const li = document.createElement("li");
    const pct = document.createElement("span");
    pct.className = "muted small";
    pct.textContent = ` ${Math.round(100 * share)}%`;
    li.append(document.createTextNode(tags.join(" · ")), pct);
    return li;
  }));
}

// The language-model stage's summary (or its template), marked with where it came from.
function renderSummary(summary) {
  const box = $("#summary");
  box.hidden = !summary;
  if (!summary) return;
  const source = document.createElement("span");
  source.className = "muted small";
  source.textContent = summary.source === "generated" ? ` (written by ${summary.model})` : " (from a template)";
  box.replaceChildren(document.createTextNode(summary.text), source);
  box.lang = summary.language;
}

function renderInterests(tags) {
  const list = $("#interests");
  const top = Math.max(...tags.map((t) => t.weight), 1e-9);
  const items = tags.map(({ tag, weight }) => {
    const li = document.createElement("li");
    const name = document.createElement("span");
    name.className = "tag";
    name.textContent = tag;
    name.title = `${tag}: ${weight.toFixed(3)}`;
    const bar = document.createElement("span");
    bar.className = "bar";
    bar.style.width = `${Math.max(2, (100 * weight) / top)}%`;
    const before = shownTags.get(tag);
    if (before === undefined || Math.abs(before - weight) > 1e-6) li.classList.add("changed");
    li.append(name, bar);
    return li;
  });
  list.replaceChildren(...items);
  if (!tags.length) {
    const li = document.createElement("li");
    li.className = "muted";
    li.textContent = "none yet: act on an item or search";
    list.append(li);
  }
  list.dataset.tags = tags.map((t) => t.tag).join("|");
  shownTags = new Map(tags.map((t) => [t.tag, t.weight]));
}

function renderRecs(items) {
  const before = new Map(shownIds.map((id, n) => [id, n]));
  const first = shownIds.length === 0;
  const cards = items.map((item, n) => {
    const card = $("#card").content.firstElementChild.cloneNode(true);
    card.dataset.item = item.item_id;
    const title = card.querySelector(".title");
    title.textContent = item.title;
    title.href = `#item/${encodeURIComponent(item.item_id)}`;
    card.querySelector(".lang").textContent = item.language ?? "?";
    card.querySelector(".category").textContent = item.categories.join(" · ");
    const reasons = card.querySelector(".reasons");
    for (const reason of item.reasons) {
      const li = document.createElement("li");
      li.textContent = reason.text;
      reasons.append(li);
    }
    const move = card.querySelector(".move");
    const was = before.get(item.item_id);
    if (!first && was === undefined) {
      card.classList.add("new");
      move.classList.add("new");
      move.textContent = "new";
    } else if (was !== undefined && was !== n) {
      move.classList.add(was > n ? "up" : "down");
      move.textContent = was > n ? `▲${was - n}` : `▼${n - was}`;
    }
    card.querySelector(".actions").addEventListener("click", onCardAction);
    card.querySelector("select").addEventListener("change", onReview);
    for (const control of card.querySelectorAll(".actions button, .actions select")) {
      control.disabled = !can("ingest");
      if (!can("ingest")) control.title = "this key may read but not send events";
    }
    return card;
  });
  $("#recs").replaceChildren(...cards);
  shownIds = items.map((i) => i.item_id);
}

function titleOf(itemId) {
  const card = document.querySelector(`[data-item="${CSS.escape(itemId)}"] .title`);
  return card ? card.textContent : itemId;
}

async function act(type, itemId, extra = {}) {
  if (!user) return;
  const event = { event_id: newId("page"), user_id: user, type, item_id: itemId, ...extra };
  try {
    await api("POST", "/events", { events: [event] });
    const li = document.createElement("li");
    const label = { click: "opened", add_to_cart: "added to cart", dismiss: "not interested in", review: "reviewed" }[type]
      || type;
    li.textContent = `${label} ${titleOf(itemId)}${extra.value ? ` (${"★".repeat(extra.value)})` : ""}`;
    $("#timeline").prepend(li);
    await refresh();
  } catch (e) {
    say(e.message, true);
  }
}

function onCardAction(event) {
  const button = event.target.closest("button[data-act]");
  if (!button) return;
  act(button.dataset.act, button.closest(".card").dataset.item);
}

function onReview(event) {
  const value = Number(event.target.value);
  if (!value) return;
  const itemId = event.target.closest(".card").dataset.item;
  const text = value >= 4 ? "Good, as described." : value <= 2 ? "Disappointing." : "It is fine.";
  act("review", itemId, { value, text });
}

async function search(query) {
  const params = new URLSearchParams({ q: query, k: "10" });
  const asUser = user && can("ingest");  // searching as a user records their search: an event
  if (asUser) params.set("user_id", user);
  try {
    const found = await api("GET", `/search?${params}`);
    const items = found.items.map((item) => {
      const li = document.createElement("li");
      li.dataset.item = item.item_id;
      li.dataset.lang = item.language ?? "";
      let open = itemLink(item);  // a read-only key looks; one that may send events clicks
      if (can("ingest")) {
        open = document.createElement("button");
        open.type = "button";
        open.textContent = item.title;
        open.addEventListener("click", () => act("click", item.item_id));
      }
      li.append(open, itemMeta(item));
      return li;
    });
    $("#results").replaceChildren(...items);
    if (asUser) {
      const li = document.createElement("li");
      li.textContent = `searched “${query}”`;
      $("#timeline").prepend(li);
      await refresh();
    }
  } catch (e) {
    say(e.message, true);
  }
}


// ------------------------------------------------------------------ the catalog and an item's page

function itemLink(item) {
  const a = document.createElement("a");
  a.href = `#item/${encodeURIComponent(item.item_id)}`;
  a.textContent = item.title;
  return a;
}

function itemMeta(item) {
  const meta = document.createElement("span");
  meta.className = "muted small";
  meta.textContent = ` ${item.language ?? "?"} · ${item.categories.join(" · ")}`;
  return meta;
}

function itemList(items) {
  return items.map((item) => {
    const li = document.createElement("li");
    li.dataset.item = item.item_id;
    li.dataset.lang = item.language ?? "";
    li.append(itemLink(item), itemMeta(item));
    return li;
  });
}

async function searchCatalog(query) {
  // Without user_id: looking around the catalog is nobody's search.
  try {
    const found = await api("GET", `/search?${new URLSearchParams({ q: query, k: "20" })}`);
    $("#catalog-results").replaceChildren(...itemList(found.items));
    say(`${found.items.length} items for “${query}”`);
  } catch (e) {
    say(e.message, true);
  }
}

function reasonItems(reasons) {
  return reasons.map((reason) => {
    const li = document.createElement("li");
    li.dataset.kind = reason.kind;
    li.textContent = reason.text;
    return li;
  });
}

async function showItem(itemId) {
  const article = $("#item");
  article.hidden = false;
  article.dataset.item = itemId;
  const enc = encodeURIComponent(itemId);
  const params = new URLSearchParams({ k: String(K) });
  if (user) params.set("for_user", user);
  try {
    const [item, similar] = await Promise.all([
      api("GET", `/items/${enc}?${params}`),
      api("GET", `/items/${enc}/similar?k=8`),
    ]);
    if (article.dataset.item !== itemId) return;  // another item was opened meanwhile
    $("#item-title").textContent = item.title;
    document.title = `${item.title} — liverec`;
    const facts = [item.language ?? "?", item.categories.join(" · "), item.available ? "available" : "not available"];
    $("#item-meta").textContent = facts.filter(Boolean).join(" · ");
    $("#item-text").textContent = item.description;
    const pitch = item.copy_for_user;  // shown once the language-model stage wrote one for this user
    $("#item-pitch").hidden = !(pitch && pitch.source === "generated");
    $("#item-pitch").textContent = pitch && pitch.source === "generated" ? `For you: ${pitch.text}` : "";
    $("#item-tags").replaceChildren(...item.tags.map((tag) => {
      const li = document.createElement("li");
      li.textContent = tag;
      return li;
    }));
    $("#item-user").textContent = user || "nobody selected";
    const verdict = item.for_user;
    const head = $("#verdict-head");
    $("#verdict").dataset.recommended = verdict ? String(verdict.recommended) : "";
    if (!verdict) {
      head.textContent = "Pick a user in the live view to see whether this item is in their list.";
    } else if (verdict.recommended) {
      head.textContent = `Recommended: #${verdict.position} of ${verdict.k} in their list now.`;
    } else {
      head.textContent = `Not in their list of ${verdict.k} now` +
        (verdict.rank ? ` (#${verdict.rank} of ${verdict.candidates} candidates).` : ".");
    }
    $("#verdict-for").replaceChildren(...reasonItems(verdict ? verdict.reasons : []));
    $("#verdict-against").replaceChildren(...reasonItems(verdict ? verdict.against : []));
    $("#similar").replaceChildren(...itemList(similar.items));
    say(`item ${itemId}`);
  } catch (e) {
    say(e.message, true);
  }
}

// ------------------------------------------------------------------ the operator view

async function loadOps() {
  try {
    const health = await api("GET", "/healthz");
    const known = {
      "model version": health.model_version ?? "none (not trained yet)",
      "catalog items": health.items,
      "live user states": health.live_users,
      "warm": health.warm ? "yes" : "rebuilding user states…",
      "up for": `${Math.round(health.uptime_seconds)} s`,
    };
    facts($("#health"), Object.entries(known));
  } catch (e) {
    say(e.message, true);
  }
  await Promise.all([loadTrain(), loadMetrics(), loadVariants(), loadStats(), loadReport()]);
}

function facts(list, entries) {
  list.replaceChildren(...entries.flatMap(([k, v]) => {
    const dt = document.createElement("dt");
    dt.textContent = k;
    const dd = document.createElement("dd");
    dd.textContent = String(v);
    return [dt, dd];
  }));
}

function bytes(n) {
  if (n == null) return "not a file";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let u = 0;
  while (n >= 1024 && u < units.length - 1) { n /= 1024; u++; }
  return `${n.toFixed(u ? 1 : 0)} ${units[u]}`;
}

let statsTimer = null;

async function loadStats() {
  clearTimeout(statsTimer);
  try {
    const stats = await api("GET", "/stats");
    $("#interval").textContent = String(stats.interval);
    $("#sizes").replaceChildren();
    facts($("#sizes"), [
      ["events stored", stats.events.toLocaleString()],
      ["state store", `${stats.live_users.toLocaleString()} states, ${bytes(stats.state_bytes)}`],
      ["store on disk", bytes(stats.store_bytes)],
    ]);
    drawStats(stats);
  } catch (e) {
    $("#sizes").replaceChildren();
    facts($("#sizes"), [["stats", e.message]]);
  }
  if (!$("#ops").hidden) statsTimer = setTimeout(loadStats, 5000);
}

function drawStats(stats) {
  // Windows without traffic are left out by the service: fill them with zeros (or gaps, for latency).
  const step = stats.interval;
  const now = Date.now() / 1000;
  const end = now - (now % step);
  const first = stats.windows.length ? Math.max(stats.windows[0].start, end - 719 * step) : end - 59 * step;
  const byStart = new Map(stats.windows.map((w) => [w.start, w]));
  const times = [];
  for (let t = first; t <= end + 1e-6; t += step) times.push(t);
  const at = (t) => byStart.get(t) || byStart.get(Math.round(t / step) * step);
  const per = (key) => times.map((t) => [t, (at(t)?.[key] ?? 0) / step]);
  const pct = (key) => times.map((t) => [t, at(t)?.[key] ?? null]);
  chart($("#chart-events"), [{ cls: "ok", points: per("events") }], "/s");
  chart($("#chart-latency"), [{ cls: "p50", points: pct("p50_ms") }, { cls: "p95", points: pct("p95_ms") },
    { cls: "p99", points: pct("p99_ms") }], " ms");
  chart($("#chart-requests"), [{ cls: "ok", points: per("requests") }, { cls: "err", points: per("errors") },
    { cls: "shed", points: per("shed") }], "/s");
  $("#chart-events").dataset.windows = String(stats.windows.length);
}

const SVG = "http://www.w3.org/2000/svg";

function chart(svg, series, unit) {
  const width = 600, height = 160, pad = 4;
  const all = series.flatMap((s) => s.points).filter(([, v]) => v != null);
  const t0 = Math.min(...series[0].points.map(([t]) => t));
  const t1 = Math.max(...series[0].points.map(([t]) => t), t0 + 1);
  const top = Math.max(1e-9, ...all.map(([, v]) => v)) * 1.1;
  const x = (t) => pad + ((t - t0) / (t1 - t0)) * (width - 2 * pad);
  const y = (v) => height - pad - (v / top) * (height - 2 * pad);
  const nodes = [];
  for (const frac of [0.5, 1]) {
    const line = document.createElementNS(SVG, "line");
    line.setAttribute("x1", "0"); line.setAttribute("x2", String(width));
    line.setAttribute("y1", String(y((top / 1.1) * frac))); line.setAttribute("y2", String(y((top / 1.1) * frac)));
    line.setAttribute("class", "grid");
    nodes.push(line);
  }
  for (const { cls, points } of series) {
    let d = "";
    let pen = "M";
    for (const [t, v] of points) {
      if (v == null) { pen = "M"; continue; }
      d += `${pen}${x(t).toFixed(1)},${y(v).toFixed(1)} `;
      pen = "L";
    }
    const path = document.createElementNS(SVG, "path");
    path.setAttribute("d", d.trim());
    path.setAttribute("class", `series ${cls}`);
    nodes.push(path);
  }
  const label = document.createElementNS(SVG, "text");
  label.setAttribute("x", "6"); label.setAttribute("y", "14");
  label.textContent = `max ${(top / 1.1).toFixed(top / 1.1 < 10 ? 2 : 0)}${unit}`;
  nodes.push(label);
  svg.replaceChildren(...nodes);
}

async function loadReport() {
  const box = $("#report");
  try {
    const report = await api("GET", "/reports/latest");
    $("#report-name").textContent = `(${report.name}, ${new Date(report.modified * 1000).toLocaleString()})`;
    const parts = [];
    for (const run of report.runs) {
      const h = document.createElement("h3");
      h.textContent = `${run.dataset} — ${run.protocol}`;
      const table = document.createElement("table");
      table.className = "report";
      const head = document.createElement("tr");
      for (const name of ["system", "users", "Recall@10", "NDCG@10", "MRR@10", "coverage@10", "diversity@10"]) {
        const th = document.createElement("th");
        th.textContent = name;
        head.append(th);
      }
      const body = run.systems.map((s) => {
        const m = (name) => s.metrics[name] ? `${s.metrics[name].mean.toFixed(4)} [${s.metrics[name].ci95[0].toFixed(4)}, ${s.metrics[name].ci95[1].toFixed(4)}]` : "";
        const b = (name) => (s.beyond[name] != null ? s.beyond[name].toFixed(3) : "");
        return row([s.name, s.users ?? "", m("recall@10"), m("ndcg@10"), m("mrr@10"), b("coverage@10"), b("diversity@10")]);
      });
      const thead = document.createElement("thead");
      thead.append(head);
      const tbody = document.createElement("tbody");
      tbody.append(...body);
      table.append(thead, tbody);
      parts.push(h, table);
    }
    const plots = document.createElement("div");
    plots.className = "plots";
    for (const name of report.plots) {
      const img = document.createElement("img");
      img.src = `/reports/latest/${encodeURIComponent(name)}`;
      img.alt = name.replace(/\.png$/, "").replaceAll("-", " ");
      plots.append(img);
    }
    parts.push(plots);
    box.replaceChildren(...parts);
  } catch (e) {
    $("#report-name").textContent = "";
    const p = document.createElement("p");
    p.className = "muted";
    p.textContent = e.message;
    box.replaceChildren(p);
  }
}

async function loadTrain() {
  const status = $("#train-status");
  try {
    const job = await api("GET", "/admin/train");
    const took = job.seconds != null ? ` in ${job.seconds.toFixed(1)} s` : "";
    status.textContent = `last training: ${job.status}${took}${job.error ? ` — ${job.error}` : ""}`;
    status.dataset.status = job.status;
    return job;
  } catch (e) {
    status.textContent = e.status === 404 ? "no training since the service started" : e.message;
    return null;
  }
}

async function retrain() {
  try {
    await api("POST", "/admin/train");
  } catch (e) {
    $("#train-status").textContent = e.message;
    return;
  }
  let job;
  do {
    await new Promise((r) => setTimeout(r, 1000));
    job = await loadTrain();
  } while (job && job.status === "running");
  loadOps();
}

function parseMetrics(text) {
  // liverec_request_seconds_{count,sum}{method,route,status}: requests, errors and mean latency per route.
  const routes = new Map();
  const line = /^liverec_request_seconds_(count|sum)\{method="([^"]*)",route="([^"]*)",status="([^"]*)"\} (\S+)$/;
  for (const row of text.split("\n")) {
    const m = line.exec(row);
    if (!m) continue;
    const [, kind, method, route, status, value] = m;
    const key = `${method} ${route}`;
    const r = routes.get(key) || { requests: 0, errors: 0, shed: 0, sum: 0 };
    if (kind === "count") {
      r.requests += Number(value);
      if (Number(status) >= 400) r.errors += Number(value);
      if (status === "503") r.shed += Number(value);
    } else {
      r.sum += Number(value);
    }
    routes.set(key, r);
  }
  return routes;
}

async function loadMetrics() {
  try {
    const routes = parseMetrics(await api("GET", "/metrics"));
    const rows = [...routes.entries()].filter(([, r]) => r.requests > 0).sort((a, b) => b[1].requests - a[1].requests)
      .map(([route, r]) => row([route, r.requests, r.errors, r.shed, (1000 * r.sum / r.requests).toFixed(1)]));
    $("#latency tbody").replaceChildren(...rows);
  } catch (e) {
    $("#latency tbody").replaceChildren(row([e.message, "", "", "", ""]));
  }
}

async function loadVariants() {
  try {
    const { results } = await api("GET", "/admin/experiments");
    $("#variants tbody").replaceChildren(...results.map((v) => row([
      v.name, v.impressions, v.clicks,
      `${(100 * v.ctr).toFixed(1)}% (${(100 * v.ci_low).toFixed(1)}–${(100 * v.ci_high).toFixed(1)})`])));
  } catch (e) {
    $("#variants tbody").replaceChildren(row([e.message, "", "", ""]));
  }
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const cell of cells) {
    const td = document.createElement("td");
    td.textContent = String(cell);
    tr.append(td);
  }
  return tr;
}

// ------------------------------------------------------------------ wiring

const VIEWS = ["live", "catalog", "ops"];

function show(hash) {
  if (!$("#signin").hidden) return;
  const [view, ...rest] = hash.split("/");
  const itemId = view === "item" ? decodeURIComponent(rest.join("/")) : null;
  const current = itemId !== null ? "catalog" : VIEWS.includes(view) ? view : "live";
  for (const name of VIEWS) {
    $(`#${name}`).hidden = name !== current;
    if (name === current) $(`#tab-${name}`).setAttribute("aria-current", "page");
    else $(`#tab-${name}`).removeAttribute("aria-current");
  }
  $("#item").hidden = itemId === null;
  if (itemId !== null) showItem(itemId);
  else document.title = "liverec — live";
  if (current === "ops") loadOps();
}

async function start() {
  showWho();
  // setUser sets the user before it first waits: the view shown next (an item's page) knows them.
  const loading = user ? refresh() : setUser(new URL(location.href).searchParams.get("user") || newId("visitor"));
  show(location.hash.slice(1) || "live");
  await loading;
}

document.addEventListener("DOMContentLoaded", async () => {
  $("#user-form").addEventListener("submit", (e) => { e.preventDefault(); setUser($("#user-id").value); });
  $("#new-visitor").addEventListener("click", () => setUser(newId("visitor")));
  $("#search-form").addEventListener("submit", (e) => { e.preventDefault(); search($("#query").value); });
  $("#catalog-form").addEventListener("submit", (e) => { e.preventDefault(); searchCatalog($("#catalog-query").value); });
  $("#signin-form").addEventListener("submit", (e) => { e.preventDefault(); signIn($("#key").value.trim()); });
  $("#sign-out").addEventListener("click", signOut);
  $("#retrain").addEventListener("click", retrain);
  window.addEventListener("hashchange", () => show(location.hash.slice(1)));
  try {
    if (await loadSession()) await start();
  } catch (e) {
    say(e.message, true);
  }
});
