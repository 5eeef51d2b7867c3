// Parley console. Everything goes through the management API with the
// admin key, which stays in this tab's sessionStorage. Data from the API is
// only ever put into the page as text (textContent), never as HTML.
//
// Each view has its own URL: #/ lists the bots, #/{bot}/{view} shows one
// view of a bot (overview, intents, conversations, logs, channels,
// schedules, settings, deadletters, inbox), with the view's state (a user
// searched for, a conversation opened, a time range) in its query string.

const keyName = "parley.adminKey";
const agentName = "parley.agent";
const pollMS = 5000;
const $ = (id) => document.getElementById(id);
const svgNS = "http://www.w3.org/2000/svg";

const views = ["overview", "intents", "conversations", "logs", "channels", "schedules", "settings", "deadletters", "inbox"];
let route = { bot: "", view: "bots", query: new URLSearchParams() };
let connected = false;
let botNames = [];

// el builds an element with text or children.
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "onclick") e.addEventListener("click", v);
    else if (k === "class") e.className = v;
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

// svg builds an SVG element.
function svg(tag, attrs = {}, text) {
  const e = document.createElementNS(svgNS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

class APIError extends Error {
  constructor(status, body) {
    const err = (body && body.error) || {};
    let msg = err.message || `HTTP ${status}`;
    if (err.line) msg += ` (line ${err.line})`;
    super(msg);
    this.status = status;
    this.code = err.code || "";
  }
}

const authHeader = () => ({ Authorization: "Bearer " + (sessionStorage.getItem(keyName) || "") });

// api calls the management API and returns its JSON answer.
async function api(method, path, body, contentType = "application/json") {
  const headers = authHeader();
  let payload;
  if (body !== undefined) {
    headers["Content-Type"] = contentType;
    payload = contentType === "application/json" ? JSON.stringify(body) : body;
  }
  const resp = await fetch(path, { method, headers, body: payload });
  const text = await resp.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!resp.ok) throw new APIError(resp.status, data);
  return data;
}

const enc = encodeURIComponent;
const botPath = (...parts) => "/v1/bots/" + [route.bot, ...parts].map(enc).join("/");
const pct = (x) => (100 * (x || 0)).toFixed(1) + " %";
const ms = (x) => (x || 0).toFixed(1) + " ms";
const when = (t) => (t ? new Date(t).toLocaleString() : "—");

function status(msg, isError = false) {
  $("status").textContent = msg;
  $("status").className = isError ? "error" : "";
}

// announce tells screen readers about an update the poller brought.
function announce(msg) { $("live").textContent = msg; }

// guard reports an action's failure on the status line.
async function guard(fn) {
  try { await fn(); } catch (e) { status(e.message, true); }
}

// report writes a form's outcome into its output element.
function report(out, ok, msg) {
  $(out).className = ok ? "ok" : "error";
  $(out).textContent = msg;
}

function emptyRow(body, cols, text) {
  body.replaceChildren(el("tr", {}, el("td", { colspan: cols, class: "muted" }, text)));
}

// ---- Routing -------------------------------------------------------------

function href(bot, view, query) {
  const q = query && String(query) ? "?" + String(query) : "";
  return bot ? `#/${enc(bot)}/${view}${q}` : "#/";
}

function parseHash() {
  const raw = location.hash.replace(/^#/, "");
  const [path, qs = ""] = raw.split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  const bot = parts[0] || "";
  let view = parts[1] || (bot ? "overview" : "bots");
  if (!bot || !views.includes(view)) view = bot ? "overview" : "bots";
  return { bot, view, query: new URLSearchParams(qs) };
}

// go changes the URL; the hashchange listener shows the view.
function go(bot, view, query) {
  const h = href(bot, view, query);
  if (location.hash === h) render(false);
  else location.hash = h;
}

// setQuery replaces the current view's query without a new history entry
// for a refinement that should not need two presses of Back.
function setQuery(query, push = true) {
  const h = href(route.bot, route.view, query);
  if (location.hash === h) render(false);
  else if (push) location.hash = h;
  else history.replaceState(null, "", h);
}

let lastBot = "";
let lastView = "";

// render shows the view the URL names.
async function render(focus = true) {
  if (!connected) return;
  route = parseHash();
  const botChanged = route.bot !== lastBot;
  const viewChanged = route.view !== lastView || botChanged;
  if (viewChanged && lastView === "logs") stopLogStream();
  lastBot = route.bot;
  lastView = route.view;
  for (const s of document.querySelectorAll("section[data-view]")) s.hidden = s.dataset.view !== route.view;
  for (const a of document.querySelectorAll("nav a[data-view]")) {
    const v = a.dataset.view;
    a.href = v === "bots" ? "#/" : href(route.bot, v);
    a.classList.toggle("disabled", v !== "bots" && !route.bot);
    if (v !== "bots" && !route.bot) a.setAttribute("aria-disabled", "true"); else a.removeAttribute("aria-disabled");
    if (v === route.view) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  for (const n of document.querySelectorAll(".bot-name")) n.textContent = route.bot ? "· " + route.bot : "";
  $("bot-select").value = route.bot;
  const title = route.view === "bots" ? "Bots" : $("h-" + route.view).firstChild.textContent.trim();
  document.title = `${title}${route.bot ? " · " + route.bot : ""} · Parley console`;
  if (window.matchMedia("(max-width: 760px)").matches) setNav(false);
  if (botChanged) resetBotViews();
  if (viewChanged && $("status").className !== "error") status("");
  if (viewChanged && focus) {
    const h = document.querySelector(`section[data-view="${route.view}"] h2`);
    if (h) { h.tabIndex = -1; h.focus({ preventScroll: false }); }
  }
  await guard(() => loaders[route.view](viewChanged));
  if (route.bot) guard(loadBadges);
}

function resetBotViews() {
  for (const id of ["deploy-result", "connect-result", "schedule-result", "settings-result", "nlu-result"]) $(id).textContent = "";
  $("try-result").replaceChildren();
  $("transcript").replaceChildren();
  $("handoff-panel").replaceChildren();
  convState = null;
  knownHandoffs = null;
  inboxOpen = null;
}

// ---- Login ---------------------------------------------------------------

async function connect() {
  try {
    const data = await api("GET", "/v1/bots");
    connected = true;
    $("login-view").hidden = true;
    $("app").hidden = false;
    $("logout").hidden = false;
    $("bot-picker").hidden = false;
    $("nav-toggle").hidden = false;
    $("login-error").textContent = "";
    status("connected");
    setBots(data.bots || []);
    await render(false);
  } catch (e) {
    sessionStorage.removeItem(keyName);
    connected = false;
    $("app").hidden = true;
    $("login-view").hidden = false;
    const msg = e.status === 401 ? "wrong admin key" : e.message;
    $("login-error").textContent = msg;
    status(msg, true);
  }
}

function disconnect() {
  sessionStorage.removeItem(keyName);
  connected = false;
  stopLogStream();
  $("app").hidden = true;
  $("logout").hidden = true;
  $("bot-picker").hidden = true;
  $("nav-toggle").hidden = true;
  $("login-view").hidden = false;
  lastBot = lastView = "";
  status("disconnected");
  $("key").focus();
}

function setBots(names) {
  botNames = names;
  const select = $("bot-select");
  select.replaceChildren(el("option", { value: "" }, "choose a bot"), ...names.map((n) => el("option", { value: n }, n)));
  select.value = route.bot;
  const list = $("bots");
  list.replaceChildren(...names.map((n) => el("li", {}, el("a", { href: href(n, "overview"), "data-bot": n }, n))));
  if (names.length === 0) list.append(el("li", { class: "muted" }, "no bots yet"));
}

// ---- Bots ----------------------------------------------------------------

async function loadBots() {
  const data = await api("GET", "/v1/bots");
  setBots(data.bots || []);
}

async function createBot(ev) {
  ev.preventDefault();
  const name = $("new-bot-name").value.trim();
  await guard(async () => {
    await api("PUT", "/v1/bots/" + enc(name), {});
    $("new-bot-name").value = "";
    await loadBots();
    status(`bot ${name} created`);
    go(name, "overview");
  });
}

// ---- Overview: figures and charts ------------------------------------------

const ranges = { "1h": { span: 3600e3, step: "minute" }, "24h": { span: 86400e3, step: "hour" },
  "7d": { span: 7 * 86400e3, step: "hour" }, "30d": { span: 30 * 86400e3, step: "day" } };

async function loadOverview() {
  const rangeName = ranges[route.query.get("range")] ? route.query.get("range") : "24h";
  for (const r of document.querySelectorAll('input[name="range"]')) r.checked = r.value === rangeName;
  const { span, step } = ranges[rangeName];
  const to = new Date();
  const from = new Date(to.getTime() - span);
  const q = new URLSearchParams({ from: from.toISOString(), to: to.toISOString(), step });
  const [data, byIntent, usage, dead, parked] = await Promise.all([
    api("GET", botPath("analytics") + "?" + q),
    api("GET", botPath("analytics") + "?" + q + "&group_by=intent"),
    api("GET", botPath("usage")),
    api("GET", botPath("deadletters") + "?limit=1000").catch(() => ({ deadletters: [] })),
    api("GET", botPath("parked") + "?limit=1000").catch(() => ({ parked: [] }))]);
  const t = data.totals;
  const cells = [["turns", t.turns], ["conversations", t.conversations], ["users", t.users ?? "—"],
    ["fallback rate", pct(t.fallback_rate)], ["error rate", pct(t.error_rate)],
    ["latency p50", ms(t.latency_ms.p50)], ["latency p95", ms(t.latency_ms.p95)], ["handoffs", t.handoffs || 0]];
  $("stats").replaceChildren(...cells.map(([k, v]) => el("div", { "data-stat": k }, el("dt", {}, k), el("dd", {}, v))));
  const series = data.series || [];
  const label = { minute: "per minute", hour: "per hour", day: "per day" }[data.step || step];
  $("chart-turns-title").textContent = `Turns ${label}, last ${rangeName.replace("h", " h").replace("d", " d")}`;
  drawChart($("chart"), series.map((s) => ({ t: new Date(s.t), v: s.turns })), { kind: "bar", unit: "turns", step: data.step || step });
  drawChart($("chart-latency"), series.map((s) => ({ t: new Date(s.t), v: s.turns ? (s.latency_ms?.p95 ?? 0) : null })),
    { kind: "line", unit: "ms", step: data.step || step });
  const groups = (byIntent.groups || []).slice().sort((a, b) => b.turns - a.turns);
  const body = $("by-intent").tBodies[0];
  body.replaceChildren(...groups.map((g) => el("tr", { "data-intent": g.group.intent || "" },
    el("td", {}, g.group.intent || "(none)"), el("td", {}, g.turns), el("td", {}, pct(g.fallback_rate)),
    el("td", {}, pct(g.error_rate)), el("td", {}, ms(g.latency_ms.p95)))));
  if (groups.length === 0) emptyRow(body, 5, "no turns in this range");
  const u = usage.total;
  const ucells = [["invocations", u.invocations], ["compute", u.compute_ms.toFixed(2) + " ms"],
    ["instructions", u.instructions], ["cold starts", u.cold_starts], ["warm starts", u.warm_starts], ["HTTP calls", u.http_calls]];
  $("usage").replaceChildren(...ucells.map(([k, v]) => el("div", { "data-stat": k }, el("dt", {}, k), el("dd", {}, v))));
  $("queue").replaceChildren(el("a", { href: href(route.bot, "deadletters") }, `${dead.deadletters.length} dead letters`),
    `, ${parked.parked.length} conversations waiting (parked)`);
}

// niceStep is a round tick interval (1, 2 or 5 times a power of ten) that
// splits max into about n parts.
function niceStep(max, n) {
  const raw = max / n;
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}

function fmtNum(v) {
  if (v >= 1e6) return (v / 1e6).toFixed(v % 1e6 ? 1 : 0) + "M";
  if (v >= 1e3) return (v / 1e3).toFixed(v % 1e3 ? 1 : 0) + "k";
  return String(Math.round(v * 100) / 100);
}

function fmtTick(d, step) {
  if (step === "day") return d.toLocaleDateString(undefined, { month: "short", day: "numeric" });
  const hm = d.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
  if (step === "hour" && d.getHours() === 0) return d.toLocaleDateString(undefined, { month: "short", day: "numeric" });
  return hm;
}

// drawChart draws points (t, v) into box as an SVG bar or line chart with
// a y axis (ticks, unit) and a time axis (local time).
function drawChart(box, points, opts) {
  const { kind, unit, step } = opts;
  box.chart = [points, opts];
  // Drawn at the box's own width, so that labels keep their size on any
  // screen; a resize draws it again.
  const W = Math.max(260, Math.round(box.clientWidth || 600)), H = 220, L = 52, R = 14, T = 12, B = 42;
  const plotW = W - L - R, plotH = H - T - B;
  const values = points.map((p) => p.v ?? 0);
  const top = Math.max(...values, 0);
  const tick = top > 0 ? niceStep(top, 4) : 1;
  const max = top > 0 ? Math.ceil(top / tick) * tick : 4;
  const s = svg("svg", { viewBox: `0 0 ${W} ${H}`, width: W, height: H, "aria-hidden": "true", class: "chart-svg" });
  const y = (v) => T + plotH - (v / max) * plotH;
  for (let v = 0; v <= max + 1e-9; v += tick) {
    s.append(svg("line", { class: "grid", x1: L, x2: W - R, y1: y(v), y2: y(v) }));
    s.append(svg("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end", class: "y-tick" }, fmtNum(v)));
  }
  s.append(svg("text", { x: 12, y: T + plotH / 2, transform: `rotate(-90 12 ${T + plotH / 2})`, "text-anchor": "middle", class: "y-label" }, unit));
  s.append(svg("line", { class: "axis", x1: L, x2: L, y1: T, y2: T + plotH }));
  s.append(svg("line", { class: "axis", x1: L, x2: W - R, y1: T + plotH, y2: T + plotH }));
  const n = Math.max(points.length, 1);
  const slot = plotW / n;
  const x = (i) => L + slot * i + slot / 2;
  if (kind === "bar") {
    points.forEach((p, i) => {
      const h = ((p.v || 0) / max) * plotH;
      const r = svg("rect", { class: "bar", x: L + slot * i + slot * 0.1, width: Math.max(slot * 0.8, 0.5), y: T + plotH - h, height: h });
      r.append(svg("title", {}, `${p.t.toLocaleString()}: ${p.v} ${unit}`));
      s.append(r);
    });
  } else {
    let d = "";
    points.forEach((p, i) => {
      if (p.v === null || p.v === undefined) return;
      d += `${d ? "L" : "M"}${x(i).toFixed(1)},${y(p.v).toFixed(1)}`;
      const c = svg("circle", { class: "dot", cx: x(i), cy: y(p.v), r: 2.5 });
      c.append(svg("title", {}, `${p.t.toLocaleString()}: ${p.v.toFixed(1)} ${unit}`));
      s.append(c);
    });
    if (d) s.append(svg("path", { class: "line", d }));
  }
  const labels = Math.max(2, Math.min(8, Math.floor(plotW / 80), n));
  const every = Math.max(1, Math.round(n / labels));
  for (let i = 0; i < points.length; i += every) {
    s.append(svg("line", { class: "axis", x1: x(i), x2: x(i), y1: T + plotH, y2: T + plotH + 4 }));
    const anchor = x(i) > W - R - 32 ? "end" : x(i) < L + 32 ? "start" : "middle";
    s.append(svg("text", { x: anchor === "end" ? W - R : x(i), y: T + plotH + 17, "text-anchor": anchor, class: "x-tick" }, fmtTick(points[i].t, step)));
  }
  s.append(svg("text", { x: L + plotW / 2, y: H - 4, "text-anchor": "middle", class: "x-label" }, "time (local)"));
  if (points.length === 0) s.append(svg("text", { x: L + plotW / 2, y: T + plotH / 2, "text-anchor": "middle" }, "no data"));
  const total = values.reduce((a, b) => a + b, 0);
  box.setAttribute("aria-description", kind === "bar" ? `${total} ${unit} in ${points.length} buckets` : `peak ${fmtNum(top)} ${unit}`);
  box.replaceChildren(s);
}

// ---- Intents, deploy, try it -------------------------------------------------

async function loadIntents() {
  const data = await api("GET", botPath("intents"));
  const rows = (data.intents || []).map((h) => {
    const actions = el("td", { class: "actions" },
      el("button", { type: "button", onclick: () => guard(() => editIntent(h.intent, row)) }, "Edit"));
    if (h.canary) {
      actions.append(
        el("button", { type: "button", onclick: () => guard(() => canary(h.intent, "promote")) }, "Promote"),
        el("button", { type: "button", class: "danger", onclick: () => guard(() => canary(h.intent, "abort")) }, "Abort"));
    }
    const row = el("tr", { "data-intent": h.intent },
      el("td", {}, h.intent),
      el("td", { "data-version": h.version }, "v" + h.version + (h.previous ? ` (and v${h.previous})` : "")),
      el("td", {}, h.canary ? `v${h.canary.version} for ${h.canary.percent} %` : "—"),
      el("td", { class: "versions" }),
      actions);
    return row;
  });
  const body = $("intents").tBodies[0];
  body.replaceChildren(...rows);
  if (rows.length === 0) emptyRow(body, 5, "no handlers deployed");
}

// editIntent loads an intent's source into the deploy form and offers its
// other versions for a rollback.
async function editIntent(intent, row) {
  const data = await api("GET", botPath("intents", intent));
  $("deploy-intent").value = intent;
  $("deploy-source").value = data.source || "";
  $("deploy-canary").checked = false;
  const others = (data.versions || []).filter((v) => v.version !== data.version);
  const cell = row.querySelector(".versions");
  if (others.length === 0) {
    cell.replaceChildren(el("span", { class: "muted" }, "no other version"));
    return;
  }
  const select = el("select", { "aria-label": `version of ${intent} to roll back to` },
    ...others.reverse().map((v) => el("option", { value: v.version }, `v${v.version} (${v.created ? when(v.created) : ""})`)));
  cell.replaceChildren(select, el("button", {
    type: "button", onclick: () => guard(async () => {
      await api("POST", botPath("intents", intent, "rollback"), { version: Number(select.value) });
      status(`${intent} rolled back to v${select.value}`);
      await loadIntents();
    }),
  }, "Roll back"));
}

async function canary(intent, action) {
  await api("POST", botPath("intents", intent, "canary", action));
  status(`${intent}: canary ${action === "promote" ? "promoted" : "aborted"}`);
  await loadIntents();
}

async function deploy(ev) {
  ev.preventDefault();
  const intent = $("deploy-intent").value.trim();
  let path = botPath("intents", intent);
  if ($("deploy-canary").checked) path += "?canary=" + enc($("deploy-percent").value);
  try {
    const r = await api("PUT", path, $("deploy-source").value, "text/x-lua");
    report("deploy-result", true, r.unchanged ? `${intent}: unchanged, still v${r.version}`
      : r.canary ? `${intent}: v${r.canary.version} is a canary for ${r.canary.percent} %` : `${intent}: deployed v${r.version}`);
    await loadIntents();
  } catch (e) {
    report("deploy-result", false, `${intent}: ${e.message}`);
  }
}

async function tryIt(ev) {
  ev.preventDefault();
  await say({ text: $("try-text").value });
}

// say sends a message (or a button press: {postback}) as the try-it user
// and shows the answer.
async function say(message) {
  const out = $("try-result");
  try {
    const r = await api("POST", botPath("invoke"), { ...message, user: $("try-user").value || "console" });
    const replies = (r.answer && r.answer.replies) || [];
    const parts = [];
    for (const rep of replies) {
      if (rep.text) parts.push(el("p", { class: "reply" }, el("span", { class: "bubble bot" }, rep.text)));
      parts.push(...richParts(rep, (m) => guard(() => say(m))));
    }
    if (parts.length === 0) parts.push(el("p", { class: "reply muted" }, "(no text)"));
    parts.push(el("p", { class: "muted" }, `intent ${r.decision.intent || "—"} (${r.decision.source}), outcome ${r.outcome}, version ${r.version || "—"}, ${r.handler_ms} ms`));
    if (r.error) parts.push(el("p", { class: "error" }, r.error.message));
    if (r.logs && r.logs.length) parts.push(el("pre", {}, r.logs.join("\n")));
    out.replaceChildren(...parts);
  } catch (e) {
    out.replaceChildren(el("p", { class: "error" }, e.message));
  }
}

// safeURL is u when it is an http(s) URL, else "" (the API checks too).
function safeURL(u) {
  try {
    const p = new URL(u);
    return p.protocol === "https:" || p.protocol === "http:" ? p.href : "";
  } catch {
    return "";
  }
}

// richParts shows a reply's options, buttons, cards and media as a person
// would see them on a channel: a button with a payload calls press (when
// given; else it is shown disabled), a link opens in a new tab, images are
// shown. All text is text.
function richParts(rep, press) {
  const parts = [];
  const button = (b) => {
    const url = safeURL(b.url || "");
    if (url) return el("a", { class: "button", href: url, target: "_blank", rel: "noopener noreferrer" }, b.title || url);
    return el("button", { type: "button", class: "postback", "data-payload": b.payload || "", disabled: !press,
      onclick: press ? () => press({ postback: b.payload, text: (b.title || "").slice(0, 1000) }) : undefined }, b.title || "");
  };
  const buttons = (list) => el("div", { class: "buttons" }, ...list.map(button));
  const options = rep.options || [];
  if (options.length) {
    parts.push(el("div", { class: "buttons options", role: "group", "aria-label": "options" },
      ...options.map((o) => el("button", { type: "button", class: "option", disabled: !press,
        onclick: press ? () => press({ text: o }) : undefined }, o))));
  }
  if ((rep.buttons || []).length) parts.push(buttons(rep.buttons));
  const cards = rep.cards || [];
  if (cards.length) {
    parts.push(el("div", { class: "cards" }, ...cards.map((c) => {
      const card = el("div", { class: "card" });
      const img = safeURL(c.image || "");
      if (img) card.append(el("img", { src: img, alt: c.title || "" }));
      card.append(el("strong", { class: "card-title" }, c.title || ""));
      if (c.subtitle) card.append(el("p", { class: "muted" }, c.subtitle));
      if ((c.buttons || []).length) card.append(buttons(c.buttons));
      return card;
    })));
  }
  for (const m of rep.media || []) {
    const url = safeURL(m.url || "");
    if (!url) continue;
    if (m.type === "image") {
      parts.push(el("figure", { class: "media" }, el("img", { src: url, alt: m.caption || "" }),
        ...(m.caption ? [el("figcaption", {}, m.caption)] : [])));
    } else {
      parts.push(el("p", { class: "media" }, el("a", { href: url, target: "_blank", rel: "noopener noreferrer" }, m.caption || url),
        ` (${m.type})`));
    }
  }
  return parts;
}

// ---- Conversations -----------------------------------------------------------

const convPage = 25;
let convState = null; // {key, items, more, seen}

async function loadConversations(fresh) {
  const user = route.query.get("user") || "";
  const range = route.query.get("range") || "7d";
  $("conv-user").value = user;
  $("conv-range").value = range;
  const key = user + "|" + range;
  if (fresh || !convState || convState.key !== key) {
    convState = { key, items: [], seen: new Set(), more: false };
    await fetchConversations();
  } else if (convState.items.length <= convPage) {
    await fetchConversations(); // the first page follows new activity
  }
  const ch = route.query.get("channel"), id = route.query.get("id");
  if (ch && id) await showTranscript(ch, id);
  else $("transcript").replaceChildren();
}

// fetchConversations loads the first page again, or the next older one:
// the API lists the most recently active first, so the next page asks for
// activity before the oldest shown.
async function fetchConversations(older = false) {
  const st = convState;
  const [user, range] = st.key.split("|");
  const q = new URLSearchParams({ limit: convPage, from: "-" + range });
  if (user) q.set("user", user);
  // The cursor is exclusive and the times are kept in milliseconds: ask
  // for those before one past the oldest shown, so that conversations last
  // active in the same millisecond are not skipped (the ones seen already
  // are dropped below).
  if (older && st.items.length) q.set("before", new Date(Date.parse(st.items[st.items.length - 1].last) + 1).toISOString());
  const data = await api("GET", botPath("conversations") + "?" + q);
  const list = data.conversations || [];
  if (!older) { st.items = []; st.seen = new Set(); }
  for (const c of list) {
    const k = c.channel + "/" + c.conversation;
    if (st.seen.has(k)) continue;
    st.seen.add(k);
    st.items.push(c);
  }
  st.more = list.length === convPage;
  renderConversations();
}

function renderConversations() {
  const st = convState;
  const [user] = st.key.split("|");
  const open = route.query.get("channel") + "/" + route.query.get("id");
  const rows = st.items.map((c) => {
    const q = new URLSearchParams(route.query);
    q.set("channel", c.channel);
    q.set("id", c.conversation);
    return el("tr", { "data-conversation": c.conversation, class: open === c.channel + "/" + c.conversation ? "selected" : "" },
      el("td", {}, el("a", { href: href(route.bot, "conversations", q), "aria-label": `transcript of ${c.conversation}` }, c.conversation)),
      el("td", {}, c.user || ""), el("td", {}, c.channel), el("td", {}, c.turns), el("td", {}, when(c.last)));
  });
  const body = $("conversations").tBodies[0];
  body.replaceChildren(...rows);
  if (rows.length === 0) emptyRow(body, 5, user ? `no conversations of ${user}` : "no conversations recorded");
  $("conv-caption").textContent = `${st.items.length} conversation${st.items.length === 1 ? "" : "s"}${user ? " of " + user : ""}${st.more ? ", more older ones" : ""}`;
  $("conv-more").hidden = !st.more;
}

// showTranscript shows a conversation's recorded turns and its session; a
// conversation is addressed by its channel and the platform's id.
async function showTranscript(channel, conv) {
  const data = await api("GET", botPath("conversations", channel, conv));
  const turns = (data.transcript || []).map(turnView);
  const close = new URLSearchParams(route.query);
  close.delete("channel");
  close.delete("id");
  const parts = [el("h3", {}, `Conversation ${conv} (${channel})`),
    el("p", {}, el("a", { href: href(route.bot, "conversations", close) }, "Close transcript"))];
  parts.push(...(turns.length ? turns : [el("p", { class: "muted" }, "no transcript kept")]));
  if (data.state) parts.push(el("h4", {}, "Session"), el("pre", {}, JSON.stringify(data.state.data ?? data.state, null, 2)));
  $("transcript").replaceChildren(...parts);
}

// turnView shows a transcript entry: the user's message and the bot's
// reply with its rich parts, or a message an agent wrote (a conversation
// handed to people keeps those with "agent").
function turnView(t) {
  const hidden = "(sensitive, not kept)";
  if (t.agent) {
    return el("div", { class: "turn agent" },
      el("p", { class: "muted" }, `${new Date(t.t).toLocaleTimeString()} · agent`),
      el("p", {}, el("span", { class: "bubble bot" }, el("strong", {}, t.agent + ": "), t.reply || t.text || "")));
  }
  const meta = `${new Date(t.t).toLocaleTimeString()} · ${t.intent || "—"} (${t.source || "—"}) · ${t.outcome}` +
    (t.outcome === "human" ? "" : ` · ${t.latency_ms} ms`);
  const parts = [el("p", { class: "muted" }, meta),
    el("p", {}, el("span", { class: "bubble user" }, el("strong", {}, (t.user || "user") + ": "), t.sensitive ? hidden : t.text || ""))];
  if (t.reply || t.sensitive || t.outcome !== "human") {
    parts.push(el("p", {}, el("span", { class: "bubble bot" }, el("strong", {}, "bot: "), t.sensitive ? hidden : t.reply || "")));
  }
  if (Array.isArray(t.rich)) parts.push(...t.rich.flatMap((r) => richParts(r, null)));
  return el("div", { class: "turn" }, ...parts);
}

// ---- Logs: the live invocation stream ------------------------------------------

let logAbort = null;
let logPaused = false;

function logRow(i) {
  return el("tr", { class: i.outcome === "ok" ? "" : "error", "data-id": i.id || "" },
    el("td", {}, new Date(i.time).toLocaleTimeString()),
    el("td", {}, i.intent), el("td", {}, "v" + i.version), el("td", {}, i.outcome),
    el("td", {}, (i.duration_ms ?? 0).toFixed(2)),
    el("td", {}, i.channel && i.conversation ? el("a", { href: href(route.bot, "conversations",
      new URLSearchParams({ channel: i.channel, id: i.conversation })) }, `${i.channel}:${i.conversation}`) : ""),
    el("td", {}, i.error ? i.error + (i.line ? ` (line ${i.line})` : "") : (i.logs || []).join(" | ")));
}

async function loadLogs(fresh) {
  const intent = route.query.get("intent") || "";
  const outcome = route.query.get("outcome") || "";
  $("log-intent").value = intent;
  $("log-outcome").value = outcome;
  if (!fresh && logAbort) return;
  stopLogStream();
  const q = new URLSearchParams({ limit: 50 });
  if (intent) q.set("intent", intent);
  if (outcome) q.set("outcome", outcome);
  const data = await api("GET", botPath("logs") + "?" + q);
  const list = data.invocations || [];
  const body = $("logs").tBodies[0];
  body.replaceChildren(...list.map(logRow));
  if (list.length === 0) emptyRow(body, 7, "no invocations yet");
  q.delete("limit");
  q.set("follow", "1");
  if (list.length && list[0].id) q.set("after", list[0].id);
  else q.set("since", "1s");
  followLogs(botPath("logs") + "?" + q);
}

function stopLogStream() {
  if (logAbort) logAbort.abort();
  logAbort = null;
}

// followLogs reads the server-sent events of the log stream with fetch
// (EventSource cannot send the Authorization header), and reconnects after
// the entry it saw last when the stream ends.
async function followLogs(url) {
  const ctl = new AbortController();
  logAbort = ctl;
  let lastID = new URLSearchParams(url.split("?")[1]).get("after") || "";
  $("log-state").textContent = "live";
  let wait = 2000;
  while (!ctl.signal.aborted) {
    try {
      const headers = { ...authHeader(), Accept: "text/event-stream" };
      if (lastID) headers["Last-Event-ID"] = lastID;
      const resp = await fetch(url, { headers, signal: ctl.signal });
      if (!resp.ok) throw new APIError(resp.status, await resp.json().catch(() => null));
      const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let cut;
        while ((cut = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, cut);
          buf = buf.slice(cut + 2);
          const ev = { event: "message", data: "", id: "" };
          for (const line of block.split("\n")) {
            if (line.startsWith(":")) continue;
            const i = line.indexOf(":");
            const field = i < 0 ? line : line.slice(0, i);
            const val = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
            if (field === "data") ev.data += (ev.data ? "\n" : "") + val;
            else if (field === "event") ev.event = val;
            else if (field === "id") ev.id = val;
          }
          if (ev.id) lastID = ev.id;
          if (ev.event === "invocation" && ev.data) addLogEntry(JSON.parse(ev.data));
        }
      }
      wait = 2000;
    } catch (e) {
      if (ctl.signal.aborted) return;
      $("log-state").textContent = `reconnecting (${e.message})`;
      wait = Math.min(wait * 2, 30000); // a refused stream is not asked again at once
    }
    await new Promise((r) => setTimeout(r, wait));
    if (!ctl.signal.aborted) $("log-state").textContent = "live";
  }
}

function addLogEntry(entry) {
  if (logPaused) return;
  const body = $("logs").tBodies[0];
  if (body.querySelector("td[colspan]")) body.replaceChildren();
  const row = logRow(entry);
  row.classList.add("fresh");
  body.prepend(row);
  while (body.rows.length > 200) body.deleteRow(-1);
  announce(`new invocation: ${entry.intent} ${entry.outcome}`);
}

// ---- Channels ------------------------------------------------------------------

// channelFields lists each channel kind's settings as its adapter checks
// them (ValidateSettings, SecretSettings in channels/*): secrets are
// password inputs and never shown back.
const voiceAuth = [
  { name: "username", label: "Basic auth user" }, { name: "password", label: "Basic auth password", secret: true },
  { name: "header_name", label: "or: header name" }, { name: "header_value", label: "header value", secret: true }];
const metaFields = [
  { name: "app_secret", label: "App secret", secret: true, required: true },
  { name: "verify_token", label: "Verify token (you choose it)", secret: true, required: true },
  { name: "access_token", label: "Page or system user access token", secret: true, required: true }];
const baseURL = { name: "api_base_url", label: "API base URL", hint: "only for a proxy or a test server", advanced: true };
const channelFields = {
  web: { help: "Your own site or app posts messages with this bearer token.",
    fields: [{ name: "token", label: "Bearer token (at least 12 characters)", secret: true, required: true }] },
  telegram: { help: "From BotFather; set the webhook with setWebhook and the secret token.",
    fields: [{ name: "bot_token", label: "Bot token", secret: true, required: true },
      { name: "secret_token", label: "Secret token (sent in X-Telegram-Bot-Api-Secret-Token)", secret: true }, baseURL] },
  slack: { help: "From your Slack app's Basic Information and OAuth pages; paste the webhook URL as the Events Request URL.",
    fields: [{ name: "signing_secret", label: "Signing secret", secret: true, required: true },
      { name: "bot_token", label: "Bot token (xoxb-…)", secret: true, required: true }, baseURL] },
  discord: { help: "From the Discord developer portal; paste the webhook URL as the Interactions Endpoint URL.",
    fields: [{ name: "public_key", label: "Public key (64 hex digits)", required: true },
      { name: "application_id", label: "Application id", type: "number" },
      { name: "bot_token", label: "Bot token", secret: true },
      { name: "defer_replies", label: "Defer replies (answer later, for slow handlers)", type: "bool" }, baseURL] },
  messenger: { help: "From your Meta app; paste the webhook URL and the verify token into the app's webhook settings.", fields: [...metaFields, baseURL] },
  whatsapp: { help: "From your Meta app's WhatsApp settings.",
    fields: [...metaFields, { name: "phone_number_id", label: "Phone number id", type: "number", required: true }, baseURL] },
  line: { help: "From the LINE Developers console.",
    fields: [{ name: "channel_secret", label: "Channel secret", secret: true, required: true },
      { name: "channel_access_token", label: "Channel access token", secret: true, required: true }, baseURL] },
  twilio: { help: "From the Twilio console; the webhook URL is the number's messaging webhook.",
    fields: [{ name: "auth_token", label: "Auth token", secret: true, required: true },
      { name: "account_sid", label: "Account SID (AC…)" },
      { name: "webhook_url", label: "Webhook URL as configured in Twilio", hint: "if a proxy changes it" },
      { name: "from", label: "From number" }, { name: "messaging_service_sid", label: "Messaging service SID" },
      { name: "mms", label: "Send media as MMS", type: "bool" }, baseURL] },
  "twilio-voice": { help: "From the Twilio console; the webhook URL is the number's voice webhook.",
    fields: [{ name: "auth_token", label: "Auth token", secret: true, required: true },
      { name: "webhook_url", label: "Webhook URL as configured in Twilio", required: true },
      { name: "voice", label: "Voice (e.g. Polly.Joanna)" }, { name: "language", label: "Language (e.g. en-US)" }] },
  alexa: { help: "From the Alexa developer console; paste the webhook URL as the skill's HTTPS endpoint.",
    fields: [{ name: "skill_id", label: "Skill id (amzn1.ask.skill.…)", required: true },
      { name: "verify_signature", label: "Verify Amazon's signature", type: "bool", checked: true },
      { name: "card_title", label: "Card title" }] },
  dialogflow: { help: "Dialogflow ES fulfillment: basic auth or a header secret.", fields: voiceAuth },
  "dialogflow-cx": { help: "Dialogflow CX webhook: basic auth or a header secret.", fields: voiceAuth },
  lex: { help: "Amazon Lex V2 code hook (through a small Lambda or API gateway): basic auth or a header secret.", fields: voiceAuth },
};

const webhookURL = (ch) => location.origin + "/hooks/" + enc(route.bot) + "/" + enc(ch);

async function loadChannels() {
  const data = await api("GET", botPath("channels"));
  const names = data.channels || [];
  const items = names.map((ch) => el("li", { "data-channel": ch }, el("strong", {}, ch), el("br"), "Webhook URL: ",
    el("code", {}, webhookURL(ch)), " ",
    el("button", { type: "button", onclick: () => guard(() => editChannel(ch)) }, "Edit"), " ",
    el("button", { type: "button", class: "danger", "aria-label": `Disconnect ${ch}`, onclick: () => guard(() => disconnectChannel(ch)) }, "Disconnect")));
  if (items.length === 0) items.push(el("li", { class: "muted" }, "no channel connected"));
  $("channels").replaceChildren(...items);
  const select = $("connect-channel");
  const chosen = select.value;
  select.replaceChildren(...(data.available || []).map((ch) => el("option", { value: ch }, ch + (names.includes(ch) ? " (connected)" : ""))));
  if (chosen && (data.available || []).includes(chosen)) select.value = chosen;
  else if (data.available && data.available.length) select.value = data.available.includes("web") ? "web" : data.available[0];
  channelForm();
}

// channelForm shows the chosen channel kind's fields.
function channelForm(current = {}) {
  const ch = $("connect-channel").value;
  const spec = channelFields[ch] || { help: "Settings as the channel's page lists them.", fields: [] };
  $("connect-help").textContent = spec.help;
  $("connect-webhook").textContent = ch ? webhookURL(ch) : "";
  const fields = spec.fields.map((f) => {
    const id = "cf-" + f.name;
    let input;
    if (f.type === "bool") {
      const on = current[f.name] !== undefined ? String(current[f.name]) === "true" : !!f.checked;
      input = el("input", { id, type: "checkbox", "data-setting": f.name, "data-kind": "bool", checked: on });
      return el("label", { class: "inline", for: id }, input, " " + f.label);
    }
    input = el("input", { id, "data-setting": f.name, "data-kind": f.type || "string", required: f.required && !f.secret ? true : undefined,
      type: f.secret ? "password" : f.type === "number" ? "text" : "text", inputmode: f.type === "number" ? "numeric" : undefined,
      autocomplete: f.secret ? "new-password" : "off" });
    if (!f.secret && current[f.name] !== undefined) input.value = String(current[f.name]);
    if (f.secret && current[f.name] !== undefined) input.placeholder = "stored, not shown: enter it again to save";
    return el("div", { class: f.advanced ? "field advanced" : "field" },
      el("label", { for: id }, f.label, f.required ? "" : el("span", { class: "hint" }, f.hint ? ` (optional: ${f.hint})` : " (optional)")), input);
  });
  $("connect-fields").replaceChildren(...fields);
  $("connect-settings").placeholder = spec.fields.length ? "{}" : '{"setting": "value"}';
  $("connect-advanced").open = spec.fields.length === 0;
}

// editChannel fills the form with a connected channel's settings; secrets
// come back redacted and are never put into an input.
async function editChannel(ch) {
  const data = await api("GET", botPath("channels", ch));
  $("connect-channel").value = ch;
  const settings = data.settings || {};
  channelForm(settings);
  $("connect-channel").focus();
}

async function connectChannel(ev) {
  ev.preventDefault();
  const ch = $("connect-channel").value;
  try {
    let settings = {};
    const raw = $("connect-settings").value.trim();
    let extra = {};
    if (raw) {
      try { extra = JSON.parse(raw); } catch { throw new Error("the advanced settings must be a JSON object"); }
      if (typeof extra !== "object" || extra === null || Array.isArray(extra)) throw new Error("the advanced settings must be a JSON object");
    }
    let keep = false;
    for (const input of $("connect-fields").querySelectorAll("[data-setting]")) {
      const name = input.dataset.setting;
      if (input.dataset.kind === "bool") settings[name] = input.checked;
      else if (input.value.trim() !== "") settings[name] = input.dataset.kind === "number" ? input.value.trim() : input.value;
      else if (input.type === "password" && input.placeholder) keep = true;
    }
    // The API never shows a stored secret, and a PUT replaces all of a
    // channel's settings: changing them means entering the secrets again.
    if (keep) throw new Error("enter every secret again to change this channel's settings");
    settings = { ...settings, ...extra };
    await api("PUT", botPath("channels", ch), settings);
    report("connect-result", true, `${ch} connected: paste ${webhookURL(ch)} into the platform`);
    $("connect-settings").value = "";
    await loadChannels();
  } catch (e) {
    report("connect-result", false, `${ch}: ${e.message}`);
  }
}

async function disconnectChannel(ch) {
  if (!confirm(`Disconnect ${ch} from ${route.bot}?`)) return;
  await api("DELETE", botPath("channels", ch));
  status(`${ch} disconnected`);
  await loadChannels();
}

// ---- Schedules -----------------------------------------------------------------

async function loadSchedules() {
  const data = await api("GET", botPath("schedules"));
  const last = {};
  for (const r of data.runs || []) if (!last[r.schedule]) last[r.schedule] = r; // newest first
  const names = Object.keys(data.schedules || {}).sort();
  const rows = names.map((name) => {
    const sc = data.schedules[name];
    const r = last[name];
    const run = !r ? "—" : r.skipped ? `skipped ${r.fire}` : r.error ? `failed: ${r.error}` : `${when(r.started)}, ${r.targets - r.failed}/${r.targets} targets`;
    return el("tr", { "data-schedule": name }, el("td", {}, name + (sc.disabled ? " (paused)" : "")),
      el("td", {}, sc.cron + (sc.timezone ? ` (${sc.timezone})` : "")), el("td", {}, sc.intent),
      el("td", {}, (sc.targets || []).map((t) => `${t.channel}:${t.conversation}`).join(", ") || "—"),
      el("td", { title: sc.next_run || "" }, sc.next_run ? when(sc.next_run) : "—"), el("td", {}, run),
      el("td", { class: "actions" }, el("button", { type: "button", class: "danger", "aria-label": `Delete schedule ${name}`,
        onclick: () => guard(() => deleteSchedule(name)) }, "Delete")));
  });
  const body = $("schedules").tBodies[0];
  body.replaceChildren(...rows);
  if (rows.length === 0) emptyRow(body, 7, "no schedules");
}

async function saveSchedule(ev) {
  ev.preventDefault();
  const name = $("schedule-name").value.trim();
  const targets = $("schedule-targets").value.split("\n").map((l) => l.trim()).filter(Boolean).map((l) => {
    const [channel, ...rest] = l.split(/\s+/);
    return { channel, conversation: rest.join(" ") };
  });
  const body = { cron: $("schedule-cron").value.trim(), intent: $("schedule-intent").value.trim(), targets };
  if ($("schedule-timezone").value.trim()) body.timezone = $("schedule-timezone").value.trim();
  try {
    await api("PUT", botPath("schedules", name), body);
    report("schedule-result", true, `${name} saved`);
    await loadSchedules();
  } catch (e) {
    report("schedule-result", false, `${name}: ${e.message}`);
  }
}

async function deleteSchedule(name) {
  if (!confirm(`Delete the schedule ${name}?`)) return;
  await api("DELETE", botPath("schedules", name));
  status(`schedule ${name} deleted`);
  await loadSchedules();
}

// ---- Settings and NLU ------------------------------------------------------------

// settingFields are the bot settings most people change, as form fields;
// the JSON editor below them has all of them.
const settingFields = [
  { name: "display_name", label: "Display name" },
  { name: "timeout_ms", label: "Handler timeout (ms)", type: "number" },
  { name: "session_ttl_seconds", label: "Session expiry (seconds)", type: "number" },
  { name: "history_length", label: "History kept per conversation (turns)", type: "number" },
  { name: "fallback_reply", label: "Reply when nothing matches" },
  { name: "error_reply", label: "Reply when a handler fails" },
  { name: "busy_reply", label: "Reply when the bot is busy" },
  { name: "rate_limit_per_user", label: "Rate limit per user (e.g. 20/m)" },
  { name: "rate_limit_per_bot", label: "Rate limit for the bot (e.g. 100/s)" },
  { name: "nlu_threshold", label: "NLU confidence threshold (0–1)", type: "number" },
  { name: "http_allow", label: "Hosts handlers may call (comma-separated)", type: "list" },
];
let botSettings = {};

async function loadSettings() {
  const [bot, nlu] = await Promise.all([api("GET", botPath()), api("GET", botPath("nlu")).catch((e) => {
    if (e.status === 404) return null; // no NLU yet
    throw e;
  })]);
  botSettings = bot.settings || {};
  $("settings-fields").replaceChildren(...settingFields.map((f) => {
    const id = "sf-" + f.name;
    const v = botSettings[f.name];
    const input = el("input", { id, "data-setting": f.name, "data-kind": f.type || "string", inputmode: f.type === "number" ? "decimal" : undefined });
    if (v !== undefined) input.value = Array.isArray(v) ? v.join(", ") : String(v);
    return el("div", { class: "field" }, el("label", { for: id }, f.label), input);
  }));
  $("settings-json").value = JSON.stringify(botSettings, null, 2);
  $("nlu-json").value = nlu && nlu.intents && Object.keys(nlu.intents).length ? JSON.stringify(nlu, null, 2) : "";
}

async function putSettings(settings) {
  try {
    const r = await api("PUT", botPath(), settings);
    report("settings-result", true, "settings saved");
    botSettings = (r && r.settings) || settings;
    $("settings-json").value = JSON.stringify(botSettings, null, 2);
    return true;
  } catch (e) {
    report("settings-result", false, e.message);
    return false;
  }
}

async function saveSettingsForm(ev) {
  ev.preventDefault();
  const settings = { ...botSettings };
  for (const input of $("settings-fields").querySelectorAll("[data-setting]")) {
    const name = input.dataset.setting;
    const v = input.value.trim();
    if (v === "") { delete settings[name]; continue; }
    if (input.dataset.kind === "number") {
      if (!Number.isFinite(Number(v))) return report("settings-result", false, `${name} must be a number`);
      settings[name] = Number(v);
    } else if (input.dataset.kind === "list") settings[name] = v.split(",").map((s) => s.trim()).filter(Boolean);
    else settings[name] = v;
  }
  if (await putSettings(settings)) await loadSettings();
}

async function saveSettingsJSON() {
  let body;
  try { body = JSON.parse($("settings-json").value || "{}"); } catch { return report("settings-result", false, "not valid JSON"); }
  if (await putSettings(body)) await loadSettings();
}

async function saveNLU(ev) {
  ev.preventDefault();
  let body;
  try { body = JSON.parse($("nlu-json").value || "{}"); } catch { return report("nlu-result", false, "not valid JSON"); }
  try {
    const r = await api("PUT", botPath("nlu"), body);
    report("nlu-result", true, `trained on ${r.examples} examples of ${r.intents} intents`);
  } catch (e) {
    report("nlu-result", false, e.message);
  }
}

// ---- Dead letters and parked conversations ------------------------------------------

async function loadDeadLetters() {
  const [dead, parked] = await Promise.all([api("GET", botPath("deadletters") + "?limit=200"), api("GET", botPath("parked") + "?limit=200")]);
  const list = dead.deadletters || [];
  const rows = list.map((d) => {
    const ev = d.event || {};
    return el("tr", { "data-deadletter": d.id },
      el("td", {}, when(d.failed_at)), el("td", {}, d.stage),
      el("td", {}, `${ev.channel || ""}:${ev.conversation || ""}`, el("br"), el("span", { class: "muted" }, ev.user || "")),
      el("td", {}, ev.text || ev.postback || ""), el("td", { class: "error" }, d.error), el("td", {}, d.attempts),
      el("td", { class: "actions" },
        el("button", { type: "button", "aria-label": `Replay dead letter ${d.id}`, onclick: () => guard(() => deadAction(d.id, "replay")) }, "Replay"),
        el("button", { type: "button", class: "danger", "aria-label": `Delete dead letter ${d.id}`, onclick: () => guard(() => deadAction(d.id, "delete")) }, "Delete")));
  });
  const body = $("deadletters").tBodies[0];
  body.replaceChildren(...rows);
  if (rows.length === 0) emptyRow(body, 7, "no dead letters");
  const prow = (parked.parked || []).map((p) => el("tr", {},
    el("td", {}, `${p.channel}:${p.conversation}`), el("td", {}, p.entries), el("td", {}, when(p.due)),
    el("td", {}, (p.event && (p.event.text || p.event.postback)) || "")));
  const pbody = $("parked").tBodies[0];
  pbody.replaceChildren(...prow);
  if (prow.length === 0) emptyRow(pbody, 4, "no conversation is waiting");
}

async function deadAction(id, action) {
  if (action === "delete") {
    if (!confirm(`Delete the dead letter ${id}? Its event is lost.`)) return;
    await api("DELETE", botPath("deadletters", id));
    status(`dead letter ${id} deleted`);
  } else {
    await api("POST", botPath("deadletters", id, "replay"));
    status(`dead letter ${id} replayed`);
  }
  await loadDeadLetters();
  await loadBadges();
}

// ---- Agent inbox (human handoff) -----------------------------------------------------

let inboxOpen = null; // {channel, conversation}
let knownHandoffs = null; // the handoffs listed last, null before the first list

function agent() { return $("agent-name").value.trim(); }

const convPath = (h, ...more) => botPath("channels", h.channel, "conversations", h.conversation, ...more);

async function loadInbox() {
  if (!$("agent-name").value) $("agent-name").value = localStorage.getItem(agentName) || "";
  const body = $("handoffs").tBodies[0];
  let data;
  try {
    data = await api("GET", botPath("handoffs"));
  } catch (e) {
    // A server without human handoff answers its routes with 501.
    if (e.status !== 501) throw e;
    emptyRow(body, 5, "human handoff is not available on this server");
    return;
  }
  const list = data.handoffs || [];
  const first = knownHandoffs === null;
  const before = knownHandoffs || new Set();
  knownHandoffs = new Set(list.map((h) => h.channel + "/" + h.conversation));
  const rows = list.map((h) => {
    const key = h.channel + "/" + h.conversation;
    const mine = h.status === "active" && h.agent === agent();
    const actions = el("td", { class: "actions" });
    if (h.status === "waiting") actions.append(el("button", { type: "button", onclick: () => guard(() => claim(h)) }, "Take"));
    if (mine) actions.append(el("button", { type: "button", onclick: () => openHandoff(h) }, "Open"),
      el("button", { type: "button", onclick: () => guard(() => release(h)) }, "Release"));
    const last = typeof h.last_message === "string" ? h.last_message : (h.last_message && h.last_message.text) || "";
    return el("tr", { "data-key": key, "data-status": h.status, class: !first && !before.has(key) ? "fresh" : "" },
      el("td", {}, `${h.channel}:${h.conversation}`, el("br"), el("span", { class: "muted" }, [h.user, h.queue].filter(Boolean).join(" · "))),
      el("td", {}, h.status + (h.agent ? ` (${h.agent})` : "")), el("td", {}, when(h.since)),
      el("td", {}, last, h.reason ? el("span", { class: "muted" }, ` — ${h.reason}`) : ""), actions);
  });
  const fresh = list.filter((h) => h.status === "waiting" && !before.has(h.channel + "/" + h.conversation));
  body.replaceChildren(...rows);
  if (rows.length === 0) emptyRow(body, 5, "no conversation is waiting for an agent");
  const waiting = list.filter((h) => h.status === "waiting").length;
  $("inbox-count").textContent = waiting ? String(waiting) : "";
  if (!first && fresh.length) announce(`${fresh.length} new conversation${fresh.length > 1 ? "s" : ""} waiting for an agent`);
  if (inboxOpen && !list.some((h) => h.channel === inboxOpen.channel && h.conversation === inboxOpen.conversation && h.status === "active")) {
    inboxOpen = null;
    $("handoff-panel").replaceChildren();
  } else if (inboxOpen) {
    await refreshHandoff();
  }
}

async function claim(h) {
  if (!agent()) { $("agent-name").focus(); throw new Error("enter your agent name first"); }
  localStorage.setItem(agentName, agent());
  await api("POST", convPath(h, "claim"), { agent: agent() });
  status(`you took ${h.channel}:${h.conversation}`);
  await loadInbox();
  openHandoff({ ...h, status: "active", agent: agent() });
}

async function release(h) {
  const r = await api("POST", convPath(h, "release"));
  // The answer says what the bot's handback handler did.
  const handback = { sent: "; its handback reply was sent", ran: "; its handback handler ran",
    failed: "; its handback handler failed" }[r && r.handback] || "";
  status(`${h.channel}:${h.conversation} released to the bot${handback}`, r && r.handback === "failed");
  if (inboxOpen && inboxOpen.conversation === h.conversation) { inboxOpen = null; $("handoff-panel").replaceChildren(); }
  await loadInbox();
}

// openHandoff shows a taken conversation's transcript and a reply box.
async function openHandoff(h) {
  inboxOpen = { ...h, sent: [] };
  const open = inboxOpen;
  const panel = $("handoff-panel");
  const log = el("div", { class: "handoff-log", id: "handoff-log" });
  const input = el("input", { id: "handoff-text", "aria-label": `reply to ${h.user || h.conversation}`, required: true });
  const out = el("output", { "aria-live": "polite" });
  const form = el("form", { class: "reply-form", id: "handoff-reply" }, input, el("button", { type: "submit" }, "Send"));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    guard(async () => {
      const text = input.value;
      try {
        await api("POST", convPath(h, "messages"), { text, agent: agent() });
      } catch (e) {
        out.className = "error";
        out.textContent = e.message;
        return;
      }
      input.value = "";
      open.sent.push({ t: new Date().toISOString(), agent: agent(), text });
      out.className = "ok";
      out.textContent = "sent";
      await refreshHandoff();
    });
  });
  panel.replaceChildren(el("h3", {}, `${h.channel}:${h.conversation}`), log, form, out,
    el("p", {}, el("button", { type: "button", onclick: () => guard(() => release(h)) }, "Release to the bot")));
  await refreshHandoff();
  input.focus();
}

// refreshHandoff shows the open conversation's latest turns (from its
// transcript) with the replies sent from here, in time order.
async function refreshHandoff() {
  const open = inboxOpen;
  const log = $("handoff-log");
  if (!open || !log) return;
  let turns = [];
  try {
    const data = await api("GET", botPath("conversations", open.channel, open.conversation));
    turns = (data.transcript || []).slice(-30);
  } catch {
    // The transcript is a help, not a need: the reply box works without it.
  }
  if (open !== inboxOpen) return;
  // The transcript keeps the agents' messages too; the ones sent from here
  // are shown until it has them.
  const kept = new Set(turns.filter((t) => t.agent).map((t) => t.agent + "\n" + (t.reply || t.text || "")));
  const pending = open.sent.filter((m) => !kept.has(m.agent + "\n" + m.text));
  const items = [...turns, ...pending.map((m) => ({ t: m.t, agent: m.agent, reply: m.text }))]
    .sort((a, b) => Date.parse(a.t) - Date.parse(b.t));
  log.replaceChildren(...items.map(turnView));
}

// ---- Badges and polling ---------------------------------------------------------

async function loadBadges() {
  const bot = route.bot;
  const [dead, inbox] = await Promise.all([
    api("GET", botPath("deadletters") + "?limit=1000").catch(() => null),
    api("GET", botPath("handoffs")).catch(() => null)]);
  if (bot !== route.bot) return;
  const n = dead ? dead.deadletters.length : 0;
  $("dead-count").textContent = n ? String(n) : "";
  $("dead-count").setAttribute("aria-label", `${n} dead letters`);
  const waiting = inbox ? (inbox.handoffs || []).filter((h) => h.status === "waiting").length : 0;
  $("inbox-count").textContent = waiting ? String(waiting) : "";
  $("inbox-count").setAttribute("aria-label", `${waiting} waiting`);
}

const loaders = {
  bots: loadBots,
  overview: loadOverview,
  intents: loadIntents,
  conversations: loadConversations,
  logs: loadLogs,
  channels: loadChannels,
  schedules: loadSchedules,
  settings: loadSettings,
  deadletters: loadDeadLetters,
  inbox: loadInbox,
};

// polled are the views that follow the server by themselves while the tab
// is visible (the logs view follows its stream; forms are not reloaded
// under the user's hands).
const polled = { bots: loadBots, overview: loadOverview, intents: loadIntents, conversations: () => loadConversations(false),
  schedules: loadSchedules, deadletters: loadDeadLetters, inbox: loadInbox };

let polling = false;
async function poll() {
  if (!connected || polling || document.visibilityState !== "visible") return;
  polling = true;
  try {
    const fn = polled[route.view];
    if (fn) await fn(false);
    if (route.bot) await loadBadges();
  } catch {
    // The next poll tries again; actions report their own errors.
  } finally {
    polling = false;
  }
}

function setNav(open) {
  $("nav").classList.toggle("collapsed", !open);
  $("nav-toggle").setAttribute("aria-expanded", String(open));
}

// labelCells gives each table cell its column's name, which narrow
// screens show beside the value (the header row is hidden there).
function labelCells() {
  for (const table of document.querySelectorAll(".table-wrap table")) {
    const names = [...table.tHead.rows[0].cells].map((c) => c.textContent);
    for (const row of table.tBodies[0].rows) {
      [...row.cells].forEach((c, i) => { if (!c.hasAttribute("data-label")) c.setAttribute("data-label", names[i] || ""); });
    }
  }
}

let resizeTimer = 0;
function redrawCharts() {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => {
    for (const box of document.querySelectorAll(".chart")) if (box.chart && box.clientWidth) drawChart(box, ...box.chart);
  }, 150);
}

// ---- Wiring -------------------------------------------------------------------

new MutationObserver(labelCells).observe($("content"), { childList: true, subtree: true });
window.addEventListener("resize", redrawCharts);

$("login").addEventListener("submit", (ev) => {
  ev.preventDefault();
  sessionStorage.setItem(keyName, $("key").value);
  $("key").value = "";
  connect();
});
$("logout").addEventListener("click", disconnect);
$("bot-select").addEventListener("change", () => go($("bot-select").value, $("bot-select").value ? (route.view === "bots" ? "overview" : route.view) : "bots"));
$("nav-toggle").addEventListener("click", () => setNav($("nav").classList.contains("collapsed")));
$("new-bot").addEventListener("submit", createBot);
$("deploy").addEventListener("submit", deploy);
$("try").addEventListener("submit", tryIt);
$("range").addEventListener("change", (ev) => {
  const q = new URLSearchParams(route.query);
  q.set("range", ev.target.value);
  setQuery(q);
});
$("conv-search").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const q = new URLSearchParams();
  if ($("conv-user").value.trim()) q.set("user", $("conv-user").value.trim());
  if ($("conv-range").value !== "7d") q.set("range", $("conv-range").value);
  setQuery(q);
});
$("conv-more").addEventListener("click", () => guard(() => fetchConversations(true)));
$("log-filter").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const q = new URLSearchParams();
  if ($("log-intent").value.trim()) q.set("intent", $("log-intent").value.trim());
  if ($("log-outcome").value) q.set("outcome", $("log-outcome").value);
  stopLogStream();
  setQuery(q);
});
$("log-pause").addEventListener("click", () => {
  logPaused = !logPaused;
  $("log-pause").setAttribute("aria-pressed", String(logPaused));
  $("log-pause").textContent = logPaused ? "Resume" : "Pause";
  $("log-state").textContent = logPaused ? "paused" : "live";
});
$("connect-channel").addEventListener("change", () => channelForm());
$("connect").addEventListener("submit", connectChannel);
$("schedule").addEventListener("submit", saveSchedule);
$("settings-form").addEventListener("submit", saveSettingsForm);
$("settings-json-save").addEventListener("click", () => guard(saveSettingsJSON));
$("nlu").addEventListener("submit", saveNLU);
$("agent-name").addEventListener("change", () => { localStorage.setItem(agentName, agent()); guard(loadInbox); });
$("agent-form").addEventListener("submit", (ev) => ev.preventDefault());
window.addEventListener("hashchange", () => render(true));
document.addEventListener("visibilitychange", () => { if (document.visibilityState === "visible") poll(); });
setInterval(poll, pollMS);
setNav(!window.matchMedia("(max-width: 760px)").matches);
if (sessionStorage.getItem(keyName)) connect();
else $("key").focus();
