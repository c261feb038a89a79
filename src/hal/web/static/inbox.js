// HAL inbox: live updates by polling, and keyboard shortcuts. No dependencies, no build step.
"use strict";

(function () {
  const POLL_THREAD_MS = 2000;
  const POLL_LIST_MS = 5000;

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

  async function pollThread(list) {
    const id = list.dataset.conversation;
    try {
      const response = await fetch(`/inbox/conversations/${id}/messages.json?after=${list.dataset.last || 0}`, { credentials: "same-origin" });
      if (response.ok) {
        const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
        for (const message of await response.json()) {
          if (list.querySelector(`[data-id="${message.id}"]`)) continue;
          list.appendChild(renderMessage(message));
          list.dataset.last = message.id;
        }
        if (nearBottom) list.scrollTop = list.scrollHeight;
      }
    } catch (error) { /* offline for a moment: try again on the next tick */ }
    setTimeout(() => pollThread(list), POLL_THREAD_MS);
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

  async function pollList(list, status) {
    try {
      const response = await fetch(`/inbox/conversations.json?status=${status}`, { credentials: "same-origin" });
      if (response.ok) {
        const items = await response.json();
        if (items.length) {
          const selected = list.dataset.selected;
          list.replaceChildren(...items.map((item) => renderSummary(item, status, selected)));
        }
      }
    } catch (error) { /* try again later */ }
    setTimeout(() => pollList(list, status), POLL_LIST_MS);
  }

  function moveSelection(step) {
    const items = Array.from(document.querySelectorAll("#conversation-list .conversation a"));
    if (!items.length) return;
    const current = items.findIndex((a) => a.parentElement.classList.contains("selected") || a === document.activeElement);
    const next = items[Math.min(items.length - 1, Math.max(0, current + step))];
    next.focus();
  }

  document.addEventListener("keydown", (event) => {
    const typing = ["TEXTAREA", "INPUT"].includes(event.target.tagName);
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

  document.addEventListener("DOMContentLoaded", () => {
    const thread = document.getElementById("messages");
    if (thread) {
      thread.scrollTop = thread.scrollHeight;
      setTimeout(() => pollThread(thread), POLL_THREAD_MS);
    }
    const list = document.getElementById("conversation-list");
    const inbox = document.querySelector(".inbox");
    if (list && inbox) setTimeout(() => pollList(list, inbox.dataset.status), POLL_LIST_MS);
  });
})();
