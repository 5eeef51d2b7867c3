// Parley console. Everything goes through the management API with the
// admin key, which stays in this tab's sessionStorage. Data from the API is
// only ever put into the page as text (textContent), never as HTML.

const keyName = "parley.adminKey";
const $ = (id) => document.getElementById(id);
let currentBot = "";

// el builds an element with text or children.
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "onclick") e.addEventListener("click", v);
    else if (k === "class") e.className = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
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

// api calls the management API and returns its JSON answer.
async function api(method, path, body, contentType = "application/json") {
  const headers = { Authorization: "Bearer " + (sessionStorage.getItem(keyName) || "") };
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

const botPath = (...parts) => "/v1/bots/" + [currentBot, ...parts].map(encodeURIComponent).join("/");

function status(msg, isError = false) {
  $("status").textContent = msg;
  $("status").className = isError ? "error" : "";
}

// show reports an action's failure next to the page's status line.
async function guard(fn) {
  try { await fn(); } catch (e) { status(e.message, true); }
}

async function connect() {
  try {
    const data = await api("GET", "/v1/bots");
    $("app").hidden = false;
    $("logout").hidden = false;
    status("connected");
    renderBots(data.bots || []);
  } catch (e) {
    $("app").hidden = true;
    status(e.status === 401 ? "wrong admin key" : e.message, true);
  }
}

function renderBots(names) {
  const list = $("bots");
  list.replaceChildren(...names.map((name) => el("li", {},
    el("button", { type: "button", "data-bot": name, "aria-current": String(name === currentBot), onclick: () => selectBot(name) }, name))));
  if (names.length === 0) list.append(el("li", { class: "muted" }, "no bots yet"));
}

async function selectBot(name) {
  currentBot = name;
  $("bot").hidden = false;
  $("bot-name").textContent = name;
  for (const b of document.querySelectorAll("#bots button")) b.setAttribute("aria-current", String(b.dataset.bot === name));
  $("deploy-result").textContent = "";
  $("connect-result").textContent = "";
  $("schedule-result").textContent = "";
  $("settings-result").textContent = "";
  $("nlu-result").textContent = "";
  $("try-result").replaceChildren();
  $("transcript").replaceChildren();
  await Promise.all([loadStats, loadIntents, loadLogs, loadQueue, loadUsage, loadChannels, loadConversations, loadSchedules, loadSettings].map(guard));
}

async function loadStats() {
  const to = new Date();
  const from = new Date(to.getTime() - 24 * 3600 * 1000);
  const q = new URLSearchParams({ from: from.toISOString(), to: to.toISOString(), step: "hour" });
  // The totals and the hourly series, and the same range by intent (whose
  // series has only the hours each intent had turns in).
  const [data, byIntent] = await Promise.all([api("GET", botPath("analytics") + "?" + q),
    api("GET", botPath("analytics") + "?" + q + "&group_by=intent")]);
  const t = data.totals;
  const pct = (x) => (100 * x).toFixed(1) + " %";
  const cells = [["turns", t.turns], ["conversations", t.conversations], ["users", t.users],
    ["fallback rate", pct(t.fallback_rate)], ["error rate", pct(t.error_rate)],
    ["latency p50", t.latency_ms.p50.toFixed(1) + " ms"], ["latency p95", t.latency_ms.p95.toFixed(1) + " ms"]];
  $("stats").replaceChildren(...cells.map(([k, v]) => el("div", { "data-stat": k }, el("dt", {}, k), el("dd", {}, v))));
  // Turns per hour as bars.
  const series = data.series || [];
  const max = Math.max(1, ...series.map((s) => s.turns));
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${series.length * 10} 80`);
  svg.setAttribute("preserveAspectRatio", "none");
  series.forEach((s, i) => {
    const h = Math.round((s.turns / max) * 76);
    const r = document.createElementNS(ns, "rect");
    r.setAttribute("x", i * 10 + 1); r.setAttribute("width", 8);
    r.setAttribute("y", 80 - h); r.setAttribute("height", h);
    const title = document.createElementNS(ns, "title");
    title.textContent = `${s.t}: ${s.turns} turns`;
    r.append(title);
    svg.append(r);
  });
  $("chart").replaceChildren(svg);
  const groups = (byIntent.groups || []).slice().sort((a, b) => b.turns - a.turns);
  $("by-intent").tBodies[0].replaceChildren(...groups.map((g) => el("tr", { "data-intent": g.group.intent || "" },
    el("td", {}, g.group.intent || "(none)"), el("td", {}, g.turns), el("td", {}, pct(g.fallback_rate)),
    el("td", {}, pct(g.error_rate)), el("td", {}, g.latency_ms.p95.toFixed(1) + " ms"))));
}

async function loadConversations() {
  const data = await api("GET", botPath("conversations") + "?limit=20");
  const rows = (data.conversations || []).map((c) => el("tr", {},
    el("td", {}, el("button", { type: "button", class: "link", onclick: () => guard(() => showTranscript(c.channel, c.conversation)) }, c.conversation)),
    el("td", {}, c.user), el("td", {}, c.channel), el("td", {}, c.turns), el("td", {}, new Date(c.last).toLocaleString())));
  const body = $("conversations").tBodies[0];
  body.replaceChildren(...rows);
  if (rows.length === 0) body.append(el("tr", {}, el("td", { colspan: 5, class: "muted" }, "no conversations recorded")));
}

// showTranscript shows a conversation's recorded turns and its session; a
// conversation is addressed by its channel and the platform's id.
async function showTranscript(channel, conv) {
  const data = await api("GET", botPath("conversations", channel, conv));
  const turns = (data.transcript || []).map((t) => el("div", { class: "turn" },
    el("p", { class: "muted" }, `${new Date(t.t).toLocaleTimeString()} · ${t.intent || "—"} (${t.source}) · ${t.outcome} · ${t.latency_ms} ms`),
    el("p", {}, el("strong", {}, t.user + ": "), t.text || ""),
    el("p", {}, el("strong", {}, "bot: "), t.reply || "")));
  const parts = [el("h4", {}, `Conversation ${conv} (${channel})`)];
  parts.push(...(turns.length ? turns : [el("p", { class: "muted" }, "no transcript kept")]));
  if (data.state) parts.push(el("p", { class: "muted" }, "session"), el("pre", {}, JSON.stringify(data.state.data, null, 2)));
  $("transcript").replaceChildren(...parts);
}

async function loadIntents() {
  const data = await api("GET", botPath("intents"));
  const rows = (data.intents || []).map((h) => {
    const actions = el("td", { class: "actions" },
      el("button", { type: "button", onclick: () => guard(() => editIntent(h.intent, row)) }, "Edit"));
    if (h.canary) {
      actions.append(
        el("button", { type: "button", onclick: () => guard(() => canary(h.intent, "promote")) }, "Promote"),
        el("button", { type: "button", onclick: () => guard(() => canary(h.intent, "abort")) }, "Abort"));
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
  if (rows.length === 0) body.append(el("tr", {}, el("td", { colspan: 5, class: "muted" }, "no handlers deployed")));
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
  const select = el("select", { "aria-label": "version" },
    ...others.reverse().map((v) => el("option", { value: v.version }, `v${v.version} (${v.created || ""})`)));
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
  const out = $("deploy-result");
  let path = botPath("intents", intent);
  if ($("deploy-canary").checked) path += "?canary=" + encodeURIComponent($("deploy-percent").value);
  try {
    const r = await api("PUT", path, $("deploy-source").value, "text/x-lua");
    out.className = "ok";
    out.textContent = r.unchanged ? `${intent}: unchanged, still v${r.version}`
      : r.canary ? `${intent}: v${r.canary.version} is a canary for ${r.canary.percent} %` : `${intent}: deployed v${r.version}`;
    await loadIntents();
  } catch (e) {
    out.className = "error";
    out.textContent = `${intent}: ${e.message}`;
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
    const texts = replies.map((x) => x.text).filter(Boolean);
    const parts = [el("p", { class: "reply" }, texts.join("\n") || (replies.some(isRich) ? "" : "(no text)"))];
    for (const rep of replies) parts.push(...richParts(rep));
    parts.push(el("p", { class: "muted" }, `intent ${r.decision.intent || "—"} (${r.decision.source}), outcome ${r.outcome}, version ${r.version || "—"}, ${r.handler_ms} ms`));
    if (r.error) parts.push(el("p", { class: "error" }, r.error.message));
    if (r.logs && r.logs.length) parts.push(el("pre", {}, r.logs.join("\n")));
    out.replaceChildren(...parts);
    setTimeout(() => guard(loadLogs), 1200); // the invocation log is written asynchronously
  } catch (e) {
    out.replaceChildren(el("p", { class: "error" }, e.message));
  }
}

function isRich(rep) {
  return (rep.buttons || []).length + (rep.cards || []).length + (rep.media || []).length + (rep.options || []).length > 0;
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
// would see them on a channel: a button with a payload sends it back as a
// press, a link opens in a new tab, images are shown. All text is text.
function richParts(rep) {
  const parts = [];
  const buttons = (list) => el("div", { class: "buttons" }, ...list.map(button));
  const options = rep.options || [];
  if (options.length) {
    parts.push(el("div", { class: "buttons options" },
      ...options.map((o) => el("button", { type: "button", class: "option", onclick: () => guard(() => say({ text: o })) }, o))));
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

// button is a reply's or card's button: a payload is sent as a press, a
// link opens in a new tab.
function button(b) {
  const url = safeURL(b.url || "");
  if (url) return el("a", { class: "button", href: url, target: "_blank", rel: "noopener noreferrer" }, b.title || url);
  return el("button", { type: "button", class: "postback", "data-payload": b.payload || "",
    onclick: () => guard(() => say({ postback: b.payload, text: (b.title || "").slice(0, 1000) })) }, b.title || "");
}

async function loadLogs() {
  const data = await api("GET", botPath("logs") + "?limit=20");
  const rows = (data.invocations || []).map((i) => el("tr", { class: i.outcome === "ok" ? "" : "error" },
    el("td", {}, new Date(i.time).toLocaleTimeString()),
    el("td", {}, i.intent), el("td", {}, "v" + i.version), el("td", {}, i.outcome),
    el("td", {}, (i.duration_ms ?? 0).toFixed(2)),
    el("td", {}, i.error || (i.logs || []).join(" | "))));
  const body = $("logs").tBodies[0];
  body.replaceChildren(...rows);
  if (rows.length === 0) body.append(el("tr", {}, el("td", { colspan: 6, class: "muted" }, "no invocations yet")));
}

async function loadUsage() {
  const data = await api("GET", botPath("usage"));
  const t = data.total;
  const cells = [["invocations", t.invocations], ["compute", t.compute_ms.toFixed(2) + " ms"],
    ["instructions", t.instructions], ["cold starts", t.cold_starts], ["warm starts", t.warm_starts],
    ["HTTP calls", t.http_calls]];
  $("usage").replaceChildren(...cells.map(([k, v]) => el("div", { "data-stat": k }, el("dt", {}, k), el("dd", {}, v))));
}

async function loadChannels() {
  const data = await api("GET", botPath("channels"));
  const names = data.channels || [];
  const items = names.map((ch) => el("li", { "data-channel": ch }, el("strong", {}, ch), " webhook: ",
    el("code", {}, location.origin + "/hooks/" + encodeURIComponent(currentBot) + "/" + encodeURIComponent(ch)), " ",
    el("button", { type: "button", onclick: () => guard(() => disconnect(ch)) }, "Disconnect")));
  if (items.length === 0) items.push(el("li", { class: "muted" }, "no channel connected"));
  $("channels").replaceChildren(...items);
  const select = $("connect-channel");
  const chosen = select.value;
  select.replaceChildren(...(data.available || []).map((ch) => el("option", { value: ch }, ch)));
  if (chosen) select.value = chosen;
}

// connect stores a channel's settings (JSON, as the channel's page under
// docs/channels/ lists them).
async function connectChannel(ev) {
  ev.preventDefault();
  const ch = $("connect-channel").value;
  const out = $("connect-result");
  try {
    let settings;
    try { settings = JSON.parse($("connect-settings").value || "{}"); } catch { throw new Error("the settings must be a JSON object"); }
    await api("PUT", botPath("channels", ch), settings);
    out.className = "ok";
    out.textContent = `${ch} connected`;
    $("connect-settings").value = "";
    await loadChannels();
  } catch (e) {
    out.className = "error";
    out.textContent = `${ch}: ${e.message}`;
  }
}

async function disconnect(ch) {
  if (!confirm(`Disconnect ${ch} from ${currentBot}?`)) return;
  await api("DELETE", botPath("channels", ch));
  status(`${ch} disconnected`);
  await loadChannels();
}

async function loadSchedules() {
  const data = await api("GET", botPath("schedules"));
  const last = {};
  for (const r of data.runs || []) if (!last[r.schedule]) last[r.schedule] = r; // newest first
  const names = Object.keys(data.schedules || {}).sort();
  const rows = names.map((name) => {
    const sc = data.schedules[name];
    const r = last[name];
    const run = !r ? "—" : r.skipped ? `skipped ${r.fire}` : r.error ? `failed: ${r.error}` : `${new Date(r.started).toLocaleString()}, ${r.targets - r.failed}/${r.targets} targets`;
    return el("tr", { "data-schedule": name }, el("td", {}, name + (sc.disabled ? " (paused)" : "")),
      el("td", {}, sc.cron + (sc.timezone ? ` (${sc.timezone})` : "")), el("td", {}, sc.intent),
      el("td", {}, (sc.targets || []).map((t) => `${t.channel}:${t.conversation}`).join(", ") || "—"),
      el("td", { title: sc.next_run || "" }, sc.next_run ? new Date(sc.next_run).toLocaleString() : "—"), el("td", {}, run),
      el("td", {}, el("button", { type: "button", onclick: () => guard(() => deleteSchedule(name)) }, "Delete")));
  });
  const body = $("schedules").tBodies[0];
  body.replaceChildren(...rows);
  if (rows.length === 0) body.append(el("tr", {}, el("td", { colspan: 7, class: "muted" }, "no schedules")));
}

async function saveSchedule(ev) {
  ev.preventDefault();
  const name = $("schedule-name").value.trim();
  const out = $("schedule-result");
  const targets = $("schedule-targets").value.split("\n").map((l) => l.trim()).filter(Boolean).map((l) => {
    const [channel, ...rest] = l.split(/\s+/);
    return { channel, conversation: rest.join(" ") };
  });
  const body = { cron: $("schedule-cron").value.trim(), intent: $("schedule-intent").value.trim(), targets };
  if ($("schedule-timezone").value.trim()) body.timezone = $("schedule-timezone").value.trim();
  try {
    await api("PUT", botPath("schedules", name), body);
    out.className = "ok";
    out.textContent = `${name} saved`;
    await loadSchedules();
  } catch (e) {
    out.className = "error";
    out.textContent = `${name}: ${e.message}`;
  }
}

async function deleteSchedule(name) {
  if (!confirm(`Delete the schedule ${name}?`)) return;
  await api("DELETE", botPath("schedules", name));
  status(`schedule ${name} deleted`);
  await loadSchedules();
}

async function loadSettings() {
  const [bot, nlu] = await Promise.all([api("GET", botPath()), api("GET", botPath("nlu")).catch((e) => {
    if (e.status === 404) return null; // no NLU yet
    throw e;
  })]);
  $("settings-json").value = JSON.stringify(bot.settings || {}, null, 2);
  $("nlu-json").value = nlu && nlu.intents && Object.keys(nlu.intents).length ? JSON.stringify(nlu, null, 2) : "";
}

// saveJSON PUTs the JSON of a textarea to path and reports in out.
async function saveJSON(ev, textarea, path, out, done) {
  ev.preventDefault();
  try {
    let body;
    try { body = JSON.parse($(textarea).value || "{}"); } catch { throw new Error("not valid JSON"); }
    const r = await api("PUT", path, body);
    $(out).className = "ok";
    $(out).textContent = done(r);
  } catch (e) {
    $(out).className = "error";
    $(out).textContent = e.message;
  }
}

async function loadQueue() {
  const [dead, parked] = await Promise.all([api("GET", botPath("deadletters") + "?limit=1000"), api("GET", botPath("parked") + "?limit=1000")]);
  $("queue").textContent = `${dead.deadletters.length} dead letters, ${parked.parked.length} conversations waiting (parked)`;
}

async function createBot(ev) {
  ev.preventDefault();
  const name = $("new-bot-name").value.trim();
  await guard(async () => {
    await api("PUT", "/v1/bots/" + encodeURIComponent(name), {});
    $("new-bot-name").value = "";
    const data = await api("GET", "/v1/bots");
    renderBots(data.bots || []);
    await selectBot(name);
    status(`bot ${name} created`);
  });
}

$("login").addEventListener("submit", (ev) => {
  ev.preventDefault();
  sessionStorage.setItem(keyName, $("key").value);
  $("key").value = "";
  connect();
});
$("logout").addEventListener("click", () => {
  sessionStorage.removeItem(keyName);
  currentBot = "";
  $("app").hidden = true;
  $("bot").hidden = true;
  $("logout").hidden = true;
  status("disconnected");
});
$("new-bot").addEventListener("submit", createBot);
$("deploy").addEventListener("submit", deploy);
$("try").addEventListener("submit", tryIt);
$("connect").addEventListener("submit", connectChannel);
$("schedule").addEventListener("submit", saveSchedule);
$("settings").addEventListener("submit", (ev) => saveJSON(ev, "settings-json", botPath(), "settings-result", () => "settings saved"));
$("nlu").addEventListener("submit", (ev) => saveJSON(ev, "nlu-json", botPath("nlu"), "nlu-result",
  (r) => `trained on ${r.examples} examples of ${r.intents} intents`));
$("refresh").addEventListener("click", () => guard(() => Promise.all([loadLogs(), loadStats(), loadQueue(), loadUsage(), loadConversations()])));
if (sessionStorage.getItem(keyName)) connect();
