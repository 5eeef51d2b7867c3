/* Parley chat widget: an embeddable chat for a bot's web channel.
 *
 *   <script src="https://parley.example.com/widget.js" data-bot="shop"
 *           data-token-url="/chat-token" async></script>
 *
 * data-token-url is the site's own endpoint that answers a POST with
 * {"token": ..., "expires": ...}, minted by its backend with the channel's
 * token (POST /v1/bots/{bot}/channels/web/tokens). With data-anonymous
 * instead, the widget opens an anonymous session (the channel's
 * allow_anonymous). Optional: data-title, data-open ("true" opens the panel
 * at once), data-conversation.
 *
 * Bot and user text is only ever set with textContent; links and images
 * take http and https URLs only. */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.__parleyChat) { return; }
  window.__parleyChat = true;
  var bot = script.getAttribute("data-bot") || "";
  var tokenURL = script.getAttribute("data-token-url");
  var anonymous = script.hasAttribute("data-anonymous");
  var title = script.getAttribute("data-title") || "Chat";
  var server = new URL(script.src, location.href).origin;
  var conversation = script.getAttribute("data-conversation") || "";
  var store = window.sessionStorage;
  var keyBase = "parley:" + server + ":" + bot + ":";

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    return e;
  }
  function safeURL(u) {
    try {
      var p = new URL(String(u), location.href);
      return p.protocol === "https:" || p.protocol === "http:" ? p.href : null;
    } catch (e) { return null; }
  }
  function get(k) { try { return store.getItem(keyBase + k); } catch (e) { return null; } }
  function put(k, v) { try { store.setItem(keyBase + k, v); } catch (e) { /* storage off */ } }

  var css = ".parley-launch{position:fixed;right:20px;bottom:20px;z-index:2147483000;border:0;border-radius:24px;" +
    "padding:12px 18px;background:#1f4fd1;color:#fff;font:600 15px system-ui,sans-serif;cursor:pointer}" +
    ".parley-launch:focus-visible,.parley-panel button:focus-visible,.parley-panel input:focus-visible{outline:3px solid #f5b700;outline-offset:2px}" +
    ".parley-panel{position:fixed;right:20px;bottom:76px;z-index:2147483000;width:340px;max-width:calc(100vw - 40px);" +
    "height:460px;max-height:calc(100vh - 100px);display:flex;flex-direction:column;background:#fff;color:#111;" +
    "border:1px solid #ccd;border-radius:10px;box-shadow:0 6px 24px rgba(0,0,0,.2);font:14px/1.4 system-ui,sans-serif}" +
    ".parley-panel[hidden]{display:none}.parley-head{display:flex;align-items:center;justify-content:space-between;" +
    "padding:8px 12px;border-bottom:1px solid #e4e4ee;font-weight:600}.parley-head button{border:0;background:none;font-size:18px;cursor:pointer}" +
    ".parley-log{flex:1;overflow-y:auto;padding:10px;display:flex;flex-direction:column;gap:6px}" +
    ".parley-msg{max-width:85%;padding:7px 10px;border-radius:10px;white-space:pre-wrap;overflow-wrap:anywhere}" +
    ".parley-bot{align-self:flex-start;background:#eef0f6}.parley-user{align-self:flex-end;background:#1f4fd1;color:#fff}" +
    ".parley-note{align-self:center;color:#555;font-size:12px}.parley-acts{display:flex;flex-wrap:wrap;gap:4px;margin-top:6px}" +
    ".parley-acts button,.parley-acts a{border:1px solid #1f4fd1;background:#fff;color:#1f4fd1;border-radius:14px;padding:3px 10px;" +
    "font:inherit;cursor:pointer;text-decoration:none}.parley-card{border:1px solid #dde;border-radius:8px;padding:6px;margin-top:6px;background:#fff}" +
    ".parley-card img,.parley-media img{max-width:100%;border-radius:6px}.parley-card-title{font-weight:600}" +
    ".parley-form{display:flex;gap:6px;padding:8px;border-top:1px solid #e4e4ee}.parley-form input{flex:1;padding:7px;border:1px solid #aab;border-radius:6px;font:inherit}" +
    ".parley-form button{border:0;border-radius:6px;background:#1f4fd1;color:#fff;padding:7px 12px;font:inherit;cursor:pointer}" +
    ".parley-sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}";

  var style = el("style");
  style.textContent = css;
  var launch = el("button", "parley-launch", title);
  launch.type = "button";
  launch.setAttribute("aria-expanded", "false");
  launch.setAttribute("aria-controls", "parley-panel");
  var panel = el("section", "parley-panel");
  panel.id = "parley-panel";
  panel.hidden = true;
  panel.setAttribute("aria-label", title);
  var head = el("div", "parley-head");
  var heading = el("h2", null, title);
  heading.style.cssText = "font-size:15px;margin:0";
  var closeBtn = el("button", null, "\u00d7");
  closeBtn.type = "button";
  closeBtn.setAttribute("aria-label", "Close chat");
  head.appendChild(heading);
  head.appendChild(closeBtn);
  var log = el("div", "parley-log");
  log.setAttribute("role", "log");
  log.setAttribute("aria-live", "polite");
  log.setAttribute("aria-label", "Messages");
  var status = el("div", "parley-sr");
  status.setAttribute("role", "status");
  var form = el("form", "parley-form");
  var inputId = "parley-input";
  var label = el("label", "parley-sr", "Message");
  label.htmlFor = inputId;
  var input = el("input");
  input.id = inputId;
  input.type = "text";
  input.autocomplete = "off";
  input.maxLength = 4000;
  input.placeholder = "Type a message";
  var sendBtn = el("button", null, "Send");
  sendBtn.type = "submit";
  form.appendChild(label);
  form.appendChild(input);
  form.appendChild(sendBtn);
  panel.appendChild(head);
  panel.appendChild(log);
  panel.appendChild(status);
  panel.appendChild(form);

  function mount() {
    document.head.appendChild(style);
    document.body.appendChild(launch);
    document.body.appendChild(panel);
    if (script.getAttribute("data-open") === "true") { openPanel(false); }
  }
  function openPanel(focus) {
    panel.hidden = false;
    launch.setAttribute("aria-expanded", "true");
    if (focus !== false) { input.focus(); }
    connect();
  }
  function closePanel() {
    panel.hidden = true;
    launch.setAttribute("aria-expanded", "false");
    launch.focus();
  }
  launch.addEventListener("click", function () { if (panel.hidden) { openPanel(); } else { closePanel(); } });
  closeBtn.addEventListener("click", closePanel);
  panel.addEventListener("keydown", function (e) { if (e.key === "Escape") { closePanel(); } });

  function scroll() { log.scrollTop = log.scrollHeight; }
  function note(text) { status.textContent = text; }
  function addUser(text) {
    log.appendChild(el("div", "parley-msg parley-user", text));
    scroll();
  }
  function actionButton(text, onPress) {
    var b = el("button", null, text);
    b.type = "button";
    b.addEventListener("click", onPress);
    return b;
  }
  function renderButtons(list, into) {
    if (!list || !list.length) { return; }
    var acts = el("div", "parley-acts");
    list.forEach(function (btn) {
      var t = btn && btn.title ? String(btn.title) : "";
      if (btn && btn.url) {
        var href = safeURL(btn.url);
        if (!href) { return; }
        var a = el("a", null, t);
        a.href = href;
        a.target = "_blank";
        a.rel = "noopener noreferrer";
        acts.appendChild(a);
      } else if (btn && btn.payload) {
        acts.appendChild(actionButton(t, function () { send({ postback: String(btn.payload), text: t }, t); }));
      }
    });
    into.appendChild(acts);
  }
  function renderImage(url, alt, into) {
    var src = safeURL(url);
    if (!src) { return; }
    var img = el("img");
    img.src = src;
    img.alt = alt || "";
    img.referrerPolicy = "no-referrer";
    into.appendChild(img);
  }
  function renderReply(r) {
    var box = el("div", "parley-msg parley-bot");
    if (r.text) { box.appendChild(el("div", null, r.text)); }
    (r.media || []).forEach(function (m) {
      var wrap = el("div", "parley-media");
      if (m.type === "image") {
        renderImage(m.url, m.caption, wrap);
      } else {
        var href = safeURL(m.url);
        if (href) {
          var a = el("a", null, m.caption || m.url);
          a.href = href;
          a.target = "_blank";
          a.rel = "noopener noreferrer";
          wrap.appendChild(a);
        }
      }
      if (m.caption && m.type === "image") { wrap.appendChild(el("div", null, m.caption)); }
      box.appendChild(wrap);
    });
    (r.cards || []).forEach(function (c) {
      var card = el("div", "parley-card");
      if (c.image) { renderImage(c.image, c.title, card); }
      card.appendChild(el("div", "parley-card-title", c.title));
      if (c.subtitle) { card.appendChild(el("div", null, c.subtitle)); }
      renderButtons(c.buttons, card);
      box.appendChild(card);
    });
    renderButtons(r.buttons, box);
    if (r.options && r.options.length) {
      var acts = el("div", "parley-acts");
      r.options.forEach(function (o) {
        acts.appendChild(actionButton(o, function () { send({ text: String(o) }, String(o)); }));
      });
      box.appendChild(acts);
    }
    log.appendChild(box);
  }

  var pending = null; // the bubble that shows a streamed reply
  var typing = null;
  function clearPending() {
    if (pending) { pending.remove(); pending = null; }
    if (typing) { typing.remove(); typing = null; }
  }
  var seen = {};
  var lastID = get("last") || "";
  function onFrame(f) {
    switch (f.type) {
      case "ready":
        if (!lastID && f.id) { lastID = f.id; put("last", lastID); }
        note("Connected");
        flushQueue();
        break;
      case "typing":
        if (!typing && !pending) {
          typing = el("div", "parley-note", "\u2026");
          typing.setAttribute("aria-label", "The bot is typing");
          log.appendChild(typing);
          scroll();
        }
        break;
      case "delta":
        if (typing) { typing.remove(); typing = null; }
        if (!pending) {
          pending = el("div", "parley-msg parley-bot");
          pending.setAttribute("aria-busy", "true");
          log.appendChild(pending);
        }
        pending.textContent += String(f.text || "");
        scroll();
        break;
      case "message":
        if (!f.id || seen[f.id]) { return; }
        seen[f.id] = true;
        lastID = f.id;
        put("last", lastID);
        clearPending();
        ((f.answer && f.answer.replies) || []).forEach(renderReply);
        scroll();
        break;
      case "error":
        clearPending();
        log.appendChild(el("div", "parley-note", f.message || "Something went wrong."));
        scroll();
        break;
    }
  }

  var token = null;
  var tokenExpires = 0;
  function fetchToken() {
    var cached = get("token");
    var exp = Number(get("expires") || 0);
    if (!token && cached && exp - Date.now() > 60000) { token = cached; tokenExpires = exp; }
    if (token && tokenExpires - Date.now() > 60000) { return Promise.resolve(token); }
    var url = anonymous ? server + "/hooks/" + encodeURIComponent(bot) + "/web/session" : tokenURL;
    if (!url) { return Promise.reject(new Error("no data-token-url")); }
    return fetch(url, { method: "POST", credentials: anonymous ? "omit" : "same-origin" }).then(function (r) {
      if (!r.ok) { throw new Error("token: " + r.status); }
      return r.json();
    }).then(function (t) {
      token = String(t.token);
      tokenExpires = Date.parse(t.expires) || Date.now() + 3600000;
      put("token", token);
      put("expires", String(tokenExpires));
      return token;
    });
  }

  var ws = null;
  var ready = false;
  var attempts = 0;
  var queue = [];
  var timer = null;
  function connect() {
    if (ws || timer) { return; }
    fetchToken().then(function (tok) {
      var u = server.replace(/^http/, "ws") + "/hooks/" + encodeURIComponent(bot) + "/web/ws?token=" + encodeURIComponent(tok);
      if (conversation) { u += "&conversation=" + encodeURIComponent(conversation); }
      if (lastID) { u += "&after=" + encodeURIComponent(lastID); }
      var sock = new WebSocket(u);
      ws = sock;
      sock.onopen = function () { attempts = 0; };
      sock.onmessage = function (e) {
        var f;
        try { f = JSON.parse(e.data); } catch (err) { return; }
        if (f.type === "ready") { ready = true; }
        onFrame(f);
      };
      sock.onclose = function () {
        if (!ready) { token = null; put("token", ""); } // perhaps expired: ask again
        ws = null;
        ready = false;
        clearPending();
        retry();
      };
    }, function () { retry(); });
  }
  function retry() {
    if (timer) { return; }
    note("Reconnecting");
    var wait = Math.min(15000, 500 * Math.pow(2, attempts++));
    timer = setTimeout(function () { timer = null; connect(); }, wait);
  }
  var counter = 0;
  function flushQueue() {
    while (ready && ws && queue.length) { ws.send(JSON.stringify(queue.shift())); }
  }
  function send(m, shown) {
    if (shown) { addUser(shown); }
    m.type = "message";
    m.id = "w" + Date.now().toString(36) + "-" + (counter++);
    queue.push(m);
    flushQueue();
    connect();
  }
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var text = input.value.trim();
    if (!text) { return; }
    input.value = "";
    send({ text: text }, text);
    input.focus();
  });

  window.ParleyChat = { open: openPanel, close: closePanel, send: function (t) { send({ text: String(t) }, String(t)); } };
  if (document.body) { mount(); } else { document.addEventListener("DOMContentLoaded", mount); }
})();
