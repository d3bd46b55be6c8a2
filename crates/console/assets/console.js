// sluice console: live updates by polling the JSON API, the trigger form, cancel/redrive and
// the log viewer. No framework; compiled into the binary (crates/console/assets).
"use strict";
(function () {
  const POLL_MS = 1500;
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const $ = (sel, root) => (root || document).querySelector(sel);

  // An element with attributes and children (strings become text: never parsed as HTML).
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") e.className = v;
      else if (k === "hidden") e.hidden = true;
      else e.setAttribute(k, v);
    }
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined) continue;
      e.append(c instanceof Node ? c : String(c));
    }
    return e;
  }

  async function api(method, url, body) {
    const opts = { method, credentials: "same-origin", headers: {} };
    if (method !== "GET") opts.headers["X-Sluice-CSRF"] = csrf;
    if (body instanceof FormData) opts.body = body;
    else if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    const r = await fetch(url, opts);
    const type = r.headers.get("Content-Type") || "";
    const data = type.includes("json") ? await r.json() : await r.text();
    if (!r.ok) throw new Error((data && data.error) || `${r.status} ${r.statusText}`);
    return data;
  }

  function live(ok) {
    const dot = $("#live");
    if (dot) { dot.className = "live " + (ok ? "on" : "off"); dot.title = ok ? "live" : "cannot reach the console"; }
  }

  function duration(s) {
    s = Math.max(0, s || 0);
    if (s < 60) return s.toFixed(1) + "s";
    if (s < 3600) return `${Math.floor(s / 60)}m ${String(Math.floor(s % 60)).padStart(2, "0")}s`;
    return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  }
  const time = (t) => (t || "").replace("T", " ").slice(0, 19);
  const stateBadge = (s) => el("span", { class: "state " + s }, s);
  function progress(p) {
    if (!p.total) return [el("span", { class: "muted" }, "no tasks")];
    return [
      el("progress", { max: p.total, value: p.succeeded + p.failed }),
      el("span", { class: "counts" },
        `${p.succeeded} done · ${p.running + p.retrying} running · ${p.retries} retried · ${p.failed} failed of ${p.total}`),
    ];
  }

  function poll(fn) {
    let timer = null;
    const tick = async () => {
      try { await fn(); live(true); } catch (e) { live(false); }
      timer = setTimeout(tick, POLL_MS);
    };
    timer = setTimeout(tick, POLL_MS);
    return () => clearTimeout(timer);
  }

  // ---- the jobs page ----
  function jobsPage() {
    const body = $("#jobs tbody");
    poll(async () => {
      const jobs = await api("GET", "/api/jobs");
      body.replaceChildren(...jobs.map((j) => el("tr", { "data-job": j.id },
        el("td", {}, el("a", { href: j.url }, j.id)),
        el("td", {}, j.pipeline),
        el("td", {}, stateBadge(j.state)),
        el("td", { class: "progress" }, progress(j.progress)),
        el("td", {}, time(j.createdAt)),
        el("td", {}, duration(j.durationSeconds)))));
      $("#no-jobs").hidden = jobs.length > 0;
    });
    const form = $("#trigger");
    if (!form) return;
    const pipelines = JSON.parse(form.dataset.pipelines || "[]");
    const choose = () => {
      const p = pipelines.find((x) => x.name === $("#pipeline").value);
      if (!p) return;
      $("#pipeline-about").textContent = (p.description ? p.description + ". " : "") +
        (p.columns.length ? "Columns: " + p.columns.join(", ") + "." : "");
      $("#schedule").replaceChildren(el("option", { value: "" }, "—"),
        ...p.schedules.map((s) => el("option", { value: s.name }, `${s.name} (${s.input})`)));
      $("#schedule-label").hidden = p.schedules.length === 0;
      $("#params").replaceChildren(...Object.entries(p.params).map(([k, v]) =>
        el("label", {}, k, el("input", { type: "text", name: "param." + k, placeholder: v }))));
      $("#scale-label").hidden = !p.scaleParam;
      if (p.scaleParam) $("#scale-label").title = `multiplies ${p.scaleParam}`;
    };
    $("#pipeline").addEventListener("change", choose);
    choose();
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const out = $("#trigger-result");
      const data = new FormData(form);
      const file = $("#file").files[0];
      if (!file) data.delete("file");
      if (!file && !data.get("schedule")) { out.className = "error"; out.textContent = "Choose a CSV file or a schedule."; return; }
      $("#start").disabled = true;
      out.className = "muted"; out.textContent = "Starting…";
      try {
        const r = await api("POST", "/api/jobs", data);
        out.className = "";
        out.replaceChildren(`Job `, el("a", { href: r.url }, r.jobId), ` ${r.status}` + (r.reason ? `: ${r.reason}` : ""));
        location.assign(r.url);
      } catch (e) {
        out.className = "error"; out.textContent = e.message;
      } finally {
        $("#start").disabled = false;
      }
    });
  }

  // ---- a job's page ----
  function jobPage() {
    const section = $("#job");
    const id = section.dataset.job;
    const base = `/api/jobs/${encodeURIComponent(id)}`;
    let lastState = section.dataset.state;
    let lastUpdate = null;
    let failedOnly = false;

    function renderHeader(j) {
      const badge = $("#job-state");
      badge.className = "state " + j.state; badge.textContent = j.state;
      $("#job-reason").hidden = !j.reason; $("#job-reason").textContent = j.reason || "";
      $("#job-duration").textContent = duration(j.durationSeconds);
      $("#job-progress").replaceChildren(...progress(j.progress));
      $("#job-redrives").textContent = j.redriveCount;
      const d = j.driver;
      $("#job-driver").textContent = !d ? "—" : d.kind === "this-process" ? "this process"
        : d.kind === "process" ? `sluice process ${d.pid}` : "no live process (redrive it to continue)";
      $("#cancel").hidden = !j.canCancel;
      $("#redrive").hidden = !j.canRedrive;
      for (const g of document.querySelectorAll("#graph g.node")) {
        const st = j.states[g.dataset.state];
        if (!st) continue;
        for (const c of ["not-run", "running", "succeeded", "failed", "aborted"]) g.classList.remove(c);
        g.classList.add(st.status);
        const v = g.querySelector("text.visits");
        if (v) v.textContent = st.visits > 1 ? `×${st.visits}` : "";
        const t = g.querySelector("title");
        if (t) t.textContent = `${g.dataset.state}: ${st.status}`;
      }
      $("#stages tbody").replaceChildren(...j.stages.map((s) => el("tr", { "data-stage": s.name },
        el("td", {}, s.name), el("td", {}, { single: "one task", rows: "a task per row", chunks: "a task per chunk", aggregate: "aggregate" }[s.shape] || s.shape),
        el("td", { class: "progress" }, progress(s.progress)))));
    }

    async function renderTasks() {
      const page = await api("GET", `${base}/tasks` + (failedOnly ? "?state=FAILED" : ""));
      const tasks = page.tasks;
      $("#tasks-note").hidden = page.total <= tasks.length;
      $("#tasks-note").textContent = `The first ${tasks.length} of ${page.total} tasks; the API pages through the rest.`;
      $("#tasks tbody").replaceChildren(...tasks.map((t) => el("tr", { "data-task": t.id, "data-state": t.state },
        el("td", {}, t.id), el("td", {}, t.stage), el("td", {}, stateBadge(t.state)),
        el("td", {}, t.attempts + (t.spotInterruptions ? ` (${t.spotInterruptions} spot)` : "")),
        el("td", {}, t.capacity || ""), el("td", {}, t.exitCode ?? ""),
        el("td", {}, t.durationSeconds == null ? "" : duration(t.durationSeconds)),
        el("td", { class: "error-text" }, t.lastError || ""),
        el("td", {}, t.attemptList.filter((a) => a.logUrl).map((a) => [el("a", {
          href: a.logUrl, class: "log-link", "data-title": `${t.id} attempt ${a.number} (${a.state})`,
        }, `#${a.number}`), " "])))));
    }

    async function table(url) {
      const t = await api("GET", url + "?format=table");
      return [el("table", { class: "grid data" },
        el("thead", {}, el("tr", {}, t.header.map((h) => el("th", {}, h)))),
        el("tbody", {}, t.rows.map((r) => el("tr", {}, r.map((c) => el("td", {}, c)))))),
        t.truncated ? el("p", { class: "muted" }, "Only the first rows are shown; the link has them all.") : null];
    }

    async function renderResults(j) {
      const parts = [];
      if (!j.results.length) parts.push(el("p", { class: "muted" }, "No results yet."));
      for (const r of j.results) {
        parts.push(el("h3", {}, el("a", { href: r.url }, r.name)));
        if (r.kind === "csv") parts.push(...await table(r.url));
        if (r.kind === "png") parts.push(el("img", { class: "plot", src: `${r.url}?v=${encodeURIComponent(j.updatedAt)}`, alt: r.name }));
      }
      $("#results-body").replaceChildren(...parts);
      const rejects = [];
      for (const r of j.rejects) {
        rejects.push(el("h3", {}, `Rows stage ${r.stage} rejected (`, el("a", { href: r.url }, "rejects.csv"), ")"));
        rejects.push(...await table(r.url));
      }
      $("#rejects-body").replaceChildren(...rejects);
    }

    async function renderHistory() {
      const h = await api("GET", `${base}/history?limit=200`);
      $("#history-note").textContent = h.total > h.events.length
        ? `The last ${h.events.length} of ${h.total} events, newest first.` : `${h.total} events, newest first.`;
      $("#history tbody").replaceChildren(...h.events.slice().reverse().map((e) => {
        const key = Object.keys(e).find((k) => k.endsWith("EventDetails"));
        let detail = key ? JSON.stringify(e[key]) : "";
        if (detail.length > 300) detail = detail.slice(0, 300) + "…";
        return el("tr", {}, el("td", {}, e.id), el("td", {}, e.timestamp), el("td", {}, e.type),
          el("td", { class: "detail" }, el("code", {}, detail)));
      }));
    }

    async function renderNotifications() {
      const ns = await api("GET", `${base}/notifications`);
      $("#notifications").replaceChildren(...(ns.length ? ns.map((n) => el("div", { class: "note" },
        el("div", { class: "muted" }, `${n.time || ""} ${n.subject || ""}`),
        el("pre", {}, JSON.stringify(n.message, null, 2))))
        : [el("p", { class: "muted" }, "None sent yet.")]));
    }

    async function refresh() {
      const j = await api("GET", base);
      renderHeader(j);
      section.dataset.state = j.state;
      const changed = j.updatedAt !== lastUpdate;
      // Tasks change while the job runs; the rest when the job's record does.
      if (!["SUCCEEDED", "FAILED", "ABORTED"].includes(j.state) || changed) await renderTasks();
      if (changed || j.state !== lastState) {
        if (lastUpdate !== null) {
          await renderResults(j);
          await renderNotifications();
        }
        await renderHistory();
      }
      lastState = j.state;
      lastUpdate = j.updatedAt;
    }
    poll(refresh);
    refresh().catch(() => live(false));

    $("#failed-only").addEventListener("change", (ev) => { failedOnly = ev.target.checked; renderTasks(); });

    $("#tasks").addEventListener("click", async (ev) => {
      const a = ev.target.closest("a.log-link");
      if (!a) return;
      ev.preventDefault();
      $("#log").hidden = false;
      $("#log-title").textContent = "Log of " + a.dataset.title;
      $("#log-text").textContent = "Loading…";
      try { $("#log-text").textContent = await api("GET", a.getAttribute("href")) || "(empty)"; }
      catch (e) { $("#log-text").textContent = "Could not read the log: " + e.message; }
      $("#log").scrollIntoView({ block: "nearest" });
    });
    $("#log-close").addEventListener("click", () => { $("#log").hidden = true; });

    async function action(button, what, question) {
      if (!window.confirm(question)) return;
      const out = $("#action-result");
      button.disabled = true;
      out.className = "muted"; out.textContent = what === "cancel" ? "Cancelling…" : "Redriving…";
      try {
        const r = await api("POST", `${base}/${what}`, what === "cancel" ? {} : undefined);
        out.className = "";
        out.textContent = what === "cancel"
          ? (r.state === "CANCELLING" ? r.message : `Cancelled: the job is ${r.state}.`)
          : `Redrive ${r.redriveCount} started` + (r.fromState ? ` from ${r.fromState}` : "") + ".";
        lastUpdate = "";
        await refresh();
      } catch (e) {
        out.className = "error"; out.textContent = e.message;
      } finally {
        button.disabled = false;
      }
    }
    $("#cancel").addEventListener("click", () => action($("#cancel"), "cancel",
      `Cancel job ${id}? Its running tasks are stopped; you can redrive it later.`));
    $("#redrive").addEventListener("click", () => action($("#redrive"), "redrive",
      `Redrive job ${id}? Tasks that succeeded keep their results; the others run again.`));
  }

  document.addEventListener("DOMContentLoaded", () => {
    const page = document.body.dataset.page;
    if (page === "jobs") jobsPage();
    if (page === "job") jobPage();
  });
})();
