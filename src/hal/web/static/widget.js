/*! HAL widget SDK: window.HalWidget. Plain JavaScript, no dependencies, no build step. */
(function (window, document) {
  "use strict";

  var VERSION = "0.1.0";
  var METHODS = ["boot", "identify", "setProperties", "track", "setStage", "setDeal",
    "reset", "open", "close", "on", "getVisitorId", "sendMessage", "fetchMessages"];
  var RETRY_DELAYS_MS = [250, 500, 1000, 2000, 4000, 8000, 8000, 8000, 8000, 8000];
  var POLL_OPEN_MS = 3000;
  var POLL_CLOSED_MS = 15000;

  var existing = /** @type {any} */ (window.HalWidget); // the loader's stub, or a copy
  if (existing && existing.version) return; // loaded twice: keep the first

  // ---- state -------------------------------------------------------------------------------
  var config = { app_id: null, api_base: "" };
  var visitorId = null;
  var sessionToken = null;
  /** @type {Promise<unknown>} */
  var chain = Promise.resolve(); // every call waits for the one before: calls keep their order
  /** @type {Record<string, Array<(payload: any) => void>>} */
  var listeners = {};
  var ui = null;
  var seenMessageIds = {};
  var lastReadId = 0;
  var pollTimer = null;
  var stream = null; // the EventSource of this visitor's replies; polling only while it is down
  var streamOpen = false;
  // This visitor has a conversation it may read: only then can a reply come, so only then is
  // the stream followed (and polled while it is down). A visitor HAL has not met yet has no
  // stream at all (404 unknown_visitor).
  var conversing = false;

  function storageKey(name) { return "hal:" + config.app_id + ":" + name; }

  function load(name) {
    try { return window.localStorage.getItem(storageKey(name)); } catch (e) { return null; }
  }

  function store(name, value) {
    try {
      if (value === null) window.localStorage.removeItem(storageKey(name));
      else window.localStorage.setItem(storageKey(name), value);
    } catch (e) { /* private mode: keep it in memory only */ }
  }

  function setConversing(value) {
    conversing = value;
    store("conversing", value ? visitorId : null); // kept with the visitor it is about
  }

  function randomId(prefix) {
    if (window.crypto && window.crypto.randomUUID) return prefix + window.crypto.randomUUID();
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return prefix + Array.prototype.map.call(bytes, function (b) {
      return ("0" + b.toString(16)).slice(-2);
    }).join("");
  }

  function emit(name, payload) {
    (listeners[name] || []).slice().forEach(function (fn) {
      try { fn(payload); } catch (e) { if (window.console) window.console.error(e); }
    });
  }

  // ---- HTTP with retries -------------------------------------------------------------------
  /** @returns {import("./widget").HalError} */
  function HalError(code, message, status, field) {
    var error = /** @type {any} */ (new Error(message || code));
    error.name = "HalError";
    error.code = code;
    error.status = status;
    error.field = field || null;
    return error;
  }

  function sleep(ms) { return new Promise(function (resolve) { setTimeout(resolve, ms); }); }

  // Network errors and 5xx are retried with backoff; a 4xx is final (retrying cannot help).
  function request(method, path, body, attempt) {
    attempt = attempt || 0;
    var headers = { "Accept": "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (sessionToken) headers["Authorization"] = "Bearer " + sessionToken;
    var payload = typeof body === "function" ? body() : body;
    return window.fetch(config.api_base + path, {
      method: method,
      headers: headers,
      body: payload === undefined ? undefined : JSON.stringify(payload),
      mode: "cors",
      credentials: "omit"
    }).then(function (response) {
      return response.json().catch(function () { return null; }).then(function (data) {
        if (response.ok) return data;
        var error = (data && data.error) || {};
        if (response.status >= 500 && attempt < RETRY_DELAYS_MS.length) {
          return sleep(RETRY_DELAYS_MS[attempt]).then(function () {
            return request(method, path, body, attempt + 1);
          });
        }
        throw HalError(error.code || "http_" + response.status, error.message, response.status,
          error.field);
      });
    }, function (networkError) {
      if (attempt < RETRY_DELAYS_MS.length) {
        return sleep(RETRY_DELAYS_MS[attempt]).then(function () {
          return request(method, path, body, attempt + 1);
        });
      }
      throw HalError("network_error", String(networkError && networkError.message || networkError), 0);
    });
  }

  /**
   * @template T
   * @param {() => T | PromiseLike<T>} work
   * @returns {Promise<T>}
   */
  function enqueue(work) {
    var result = chain.then(work);
    chain = result.catch(function () { /* a failed call does not block the next one */ });
    result.catch(function (error) { emit("error", error); });
    return result;
  }

  function requireBoot() {
    if (!config.app_id) throw HalError("not_booted", "call HalWidget.boot({app_id}) first", 0);
  }

  function base(extra) {
    var body = { app_id: config.app_id, visitor_id: visitorId };
    for (var key in extra) if (Object.prototype.hasOwnProperty.call(extra, key)) body[key] = extra[key];
    return body;
  }

  function omitUndefined(object) {
    var out = {};
    for (var key in object) {
      if (Object.prototype.hasOwnProperty.call(object, key) && object[key] !== undefined) out[key] = object[key];
    }
    return out;
  }

  // ---- public API (typed by widget.d.ts: `tsc --checkJs` holds one to the other) -------------
  /** @type {import("./widget").HalWidgetApi} */
  var api = {
    version: VERSION,

    boot: function (options) {
      if (!options || !options.app_id) return Promise.reject(HalError("missing_field", "boot needs app_id", 0, "app_id"));
      config.app_id = options.app_id;
      config.api_base = (options.api_base || "").replace(/\/+$/, "");
      visitorId = load("visitor_id");
      if (!visitorId) { visitorId = randomId("v_"); store("visitor_id", visitorId); }
      sessionToken = load("session_token");
      conversing = load("conversing") === visitorId;
      if (options.poll_ms) POLL_OPEN_MS = options.poll_ms;
      if (options.idle_poll_ms) POLL_CLOSED_MS = options.idle_poll_ms;
      if (options.launcher !== false) {
        if (document.body) mountLauncher();
        else document.addEventListener("DOMContentLoaded", mountLauncher);
      }
      emit("ready", { visitor_id: visitorId });
      return Promise.resolve({ visitor_id: visitorId });
    },

    identify: function (data) {
      return enqueue(function () {
        requireBoot();
        return request("POST", "/api/widget/identify", base(data || {})).then(function (answer) {
          sessionToken = answer.session_token;
          store("session_token", sessionToken);
          emit("identify", answer);
          if (conversing) { // the new session may read other conversations, or none
            closeStream();
            api.fetchMessages().catch(function () { /* the next poll asks again */ });
          }
          return answer;
        });
      });
    },

    setProperties: function (properties) {
      return enqueue(function () {
        requireBoot();
        return request("POST", "/api/widget/set-properties", base({ properties: properties || {} }));
      });
    },

    track: function (event, properties, options) {
      options = options || {};
      // Fixed at the call: a retry sends the same event_id and occurred_at, so it lands once.
      var eventId = options.event_id || randomId("evt_");
      var occurredAt = options.occurred_at || new Date().toISOString();
      return enqueue(function () {
        requireBoot();
        return request("POST", "/api/widget/track", function () {
          return base(omitUndefined({
            event: event,
            properties: properties || {},
            company_id: options.company_id,
            scope: options.scope,
            event_id: eventId,
            occurred_at: occurredAt,
            sent_at: new Date().toISOString()
          }));
        });
      });
    },

    setStage: function (stage, options) {
      options = options || {};
      return enqueue(function () {
        requireBoot();
        return request("POST", "/api/widget/set-stage", base(omitUndefined({
          stage: stage, company_id: options.company_id, stage_mode: options.stage_mode
        })));
      });
    },

    setDeal: function (deal, options) {
      options = options || {};
      return enqueue(function () {
        requireBoot();
        return request("POST", "/api/widget/set-deal", base(omitUndefined({
          deal: deal, company_id: options.company_id
        })));
      });
    },

    // Log out: a new anonymous visitor, the session token dropped, the chat emptied.
    reset: function () {
      return enqueue(function () {
        requireBoot();
        visitorId = randomId("v_");
        store("visitor_id", visitorId);
        sessionToken = null;
        store("session_token", null);
        closeStream();
        setConversing(false);
        seenMessageIds = {};
        lastReadId = 0;
        if (ui) { ui.list.textContent = ""; updateBadge(0); }
        emit("reset", { visitor_id: visitorId });
        return { visitor_id: visitorId };
      });
    },

    open: function () { mountLauncher(); setOpen(true); return Promise.resolve(); },
    close: function () { if (ui) setOpen(false); return Promise.resolve(); },

    on: function (name, fn) {
      (listeners[name] = listeners[name] || []).push(fn);
      return function off() {
        listeners[name] = (listeners[name] || []).filter(function (f) { return f !== fn; });
      };
    },

    getVisitorId: function () { return visitorId; },

    sendMessage: function (body) {
      return enqueue(function () {
        requireBoot();
        return request("POST", "/api/widget/messages", base({ body: body })).then(function (answer) {
          renderMessages([answer.message], answer.conversation.id);
          setConversing(true);
          if (!stream) connectStream();
          return answer;
        });
      });
    },

    fetchMessages: function () {
      requireBoot();
      var path = "/api/widget/messages?app_id=" + encodeURIComponent(config.app_id) +
        "&visitor_id=" + encodeURIComponent(visitorId);
      var asked = visitorId;
      return request("GET", path).then(function (answer) {
        if (visitorId !== asked) return answer; // reset meanwhile: about a visitor gone
        setConversing(answer.conversations.length > 0);
        if (answer.conversation) renderMessages(answer.conversation.messages, answer.conversation.id);
        if (!stream) connectStream();
        return answer;
      });
    }
  };

  // ---- the chat bubble (Shadow DOM: the host page's CSS cannot reach in, ours cannot leak) --
  var STYLE = [
    ":host { all: initial; }",
    ".launcher { position: fixed; right: 20px; bottom: 20px; width: 56px; height: 56px; border-radius: 50%;",
    "  border: 0; background: #3b5bdb; color: #fff; font: 600 24px/56px system-ui, sans-serif; cursor: pointer;",
    "  box-shadow: 0 4px 16px rgba(0,0,0,.2); z-index: 2147483000; }",
    ".badge { position: absolute; top: -4px; right: -4px; min-width: 20px; height: 20px; border-radius: 10px;",
    "  background: #e03131; color: #fff; font: 600 12px/20px system-ui, sans-serif; text-align: center; padding: 0 5px; }",
    ".badge[hidden] { display: none; }",
    ".panel { position: fixed; right: 20px; bottom: 88px; width: 340px; max-width: calc(100vw - 40px); height: 460px;",
    "  max-height: calc(100vh - 120px); background: #fff; color: #1d2330; border-radius: 12px; display: flex;",
    "  flex-direction: column; box-shadow: 0 8px 32px rgba(0,0,0,.2); font: 14px/1.4 system-ui, sans-serif;",
    "  z-index: 2147483000; overflow: hidden; }",
    ".panel[hidden] { display: none; }",
    ".head { padding: 14px 16px; background: #3b5bdb; color: #fff; font-weight: 600; }",
    ".list { flex: 1; overflow-y: auto; padding: 12px; margin: 0; list-style: none; display: flex; flex-direction: column; gap: 8px; }",
    ".msg { max-width: 80%; padding: 8px 10px; border-radius: 10px; white-space: pre-wrap; overflow-wrap: anywhere; }",
    ".msg.visitor { align-self: flex-end; background: #3b5bdb; color: #fff; }",
    ".msg.agent { align-self: flex-start; background: #f1f3f5; }",
    "form { display: flex; gap: 6px; padding: 10px; border-top: 1px solid #e9ecef; margin: 0; }",
    "textarea { flex: 1; resize: none; font: inherit; padding: 8px; border: 1px solid #dee2e6; border-radius: 8px; height: 40px; }",
    "button.send { border: 0; background: #3b5bdb; color: #fff; border-radius: 8px; padding: 0 14px; font: inherit; cursor: pointer; }"
  ].join("\n");

  function mountLauncher() {
    if (ui || !document.body) return;
    var host = document.createElement("div");
    host.id = "hal-widget";
    var root = host.attachShadow({ mode: "open" });
    root.innerHTML = "<style>" + STYLE + "</style>" +
      '<button class="launcher" part="launcher" aria-label="Open chat">?<span class="badge" hidden>0</span></button>' +
      '<section class="panel" role="dialog" aria-label="Chat" hidden><div class="head">Chat with us</div>' +
      '<ol class="list" aria-live="polite"></ol><form><textarea aria-label="Message" placeholder="Write a message…"></textarea>' +
      '<button class="send" type="submit">Send</button></form></section>';
    document.body.appendChild(host);
    ui = {
      host: host,
      launcher: root.querySelector(".launcher"),
      badge: root.querySelector(".badge"),
      panel: root.querySelector(".panel"),
      list: root.querySelector(".list"),
      form: root.querySelector("form"),
      input: root.querySelector("textarea"),
      open: false
    };
    ui.launcher.addEventListener("click", function () { setOpen(!ui.open); });
    ui.form.addEventListener("submit", function (event) {
      event.preventDefault();
      var text = ui.input.value;
      if (!text.trim()) return;
      ui.input.value = "";
      api.sendMessage(text);
    });
    ui.input.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); ui.form.requestSubmit(); }
    });
    connectStream();
    schedulePoll();
  }

  function setOpen(open) {
    if (!ui) return;
    ui.open = open;
    ui.panel.hidden = !open;
    ui.launcher.setAttribute("aria-label", open ? "Close chat" : "Open chat");
    if (open) { markRead(); ui.input.focus(); }
    emit(open ? "open" : "close", {});
    if (open && !conversing && config.app_id) {
      // Conversations started elsewhere (a verified contact's other devices) show when the
      // visitor looks; until it has one, nothing is polled.
      api.fetchMessages().catch(function () { /* nothing to show */ });
    }
    schedulePoll(0);
  }

  // An agent's reply as the `message` event gives it, however it came (a stream's change
  // carries more than the message).
  function reply(message, conversationId) {
    return { id: message.id, conversation_id: conversationId, author: message.author,
      author_name: message.author_name, body: message.body,
      sender_verified: message.sender_verified, created_at: message.created_at };
  }

  function renderMessages(messages, conversationId) {
    if (!ui) return;
    var fresh = 0;
    messages.forEach(function (message) {
      if (seenMessageIds[message.id]) return;
      seenMessageIds[message.id] = true;
      var item = document.createElement("li");
      item.className = "msg " + message.author;
      item.textContent = message.body;
      ui.list.appendChild(item);
      if (message.author === "agent" && message.id > lastReadId) {
        fresh += 1;
        emit("message", reply(message, conversationId));
      }
    });
    ui.list.scrollTop = ui.list.scrollHeight;
    if (ui.open) markRead();
    else if (fresh) updateBadge(Number(ui.badge.textContent || 0) + fresh);
  }

  function markRead() {
    Object.keys(seenMessageIds).forEach(function (id) { lastReadId = Math.max(lastReadId, Number(id)); });
    updateBadge(0);
  }

  function updateBadge(count) {
    if (!ui) return;
    ui.badge.textContent = String(count);
    ui.badge.hidden = count === 0;
  }

  function schedulePoll(delay) {
    if (pollTimer) clearTimeout(pollTimer);
    var wait = delay !== undefined ? delay : (ui && ui.open ? POLL_OPEN_MS : POLL_CLOSED_MS);
    pollTimer = setTimeout(function () {
      if (!config.app_id || !conversing || document.hidden || streamOpen) {
        schedulePoll();
        return;
      }
      // The answer says whether the visitor still has a conversation, and (re)opens the
      // stream when it does.
      api.fetchMessages().catch(function () { /* next tick */ }).then(function () {
        schedulePoll();
      });
    }, wait);
  }

  // Agent replies arrive as they are written; the browser reconnects by itself and resumes
  // with Last-Event-ID. A stream the server refuses (too many, a session that ended) is tried
  // again after the next poll.
  function connectStream() {
    closeStream();
    if (!config.app_id || !window.EventSource || !ui || !conversing) return;
    var url = config.api_base + "/api/widget/stream?app_id=" + encodeURIComponent(config.app_id) +
      "&visitor_id=" + encodeURIComponent(visitorId) +
      (sessionToken ? "&session_token=" + encodeURIComponent(sessionToken) : "");
    var source = new window.EventSource(url);
    stream = source;
    source.onopen = function () {
      streamOpen = true;
      api.fetchMessages().catch(function () { /* the stream carries what follows */ });
    };
    source.onerror = function () {
      streamOpen = false;
      if (source.readyState === 2 && stream === source) stream = null; // refused: poll, retry
    };
    source.addEventListener("message.created", function (event) {
      try {
        var message = JSON.parse(event.data).data;
        renderMessages([message], message.conversation_id);
      } catch (e) { /* ignore a bad event */ }
    });
  }

  function closeStream() {
    if (stream) stream.close();
    stream = null;
    streamOpen = false;
  }

  // ---- replay what the loader snippet queued before this script arrived ---------------------
  var queued = (existing && existing._q) || [];
  window.HalWidget = api;
  queued.forEach(function (entry) {
    var method = entry[0], args = entry[1], resolve = entry[2], reject = entry[3];
    var result;
    try {
      result = METHODS.indexOf(method) >= 0 ? api[method].apply(api, args) : Promise.reject(
        HalError("unknown_method", "HalWidget has no method " + method, 0));
    } catch (error) {
      result = Promise.reject(error);
    }
    Promise.resolve(result).then(resolve, reject);
  });
})(window, document);
