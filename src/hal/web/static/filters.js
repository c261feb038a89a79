// HAL inbox: the filter builder of the conversation list and the contacts and companies pages.
// It reads the fields and the applied filter from the page's JSON blocks, builds a query of the
// search language (README "Search with filters"), shows how many records it finds as it
// changes, and applies it through the URL (?filter=), so a filtered list can be bookmarked.
// Every control is a native button, select or input: the keyboard alone builds a filter.
"use strict";

(function () {
  const NOUNS = {
    contacts: ["contact", "contacts"],
    companies: ["company", "companies"],
    conversations: ["conversation", "conversations"],
  };
  // The operators the builder offers for each type, in readable words.
  const OFFERED = {
    string: [["=", "is"], ["!=", "is not"], ["~", "contains"], ["!~", "does not contain"],
      ["^", "starts with"], ["$", "ends with"], ["IN", "is any of"], ["NIN", "is none of"]],
    number: [["=", "equals"], ["!=", "does not equal"], [">", "greater than"], ["<", "less than"],
      [">=", "at least"], ["<=", "at most"], ["IN", "is any of"], ["NIN", "is none of"]],
    date: [[">", "after"], ["<", "before"], [">=", "on or after"], ["<=", "on or before"]],
    boolean: [["=", "is"], ["!=", "is not"]],
    list: [["=", "is"], ["!=", "is not"], ["IN", "is any of"], ["NIN", "is none of"]],
  };
  const PRESENCE = [["exists", "is set"], ["!exists", "is not set"]];
  // A date operator the builder does not offer, when a URL's filter holds it.
  const OTHER_DATE_WORDS = { "=": "is exactly", "!=": "is not exactly", IN: "is exactly any of", NIN: "is exactly none of" };
  const WHEN = [["-1d", "1 day ago"], ["-7d", "7 days ago"], ["-30d", "30 days ago"], ["-90d", "90 days ago"], ["-365d", "365 days ago"]];
  const UNITS = { d: ["day", "days"], h: ["hour", "hours"], m: ["minute", "minutes"] };
  const CUSTOM_DATE = "date";
  const LISTS = ["IN", "NIN"];
  const ORDERS = [">", "<", ">=", "<="];

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function option(value, label) {
    const node = el("option", "", label);
    node.value = value;
    return node;
  }

  function countText(kind, total, exact) {
    const noun = NOUNS[kind][total === 1 && exact ? 0 : 1];
    return `${total.toLocaleString("en-US")}${exact ? "" : "+"} ${noun}`;
  }

  function relativeLabel(value) {
    const found = /^-(\d{1,6})([dhm])$/.exec(value);
    if (!found) return null;
    const amount = Number(found[1]);
    return `${amount} ${UNITS[found[2]][amount === 1 ? 0 : 1]} ago`;
  }

  function isCondition(node) {
    return node && typeof node === "object" && !Array.isArray(node) && typeof node.field === "string";
  }

  // ---- one condition's controls ----------------------------------------------------------

  function operatorsFor(choice, current) {
    const allowed = new Set(choice.operators);
    const offered = [...OFFERED[choice.type], ...PRESENCE].filter(([op]) => allowed.has(op));
    if (current && allowed.has(current) && !offered.some(([op]) => op === current)) {
      offered.push([current, OTHER_DATE_WORDS[current] || current]);
    }
    return offered;
  }

  // The value control of a field and an operator: `read()` answers {value} or {missing: "why"}.
  function valueControl(choice, op) {
    const box = el("span", "value");
    if (op === "exists" || op === "!exists") {
      return { box, read: () => ({ value: undefined }), set() {}, focus: null };
    }
    const many = LISTS.includes(op);
    if (choice.type === "boolean") {
      const select = el("select");
      select.setAttribute("aria-label", "Value");
      select.append(option("true", "yes"), option("false", "no"));
      box.append(select);
      return {
        box, focus: select,
        read: () => ({ value: select.value === "true" }),
        set(value) { select.value = value ? "true" : "false"; },
      };
    }
    if (choice.options.length && (choice.type === "list" || ["=", "!=", "IN", "NIN"].includes(op))) {
      return many ? optionBoxes(choice, box) : optionSelect(choice, box);
    }
    if (choice.type === "date" && ORDERS.includes(op)) return dateControl(box);
    return textControl(choice, many, box);
  }

  function optionSelect(choice, box) {
    const select = el("select");
    select.setAttribute("aria-label", "Value");
    select.append(option("", "Choose…"));
    for (const value of choice.options) select.append(option(value, value));
    box.append(select);
    return {
      box, focus: select,
      read: () => (select.value ? { value: select.value } : { missing: "choose a value" }),
      set(value) {
        const one = Array.isArray(value) ? value[0] : value;
        if (choice.options.includes(one)) select.value = one;
      },
    };
  }

  function optionBoxes(choice, box) {
    const group = el("fieldset", "choices");
    group.append(el("legend", "sr-only", "Values"));
    const boxes = choice.options.map((value) => {
      const label = el("label");
      const check = el("input");
      check.type = "checkbox";
      check.value = value;
      label.append(check, " " + value);
      group.append(label);
      return check;
    });
    box.append(group);
    return {
      box, focus: boxes[0] || null,
      read() {
        const chosen = boxes.filter((check) => check.checked).map((check) => check.value);
        return chosen.length ? { value: chosen } : { missing: "tick one value or more" };
      },
      set(value) {
        const wanted = new Set(Array.isArray(value) ? value : [value]);
        for (const check of boxes) check.checked = wanted.has(check.value);
      },
    };
  }

  function dateControl(box) {
    const select = el("select");
    select.setAttribute("aria-label", "Value");
    for (const [value, label] of WHEN) select.append(option(value, label));
    select.append(option(CUSTOM_DATE, "a date…"));
    select.value = "-7d";
    const day = el("input");
    day.type = "date";
    day.setAttribute("aria-label", "Date");
    day.hidden = true;
    select.addEventListener("change", () => {
      day.hidden = select.value !== CUSTOM_DATE;
    });
    box.append(select, day);
    return {
      box, focus: select,
      read() {
        if (select.value !== CUSTOM_DATE) return { value: select.value };
        return day.value ? { value: day.value } : { missing: "choose a date" };
      },
      set(value) {
        const text = Array.isArray(value) ? value[0] : value;
        if (typeof text === "string" && /^\d{4}-\d{2}-\d{2}$/.test(text)) {
          select.value = CUSTOM_DATE;
          day.value = text;
          day.hidden = false;
          return;
        }
        if (!Array.from(select.options).some((o) => o.value === String(text))) {
          // A moment the presets do not name (an ISO time, unix seconds): kept as it is.
          const relative = relativeLabel(String(text));
          const moment = typeof text === "number" ? new Date(text * 1000) : new Date(text);
          const label = relative || (isNaN(moment) ? String(text) : moment.toLocaleString());
          select.insertBefore(option(String(text), label), select.lastElementChild);
        }
        select.value = String(text);
        if (typeof text === "number") select.selectedOptions[0].dataset.number = "true";
      },
    };
  }

  function textControl(choice, many, box) {
    const input = el("input");
    const number = choice.type === "number";
    if (number && !many) {
      input.type = "number";
      input.step = "any";
    } else {
      input.type = "text";
    }
    input.setAttribute("aria-label", many ? "Values, separated by commas" : "Value");
    if (many) input.placeholder = number ? "1, 2, 3" : "first, second";
    else if (choice.type === "date") input.placeholder = "2025-01-31";
    box.append(input);
    const one = (text) => {
      if (!number) return { value: text };
      const parsed = Number(text);
      return text !== "" && Number.isFinite(parsed) ? { value: parsed } : { missing: "type a number" };
    };
    return {
      box, focus: input,
      read() {
        const text = input.value.trim();
        if (!many) return text === "" ? { missing: "type a value" } : one(text);
        const parts = text.split(",").map((part) => part.trim()).filter((part) => part !== "");
        if (!parts.length) return { missing: "type one value or more, separated by commas" };
        const values = [];
        for (const part of parts) {
          const read = one(part);
          if (read.missing) return read;
          values.push(read.value);
        }
        return { value: values };
      },
      set(value) {
        input.value = Array.isArray(value) ? value.join(", ") : String(value);
      },
    };
  }

  // ---- the builder -----------------------------------------------------------------------

  function builder(form) {
    const kind = form.dataset.kind;
    const fields = JSON.parse(form.querySelector(".filter-fields").textContent);
    const applied = JSON.parse(form.querySelector(".filter-query").textContent);
    const byName = new Map(fields.map((choice) => [choice.field, choice]));
    const list = form.querySelector(".conditions");
    const combine = form.querySelector(".filter-combine");
    const combineLabel = form.querySelector(".combine");
    const note = form.querySelector(".builder-note");
    const count = form.querySelector(".filter-count");
    const addButton = form.querySelector(".add-condition");
    const hiddenFilter = form.querySelector('input[name="filter"]');
    const status = form.querySelector('input[name="status"]');
    const rows = [];
    let kept = null; // a filter the builder cannot show: applied again as it is
    let counting = 0;
    let timer = null;

    function fieldSelect() {
      const select = el("select", "field");
      select.setAttribute("aria-label", "Field");
      select.append(option("", "Choose a field…"));
      const groups = new Map();
      for (const choice of fields) {
        if (!groups.has(choice.group)) {
          const group = el("optgroup");
          group.label = choice.group;
          groups.set(choice.group, group);
          select.append(group);
        }
        groups.get(choice.group).append(option(choice.field, choice.label));
      }
      return select;
    }

    function addRow(condition) {
      const row = { item: el("li", "condition"), control: null };
      const group = el("fieldset");
      row.legend = el("legend", "sr-only");
      row.joiner = el("span", "joiner");
      row.joiner.setAttribute("aria-hidden", "true");
      row.field = fieldSelect();
      row.operator = el("select", "operator");
      row.operator.setAttribute("aria-label", "Operator");
      row.operator.disabled = true;
      row.value = el("span", "value");
      row.remove = el("button", "remove", "Remove");
      row.remove.type = "button";
      row.problem = el("span", "condition-problem");
      group.append(row.legend, row.joiner, row.field, row.operator, row.value, row.remove, row.problem);
      row.item.append(group);
      list.append(row.item);
      rows.push(row);

      row.field.addEventListener("change", () => chooseField(row));
      row.operator.addEventListener("change", () => chooseOperator(row));
      row.remove.addEventListener("click", () => removeRow(row));
      if (condition) {
        row.field.value = condition.field;
        chooseField(row, condition.operator);
        if (row.control && condition.value !== undefined && condition.value !== null) {
          row.control.set(condition.value);
        }
      }
      renumber();
      return row;
    }

    function chooseField(row, wantedOperator) {
      const choice = byName.get(row.field.value);
      const previous = row.operator.value;
      const before = row.choice && row.control ? row.control.read() : {};
      const sameType = row.choice && choice && row.choice.type === choice.type;
      row.choice = choice;
      row.operator.replaceChildren();
      row.operator.disabled = !choice;
      if (!choice) {
        replaceValue(row, null);
        return;
      }
      const operators = operatorsFor(choice, wantedOperator);
      for (const [op, words] of operators) row.operator.append(option(op, words));
      const keep = wantedOperator || (sameType ? previous : null);
      if (keep && operators.some(([op]) => op === keep)) row.operator.value = keep;
      chooseOperator(row, sameType && !wantedOperator ? before.value : undefined);
    }

    function chooseOperator(row, carried) {
      const before = carried !== undefined ? carried : row.control ? row.control.read().value : undefined;
      replaceValue(row, valueControl(row.choice, row.operator.value));
      if (before === undefined || !row.control) return;
      const many = LISTS.includes(row.operator.value);
      if (many && !Array.isArray(before)) row.control.set([before]);
      else if (!many && Array.isArray(before)) row.control.set(before[0]);
      else row.control.set(before);
    }

    function replaceValue(row, control) {
      row.control = control;
      const box = control ? control.box : el("span", "value");
      row.value.replaceWith(box);
      row.value = box;
    }

    function removeRow(row) {
      const index = rows.indexOf(row);
      rows.splice(index, 1);
      row.item.remove();
      renumber();
      const next = rows[index] || rows[index - 1];
      (next ? next.field : addButton).focus();
      changed();
    }

    function renumber() {
      rows.forEach((row, index) => {
        row.legend.textContent = `Condition ${index + 1}`;
        row.remove.setAttribute("aria-label", `Remove condition ${index + 1}`);
        row.joiner.textContent = index ? combine.value.toLowerCase() : "where";
      });
      combineLabel.hidden = rows.length < 2;
      list.hidden = !rows.length;
      if (kept === null) note.hidden = rows.length > 0;
    }

    // The query the rows say, or the first row that is not complete.
    function build() {
      if (kept !== null) return { query: kept };
      const conditions = [];
      for (const [index, row] of rows.entries()) {
        row.problem.textContent = "";
        if (!row.choice) return { row, focus: row.field, missing: `Condition ${index + 1}: choose a field` };
        const read = row.control.read();
        if (read.missing) {
          return { row, focus: row.control.focus, missing: `Condition ${index + 1}: ${read.missing}` };
        }
        const condition = { field: row.choice.field, operator: row.operator.value };
        if (read.value !== undefined) condition.value = read.value;
        const chosen = row.control.box.querySelector("select");
        if (chosen && chosen.selectedOptions[0] && chosen.selectedOptions[0].dataset.number) {
          condition.value = Number(condition.value); // unix seconds from the URL, kept a number
        }
        conditions.push(condition);
      }
      if (!conditions.length) return { query: null };
      if (conditions.length === 1) return { query: conditions[0] };
      return { query: { operator: combine.value, value: conditions } };
    }

    function same(query) {
      return JSON.stringify(query) === JSON.stringify(applied);
    }

    async function refreshCount() {
      const built = build();
      if (built.missing) {
        count.textContent = `${built.missing} to see the count.`;
        return;
      }
      const params = new URLSearchParams({ kind });
      if (built.query !== null) params.set("filter", JSON.stringify(built.query));
      if (status && status.value !== "all") params.set("status", status.value);
      const asked = ++counting;
      count.setAttribute("aria-busy", "true");
      try {
        const response = await fetch(`/inbox/count.json?${params}`, { credentials: "same-origin" });
        if (asked !== counting) return;
        const answer = await response.json();
        if (response.status === 401) {
          count.textContent = "Your login ended: reload the page to log in again.";
        } else if (!response.ok) {
          count.textContent = answer.error ? `This filter cannot be used: ${answer.error.message}` : "The count failed.";
        } else {
          const text = countText(kind, answer.total, answer.total_exact);
          count.textContent = same(built.query) ? text : `${text} match. Apply the filter to list them.`;
        }
      } catch (error) {
        if (asked === counting) count.textContent = "The count could not be fetched (offline?).";
      } finally {
        if (asked === counting) count.removeAttribute("aria-busy");
      }
    }

    function changed() {
      clearTimeout(timer);
      timer = setTimeout(refreshCount, 250);
    }

    function showKept() {
      note.hidden = false;
      note.textContent = "This filter has nested groups or event counts, which the builder cannot show; its records are listed. ";
      const restart = el("button", "link", "Start a new filter");
      restart.type = "button";
      restart.addEventListener("click", () => {
        kept = null;
        note.textContent = `No conditions: every ${NOUNS[kind][0]} is listed.`;
        addRow().field.focus();
        changed();
      });
      note.append(restart);
    }

    function load(query) {
      if (query === null) return;
      let conditions = null;
      if (isCondition(query)) conditions = [query];
      else if (query && (query.operator === "AND" || query.operator === "OR") && Array.isArray(query.value) && query.value.every(isCondition)) {
        conditions = query.value;
        combine.value = query.operator;
      }
      const fits = conditions && conditions.every((c) => byName.has(c.field) && byName.get(c.field).operators.includes(c.operator));
      if (!fits) {
        kept = query;
        showKept();
        return;
      }
      for (const condition of conditions) addRow(condition);
    }

    load(applied);
    renumber();

    addButton.addEventListener("click", () => {
      if (kept !== null) return;
      addRow().field.focus();
      changed();
    });
    combine.addEventListener("change", renumber);
    form.addEventListener("change", changed);
    form.addEventListener("input", changed);
    form.addEventListener("submit", (event) => {
      const built = build();
      if (built.missing) {
        event.preventDefault();
        built.row.problem.textContent = built.missing + ".";
        count.textContent = built.missing + ".";
        if (built.focus) built.focus.focus();
        return;
      }
      hiddenFilter.disabled = built.query === null;
      hiddenFilter.value = built.query === null ? "" : JSON.stringify(built.query);
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    for (const form of document.querySelectorAll("form.filter-builder")) builder(form);
    for (const form of document.querySelectorAll("form[data-confirm]")) {
      form.addEventListener("submit", (event) => {
        if (!window.confirm(form.dataset.confirm)) event.preventDefault();
      });
    }
  });
})();
