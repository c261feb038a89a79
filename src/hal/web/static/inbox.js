// HAL inbox: live updates from the project's change stream (polling only while it is down),
// and keyboard shortcuts. No dependencies, no build step.
"use strict";

(function () {
  const POLL_MS = 3000; // only while the stream is disconnected
  const CHAT_CHANGES = ["message.created", "conversation.created", "conversation.closed", "conversation.reopened"];

  function formatTime(iso) {
    const date = new Date(iso);
    return date.toLocaleString(undefined, { month: "short", day: "2-digit", hour: "2-digit", minute: "2-digit" });
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function renderMessage(message) {
    const item = el("li", "message " + message.author);
    item.dataset.id = message.id;
    const meta = el("div", "meta");
    meta.appendChild(el("strong", "", message.author_name || (message.author === "visitor" ? "Visitor" : "Agent")));
    if (message.author === "visitor") {
      meta.appendChild(message.sender_verified ? el("span", "badge ok", "Verified") : el("span", "badge warn", "Unverified"));
    }
    const time = el("time", "", formatTime(message.created_at));
    time.setAttribute("datetime", message.created_at);
    meta.appendChild(time);
    item.appendChild(meta);
    item.appendChild(el("div", "body", message.body));
    return item;
  }

  async function refreshThread(list) {
    const id = list.dataset.conversation;
    try {
      const response = await fetch(`/inbox/conversations/${id}/messages.json?after=${list.dataset.last || 0}`, { credentials: "same-origin" });
      if (!response.ok) return false;
      const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
      for (const message of await response.json()) {
        if (list.querySelector(`[data-id="${message.id}"]`)) continue;
        list.appendChild(renderMessage(message));
        list.dataset.last = message.id;
      }
      if (nearBottom) list.scrollTop = list.scrollHeight;
      return true;
    } catch (error) {
      return false; // offline for a moment: the poll retries
    }
  }

  function renderSummary(item, status, selected) {
    const li = el("li", "conversation" + (String(item.id) === selected ? " selected" : ""));
    li.dataset.id = item.id;
    const a = el("a");
    a.href = `/inbox/conversations/${item.id}?status=${status}`;
    const contact = item.contact;
    a.appendChild(el("span", "who", contact ? (contact.name || contact.email || "Unnamed contact") : "Anonymous visitor"));
    a.appendChild(el("span", "when", formatTime(item.last_message_at)));
    if (contact && contact.email) a.appendChild(el("span", "email", contact.email));
    if (item.company) {
      a.appendChild(el("span", "company", (item.company.name || item.company.id) + (item.company.stage ? " · " + item.company.stage : "")));
    }
    a.appendChild(el("span", "snippet", item.last_message ? item.last_message.body.slice(0, 140) : ""));
    li.appendChild(a);
    return li;
  }

  async function refreshList(list, status) {
    try {
      const response = await fetch(`/inbox/conversations.json?status=${status}`, { credentials: "same-origin" });
      if (!response.ok) return false;
      const items = await response.json();
      if (items.length) {
        const selected = list.dataset.selected;
        list.replaceChildren(...items.map((item) => renderSummary(item, status, selected)));
      }
      return true;
    } catch (error) {
      return false; // the poll retries
    }
  }

  function moveSelection(step) {
    const items = Array.from(document.querySelectorAll("#conversation-list .conversation a"));
    if (!items.length) return;
    const current = items.findIndex((a) => a.parentElement.classList.contains("selected") || a === document.activeElement);
    const next = items[Math.min(items.length - 1, Math.max(0, current + step))];
    next.focus();
  }

  document.addEventListener("keydown", (event) => {
    const typing = ["TEXTAREA", "INPUT", "SELECT"].includes(event.target.tagName);
    if (typing) {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && event.target.form) {
        event.preventDefault();
        event.target.form.requestSubmit();
      } else if (event.key === "Escape") {
        event.target.blur();
      }
      return;
    }
    if (event.key === "j") moveSelection(1);
    else if (event.key === "k") moveSelection(-1);
    else if (event.key === "r") {
      const reply = document.getElementById("reply-body");
      if (reply) { event.preventDefault(); reply.focus(); }
    }
  });

  function live(thread, list, status) {
    let connected = false;
    let stale = false; // a refresh failed: the poll retries even while the stream is up
    const refresh = async (conversationId) => {
      const done = [];
      if (list) done.push(refreshList(list, status));
      if (thread && (conversationId === undefined || String(conversationId) === thread.dataset.conversation)) {
        done.push(refreshThread(thread));
      }
      stale = (await Promise.all(done)).includes(false);
    };
    // The browser reconnects by itself and sends Last-Event-ID: the server replays what the
    // page missed. While it is down, the page polls.
    const source = new EventSource("/inbox/stream");
    source.onopen = () => { connected = true; refresh(); };
    source.onerror = () => { connected = false; };
    for (const type of CHAT_CHANGES) {
      source.addEventListener(type, (event) => {
        const change = JSON.parse(event.data);
        refresh(change.data.conversation_id ?? change.data.id);
      });
    }
    const poll = () => {
      if (!connected || stale) refresh();
      setTimeout(poll, POLL_MS);
    };
    setTimeout(poll, POLL_MS);
  }

  document.addEventListener("DOMContentLoaded", () => {
    const thread = document.getElementById("messages");
    if (thread) thread.scrollTop = thread.scrollHeight;
    const shown = document.getElementById("conversation-list");
    // A filtered list, or a later page, is not redrawn by live updates (they list page one).
    const list = shown && shown.dataset.live !== "off" ? shown : null;
    const inbox = document.querySelector(".inbox");
    if (thread || (list && inbox)) live(thread, list, inbox ? inbox.dataset.status : "open");
  });
})();
