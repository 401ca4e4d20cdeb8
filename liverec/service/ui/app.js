// liverec's live page: plain JavaScript over the public API, no framework, no build step.
"use strict";

const $ = (sel) => document.querySelector(sel);
const K = 12;
let user = "";
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

async function api(method, path, body) {
  const init = { method, headers: { accept: "application/json" } };
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
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
    throw error;
  }
  return data;
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
      api("GET", `/users/${enc}/interests?k=8`).catch((e) => (e.status === 404 ? { interests: [] } : Promise.reject(e))),
    ]);
    renderInterests(interests.interests);
    renderRecs(recs.items);
    $("#recs-note").textContent = interests.interests.length
      ? `(model ${recs.model_version ?? "none"})` : "(a new visitor: what is popular now)";
    say(`showing ${user}`);
  } catch (e) {
    say(e.message, true);
  }
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
    card.querySelector(".title").textContent = item.title;
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
  if (user) params.set("user_id", user);
  try {
    const found = await api("GET", `/search?${params}`);
    const items = found.items.map((item) => {
      const li = document.createElement("li");
      li.dataset.item = item.item_id;
      li.dataset.lang = item.language ?? "";
      const open = document.createElement("button");
      open.type = "button";
      open.textContent = item.title;
      open.addEventListener("click", () => act("click", item.item_id));
      const meta = document.createElement("span");
      meta.className = "muted small";
      meta.textContent = ` ${item.language ?? "?"} · ${item.categories.join(" · ")}`;
      li.append(open, meta);
      return li;
    });
    $("#results").replaceChildren(...items);
    if (user) {
      const li = document.createElement("li");
      li.textContent = `searched “${query}”`;
      $("#timeline").prepend(li);
      await refresh();
    }
  } catch (e) {
    say(e.message, true);
  }
}

// ------------------------------------------------------------------ the operator view

async function loadOps() {
  try {
    const health = await api("GET", "/healthz");
    const facts = {
      "model version": health.model_version ?? "none (not trained yet)",
      "catalog items": health.items,
      "live user states": health.live_users,
      "warm": health.warm ? "yes" : "rebuilding user states…",
      "up for": `${Math.round(health.uptime_seconds)} s`,
    };
    $("#health").replaceChildren(...Object.entries(facts).flatMap(([k, v]) => {
      const dt = document.createElement("dt");
      dt.textContent = k;
      const dd = document.createElement("dd");
      dd.textContent = String(v);
      return [dt, dd];
    }));
  } catch (e) {
    say(e.message, true);
  }
  await Promise.all([loadTrain(), loadMetrics(), loadVariants()]);
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

function show(view) {
  const ops = view === "ops";
  $("#live").hidden = ops;
  $("#ops").hidden = !ops;
  for (const [tab, current] of [["#tab-live", !ops], ["#tab-ops", ops]]) {
    if (current) $(tab).setAttribute("aria-current", "page");
    else $(tab).removeAttribute("aria-current");
  }
  if (ops) loadOps();
}

document.addEventListener("DOMContentLoaded", () => {
  $("#user-form").addEventListener("submit", (e) => { e.preventDefault(); setUser($("#user-id").value); });
  $("#new-visitor").addEventListener("click", () => setUser(newId("visitor")));
  $("#search-form").addEventListener("submit", (e) => { e.preventDefault(); search($("#query").value); });
  $("#retrain").addEventListener("click", retrain);
  window.addEventListener("hashchange", () => show(location.hash.slice(1)));
  show(location.hash.slice(1) || "live");
  setUser(new URL(location.href).searchParams.get("user") || newId("visitor"));
});
