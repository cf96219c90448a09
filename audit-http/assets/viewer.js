// The audit log viewer's script. The page works without it (forms, links, <details>); this
// adds local times and day groups, completion in the filter box, quick filters that apply on
// change, and live updates. No framework, no build step: served as written. Every row it
// inserts was rendered (and escaped) by the server.
(() => {
  "use strict";

  const $ = (selector, root = document) => root.querySelector(selector);
  const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));
  document.documentElement.classList.add("js");

  // ---- Times: local time on the page, UTC in the tooltip -------------------------------

  const pad = (n) => String(n).padStart(2, "0");
  const dayKey = (d) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  // Stored times have microseconds; Date takes milliseconds.
  const parseTime = (text) => new Date(text.replace(/(\.\d{3})\d+/, "$1"));
  const clockFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  const exactFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "long" });
  const dayFormat = new Intl.DateTimeFormat(undefined, { weekday: "long", day: "numeric", month: "long", year: "numeric" });

  function localize(root) {
    for (const time of $$("time[datetime]", root)) {
      if (time.dataset.local) continue;
      const date = parseTime(time.dateTime);
      if (Number.isNaN(date.getTime())) continue;
      time.dataset.local = "1";
      if (time.classList.contains("clock")) {
        time.textContent = clockFormat.format(date);
      } else if ("exact" in time.dataset) {
        time.title = time.textContent;
        time.textContent = `${exactFormat.format(date)} (${time.textContent})`;
      }
    }
  }

  function dayLabel(key) {
    const now = new Date();
    if (key === dayKey(now)) return "Today";
    const yesterday = new Date(now.getFullYear(), now.getMonth(), now.getDate() - 1);
    if (key === dayKey(yesterday)) return "Yesterday";
    const [y, m, d] = key.split("-").map(Number);
    return dayFormat.format(new Date(y, m - 1, d));
  }

  function rowDay(li) {
    const time = $("time[datetime]", li);
    return time ? dayKey(parseTime(time.dateTime)) : li.dataset.day;
  }

  function daySection(key) {
    const section = document.createElement("section");
    section.className = "day";
    section.dataset.day = key;
    const heading = document.createElement("h2");
    heading.textContent = dayLabel(key);
    const list = document.createElement("ol");
    list.className = "rows";
    section.append(heading, list);
    return section;
  }

  const entries = $("#entries");

  // The server groups by UTC day; group by the reader's day instead.
  function regroup() {
    if (!entries) return;
    const rows = $$("li.entry", entries);
    if (!rows.length) return;
    const sections = [];
    for (const li of rows) {
      const key = rowDay(li);
      let section = sections[sections.length - 1];
      if (!section || section.dataset.day !== key) {
        section = daySection(key);
        sections.push(section);
      }
      $("ol", section).append(li);
    }
    $$("section.day", entries).forEach((s) => s.remove());
    entries.append(...sections);
  }

  localize(document);
  regroup();

  // ---- The URL: drop the previous query once the new one was accepted -----------------

  const url = new URL(window.location.href);
  if (url.searchParams.has("shown") && !$("#q-problems")) {
    url.searchParams.delete("shown");
    history.replaceState(history.state, "", url.pathname + url.search + url.hash);
  }

  // ---- Completion in the filter box --------------------------------------------------

  const input = $("#q");
  const listbox = $("#q-list");
  if (input && listbox) {
    let suggestions = null;
    let loading = null;
    let options = [];
    let active = -1;

    const load = () => {
      loading ??= fetch("/audit/suggest", { credentials: "same-origin", headers: { accept: "application/json" } })
        .then((r) => (r.ok ? r.json() : null))
        .then((data) => { suggestions = data; })
        .catch(() => {});
      return loading;
    };

    // The term under the caret: from the last space outside quotes to the next space.
    const token = () => {
      const text = input.value;
      const caret = input.selectionStart ?? text.length;
      let start = 0;
      let quoted = false;
      for (let i = 0; i < caret; i++) {
        const c = text[i];
        if (quoted && c === "\\") i++;
        else if (c === '"') quoted = !quoted;
        else if (c === " " && !quoted) start = i + 1;
      }
      let end = caret;
      while (end < text.length && text[end] !== " ") end++;
      return { start, end, text: text.slice(start, caret) };
    };

    const chosenType = () => {
      const m = /(?:^|\s)resource_type:"?([^\s"]+)/i.exec(input.value);
      return m ? m[1] : null;
    };

    const compute = () => {
      if (!suggestions) return [];
      const t = token().text;
      const colon = t.indexOf(":");
      if (colon < 0) {
        const prefix = t.toLowerCase();
        return suggestions.keys
          .filter((k) => k.key.startsWith(prefix))
          .map((k) => ({ label: `${k.key}:`, insert: `${k.key}:`, hint: k.hint, more: true }));
      }
      const key = t.slice(0, colon).toLowerCase();
      const typed = t.slice(colon + 1).replace(/^"/, "").toLowerCase();
      const type = key === "action" ? chosenType() : null;
      return (suggestions.values[key] || [])
        .filter((v) => v.value.toLowerCase().includes(typed))
        .filter((v) => !type || !v.of || v.of.includes(type))
        .sort((a, b) => a.value.toLowerCase().startsWith(typed) ? (b.value.toLowerCase().startsWith(typed) ? 0 : -1) : 1)
        .slice(0, 50)
        .map((v) => ({ label: v.term, insert: `${v.term} `, hint: v.of ? v.of.join(", ").replaceAll("_", " ") : "" }));
    };

    const close = () => {
      listbox.hidden = true;
      listbox.replaceChildren();
      input.setAttribute("aria-expanded", "false");
      input.removeAttribute("aria-activedescendant");
      options = [];
      active = -1;
    };

    const highlight = (index) => {
      active = index;
      $$("li", listbox).forEach((li, i) => li.setAttribute("aria-selected", String(i === index)));
      if (index >= 0) {
        const li = listbox.children[index];
        input.setAttribute("aria-activedescendant", li.id);
        li.scrollIntoView({ block: "nearest" });
      } else {
        input.removeAttribute("aria-activedescendant");
      }
    };

    const accept = (option) => {
      const t = token();
      const text = input.value;
      const rest = text.slice(t.end).replace(/^ /, "");
      input.value = text.slice(0, t.start) + option.insert + rest;
      const caret = t.start + option.insert.length;
      input.setSelectionRange(caret, caret);
      if (option.more) show();
      else close();
    };

    const show = () => {
      options = compute();
      if (!options.length || document.activeElement !== input) return close();
      listbox.replaceChildren(...options.map((option, i) => {
        const li = document.createElement("li");
        li.id = `q-option-${i}`;
        li.setAttribute("role", "option");
        li.setAttribute("aria-selected", "false");
        const term = document.createElement("span");
        term.className = "term";
        term.textContent = option.label;
        const hint = document.createElement("span");
        hint.className = "hint";
        hint.textContent = option.hint;
        li.append(term, hint);
        li.addEventListener("mousedown", (e) => e.preventDefault());
        li.addEventListener("click", () => { accept(option); input.focus(); });
        return li;
      }));
      listbox.hidden = false;
      input.setAttribute("aria-expanded", "true");
      highlight(-1);
    };

    input.addEventListener("focus", () => { load(); });
    input.addEventListener("input", () => { load().then(show); });
    // Leaving the box closes the list (unless focus came straight back, as a click on an
    // option does).
    input.addEventListener("blur", () => setTimeout(() => { if (document.activeElement !== input) close(); }, 100));
    input.addEventListener("keydown", (e) => {
      const open = !listbox.hidden && options.length > 0;
      if (e.key === "ArrowDown") {
        e.preventDefault();
        if (!open) { load().then(show); return; }
        highlight((active + 1) % options.length);
      } else if (e.key === "ArrowUp" && open) {
        e.preventDefault();
        highlight(active <= 0 ? options.length - 1 : active - 1);
      } else if ((e.key === "Enter" || e.key === "Tab") && open && active >= 0) {
        e.preventDefault();
        accept(options[active]);
      } else if (e.key === "Escape" && open) {
        e.preventDefault();
        close();
      }
    });
    // "/" anywhere else focuses the filter box.
    document.addEventListener("keydown", (e) => {
      const target = e.target;
      const typing = target instanceof HTMLInputElement || target instanceof HTMLSelectElement || target instanceof HTMLTextAreaElement;
      if (e.key === "/" && !typing && !e.ctrlKey && !e.metaKey && !e.altKey) {
        e.preventDefault();
        input.focus();
        input.select();
      }
    });
  }

  // ---- Quick filters apply on change --------------------------------------------------

  const quick = $("#quick");
  if (quick) {
    const range = $("#qf-range", quick);
    const custom = $("#qf-custom", quick);
    const syncCustom = () => { if (range && custom) custom.hidden = range.value !== "custom"; };
    syncCustom();
    for (const select of $$("select", quick)) {
      select.addEventListener("change", () => {
        if (select === range && range.value === "custom") {
          syncCustom();
          $("input", custom).focus();
          return;
        }
        quick.requestSubmit();
      });
    }
    for (const date of $$("input[type=date]", quick)) {
      date.addEventListener("change", () => {
        if (range) range.value = "custom";
        if (date.value === "" || /^\d{4}-\d{2}-\d{2}$/.test(date.value)) quick.requestSubmit();
      });
    }
    const user = $("#qf-user", quick);
    if (user) user.addEventListener("change", () => quick.requestSubmit());
  }

  // ---- Live updates -----------------------------------------------------------------

  const live = $("#live");
  const status = $("#live-status");
  if (live && entries && status && "EventSource" in window) {
    live.hidden = false;
    const seen = new Set($$("li.entry", entries).map((li) => li.dataset.id));
    let source = null;
    let lastId = null;
    let added = 0;

    const say = (text) => { status.textContent = text; };
    const streamingText = () => added === 0
      ? "Live: streaming. New entries appear at the top."
      : `Live: streaming. ${added} new ${added === 1 ? "entry" : "entries"} since you switched it on.`;

    const insert = (html) => {
      const template = document.createElement("template");
      template.innerHTML = html.trim();
      const li = $("li.entry", template.content);
      if (!li || seen.has(li.dataset.id)) return;
      seen.add(li.dataset.id);
      localize(li);
      li.classList.add("fresh");
      const key = rowDay(li);
      let section = $("section.day", entries);
      if (!section || section.dataset.day !== key) {
        section = daySection(key);
        entries.prepend(section);
        $(".empty", entries)?.remove();
      }
      $("ol", section).prepend(li);
      added += 1;
      say(streamingText());
    };

    const start = () => {
      const src = new URL(live.dataset.src, window.location.href);
      if (lastId !== null) src.searchParams.set("after", lastId);
      source = new EventSource(src.pathname + src.search);
      live.setAttribute("aria-pressed", "true");
      say("Live: waiting for new entries…");
      source.addEventListener("open", () => {
        live.classList.remove("reconnecting");
        say(streamingText());
      });
      source.addEventListener("message", (e) => {
        if (e.lastEventId) lastId = e.lastEventId;
        insert(e.data);
      });
      source.addEventListener("reset", () => {
        say("Live: some entries after this page are no longer stored (purged). Reload the page to see the log as it is now.");
      });
      source.addEventListener("error", () => {
        if (!source) return;
        if (source.readyState === EventSource.CLOSED) {
          stop("Live updates stopped: the server refused the stream. Reload the page to try again.");
        } else {
          live.classList.add("reconnecting");
          say("Live: connection lost, reconnecting…");
        }
      });
    };

    const stop = (message) => {
      if (source) source.close();
      source = null;
      live.classList.remove("reconnecting");
      live.setAttribute("aria-pressed", "false");
      say(message);
    };

    live.addEventListener("click", () => (source ? stop("Live updates are off.") : start()));
    // Leaving the page ends the stream; coming back to it (the back button) resumes it.
    let resume = false;
    window.addEventListener("pagehide", () => {
      resume = source !== null;
      if (source) stop("");
    });
    window.addEventListener("pageshow", (e) => { if (e.persisted && resume) start(); });
  }
})();
