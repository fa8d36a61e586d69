// IOC dashboard: headline figures from the live snapshot stream (Server-Sent Events), the
// breakdown table, the two charts and the Decision 766 panel (inline SVG, drawn here) refreshed
// whenever it changes.
// No external asset and no library: everything is served by the reporting service.
"use strict";

(function () {
  const config = JSON.parse(document.getElementById("dashboard-config").textContent);
  const params = new URLSearchParams(window.location.search);
  // A reader token in the page's own URL wins; in development the page carries the dev token.
  const token = params.get("access_token") || config.token || null;
  const SVG = "http://www.w3.org/2000/svg";

  // Formats and the pure part of the panels: static/dashboard-core.js (loaded first).
  const core = window.DashboardCore;
  const { fmtCount, fmtPercent, fmtPoints } = core;
  function fmtTime(iso) {
    if (!iso) return "–";
    const t = new Date(iso);
    const opts = { timeZone: "Asia/Ho_Chi_Minh", hour: "2-digit", minute: "2-digit", second: "2-digit",
                   day: "2-digit", month: "2-digit", year: "numeric", hour12: false };
    const parts = Object.fromEntries(new Intl.DateTimeFormat("en-GB", opts).formatToParts(t).map(p => [p.type, p.value]));
    return `${parts.hour}:${parts.minute}:${parts.second} ${parts.day}/${parts.month}/${parts.year}`;
  }

  function setText(id, text) {
    const el = document.getElementById(id);
    if (el && el.textContent !== text) {
      el.textContent = text;
      if (el.classList.contains("big")) {
        el.classList.add("flash");
        setTimeout(() => el.classList.remove("flash"), 900);
      }
    }
  }

  // ---- API ------------------------------------------------------------------------------------
  async function api(path) {
    const headers = token ? { Authorization: "Bearer " + token } : {};
    const response = await fetch(path, { headers, cache: "no-store" });
    if (!response.ok) throw new Error(path + ": HTTP " + response.status);
    return response.json();
  }
  // Every read names the page's tree (contract §1.1: the registry as it stood that day) when one
  // is chosen; without one the service answers for today's tree.
  const withTree = (fields) => (config.tree ? { ...fields, tree: config.tree } : fields);
  const q = (extra) => new URLSearchParams(withTree({ unit: config.unit, ...extra })).toString();

  // ---- headline figures -----------------------------------------------------------------------
  function renderSnapshot(s) {
    const d = s.dossiers, doc = s.documents;
    setText("fig-received", fmtCount(d.received));
    setText("fig-received-online", fmtCount(d.received_online));
    setText("fig-received-direct", fmtCount(d.received_direct));
    setText("fig-received-postal", fmtCount(d.received_postal));
    setText("fig-online-rate", fmtPercent(d.received_online, d.received));
    setText("fig-on-time-rate", fmtPercent(d.resolved_on_time, d.resolved));
    setText("fig-resolved-on-time", fmtCount(d.resolved_on_time));
    setText("fig-resolved", fmtCount(d.resolved));
    setText("fig-resolved-late", fmtCount(d.resolved_late));
    setText("fig-in-progress", fmtCount(d.in_progress));
    setText("fig-overdue", fmtCount(d.in_progress_overdue));
    setText("fig-overdue-rate", fmtPercent(d.in_progress_overdue, d.in_progress));
    document.getElementById("card-in-progress").classList.toggle("alert", d.in_progress_overdue > 0);
    setText("fig-components-rate", fmtPercent(d.components_digitized, d.digitization_required));
    setText("fig-components", fmtCount(d.components_digitized));
    setText("fig-digitization-required", fmtCount(d.digitization_required));
    setText("fig-results-rate", fmtPercent(d.results_digitized, d.result_digitization_required));
    setText("fig-results", fmtCount(d.results_digitized));
    setText("fig-result-digitization-required", fmtCount(d.result_digitization_required));
    setText("fig-paid-rate", fmtPercent(d.paid_online, d.fee_required));
    setText("fig-paid", fmtCount(d.paid_online));
    setText("fig-fee-required", fmtCount(d.fee_required));
    setText("fig-leader-rate", fmtPercent(doc.signed_by_leader, doc.signed_by_organization, 2));
    setText("fig-signed-leader", fmtCount(doc.signed_by_leader));
    setText("fig-signed-organization", fmtCount(doc.signed_by_organization));
    setText("fig-updated", fmtTime(s.freshness && s.freshness.last_applied_at));
    document.body.dataset.version = s.etag || "";
  }

  // ---- breakdown table ------------------------------------------------------------------------
  function cell(text, cls) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    return td;
  }
  function renderBreakdown(body) {
    const tbody = document.querySelector("#breakdown tbody");
    const rows = body.rows.slice(1).concat(body.rows.slice(0, 1)); // children first, the unit's own row last
    const fresh = document.createDocumentFragment();
    for (const row of rows) {
      const d = row.dossiers;
      const tr = document.createElement("tr");
      tr.dataset.unit = row.unit;
      if (row.scope === "self") tr.className = "self";
      if (row.split) tr.classList.add("split");
      const name = row.scope === "self" ? `${row.name} (${config.own_level})`
        : row.split ? `${row.name} (${core.SPLIT_LABEL})` : row.name;
      tr.append(
        cell(name, "name"),
        cell(fmtCount(d.received)),
        cell(fmtPercent(d.received_online, d.received)),
        cell(fmtCount(d.resolved)),
        cell(fmtPercent(d.resolved_on_time, d.resolved)),
        cell(fmtCount(d.in_progress)),
        cell(fmtCount(d.in_progress_overdue), d.in_progress_overdue > 0 ? "bad" : ""),
        cell(fmtPercent(d.results_digitized, d.result_digitization_required, 2)),
        cell(fmtPercent(d.paid_online, d.fee_required)),
        cell(fmtPercent(d.ratings_satisfied, d.ratings, 2)),
      );
      fresh.append(tr);
    }
    if (!rows.length) {
      const tr = document.createElement("tr");
      tr.append(cell("Không có số liệu", "empty"));
      fresh.append(tr);
    }
    tbody.replaceChildren(fresh);
  }

  // ---- charts (inline SVG) --------------------------------------------------------------------
  function el(name, attrs, text) {
    const node = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function niceMax(value) {
    if (value <= 0) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(value)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= value) return m * p;
    return 10 * p;
  }
  function canvasOf(id) {
    const box = document.getElementById(id);
    const w = Math.max(box.clientWidth, 200), h = Math.max(box.clientHeight, 120);
    const svg = el("svg", { viewBox: `0 0 ${w} ${h}`, width: w, height: h });
    box.replaceChildren(svg);
    const rem = parseFloat(getComputedStyle(document.documentElement).fontSize);
    return { svg, w, h, rem };
  }

  let lastBreakdown = null, lastMonthly = null, last766 = null, lastTrend = null;

  function drawUnits(body) {
    const { svg, w, h, rem } = canvasOf("chart-units");
    const rows = body.rows.filter(r => r.scope === "subtree").sort((a, b) => b.dossiers.received - a.dossiers.received);
    if (!rows.length) {
      svg.append(el("text", { x: w / 2, y: h / 2, "text-anchor": "middle", "font-size": rem }, "Không có đơn vị trực thuộc"));
      return;
    }
    const step = h / rows.length;
    const font = Math.min(rem * 0.9, step * 0.7);
    const labelW = Math.min(w * 0.42, 12.5 * font), valueW = 4.5 * font;
    const barH = step * 0.62;
    const max = niceMax(Math.max(...rows.map(r => r.dossiers.received)));
    const scale = (w - labelW - valueW) / max;
    rows.forEach((r, i) => {
      const y = i * step + (step - barH) / 2, d = r.dossiers;
      const online = d.received_online * scale, other = (d.received - d.received_online) * scale;
      svg.append(el("text", { x: labelW - 0.4 * font, y: y + barH * 0.72, "text-anchor": "end", "font-size": font }, r.name));
      svg.append(el("rect", { x: labelW, y, width: online, height: barH, fill: "var(--online)", rx: 2 }));
      svg.append(el("rect", { x: labelW + online, y, width: other, height: barH, fill: "var(--direct)", rx: 2 }));
      svg.append(el("text", { x: labelW + online + other + 0.4 * font, y: y + barH * 0.72, "font-size": font, class: "value" },
                    fmtCount(d.received)));
    });
  }

  function drawMonths(body) {
    const { svg, w, h, rem } = canvasOf("chart-months");
    const font = rem * 0.85, left = 4 * font, bottom = 1.8 * font, top = 0.6 * font;
    const months = body.months;
    const values = months.flatMap(m => [m.dossiers.received || 0, m.dossiers.resolved || 0]);
    const max = niceMax(Math.max(1, ...values));
    const plotH = h - bottom - top, plotW = w - left - 0.5 * font;
    for (let i = 0; i <= 4; i++) {
      const v = (max / 4) * i, y = top + plotH - (v / max) * plotH;
      svg.append(el("line", { x1: left, x2: w, y1: y, y2: y, stroke: "var(--grid)", "stroke-width": 1 }));
      svg.append(el("text", { x: left - 0.4 * font, y: y + 0.35 * font, "text-anchor": "end", "font-size": font },
                    fmtCount(Math.round(v))));
    }
    const slot = plotW / 12, barW = slot * 0.34;
    months.forEach((m, i) => {
      const x0 = left + i * slot + slot * 0.14;
      [["received", "var(--received)"], ["resolved", "var(--resolved)"]].forEach(([key, color], j) => {
        const v = m.dossiers[key];
        if (v === null || v === undefined) return;
        const bh = (v / max) * plotH;
        const bar = el("rect", { x: x0 + j * barW, y: top + plotH - bh, width: barW * 0.92, height: bh, fill: color, rx: 2 });
        bar.append(el("title", {}, `${key === "received" ? "Tiếp nhận" : "Đã giải quyết"} tháng ${i + 1}: ${fmtCount(v)}`));
        svg.append(bar);
      });
      svg.append(el("text", { x: x0 + barW, y: h - 0.45 * font, "text-anchor": "middle", "font-size": font }, "T" + (i + 1)));
    });
  }

  // ---- Decision 766 panel and ranking ----------------------------------------------------------
  function render766(body) {
    setText("fig-766-total", core.totalText(body));
    const count = core.computedCount(body);
    setText("fig-766-computed", `${count.computed}/${count.all} chỉ tiêu có dữ liệu`);
    setText("fig-766-formula", `${fmtPoints(body.computable_points)}/100 điểm · ${body.formula}`);
    renderRanking(body);
    drawGroups(body);
  }

  function renderRanking(body) {
    const tbody = document.querySelector("#ranking766 tbody");
    const fresh = document.createDocumentFragment();
    const points = body.computable_points || 1;
    for (const row of core.rankRows(body.ranking)) {
      const tr = document.createElement("tr");
      tr.dataset.unit = row.unit;
      const bar = document.createElementNS(SVG, "svg");
      bar.setAttribute("class", "score-bar");
      bar.append(el("rect", { x: 0, y: 0, width: `${Math.max(0, Math.min(100, (100 * row.score) / points))}%`,
                              height: "100%", rx: 2, fill: "var(--score)" }));
      const barCell = cell("", "bar-cell");
      barCell.append(bar);
      tr.append(cell(String(row.rank), "rank"), cell(row.name, "name"), cell(fmtPoints(row.score), "score"), barCell);
      fresh.append(tr);
    }
    if (!body.ranking.length) {
      const tr = document.createElement("tr");
      const td = cell("Không có đơn vị trực thuộc", "empty");
      td.colSpan = 4;
      tr.append(td);
      fresh.append(tr);
    }
    tbody.replaceChildren(fresh);
  }

  function drawGroups(body) {
    const { svg, w, h, rem } = canvasOf("chart-766-groups");
    const rows = core.groupRows(body);
    const step = h / rows.length;
    const font = Math.min(rem * 0.85, step * 0.62);
    const labelW = Math.min(w * 0.42, 12 * font), valueW = 4.6 * font, barH = step * 0.56;
    const scale = (w - labelW - valueW) / Math.max(1, ...rows.map((r) => r.max));
    rows.forEach((r, i) => {
      const y = i * step + (step - barH) / 2;
      const g = el("g", { class: "group", "data-group": r.code });
      g.append(el("title", {}, r.title));
      g.append(el("text", { x: labelW - 0.4 * font, y: y + barH * 0.78, "text-anchor": "end", "font-size": font }, r.name));
      g.append(el("rect", { x: labelW, y, width: r.max * scale, height: barH, fill: "var(--not-computed)", rx: 2 }));
      g.append(el("rect", { x: labelW, y, width: r.computable * scale, height: barH, fill: "var(--computable)", rx: 2 }));
      g.append(el("rect", { x: labelW, y, width: (r.score || 0) * scale, height: barH, fill: "var(--score)", rx: 2 }));
      g.append(el("text", { x: labelW + r.max * scale + 0.4 * font, y: y + barH * 0.78, "font-size": font, class: "value" },
                  `${fmtPoints(r.score)}/${fmtPoints(r.computable)}`));
      svg.append(g);
    });
  }

  // A line over the months begun; the axis spans the scores (not 0..max), so that a change of a
  // point shows; each month is labelled with its score.
  function drawTrend(points) {
    const { svg, w, h, rem } = canvasOf("chart-766-trend");
    const font = rem * 0.75, left = 2.4 * font, bottom = 1.5 * font, top = 1.3 * font;
    const plotH = h - bottom - top, plotW = w - left - 0.3 * font, slot = plotW / 12;
    const { lo, hi } = core.trendAxis(points);
    const yOf = (v) => top + plotH - ((v - lo) / (hi - lo)) * plotH;
    const xOf = (month) => left + (month - 0.5) * slot;
    for (const v of [lo, (lo + hi) / 2, hi]) {
      svg.append(el("line", { x1: left, x2: w, y1: yOf(v), y2: yOf(v), stroke: "var(--grid)", "stroke-width": 1 }));
      svg.append(el("text", { x: left - 0.4 * font, y: yOf(v) + 0.35 * font, "text-anchor": "end", "font-size": font },
                    fmtPoints(v)));
    }
    for (let month = 1; month <= 12; month++) {
      svg.append(el("text", { x: xOf(month), y: h - 0.3 * font, "text-anchor": "middle", "font-size": font }, "T" + month));
    }
    if (!points.length) return;
    svg.append(el("polyline", { points: points.map((p) => `${xOf(p.month)},${yOf(p.score)}`).join(" "),
                                fill: "none", stroke: "var(--score)", "stroke-width": Math.max(2, 0.15 * font) }));
    for (const p of points) {
      const dot = el("circle", { cx: xOf(p.month), cy: yOf(p.score), r: 0.3 * font, fill: "var(--score)", "data-month": p.key });
      dot.append(el("title", {}, `Tháng ${p.month}/${config.year}: ${fmtPoints(p.score)} / ${fmtPoints(p.computable)} điểm`));
      svg.append(dot);
      svg.append(el("text", { x: xOf(p.month), y: yOf(p.score) - 0.55 * font, "text-anchor": "middle",
                              "font-size": font * 0.92, class: "value" }, fmtPoints(p.score)));
    }
  }

  // ---- refreshes (each: at most one round in flight; a change during a round runs one more) ----
  function singleFlight(task, what) {
    let running = false, again = false;
    return async function run() {
      if (running) { again = true; return; }
      running = true;
      try {
        do { again = false; await task(); } while (again);
      } catch (err) {
        console.warn("dashboard: " + what + " failed", err);
      } finally {
        running = false;
      }
    };
  }

  const refreshDetails = singleFlight(async () => {
    const [breakdown, monthly] = await Promise.all([
      api("/v1/indicators/breakdown?" + q({ from: config.from, to: config.to })),
      api("/v1/indicators/monthly?" + q({ year: config.year })),
    ]);
    lastBreakdown = breakdown; lastMonthly = monthly;
    renderBreakdown(breakdown); drawUnits(breakdown); drawMonths(monthly);
    requestTrend();
  }, "refresh");

  // The whole year: the service caps as_of at now, so this is the year to date and stays so
  // past midnight on a screen that is never reloaded.
  const refresh766 = singleFlight(async () => {
    last766 = await api("/v1/index766?" + q({ from: config.from, to: `${config.year}-12-31` }));
    render766(last766);
  }, "index 766");

  // The trend costs one /v1/index766 call per month begun: at most one round per
  // TREND_MIN_INTERVAL_MS, the last change always included (a trailing round).
  const TREND_MIN_INTERVAL_MS = 15000;
  let trendAt = 0, trendTimer = null;
  function requestTrend() {
    if (trendTimer !== null) return;
    const wait = Math.max(0, trendAt + TREND_MIN_INTERVAL_MS - Date.now());
    trendTimer = setTimeout(() => { trendTimer = null; trendAt = Date.now(); refreshTrend(); }, wait);
  }
  const refreshTrend = singleFlight(async () => {
    const months = core.trendMonths(lastMonthly);
    let bodies;
    try {
      bodies = await Promise.all(months.map((m) => api("/v1/index766?" + q({ from: m.from, to: m.to }))));
    } catch (err) {
      requestTrend(); // a round that failed (a 503 under load) is tried again after the throttle period
      throw err;
    }
    lastTrend = months.map((m, i) => ({ ...m, score: bodies[i].score, computable: bodies[i].computable_points }));
    drawTrend(lastTrend);
  }, "trend 766");

  // ---- the live stream ------------------------------------------------------------------------
  function setLive(state, text) {
    const dot = document.getElementById("live-dot");
    dot.className = "dot " + state;
    setText("live-text", text);
  }
  function connect() {
    const extra = { year: config.year };
    if (token) extra.access_token = token;
    const source = new EventSource("/v1/stream?" + q(extra));
    source.addEventListener("open", () => setLive("live", "Trực tuyến"));
    source.addEventListener("snapshot", (e) => {
      const snapshot = JSON.parse(e.data);
      snapshot.etag = e.lastEventId;
      renderSnapshot(snapshot);
      setLive("live", "Trực tuyến");
      refreshDetails();
      refresh766();
    });
    source.addEventListener("error", () => setLive("down", "Mất kết nối, đang thử lại…"));
  }

  // ---- pickers --------------------------------------------------------------------------------
  function navigate(changes) {
    const next = new URLSearchParams(window.location.search);
    for (const [k, v] of Object.entries(changes)) {
      if (v) next.set(k, v); else next.delete(k);
    }
    window.location.search = next.toString();
  }
  // The tree picker: today's tree and the last day before each reorganization the registry knows
  // (hidden for a registry without dates). Another tree changes the units the unit picker lists.
  function fillTrees(units) {
    const select = document.getElementById("tree-select");
    const choices = core.treeChoices(units, config.tree);
    if (!choices.length) return;
    select.replaceChildren(...choices.map((c) => {
      const o = document.createElement("option");
      o.value = c.value;
      o.textContent = c.label;
      o.selected = c.selected;
      return o;
    }));
    document.getElementById("tree-picker").hidden = false;
    // The unit's code may name another unit, or none, in the other tree: keep it when it exists
    // there (a reused code shows the unit of that tree), else show the tree's first root.
    select.addEventListener("change", async () => {
      const tree = select.value;
      let unit = config.unit;
      try {
        const other = await api("/v1/units" + (tree ? "?tree=" + encodeURIComponent(tree) : ""));
        if (!other.some((u) => u.code === unit)) unit = (other.find((u) => !u.parent) || other[0]).code;
      } catch (err) {
        console.warn("dashboard: units of the tree", err);
      }
      navigate({ tree, unit });
    });
  }
  async function fillUnits() {
    const select = document.getElementById("unit-select");
    try {
      const units = await api("/v1/units" + (config.tree ? "?tree=" + encodeURIComponent(config.tree) : ""));
      fillTrees(units);
      const byParent = {};
      for (const u of units) (byParent[u.parent || ""] = byParent[u.parent || ""] || []).push(u);
      const options = [];
      (function walk(parent, depth) {
        for (const u of byParent[parent] || []) {
          const o = document.createElement("option");
          o.value = u.code;
          o.textContent = "\u00a0\u00a0".repeat(depth) + u.name;
          o.selected = u.code === config.unit;
          options.push(o);
          walk(u.code, depth + 1);
        }
      })("", 0);
      select.replaceChildren(...options);
    } catch (err) {
      console.warn("dashboard: units", err);
    }
    select.addEventListener("change", () => navigate({ unit: select.value }));
  }

  document.getElementById("year-select").addEventListener("change", (e) => navigate({ year: e.target.value }));
  let resizeTimer = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => {
      if (lastBreakdown) drawUnits(lastBreakdown);
      if (lastMonthly) drawMonths(lastMonthly);
      if (last766) drawGroups(last766);
      if (lastTrend) drawTrend(lastTrend);
    }, 150);
  });
  if (!token) {
    setLive("down", "Thiếu mã truy cập (access_token)");
    return;
  }
  fillUnits();
  connect();
})();
