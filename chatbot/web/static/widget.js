/*
 * chatbot widget: <script src="https://HOST/widget.js" data-site-key="KEY" async></script>
 * Optional: data-user-token="<id>.<expiry>.<hmac>" (signed by the host site with the site
 * secret) keeps a signed-in host user's identity; data-title="..." sets the panel title.
 * A <chatbot-widget> custom element with a shadow root: a bubble that opens a chat panel.
 * Answers stream from POST /api/chat (fetch + ReadableStream, Server-Sent Events). Model output
 * is untrusted: HTML is escaped first, then a tiny markdown subset is applied; no images at all,
 * links only http(s) with rel="noopener noreferrer". No cookies are sent (credentials: "omit").
 * After an answer, its recommendations appear as chips (plain text, never HTML): clicking one
 * asks its "ask" text (a follow-up question, or "Tell me about <document>"). Opening a cited
 * source reports it to POST /api/citations/open, which teaches the visitor's profile.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.customElements.get("chatbot-widget")) { return; }
  var SITE_KEY = script.getAttribute("data-site-key") || "";
  var USER_TOKEN = script.getAttribute("data-user-token") || "";
  var TITLE = script.getAttribute("data-title") || "Ask a question";
  var API = new URL(script.src, location.href).origin;
  var STORE = "chatbot-widget:" + API + ":" + SITE_KEY;
  var REASONS = [["wrong", "Wrong"], ["incomplete", "Incomplete"], ["not_relevant", "Not relevant"],
    ["bad_citation", "Bad citation"], ["too_long", "Too long"], ["other", "Other"]];

  function escapeHtml(text) {
    return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;").replace(/'/g, "&#39;");
  }

  function inline(text) {
    var codes = [];
    // backslash escapes, as in CommonMark: "\*" is a literal star, not emphasis
    text = text.replace(/\\([\\`*_\[\]()#|~!-])/g, function (_, c) { return "&#" + c.charCodeAt(0) + ";"; });
    var html = text.replace(/`([^`\n]+)`/g, function (_, code) {
      codes.push(code);
      return "\u0001" + (codes.length - 1) + "\u0001";
    });
    html = html.replace(/!\[([^\]]*)\]\([^)]*\)/g, "$1");  // images: alt text only
    html = html.replace(/\[([^\]\n]+)\]\((https?:\/\/[^\s)]+)\)/g, function (_, label, url) {
      return '<a href="' + url + '" target="_blank" rel="noopener noreferrer nofollow">' + label + "</a>";
    });
    html = html.replace(/\*\*([^*\n]+)\*\*/g, "<strong>$1</strong>");
    html = html.replace(/(^|[^*\w])\*([^*\n]+)\*/g, "$1<em>$2</em>");
    html = html.replace(/\[(\d{1,2})\]/g, '<sup class="cite">[$1]</sup>');
    return html.replace(/\u0001(\d+)\u0001/g, function (_, i) { return "<code>" + codes[+i] + "</code>"; });
  }

  /* Escape everything, then allow paragraphs, headings (as bold lines), lists, bold, italic,
     inline code, http(s) links and citation markers. Exported for tests as ChatbotWidget.render. */
  function renderMarkdown(text) {
    var lines = escapeHtml(text).split(/\r?\n/);
    var out = [], list = null, para = [];
    function flush() {
      if (para.length) { out.push("<p>" + para.map(inline).join("<br>") + "</p>"); para = []; }
      if (list) { out.push("</" + list + ">"); list = null; }
    }
    lines.forEach(function (line) {
      var bullet = /^\s*[-*+]\s+(.*)$/.exec(line), numbered = /^\s*\d+[.)]\s+(.*)$/.exec(line);
      var heading = /^\s*#{1,6}\s+(.*)$/.exec(line);
      if (bullet || numbered) {
        if (para.length) { out.push("<p>" + para.map(inline).join("<br>") + "</p>"); para = []; }
        var kind = bullet ? "ul" : "ol";
        if (list !== kind) { if (list) { out.push("</" + list + ">"); } out.push("<" + kind + ">"); list = kind; }
        out.push("<li>" + inline((bullet || numbered)[1]) + "</li>");
      } else if (heading) {
        flush(); out.push('<p class="h">' + inline(heading[1]) + "</p>");
      } else if (!line.trim()) {
        flush();
      } else {
        if (list) { out.push("</" + list + ">"); list = null; }
        para.push(line);
      }
    });
    flush();
    return out.join("");
  }

  function load() {
    try { return JSON.parse(localStorage.getItem(STORE) || "{}") || {}; } catch (e) { return {}; }
  }
  function save(state) {
    try { localStorage.setItem(STORE, JSON.stringify(state)); } catch (e) { /* private mode */ }
  }
  function headers(state, json) {
    var h = { "X-Site-Key": SITE_KEY };
    if (json) { h["Content-Type"] = "application/json"; }
    if (USER_TOKEN) { h["X-User-Token"] = USER_TOKEN; } else if (state.visitor) { h["X-Visitor-Token"] = state.visitor; }
    return h;
  }
  function errorText(status, body, retryAfter) {
    var message = body && body.error && body.error.message;
    if (status === 429) { return "Too many questions right now. Please try again in " + (retryAfter || "a few") + " s."; }
    if (status === 503) { return "The assistant is busy. Please try again in " + (retryAfter || "a few") + " s."; }
    return message || ("The assistant could not answer (error " + status + ").");
  }

  var CSS = [
    ":host{all:initial;position:fixed;right:20px;bottom:20px;z-index:2147483000;font:14px/1.45 system-ui,-apple-system,'Segoe UI','Noto Sans','Noto Sans CJK SC','WenQuanYi Zen Hei','PingFang SC','Microsoft YaHei',sans-serif;color:#1f2937}",
    ".bubble{width:56px;height:56px;border-radius:50%;border:0;background:#4f46e5;color:#fff;cursor:pointer;box-shadow:0 6px 20px rgba(0,0,0,.25);display:grid;place-items:center}",
    ".bubble svg{width:28px;height:28px}",
    ".panel{position:absolute;right:0;bottom:70px;width:min(380px,calc(100vw - 40px));height:min(560px,calc(100vh - 110px));background:#fff;border-radius:14px;box-shadow:0 10px 40px rgba(0,0,0,.25);display:flex;flex-direction:column;overflow:hidden}",
    ".panel[hidden]{display:none}",
    "header{display:flex;align-items:center;justify-content:space-between;padding:12px 14px;background:#4f46e5;color:#fff;font-weight:600}",
    "header button{background:none;border:0;color:#fff;font-size:20px;cursor:pointer;line-height:1}",
    ".log{flex:1;overflow-y:auto;padding:12px;display:flex;flex-direction:column;gap:10px;background:#f9fafb}",
    ".msg{max-width:88%;padding:8px 11px;border-radius:12px;word-wrap:break-word;overflow-wrap:anywhere}",
    ".user{align-self:flex-end;background:#4f46e5;color:#fff;white-space:pre-wrap}",
    ".bot{align-self:flex-start;background:#fff;border:1px solid #e5e7eb}",
    ".bot p{margin:0 0 .5em}.bot p:last-child{margin-bottom:0}.bot .h{font-weight:700}.bot ul,.bot ol{margin:0 0 .5em;padding-left:1.3em}",
    ".bot code{background:#f3f4f6;padding:0 3px;border-radius:4px}.bot a{color:#4338ca}",
    ".cite{color:#4338ca;font-size:.75em}",
    ".error{align-self:stretch;background:#fef2f2;color:#991b1b;border:1px solid #fecaca}",
    "details{margin-top:6px;font-size:.9em}summary{cursor:pointer;color:#4b5563}",
    "details ol{margin:4px 0 0;padding-left:1.3em}blockquote{margin:2px 0 6px;padding-left:8px;border-left:3px solid #c7d2fe;color:#4b5563}",
    ".rate{display:flex;gap:6px;margin-top:6px;align-items:center;flex-wrap:wrap}",
    ".rate button{border:1px solid #d1d5db;background:#fff;border-radius:6px;cursor:pointer;padding:2px 8px;font:inherit}",
    ".rate button[aria-pressed=true]{background:#eef2ff;border-color:#6366f1}",
    ".rate select,.rate input{font:inherit;padding:2px 4px;border:1px solid #d1d5db;border-radius:6px}",
    ".thanks{color:#047857;font-size:.85em}",
    ".chips{display:flex;flex-wrap:wrap;gap:6px;align-items:center;align-self:stretch;font-size:.85em;color:#4b5563}",
    ".chips button{border:1px solid #c7d2fe;background:#eef2ff;color:#3730a3;border-radius:14px;padding:3px 10px;font:inherit;cursor:pointer;text-align:left}",
    ".chips button:hover{background:#e0e7ff}",
    "details.source{margin:0}details.source summary{color:#1f2937}",
    "form{display:flex;gap:8px;padding:10px;border-top:1px solid #e5e7eb;background:#fff}",
    "textarea{flex:1;resize:none;height:40px;padding:8px;border:1px solid #d1d5db;border-radius:8px;font:inherit}",
    "form button{border:0;border-radius:8px;background:#4f46e5;color:#fff;padding:0 14px;font:inherit;font-weight:600;cursor:pointer}",
    "form button:disabled{opacity:.5;cursor:default}"
  ].join("\n");
  var ICON = '<svg viewBox="0 0 24 24" fill="currentColor" aria-hidden="true"><path d="M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z"/></svg>';

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  class ChatbotWidget extends HTMLElement {
    constructor() {
      super();
      this.state = load();
      var root = this.attachShadow({ mode: "open" });
      var style = el("style"); style.textContent = CSS;
      this.bubble = el("button", "bubble"); this.bubble.type = "button";
      this.bubble.setAttribute("aria-label", TITLE); this.bubble.innerHTML = ICON;
      this.panel = el("section", "panel"); this.panel.hidden = true;
      this.panel.setAttribute("aria-label", TITLE);
      var header = el("header"); header.appendChild(el("span", "", TITLE));
      var close = el("button", "", "×"); close.type = "button"; close.setAttribute("aria-label", "Close");
      header.appendChild(close);
      this.log = el("div", "log"); this.log.setAttribute("aria-live", "polite");
      this.form = el("form");
      this.input = el("textarea"); this.input.placeholder = "Type your question… 可以用中文提问";
      this.input.maxLength = 4000;
      this.send = el("button", "", "Send"); this.send.type = "submit";
      this.form.appendChild(this.input); this.form.appendChild(this.send);
      this.panel.appendChild(header); this.panel.appendChild(this.log); this.panel.appendChild(this.form);
      root.appendChild(style); root.appendChild(this.panel); root.appendChild(this.bubble);
      var self = this;
      this.bubble.addEventListener("click", function () { self.toggle(); });
      close.addEventListener("click", function () { self.toggle(false); });
      this.form.addEventListener("submit", function (e) { e.preventDefault(); self.ask(); });
      this.input.addEventListener("keydown", function (e) {
        if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); self.ask(); }
      });
    }

    toggle(open) {
      var show = open === undefined ? this.panel.hidden : open;
      this.panel.hidden = !show;
      if (show) { this.input.focus(); if (!this.loaded) { this.loaded = true; this.history(); } }
    }

    history() {
      var self = this, state = this.state;
      if (!state.conversation || (!state.visitor && !USER_TOKEN)) { return; }
      fetch(API + "/api/conversations/" + encodeURIComponent(state.conversation) + "/messages", {
        headers: headers(state, false), credentials: "omit", mode: "cors"
      }).then(function (r) {
        if (!r.ok) { delete self.state.conversation; save(self.state); return null; }
        return r.json();
      }).then(function (body) {
        if (!body) { return; }
        body.messages.forEach(function (m) {
          if (m.role === "user") { self.add("user", m.content); return; }
          var node = self.add("bot", "");
          self.finish(node, m.content, m.citations, m.id, m.rating);
        });
      }).catch(function () { /* offline: start fresh */ });
    }

    add(kind, text) {
      var node = el("div", "msg " + kind, kind === "user" || kind === "error" ? text : undefined);
      this.log.appendChild(node);
      this.log.scrollTop = this.log.scrollHeight;
      return node;
    }

    ask() {
      var question = this.input.value.trim();
      if (!question || this.busy) { return; }
      this.busy = true; this.send.disabled = true; this.input.value = "";
      this.suggest([]);
      this.add("user", question);
      var node = this.add("bot", ""), self = this, answer = "";
      node.textContent = "…";
      var payload = { message: question };
      if (this.state.conversation) { payload.conversation_id = this.state.conversation; }
      fetch(API + "/api/chat", {
        method: "POST", mode: "cors", credentials: "omit",
        headers: headers(this.state, true), body: JSON.stringify(payload)
      }).then(function (response) {
        if (!response.ok) {
          return response.json().catch(function () { return null; }).then(function (body) {
            throw new Error(errorText(response.status, body, response.headers.get("Retry-After")));
          });
        }
        return self.read(response.body.getReader(), function (event, data) {
          if (event === "queue") {
            node.textContent = "Waiting in line (" + data.waiting + " ahead, about " + data.estimated_wait_s + " s)…";
          } else if (event === "token") { answer += data.text; node.innerHTML = renderMarkdown(answer); }
          else if (event === "done") {
            if (data.visitor_token) { self.state.visitor = data.visitor_token; }
            self.state.conversation = data.conversation_id; save(self.state);
            self.finish(node, data.answer, data.citations, data.message_id, null);
            self.suggest(data.recommendations);
          } else if (event === "error") { throw new Error(data.error.message); }
          self.log.scrollTop = self.log.scrollHeight;
        });
      }).catch(function (err) {
        node.remove();
        var text = err instanceof TypeError
          ? "The chat is not available on this site (the server refused this page or cannot be reached)."
          : err.message;
        self.add("error", text).setAttribute("role", "alert");
      }).finally(function () { self.busy = false; self.send.disabled = false; });
    }

    read(reader, onEvent) {
      var decoder = new TextDecoder(), buffer = "";
      function pump() {
        return reader.read().then(function (chunk) {
          if (chunk.done) { return; }
          buffer += decoder.decode(chunk.value, { stream: true });
          var frames = buffer.split("\n\n");
          buffer = frames.pop();
          frames.forEach(function (frame) {
            var event = "message", data = "";
            frame.split("\n").forEach(function (line) {
              if (line.indexOf("event:") === 0) { event = line.slice(6).trim(); }
              else if (line.indexOf("data:") === 0) { data += line.slice(5).trim(); }
            });
            if (data) { onEvent(event, JSON.parse(data)); }
          });
          return pump();
        });
      }
      return pump();
    }

    finish(node, answer, citations, messageId, rating) {
      var self = this;
      node.innerHTML = renderMarkdown(answer);
      if (citations && citations.length) {
        var details = el("details"), list = el("ol");
        details.appendChild(el("summary", "", "Sources (" + citations.length + ")"));
        citations.forEach(function (c) {
          var item = el("li"), source = el("details", "source"), summary = el("summary");
          summary.appendChild(el("strong", "", c.title || c.source));
          source.appendChild(summary);
          source.appendChild(el("blockquote", "", c.quote));
          source.addEventListener("toggle", function () {
            if (source.open && messageId && c.chunk_id) { self.opened(messageId, c.chunk_id); }
          });
          item.appendChild(source); list.appendChild(item);
        });
        details.appendChild(list); node.appendChild(details);
      }
      if (messageId) { node.appendChild(this.thumbs(messageId, rating)); }
    }

    opened(messageId, chunkId) {
      var key = messageId + " " + chunkId;
      this.reported = this.reported || {};
      if (this.reported[key]) { return; }
      this.reported[key] = true;
      fetch(API + "/api/citations/open", {
        method: "POST", mode: "cors", credentials: "omit", headers: headers(this.state, true),
        body: JSON.stringify({ message_id: messageId, chunk_id: chunkId })
      }).catch(function () { /* learning is best effort */ });
    }

    /* Recommendation chips under the latest answer (text only; [] removes them). */
    suggest(recommendations) {
      var self = this;
      if (this.chips) { this.chips.remove(); this.chips = null; }
      var recs = (recommendations || []).filter(function (r) { return r && r.ask && r.text; });
      if (!recs.length) { return; }
      this.chips = el("div", "chips");
      this.chips.setAttribute("aria-label", "Suggestions");
      this.chips.appendChild(el("span", "", "Suggested:"));
      recs.forEach(function (r) {
        var chip = el("button", "", (r.kind === "question" ? "💬 " : "📄 ") + r.text);
        chip.type = "button";
        if (r.reason) { chip.title = r.reason; }
        chip.addEventListener("click", function () {
          if (self.busy) { return; }
          self.input.value = String(r.ask);
          self.ask();
        });
        self.chips.appendChild(chip);
      });
      this.log.appendChild(this.chips);
      this.log.scrollTop = this.log.scrollHeight;
    }

    thumbs(messageId, rating) {
      var self = this, row = el("div", "rate"), note = el("span", "thanks");
      var up = el("button", "", "👍"), down = el("button", "", "👎");
      up.type = down.type = "button";
      up.setAttribute("aria-label", "Helpful"); down.setAttribute("aria-label", "Not helpful");
      up.setAttribute("aria-pressed", String(rating === "up"));
      down.setAttribute("aria-pressed", String(rating === "down"));
      var reason = el("select"); reason.hidden = true; reason.setAttribute("aria-label", "Reason");
      reason.appendChild(el("option", "", "Why? (optional)")).value = "";
      REASONS.forEach(function (r) { reason.appendChild(el("option", "", r[1])).value = r[0]; });
      var comment = el("input"); comment.hidden = true; comment.placeholder = "Comment (optional)";
      comment.maxLength = 2000;
      var submit = el("button", "", "Send"); submit.type = "button"; submit.hidden = true;
      // Ratings of one answer are sent one after another: the server keeps the last one it
      // receives, so a quick 👎 then "Send" must not race. Only the latest click's outcome shows.
      var queue = Promise.resolve(), sent = 0;
      function rate(value, withDetails) {
        var body = { message_id: messageId, rating: value }, mine = ++sent;
        if (withDetails) { body.reason = reason.value || null; body.comment = comment.value || null; }
        note.textContent = "Saving…";
        function send() {
          return fetch(API + "/api/feedback", {
            method: "POST", mode: "cors", credentials: "omit",
            headers: headers(self.state, true), body: JSON.stringify(body)
          }).then(function (r) {
            if (mine !== sent) { return; }
            up.setAttribute("aria-pressed", String(value === "up"));
            down.setAttribute("aria-pressed", String(value === "down"));
            note.textContent = r.ok ? "Thanks!" : "Could not save the rating.";
          }).catch(function () { if (mine === sent) { note.textContent = "Could not save the rating."; } });
        }
        queue = queue.then(send, send);
        return queue;
      }
      up.addEventListener("click", function () {
        reason.hidden = comment.hidden = submit.hidden = true; rate("up", false);
      });
      down.addEventListener("click", function () {
        reason.hidden = comment.hidden = submit.hidden = false; rate("down", false);
      });
      submit.addEventListener("click", function () {
        rate("down", true).then(function () { reason.hidden = comment.hidden = submit.hidden = true; });
      });
      [up, down, reason, comment, submit, note].forEach(function (n) { row.appendChild(n); });
      return row;
    }
  }

  window.customElements.define("chatbot-widget", ChatbotWidget);
  window.ChatbotWidget = { render: renderMarkdown };
  function mount() { document.body.appendChild(document.createElement("chatbot-widget")); }
  if (document.body) { mount(); } else { document.addEventListener("DOMContentLoaded", mount); }
})();
