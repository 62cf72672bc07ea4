// Aviso staff dashboard: the compose page's live preview and the broadcast page's live progress and chart.
// Every word shown comes from the server (rendered HTML or data- attributes): no strings live here.
"use strict";

(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const FAST_POLL_MS = 1500;
  const SLOW_POLL_MS = 5000;
  const PREVIEW_DELAY_MS = 400;

  function csrfToken() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  function svg(name, attributes, parent) {
    const node = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attributes || {})) node.setAttribute(key, String(value));
    if (parent) parent.appendChild(node);
    return node;
  }

  // ---- compose ----------------------------------------------------------------------------------------
  function setUpCompose(form) {
    const previewSection = document.getElementById("preview");
    const previewBody = document.getElementById("preview-body");
    const status = document.createElement("p");
    status.className = "visually-hidden";
    status.setAttribute("aria-live", "polite");
    previewSection.appendChild(status);
    let timer = null;
    let sequence = 0;
    let audience = JSON.parse(form.dataset.audience || "null");  // languages the chosen schools read

    function value(name) {
      const field = form.elements[name];
      return field ? field.value : "";
    }

    function show(selector, shown) {
      form.querySelectorAll(selector).forEach((node) => { node.hidden = !shown(node); });
    }

    function sync() {
      const template = value("template");
      show("[data-show-kind]", (node) => node.dataset.showKind === value("kind"));
      show("[data-show-source]", (node) => node.dataset.showSource === value("source"));
      show("[data-show-when]", (node) => node.dataset.showWhen === value("when"));
      show("[data-templates]", (node) => node.dataset.templates.split(" ").includes(template));
      // free-text variables: a box per language the families read (and any already filled in)
      show("[data-lang]", (node) => !audience || audience.includes(node.dataset.lang)
        || node.querySelector("input").value.trim() !== "");
    }

    async function preview() {
      const mine = ++sequence;
      previewSection.setAttribute("aria-busy", "true");
      const body = new URLSearchParams(new FormData(form));
      try {
        const response = await fetch(form.dataset.previewUrl, {
          method: "POST", body: body, credentials: "same-origin",
          headers: {"X-CSRF-Token": csrfToken(), "Accept": "application/json"},
        });
        const data = await response.json();
        if (mine !== sequence) return;
        if (data.audience !== undefined) { audience = data.audience; sync(); }
        if (response.ok) {
          previewBody.innerHTML = data.html;  // rendered and escaped by the server
          const totals = previewBody.querySelector(".big");
          status.textContent = totals ? totals.textContent : "";
        } else {
          const problem = document.createElement("p");
          problem.className = "alert";
          problem.textContent = data.error;
          previewBody.replaceChildren(problem);
          status.textContent = data.error;
        }
      } catch (error) {
        // Offline for a moment: keep the last preview; the next change asks again.
      } finally {
        if (mine === sequence) previewSection.removeAttribute("aria-busy");
      }
    }

    function changed() {
      sync();
      clearTimeout(timer);
      timer = setTimeout(preview, PREVIEW_DELAY_MS);
    }

    form.addEventListener("input", changed);
    form.addEventListener("change", changed);
    sync();
    const started = value("template") || [...form.querySelectorAll("textarea")].some((area) => area.value.trim());
    if (started) preview();  // a correction's prefilled form, or one sent back with a problem
  }

  // ---- broadcast progress and chart --------------------------------------------------------------------
  function drawChart(figure, snapshots) {
    const area = figure.querySelector(".chart-area");
    const series = JSON.parse(figure.dataset.series || "[]");
    const audience = Number(figure.dataset.audience || 0);
    area.replaceChildren();
    if (!snapshots.length) {
      const empty = document.createElement("p");
      empty.className = "hint";
      empty.textContent = figure.dataset.empty;
      area.appendChild(empty);
      return;
    }
    const width = 320, height = 170, left = 36, right = 10, top = 10, bottom = 24;
    const start = snapshots[0][0];
    const span = Math.max(1, snapshots[snapshots.length - 1][0] - start);
    const highest = Math.max(1, audience, ...snapshots.map((s) => Math.max(s[1], s[2], s[3], s[4])));
    const x = (t) => left + ((t - start) / span) * (width - left - right);
    const y = (n) => height - bottom - (n / highest) * (height - top - bottom);
    const last = snapshots[snapshots.length - 1];
    const summary = series.map(([, label], i) => `${label} ${last[i + 1]}`).join(", ");
    const chart = svg("svg", {viewBox: `0 0 ${width} ${height}`, role: "img",
      "aria-label": `${summary} (${Math.round(span)} ${figure.dataset.seconds})`});
    for (const fraction of [0, 0.5, 1]) {
      const value = Math.round(highest * fraction);
      svg("line", {x1: left, x2: width - right, y1: y(value), y2: y(value), class: fraction ? "grid-line" : "axis"}, chart);
      svg("text", {x: left - 4, y: y(value) + 4, "text-anchor": "end"}, chart).textContent = String(value);
    }
    svg("line", {x1: left, x2: left, y1: top, y2: height - bottom, class: "axis"}, chart);
    svg("text", {x: left, y: height - 6, "text-anchor": "start"}, chart).textContent = "0";
    svg("text", {x: width - right, y: height - 6, "text-anchor": "end"}, chart).textContent =
      `${Math.round(span)} ${figure.dataset.seconds}`;
    series.forEach(([key], i) => {
      const points = snapshots.map((s) => `${x(s[0]).toFixed(1)},${y(s[i + 1]).toFixed(1)}`);
      if (points.length === 1) points.push(`${x(start + span).toFixed(1)},${y(last[i + 1]).toFixed(1)}`);
      svg("polyline", {points: points.join(" "), class: `line ${key}`}, chart);
    });
    area.appendChild(chart);
    const legend = document.createElement("ul");
    legend.className = "legend";
    legend.setAttribute("aria-hidden", "true");  // the counts above say the same in words
    for (const [key, label] of series) {
      const item = document.createElement("li");
      const sample = svg("svg", {viewBox: "0 0 24 10"}, item);
      svg("line", {x1: 0, x2: 24, y1: 5, y2: 5, class: `line ${key}`}, sample);
      item.appendChild(document.createTextNode(label));
      legend.appendChild(item);
    }
    area.appendChild(legend);
  }

  function setUpBroadcast(root) {
    const figure = document.getElementById("chart");
    if (figure) drawChart(figure, JSON.parse(figure.dataset.snapshots || "[]"));
    // A finished broadcast's page keeps counting delivery receipts for a while, slowly.
    if (root.dataset.terminal === "true" && root.dataset.receipts !== "true") return;
    const status = root.dataset.status;
    const delay = ["sending", "approved"].includes(status) ? FAST_POLL_MS : SLOW_POLL_MS;

    async function poll() {
      try {
        const response = await fetch(root.dataset.progressUrl, {
          credentials: "same-origin", headers: {"Accept": "application/json"},
        });
        if (response.status === 401) { window.location.reload(); return; }
        if (response.ok) {
          const data = await response.json();
          if (data.status !== status) { window.location.reload(); return; }  // new state, new actions
          const progress = document.getElementById("progress");
          if (progress) progress.innerHTML = data.html;  // rendered and escaped by the server
          if (figure) drawChart(figure, data.snapshots);
          if (data.terminal && !data.receipts_open) return;  // receipts are in: stop asking
        }
      } catch (error) {
        // A moment without network (a phone on a sidewalk): try again at the next tick.
      }
      setTimeout(poll, delay);
    }

    setTimeout(poll, figure ? 0 : delay);
  }

  document.documentElement.classList.add("js");
  const compose = document.getElementById("compose");
  if (compose) setUpCompose(compose);
  const broadcast = document.getElementById("broadcast");
  if (broadcast) setUpBroadcast(broadcast);
})();
